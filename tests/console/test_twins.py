"""Every console page with a JSON twin names it (a ``Link: rel=alternate`` header and the
page's JSON link), the twin answers the same principal with JSON, and the page shows what
the twin returns."""

from __future__ import annotations

import asyncio
import html
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.routing import APIRoute

from modelyard.console.routes import router as console_router
from modelyard.evaluate.metrics import METRICS
from modelyard.evaluate.runner import run_task
from modelyard.evaluate.runs import EvalRuns
from modelyard.evaluate.tasks import load_task
from modelyard.observe.drift_jobs import Windows
from modelyard.store.tables import DriftReportRow
from tests.conftest import AppClient, bearer, new_key, register_scripted
from tests.console.test_release_pages import EXPERIMENT, controller_elsewhere
from tests.evaluate.test_runs import task_file
from tests.improve.compress.pages import compress_pages
from tests.improve.distil.toy import distil_pages
from tests.improve.export.data import finetune_pages
from tests.improve.review.items import review_pages
from tests.improve.tune.words import finished, set_up, study_body

TASKS = Path(__file__).parents[2] / "tasks"

pytestmark = pytest.mark.anyio
USER = [{"role": "user", "content": "hi"}]
LINK = re.compile(r'^<(?P<url>[^>]+)>; rel="alternate"; type="application/json"$')
# Pages that render no JSON: the login form and the chat playground.
NO_TWIN = {"/", "/ui/login", "/ui/playground", "/ui/vendor/plotly.min.js"}
# Pages only an admin sees (the others are read with a viewer key).
ADMIN_ONLY = {"/ui/users"}

__all__ = ["controller_elsewhere"]  # the fixture, used here too (autouse)


async def pages(api: AppClient, tmp_path: Path) -> dict[str, str]:
    """A URL of every console page with a twin, keyed by its route's path."""
    registry = api.services.registry
    for model in ("chat", "ab"):
        register_scripted(registry, model)
        register_scripted(registry, model, alias="canary")
    await api.reload_routes()
    made = await api.post(
        "/v1/chat/completions", json={"model": "chat", "messages": USER, "user": "tester"}
    )
    request_id = made.headers["x-modelyard-request-id"]
    await api.logged()
    rule = {"name": "slow", "metric": "p95_latency_ms", "comparison": ">", "threshold": 500}
    assert (await api.post("/api/alerts/rules", json=rule)).status_code == 201
    dataset = await api.post("/api/datasets/from-log", json={"name": "log"})
    assert dataset.status_code == 201, dataset.text
    curated = await api.post("/api/curate", json={"name": "curated"})
    assert curated.status_code == 201, curated.text
    rollout = await api.post("/api/rollouts", json={"model": "chat", "candidate": 2})
    assert rollout.status_code == 201, rollout.text
    experiment = await api.post("/api/experiments", json={**EXPERIMENT, "model": "ab"})
    assert experiment.status_code == 201, experiment.text
    task, items = load_task(task_file(tmp_path), set(METRICS))
    runs = EvalRuns(api.services.store)
    first = await run_task(api, runs, task, items, "chat", actor="tests")
    second = await run_task(api, runs, task, items, "ab", actor="tests")
    probes, questions = load_task(TASKS / "leakage.yaml", set(METRICS))
    leakage = await run_task(api, runs, probes, questions, "chat", actor="tests")
    report_id = await asyncio.to_thread(drift_report, api)
    await set_up(api)
    study = await api.post("/api/tune/studies", json=study_body(trials=2, confirm=False))
    assert study.status_code == 202, study.text
    await finished(api, study.json()["id"])
    distilling = await distil_pages(api)
    compressing = await compress_pages(api, tmp_path)
    finetuning = await finetune_pages(api)
    reviewing = await review_pages(api)
    return {
        **distilling,
        **compressing,
        **finetuning,
        **reviewing,
        "/ui/models": "/ui/models",
        "/ui/models/{name}": "/ui/models/chat",
        "/ui/keys": "/ui/keys",
        "/ui/usage": "/ui/usage",
        "/ui/audit": "/ui/audit?action=key.create",
        "/ui/backup": "/ui/backup",
        "/ui/monitor": "/ui/monitor?hours=1&route=chat",
        "/ui/requests": "/ui/requests?route=chat",
        "/ui/requests/{request_id}": f"/ui/requests/{request_id}",
        "/ui/drift": "/ui/drift",
        "/ui/drift/{report_id}": f"/ui/drift/{report_id}",
        "/ui/datasets": "/ui/datasets",
        "/ui/datasets/{name}/{version}": "/ui/datasets/log/1",
        "/ui/curate": "/ui/curate",
        "/ui/curate/{name}/{version}": "/ui/curate/curated/1",
        "/ui/tune": "/ui/tune",
        "/ui/tune/{study_id}": f"/ui/tune/{study.json()['id']}",
        "/ui/eval": "/ui/eval",
        "/ui/eval/runs/{run_id}": f"/ui/eval/runs/{first.id}",
        "/ui/eval/compare": f"/ui/eval/compare?baseline={first.id}&candidate={second.id}",
        "/ui/eval/runs/{run_id}/slices": f"/ui/eval/runs/{first.id}/slices?by=length",
        "/ui/eval/runs/{run_id}/robustness": f"/ui/eval/runs/{first.id}/robustness",
        "/ui/eval/redteam": f"/ui/eval/redteam?run={leakage.id}",
        "/ui/alerts": "/ui/alerts",
        "/ui/routes": "/ui/routes",
        "/ui/rollouts": "/ui/rollouts",
        "/ui/rollouts/plan": "/ui/rollouts/plan?model=chat&candidate=2&requests_per_s=5",
        "/ui/rollouts/{rollout_id}": f"/ui/rollouts/{rollout.json()['id']}",
        "/ui/experiments": "/ui/experiments",
        "/ui/experiments/{name}": "/ui/experiments/ab1",
        "/ui/users": "/ui/users?user=tester",
    }


def drift_report(api: AppClient) -> int:
    """A stored drift report, as a drift run stores it (a run needs weeks of traffic)."""
    now = datetime.now(UTC)
    windows = Windows.ending(now, timedelta(days=1), timedelta(days=7))
    row = DriftReportRow(
        at=now,
        route="chat",
        reference_from=windows.reference_from,
        reference_to=windows.reference_to,
        current_from=windows.current_from,
        current_to=windows.current_to,
        drifted=False,
        share_drifted=0.0,
        report={"drift_share": 0.5, "columns": []},
    )
    with api.services.store.session() as session:
        session.add(row)
        session.flush()
        return row.id


async def test_every_page_names_its_json_twin_and_shows_its_values(
    api: AppClient, tmp_path: Path
) -> None:
    urls = await pages(api, tmp_path)
    console = {
        route.path
        for route in console_router.routes
        if isinstance(route, APIRoute) and "GET" in route.methods and route.path.startswith("/ui")
    }
    assert console - NO_TWIN == set(urls), "a new page: add it here, with its JSON twin"
    viewer = bearer(await new_key(api, "viewer"))
    for path, url in urls.items():
        reader = {} if path in ADMIN_ONLY else viewer  # {}: the client's admin key
        page = await api.get(url, headers=reader)
        assert page.status_code == 200, (url, page.text[:300])
        found = LINK.match(page.headers.get("link", ""))
        assert found is not None, url
        twin = found["url"]
        assert twin.startswith("/api/") and f'href="{html.escape(twin)}"' in page.text, url
        answer = await api.get(twin, headers=reader)
        assert answer.status_code == 200, (twin, answer.text[:300])
        assert answer.headers["content-type"].startswith("application/json"), twin


async def test_release_pages_show_their_twins_values(api: AppClient) -> None:
    for model in ("chat", "ab"):
        register_scripted(api.services.registry, model)
        register_scripted(api.services.registry, model, alias="canary")
    await api.reload_routes()
    started = await api.post("/api/rollouts", json={"model": "chat", "candidate": 2})
    await api.post("/api/experiments", json={**EXPERIMENT, "model": "ab"})
    rollout_id = started.json()["id"]
    for url in (f"/ui/rollouts/{rollout_id}", "/ui/experiments/ab1"):
        page = await api.get(url)
        twin = LINK.match(page.headers["link"])
        assert twin is not None
        value = (await api.get(twin["url"])).json()
        assert f'id="status">{value["status"]}<' in page.text
        assert html.escape(value["message"]) in page.text
        events = (await api.get(f"{twin['url']}/events")).json()["data"]
        assert events and all(html.escape(e["message"]) in page.text for e in events)
    rollout = (await api.get(f"/api/rollouts/{rollout_id}")).json()
    page = (await api.get(f"/ui/rollouts/{rollout_id}")).text
    steps = len(rollout["steps"])
    assert f'id="step">{min(rollout["step"] + 1, steps)}/{steps}<' in page


async def test_a_developer_is_refused_the_page_and_its_twin_alike(api: httpx.AsyncClient) -> None:
    developer = bearer(await new_key(api, "developer"))
    page = await api.get("/ui/keys", headers=developer)
    assert page.status_code == 403
    assert (await api.get("/api/keys", headers=developer)).status_code == 403
    own = await api.get("/ui/usage", headers=developer)
    twin = LINK.match(own.headers["link"])
    assert twin is not None and "key_id=" in twin["url"]
    assert (await api.get(twin["url"], headers=developer)).status_code == 200
