"""What a plan reads from the request log (traffic and the baseline's metrics), and the
plan's JSON API: a spec before it starts, and a stored rollout's."""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pytest

from modelyard.release.baselines import plan_from_log
from modelyard.release.protocol import PlanBaselines, RolloutPlan, Step
from modelyard.store import Store
from modelyard.store.tables import FeedbackRow, RequestLogRow, utcnow
from tests.conftest import AppClient, bearer, new_key, register_scripted
from tests.release.logrows import served

STEPS = [
    Step.model_validate(s)
    for s in [
        {"set_weight": 20},
        {
            "analysis": {
                "metrics": [
                    {"name": "error_rate"},
                    {"name": "latency"},
                    {"name": "positive_feedback_rate"},
                ]
            }
        },
    ]
]


def fill(store: Store, seed: int = 7) -> None:
    """An hour of a route: 400 requests before any policy and 100 of the stable variant
    (5 % errors, 10 client errors), 100 of a candidate, 50 shadows, 200 with feedback."""
    rng = np.random.default_rng(seed)
    now = utcnow()
    variants = [None] * 400 + ["stable"] * 100 + ["candidate"] * 100 + ["shadow"] * 50
    with store.session() as session:
        for i, variant in enumerate(variants):
            prompt = int(rng.integers(10, 2000))
            # log latency: 0.8 of its spread from the prompt's length, the rest noise
            latency = math.exp(5 + 0.4 * math.log1p(prompt) + rng.normal(0, 0.3))
            status = 500 if i % 20 == 0 else 400 if i in range(1, 100, 10) else 200
            session.add(
                RequestLogRow(
                    id=f"r{i}",
                    at=now - timedelta(minutes=float(rng.uniform(0, 59))),
                    day=now.date().isoformat(),
                    key_id="k",
                    endpoint="chat.completions",
                    route="chat",
                    version="chat@1",
                    status=status,
                    latency_ms=latency,
                    ttft_ms=None,
                    cost=0.0,
                    variant=variant,
                    prompt_tokens=prompt,
                )
            )
            if i < 200 and status == 200:
                session.add(
                    FeedbackRow(
                        request_id=f"r{i}",
                        key_id="k",
                        name="thumbs",
                        kind="boolean",
                        number=float(i % 4 != 0),
                        source="human",
                    )
                )


def test_the_traffic_and_the_baseline_come_from_the_log(store: Store) -> None:
    fill(store)
    result = plan_from_log(store, "chat", STEPS, window_s=3600)
    assert result.traffic_source == "request log" and result.logged_requests == 600
    assert result.requests_per_s == pytest.approx(600 / 3600)
    quantities = {q.name: q for q in result.quantities}
    errors = quantities["errors"]
    # The baseline: 500 requests of which 10 are client errors; 25 server errors.
    assert errors.source == "log" and errors.n == 490
    assert errors.mean == pytest.approx(25.5 / 491)
    assert errors.coverage == pytest.approx(490 / 500)
    latency = quantities["latency"]
    assert latency.source == "log" and latency.n == 465  # answered requests only
    # CUPED on the prompt's length removes most of the spread of log latency.
    assert latency.variance_reduction > 0.5
    assert latency.sd == pytest.approx(0.3, rel=0.15)
    feedback = quantities["feedback:thumbs"]
    # 180 answered requests of the first 200 have it, 140 thumbs up.
    assert feedback.source == "log" and feedback.n == 180
    assert feedback.mean == pytest.approx(140 / 180) and feedback.coverage == 180 / 500
    assert not any(m.assumed for m in result.steps[0].metrics)


def test_given_values_replace_the_logs(store: Store) -> None:
    fill(store)
    given = PlanBaselines.model_validate(
        {"error_rate": 0.1, "latency_log_sd": 1.0, "feedback": {"thumbs": {"mean": 0.6}}}
    )
    result = plan_from_log(store, "chat", STEPS, requests_per_s=50, given=given, window_s=3600)
    assert result.traffic_source == "given" and result.requests_per_s == 50
    quantities = {q.name: q for q in result.quantities}
    assert quantities["errors"].mean == 0.1 and quantities["errors"].source == "given"
    assert quantities["latency"].sd == 1.0 and quantities["latency"].variance_reduction == 0
    assert quantities["feedback:thumbs"].sd == pytest.approx(math.sqrt(0.24))
    assert quantities["feedback:thumbs"].coverage == 0.1


def test_an_empty_log_plans_on_the_documented_defaults(store: Store) -> None:
    result = plan_from_log(store, "chat", STEPS)
    assert result.requests_per_s == 0 and result.logged_requests == 0
    assert result.warnings[0].startswith("no traffic on the route")
    assert all(q.source == "default" for q in result.quantities)


@pytest.mark.anyio
async def test_the_plan_api_for_a_spec_and_for_a_stored_rollout(api: AppClient) -> None:
    register_scripted(api.services.registry, "chat")
    register_scripted(api.services.registry, "chat", alias="next")
    await api.reload_routes()
    viewer = bearer(await new_key(api, "viewer"))
    spec = {
        "model": "chat",
        "candidate": 2,
        "steps": [s.model_dump(exclude_none=True) for s in STEPS],
        "requests_per_s": 20,
        "baselines": {"error_rate": 0.02},
    }
    answer = await api.post("/api/rollouts/plan", json=spec, headers=viewer)
    assert answer.status_code == 200, answer.text
    planned = RolloutPlan.model_validate(answer.json())
    assert planned.requests_per_s == 20 and planned.rollout is None
    assert [m.name for m in planned.steps[0].metrics] == [
        "error_rate",
        "latency",
        "positive_feedback_rate[thumbs]",
    ]
    defaults = await api.get(
        "/api/rollouts/plan", params={"model": "chat", "candidate": 2, "requests_per_s": 5}
    )
    assert defaults.status_code == 200, defaults.text
    assert [s["weight"] for s in defaults.json()["steps"]] == [10, 50]
    bad = await api.post("/api/rollouts/plan", json={**spec, "requests_per_s": -1})
    assert bad.status_code == 400 and "requests_per_s" in bad.json()["error"]["param"]
    developer = bearer(await new_key(api, "developer"))
    assert (await api.post("/api/rollouts/plan", json=spec, headers=developer)).status_code == 403

    started = await api.post("/api/rollouts", json={"model": "chat", "candidate": 2})
    rollout_id = started.json()["id"]
    stored = await api.get(f"/api/rollouts/{rollout_id}/plan", params={"requests_per_s": 5})
    assert stored.status_code == 200, stored.text
    assert stored.json()["rollout"] == rollout_id and len(stored.json()["steps"]) == 2
    # Without a rate, a stored rollout is planned at the traffic since it started (at least
    # the last minute), not the day's average: 120 requests in its first minute is 2/s.
    for i in range(120):
        session_row(api, f"rollout-{i}")
    own = (await api.get(f"/api/rollouts/{rollout_id}/plan")).json()
    assert own["traffic_source"] == "request log" and own["logged_requests"] == 120
    assert own["requests_per_s"] == pytest.approx(2.0, rel=0.01)
    missing = await api.get("/api/rollouts/999/plan")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


def session_row(api: AppClient, request_id: str) -> None:
    """One served request of route ``chat``, logged now."""
    now = utcnow()
    with api.services.store.session() as session:
        session.add(served(request_id, now, variant="stable"))
