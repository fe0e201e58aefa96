"""The console's release pages (routes, rollouts, experiments) render what their JSON twins
under /api return, and only admins get the buttons that change them."""

from __future__ import annotations

import asyncio
import html
import json
import re
from datetime import timedelta
from typing import Any

import pytest
from markupsafe import escape

from modelyard.config import Settings
from modelyard.registry import Registry
from modelyard.release.controller import LEASE
from modelyard.routing.protocol import TrafficPolicy
from modelyard.store import open_store
from modelyard.store.lease import acquire_lease
from tests.conftest import AppClient, bearer, new_key, register_scripted

pytestmark = pytest.mark.anyio
USER = [{"role": "user", "content": "hi"}]
STEPS = [
    {"set_weight": 50},
    {"analysis": {"interval_s": 0.05, "min_samples": 5, "count": 3}},
    {"pause": {}},
    {"gate": {"task": "qa", "rules": [{"metric": "exact_match", "min_value": 0.5}]}},
]
EXPERIMENT = {
    "name": "ab1",
    "model": "chat",
    "variants": [
        {"name": "control", "version": 1, "weight": 50},
        {"name": "treatment", "version": 2, "weight": 50},
    ],
    "primary": {"name": "error_rate"},
    "guardrails": [{"name": "latency_p95"}],
    "min_samples": 5,
    "interval_s": 0.05,
    "stop": {"on_guardrail": False},
}


@pytest.fixture(autouse=True)
def controller_elsewhere(home_registry: Registry) -> None:
    """Another replica holds the release controller's lease, so this app's controller never
    ticks: the tests advance rollouts and analyse experiments themselves."""
    store = open_store(Settings().store_url)
    try:
        assert acquire_lease(store, LEASE, "another-replica", timedelta(hours=1))
    finally:
        store.close()


async def two_versions(api: AppClient) -> None:
    register_scripted(api.services.registry, "chat")
    register_scripted(api.services.registry, "chat", alias="canary")
    await api.reload_routes()


async def traffic(api: AppClient, requests: int = 30) -> None:
    """Requests from distinct users (their assignment is sticky), logged before returning."""
    for i in range(requests):
        answer = await api.post(
            "/v1/chat/completions", json={"model": "chat", "messages": USER, "user": f"user-{i}"}
        )
        assert answer.status_code == 200, answer.text
    await api.logged()


async def start_rollout(api: AppClient, measurements: int) -> dict[str, Any]:
    started = await api.post(
        "/api/rollouts", json={"model": "chat", "candidate": 2, "steps": STEPS}
    )
    assert started.status_code == 201, started.text
    rollout_id = started.json()["id"]
    await traffic(api)
    for _ in range(measurements):
        await asyncio.sleep(0.06)  # the analysis' interval
        await asyncio.to_thread(api.services.rollouts.advance, rollout_id)
    rollout: dict[str, Any] = (await api.get(f"/api/rollouts/{rollout_id}")).json()
    return rollout


def form_steps(page: str) -> str:
    """The steps the start form holds, as its textarea has them."""
    found = re.search(r'<textarea name="steps"[^>]*>(.*?)</textarea>', page, re.DOTALL)
    assert found is not None
    return html.unescape(found.group(1))


def embedded(page: str) -> Any:
    """The JSON the page's script draws from."""
    found = re.search(r'<script id="release-data" type="application/json">(.*?)</script>', page)
    assert found is not None
    return json.loads(found.group(1))


async def test_rollout_pages_render_the_api_json(api: AppClient) -> None:
    await two_versions(api)
    rollout = await start_rollout(api, measurements=2)
    rollout_id = rollout["id"]
    measurements = (await api.get(f"/api/rollouts/{rollout_id}/measurements")).json()["data"]
    events = (await api.get(f"/api/rollouts/{rollout_id}/events")).json()["data"]
    assert rollout["status"] == "running" and rollout["step"] == 1
    assert len(measurements) == 2

    listing = (await api.get("/ui/rollouts")).text
    assert f'href="/ui/rollouts/{rollout_id}"' in listing
    assert "chat:production v1 → v2" in listing
    assert "running" in listing and "2/4" in listing and "50%" in listing
    assert str(escape(rollout["message"])) in listing

    page = await api.get(f"/ui/rollouts/{rollout_id}")
    assert page.status_code == 200
    text = page.text
    # The charts draw from exactly what the API returns.
    data = embedded(text)
    assert data["subject"] == rollout
    assert data["measurements"] == measurements
    assert "/ui/vendor/plotly.min.js" in text and "/static/release.js" in text
    assert f'data-api="/api/rollouts/{rollout_id}"' in text
    assert 'id="status">running<' in text and 'id="weight">50%<' in text
    for kind in ("set_weight", "analysis", "pause", "gate"):
        assert f'<td class="mono">{kind}</td>' in text
    assert 'data-step="1" class="current"' in text and 'data-step="0" class="done"' in text
    latest = measurements[-1]["data"]
    assert f"#{measurements[-1]['seq']} of step 2" in text
    for metric in latest["metrics"]:
        row = text.split(f'data-metric="{metric["name"]}"', 1)[1].split("</tr>", 1)[0]
        assert f"outcome-{metric['outcome']}" in row
        assert f"{metric['baseline_n']} / {metric['candidate_n']}" in row
        assert str(escape(metric["reason"])) in row
    srm = latest["srm"]
    assert f"baseline {srm['counts'][0]}, candidate {srm['counts'][1]}" in text
    assert "p = {:.3g}".format(srm["p_value"]) in text
    for event in events:
        assert str(escape(event["message"])) in text
    # An admin gets Promote and Abort (Resume only while paused), each asking first.
    assert 'data-action="promote"' in text and 'data-action="abort"' in text
    assert 'data-action="resume"' not in text and "data-confirm=" in text

    script = await api.get("/static/release.js")
    assert script.status_code == 200 and "/measurements" in script.text


async def test_a_rollout_page_shows_its_plan_and_a_spec_can_be_planned(api: AppClient) -> None:
    await two_versions(api)
    rollout = await start_rollout(api, measurements=0)
    plan = (await api.get(f"/api/rollouts/{rollout['id']}/plan")).json()
    page = (await api.get(f"/ui/rollouts/{rollout['id']}")).text
    assert f'href="/api/rollouts/{rollout["id"]}/plan"' in page
    (step,) = plan["steps"]  # the one analysis, at 50 %
    row = page.split(f'data-plan-step="{step["step"]}"', 1)[1]
    for metric in step["metrics"]:
        cells = row.split(f'data-plan-metric="{metric["name"]}"', 1)[1].split("</tr>", 1)[0]
        assert str(escape(metric["detectable_text"])) in cells
        assert str(escape(metric["margin_text"])) in cells
        assert all(str(escape(w)) in cells for w in metric["warnings"])
    assert all(str(escape(w)) in page for w in plan["warnings"])

    form = await api.get("/ui/rollouts/plan")
    assert form.status_code == 200 and "link" not in form.headers
    assert 'name="candidate"' in form.text and "plan-step" not in form.text
    planned = await api.get("/ui/rollouts/plan?model=chat&candidate=2&requests_per_s=40")
    twin = (await api.get("/api/rollouts/plan?model=chat&candidate=2&requests_per_s=40")).json()
    assert planned.headers["link"].startswith("</api/rollouts/plan?model=chat&candidate=2")
    assert [s["weight"] for s in twin["steps"]] == [10, 50]
    for step in twin["steps"]:
        assert f'data-plan-step="{step["step"]}"' in planned.text
        for metric in step["metrics"]:
            assert str(escape(metric["detectable_text"])) in planned.text
    assert "40 requests/s" in planned.text
    listing = (await api.get("/ui/rollouts")).text
    assert 'href="/ui/rollouts/plan"' in listing


async def test_a_paused_rollout_offers_resume_and_a_finished_one_no_buttons(
    api: AppClient,
) -> None:
    await two_versions(api)
    rollout = await start_rollout(api, measurements=3)
    assert rollout["status"] == "paused", rollout["message"]  # three inconclusive looks
    page = (await api.get(f"/ui/rollouts/{rollout['id']}")).text
    assert 'data-action="resume"' in page and 'data-action="promote"' in page
    assert len(embedded(page)["measurements"]) == 3

    # What the Promote button gets back: the API's refusal, shown as is.
    refused = await api.post(f"/api/rollouts/{rollout['id']}/promote", json={})
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "gate_not_passed"

    aborted = await api.post(f"/api/rollouts/{rollout['id']}/abort", json={"reason": "too slow"})
    assert aborted.status_code == 200, aborted.text
    page = (await api.get(f"/ui/rollouts/{rollout['id']}")).text
    assert 'id="status">aborted<' in page and "too slow" in page
    assert "data-action=" not in page
    assert "Updated from" not in page  # nothing left to poll for


async def test_release_pages_refuse_unknown_and_out_of_range_ids(api: AppClient) -> None:
    assert (await api.get("/ui/rollouts/999")).status_code == 404
    for bad in ("0", "-1", str(2**31), "abc"):
        answer = await api.get(f"/ui/rollouts/{bad}")
        assert answer.status_code == 400, (bad, answer.status_code)  # a validation error
    assert (await api.get("/ui/experiments/ghost")).status_code == 404
    for path in ("/ui/rollouts", "/ui/experiments", "/ui/routes"):
        empty = await api.get(path)
        assert empty.status_code == 200 and "No " in empty.text, path


async def test_read_only_keys_see_release_pages_without_buttons(api: AppClient) -> None:
    await two_versions(api)
    rollout = await start_rollout(api, measurements=1)
    viewer = bearer(await new_key(api, "viewer"))
    page = await api.get(f"/ui/rollouts/{rollout['id']}", headers=viewer)
    assert page.status_code == 200
    assert "data-action=" not in page.text and 'id="action-reason"' not in page.text
    assert embedded(page.text)["subject"]["id"] == rollout["id"]
    for action in ("promote", "abort", "resume"):
        refused = await api.post(f"/api/rollouts/{rollout['id']}/{action}", headers=viewer)
        assert refused.status_code == 403, action
    for path in ("/ui/rollouts", "/ui/routes", "/ui/experiments"):
        assert (await api.get(path, headers=viewer)).status_code == 200, path
    developer = bearer(await new_key(api, "developer"))
    for path in (f"/ui/rollouts/{rollout['id']}", "/ui/routes", "/ui/experiments"):
        assert (await api.get(path, headers=developer)).status_code == 403, path
    assert (await api.get("/api/rollouts/1")).json()["status"] == "running"


async def test_routes_page_shows_policies_variants_fallbacks_breakers_and_history(
    api: AppClient,
) -> None:
    await two_versions(api)
    register_scripted(api.services.registry, "side", fail_when_prompt_contains="boom")
    register_scripted(api.services.registry, "side", alias="next")
    await api.reload_routes()
    policy = {
        "shadows": [{"version": 2, "share": 25}],
        "timeout_s": 1.5,
        "fallbacks": [{"model": "chat", "timeout_s": 2}],
        "breaker": {"failures": 1, "cooldown_s": 60},
    }
    put = await api.put("/api/routes/side", json={"policy": policy, "reason": "mirror v2"})
    assert put.status_code == 200, put.text
    rollout = await start_rollout(api, measurements=0)
    boom = [{"role": "user", "content": "boom"}]
    failed_over = await api.post("/v1/chat/completions", json={"model": "side", "messages": boom})
    assert failed_over.status_code == 200, failed_over.text  # chat answered

    page = (await api.get("/ui/routes")).text
    policies = (await api.get("/api/routes")).json()["data"]
    assert [p["model"] for p in policies] == ["chat", "side"]
    for stored in policies:
        model = stored["model"]
        section = page.split(f'data-model="{model}"', 1)[1].split("</section>", 1)[0]
        route = (await api.get(f"/api/routes/{model}")).json()
        for variant in route["variants"]:
            assert f'<td class="mono">{variant["name"]}</td>' in section
            share = variant.get("weight", variant.get("share"))
            assert f"{share:g}%" in section
        for breaker in route["breakers"]:
            row = section.split(f'<td class="mono">{breaker["target"]}</td>', 1)[1]
            row = row.split("</tr>", 1)[0]
            assert breaker["state"] in row and str(breaker["consecutive_failures"]) in row
        for change in (await api.get(f"/api/routes/{model}/history")).json()["data"]:
            assert str(escape(change["reason"])) in section and change["actor"] in section
        assert str(escape(stored["updated_by"])) in section
    side = page.split('data-model="side"', 1)[1].split("</section>", 1)[0]
    assert "side@2" in side and "25% mirrored" in side
    assert "first token within 1.5 s" in side and "→ <span" in side and "(2 s)" in side
    assert '<td class="mono">side@1</td>' in side and ">open<" in side
    assert "side@1" not in page.split('data-model="chat"', 1)[1].split("</section>", 1)[0]
    chat = page.split('data-model="chat"', 1)[1].split("</section>", 1)[0]
    assert f'href="/ui/rollouts/{rollout["id"]}"' in chat and "managed by rollout" in chat
    assert "chat:production" in chat and "salt <span" in chat

    # A policy stored for a model this replica has not loaded yet still lists.
    register_scripted(api.services.registry, "late")
    api.services.policies.put("late", TrafficPolicy(), actor="tests", reason="ahead of time")
    page = (await api.get("/ui/routes")).text
    late = page.split('data-model="late"', 1)[1].split("</section>", 1)[0]
    assert "has not loaded this route yet" in late and "ahead of time" in late


async def test_experiment_pages_render_the_api_json(api: AppClient) -> None:
    await two_versions(api)
    started = await api.post("/api/experiments", json=EXPERIMENT)
    assert started.status_code == 201, started.text
    empty = (await api.get("/ui/experiments/ab1")).text
    assert "No measurement yet" in empty and 'data-action="stop"' in empty
    await traffic(api)
    for _ in range(2):
        await asyncio.sleep(0.06)
        await asyncio.to_thread(api.services.experiments.analyse, "ab1")
    experiment = (await api.get("/api/experiments/ab1")).json()
    measurements = (await api.get("/api/experiments/ab1/measurements")).json()["data"]
    assert experiment["status"] == "running" and len(measurements) == 2

    listing = (await api.get("/ui/experiments")).text
    assert 'href="/ui/experiments/ab1"' in listing
    assert "control v1 50%" in listing and "treatment v2 50%" in listing
    assert "error_rate" in listing and str(escape(experiment["message"])) in listing

    page = await api.get("/ui/experiments/ab1")
    assert page.status_code == 200
    text = page.text
    data = embedded(text)
    assert data["subject"] == experiment and data["measurements"] == measurements
    assert 'data-api="/api/experiments/ab1"' in text and "/ui/vendor/plotly.min.js" in text
    result = experiment["result"]
    for name, count in result["samples"].items():
        row = text.split(f'<tr data-variant="{name}">', 1)[1].split("</tr>", 1)[0]
        assert f"<td>{count}</td>" in row and "50%" in row
    for comparison in result["comparisons"]:
        primary = comparison["primary"]
        row = text.split(f'<tr data-variant="{comparison["variant"]}">', 2)[2]
        row = row.split("</tr>", 1)[0]
        assert f"verdict-{comparison['verdict']}" in row
        assert f"{primary['baseline_n']} / {primary['candidate_n']}" in row
        assert str(escape(primary["reason"])) in row
        for guardrail in comparison["guardrails"]:
            assert guardrail["name"] in text and str(escape(guardrail["reason"])) in text
    assert "p = {:.3g}".format(result["srm"]["p_value"]) in text
    assert str(escape(result["summary"])) in text

    viewer = bearer(await new_key(api, "viewer"))
    seen = (await api.get("/ui/experiments/ab1", headers=viewer)).text
    assert "data-action=" not in seen and "ab1" in seen
    assert (await api.post("/api/experiments/ab1/stop", headers=viewer)).status_code == 403

    stopped = await api.post("/api/experiments/ab1/stop", json={"reason": "enough"})
    assert stopped.status_code == 200, stopped.text
    text = (await api.get("/ui/experiments/ab1")).text
    assert 'id="status">stopped<' in text and "enough" in text and "data-action=" not in text


async def test_admins_get_a_form_to_start_a_rollout_and_viewers_do_not(api: AppClient) -> None:
    await two_versions(api)
    page = await api.get("/ui/rollouts")
    link = '</api/rollouts>; rel="alternate"; type="application/json"'
    assert page.status_code == 200 and page.headers["link"] == link
    text = page.text
    assert '<form id="start-rollout">' in text and '<script src="/static/rollouts.js">' in text
    for model in (await api.get("/api/models")).json()["data"]:
        option = f'<option value="{model["name"]}" data-latest="{model["latest_version"]}">'
        assert option in text
    assert 'name="alias" value="production"' in text and 'name="notify"' in text
    assert 'value="plan">Plan</button>' in text and 'value="start">Start</button>' in text
    assert "gate:" in form_steps(text) and "set_weight:" in form_steps(text)

    viewer = bearer(await new_key(api, "viewer"))
    seen = await api.get("/ui/rollouts", headers=viewer)
    assert seen.status_code == 200 and seen.headers["link"] == link
    assert "start-rollout" not in seen.text and "rollouts.js" not in seen.text
    assert 'href="/ui/rollouts/plan"' in seen.text
    body = {"model": "chat", "candidate": 2, "steps_yaml": form_steps(text)}
    assert (await api.post("/api/rollouts", json=body, headers=viewer)).status_code == 403
    experiments = (await api.get("/ui/experiments")).text
    assert "start-rollout" not in experiments


async def test_what_the_start_form_sends_plans_and_starts_a_rollout(api: AppClient) -> None:
    await two_versions(api)
    body = {
        "model": "chat",
        "candidate": 2,
        "alias": "production",
        "notify": ["https://hooks.example/x"],
        "reason": "from the console",
        "steps_yaml": form_steps((await api.get("/ui/rollouts")).text),
    }
    plan = await api.post("/api/rollouts/plan", json={**body, "requests_per_s": 5})
    assert plan.status_code == 200, plan.text
    assert [s["weight"] for s in plan.json()["steps"]] == [10, 50]

    started = await api.post("/api/rollouts", json=body)
    assert started.status_code == 201, started.text
    rollout = started.json()
    kinds = [next(k for k, v in step.items() if v is not None) for step in rollout["steps"]]
    assert kinds == ["gate", "set_weight", "analysis", "set_weight", "analysis"]
    # Running, waiting at the gate for an eval run of the candidate.
    assert rollout["status"] == "running" and rollout["step"] == 0 and rollout["weight"] == 0
    assert "eval run" in rollout["message"], rollout["message"]
    assert f'href="/ui/rollouts/{rollout["id"]}"' in (await api.get("/ui/rollouts")).text
    events = (await api.get(f"/api/rollouts/{rollout['id']}/events")).json()["data"]
    assert "from the console" in events[0]["message"]

    # A second one on the same route: the API's refusal is what the form shows.
    refused = await api.post("/api/rollouts", json=body)
    assert refused.status_code == 409 and refused.json()["error"]["message"]
    script = await api.get("/static/rollouts.js")
    assert script.status_code == 200
    for sent in ("/api/rollouts/plan", "steps_yaml", "/ui/rollouts/", "error.message"):
        assert sent in script.text, sent
