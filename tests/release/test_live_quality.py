"""Online quality in release analyses: each variant's live-judge scores, read by request from
the store, compared by the analysis like any mean; a rollout whose canary the live judge
scores worse is rolled back."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from modelyard.engines import GenerationRequest, Message
from modelyard.evaluate.judges import rubric_prompt
from modelyard.observe.quality.judgements import LiveJudgementRecord, LiveJudgements
from modelyard.release.analysis import compare_metric
from modelyard.release.observations import VariantData, observe
from modelyard.release.protocol import AnalysisMetric, RolloutOut
from modelyard.serving.judging import question_of
from modelyard.store import Store
from modelyard.store.tables import utcnow
from tests.conftest import AppClient, register_scripted
from tests.release.logrows import served

pytestmark = pytest.mark.anyio
QUESTION = "What is the capital of France?"
RUBRIC = "Is the answer right?"


def judged(store: Store, request_id: str, quality: float | None, variant: str) -> None:
    LiveJudgements(store).save(
        LiveJudgementRecord(
            request_id=request_id,
            judge_request_id=f"{request_id}.judge",
            route="chat",
            version="chat@1",
            variant=variant,
            judge="judge@1",
            score=None if quality is None else 1 + 4 * quality,
            quality=quality,
            scale=(1, 5),
            error=None,
            latency_ms=1.0,
            cost=0.0,
        )
    )


def test_observations_hold_each_variants_judged_quality(store: Store) -> None:
    now = utcnow()
    with store.session() as session:
        for request_id, variant in (("a", "stable"), ("b", "stable"), ("c", "candidate")):
            session.add(served(request_id, now, variant=variant))
        session.add(served("x", now, variant="stable", route="other"))
    judged(store, "a", 1.0, "stable")
    judged(store, "b", None, "stable")  # no score: not a value
    judged(store, "c", 0.25, "candidate")
    judged(store, "x", 0.5, "stable")  # another route's request
    seen = observe(store, "chat", ["stable", "candidate"], now, now)
    assert seen.of("stable").quality == [1.0]
    assert seen.of("candidate").quality == [0.25]


@pytest.mark.parametrize(("shift", "expected"), [(-0.15, "Failed"), (0.0, "Successful")])
def test_online_quality_is_compared_as_a_mean_with_its_margin(shift: float, expected: str) -> None:
    rng = np.random.default_rng(7)
    base, cand = VariantData(assigned=1500), VariantData(assigned=1500)
    base.quality = list(np.clip(rng.normal(0.7, 0.2, 1500), 0, 1))
    cand.quality = list(np.clip(rng.normal(0.7 + shift, 0.2, 1500), 0, 1))
    result = compare_metric(
        AnalysisMetric(name="online_quality"),
        base,
        cand,
        alpha=0.05,
        min_samples=50,
        planned_samples=3000,
    )
    assert result.outcome == expected, result.reason
    assert (result.margin, result.baseline_n, result.candidate_n) == (0.05, 1500, 1500)


def judge_replies(answers: dict[str, str]) -> dict[str, str]:
    """What the scripted judge answers to each answer's rubric prompt."""
    question = question_of(GenerationRequest(messages=(Message("user", QUESTION),)))
    return {
        rubric_prompt(question, answer, RUBRIC, (1, 5)): score for answer, score in answers.items()
    }


async def test_a_canary_the_live_judge_scores_worse_is_rolled_back(
    api: AppClient, modelyard_home: Path
) -> None:
    registry = api.services.registry
    register_scripted(registry, "chat", replies=["Paris", "It is Paris"])
    register_scripted(registry, "chat", alias="next", replies=["Lyon", "Maybe Paris"])
    scores = {"Paris": "5", "It is Paris": "4", "Lyon": "1", "Maybe Paris": "3"}
    register_scripted(registry, "judge", replies_by_message=judge_replies(scores))
    await api.reload_routes()
    live = {"judge": "judge", "share": 1.0, "rubric": RUBRIC, "max_per_minute": 100_000}
    response = await api.put("/api/routes/chat", json={"policy": {"live_judge": live}})
    assert response.status_code == 200, response.text
    analysis = {
        "interval_s": 0.05,
        "min_samples": 40,
        "count": 20,
        "metrics": [{"name": "online_quality"}],
    }
    response = await api.post(
        "/api/rollouts",
        json={
            "model": "chat",
            "candidate": 2,
            "steps": [{"set_weight": 50}, {"analysis": analysis}],
        },
    )
    assert response.status_code == 201, response.text
    rollout = RolloutOut.model_validate(response.json())
    await api.reload_routes()
    for _ in range(20):
        await asyncio.gather(*(ask(api) for _ in range(60)))
        await settled(api)
        await asyncio.sleep(0.06)  # the analysis interval
        rollout = api.services.rollouts.advance(rollout.id)
        await api.reload_routes()
        if rollout.status != "running":
            break
    assert rollout.status == "aborted", rollout.message
    assert "online_quality" in rollout.message and "worse" in rollout.message
    last = api.services.rollouts.measurements(rollout.id)[-1]
    quality = last.data["metrics"][0]
    assert quality["baseline"] == pytest.approx(0.875, abs=0.02)  # (1 + 0.75) / 2
    assert quality["candidate"] == pytest.approx(0.25, abs=0.02)  # (0 + 0.5) / 2
    # The route's policy is back to what it was: live judging on, no candidate.
    policy = (await api.get("/api/routes/chat")).json()["policy"]
    assert policy["candidates"] == [] and policy["live_judge"]["judge"] == "judge"
    assert {a.name: a.version for a in registry.model("chat").aliases}["production"] == 1


async def ask(api: AppClient) -> None:
    response = await api.post(
        "/v1/chat/completions",
        json={"model": "chat", "messages": [{"role": "user", "content": QUESTION}]},
    )
    assert response.status_code == 200, response.text


async def settled(api: AppClient) -> None:
    for _ in range(1000):
        if api.services.live_judge.pending == 0:
            break
        await asyncio.sleep(0.01)
    assert api.services.live_judge.pending == 0
    await api.logged()
