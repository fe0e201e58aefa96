"""Live judging end to end on scripted engines: a route samples a share of its answers to a
judge in the background; the scores are stored per request and version, exported as a
Prometheus metric and served by ``/api/quality``; the budget, the queue bound and the
request path's independence from a slow judge hold."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from modelyard.config import Settings
from modelyard.observe.alerts import AlertEvaluator, AlertService
from modelyard.observe.alerts.protocol import AlertRule
from modelyard.registry import Registry
from modelyard.store.tables import LiveJudgementRow, RequestLogRow
from tests.conftest import AppClient, app_client, register_scripted

pytestmark = pytest.mark.anyio
ANSWER = "Paris is the capital of France"


@pytest.fixture(autouse=True)
def quick_log(modelyard_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Write the request log every 50 ms, so reading it back does not wait a second."""
    monkeypatch.setenv("MODELYARD_LOG_FLUSH_INTERVAL_S", "0.05")


async def judged_route(
    api: AppClient, registry: Registry, judge: dict[str, Any], **live: Any
) -> None:
    """``chat`` answers ANSWER; ``judge`` (scripted with ``judge``) scores a share of it."""
    register_scripted(registry, "chat", replies=[ANSWER])
    register_scripted(registry, "judge", **judge)
    await api.reload_routes()
    setting = {"judge": "judge", "share": 1.0, "max_per_minute": 10_000, **live}
    response = await api.put("/api/routes/chat", json={"policy": {"live_judge": setting}})
    assert response.status_code == 200, response.text


async def chat(
    api: httpx.AsyncClient, text: str = "What is the capital of France?"
) -> httpx.Response:
    response = await api.post(
        "/v1/chat/completions",
        json={"model": "chat", "messages": [{"role": "user", "content": text}]},
    )
    assert response.status_code == 200, response.text
    return response


async def settled(api: AppClient) -> None:
    """Wait until the live judge has judged and stored what it was given, and the log."""
    for _ in range(1000):
        if api.services.live_judge.pending == 0:
            break
        await asyncio.sleep(0.01)
    assert api.services.live_judge.pending == 0
    await api.logged()


def judgements(api: AppClient) -> list[LiveJudgementRow]:
    with api.services.store.session() as session:
        found = list(session.scalars(select(LiveJudgementRow).order_by(LiveJudgementRow.id)))
        for row in found:
            session.expunge(row)
        return found


def log_rows(api: AppClient) -> dict[str, RequestLogRow]:
    with api.services.store.session() as session:
        found = session.scalars(select(RequestLogRow)).all()
        for row in found:
            session.expunge(row)
        return {row.id: row for row in found}


def samples(metrics_text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(metrics_text)
        for sample in family.samples
        if sample.name == name
    }


async def test_half_the_answers_are_judged_with_the_judges_scores(
    api: AppClient, home_registry: Registry
) -> None:
    await judged_route(api, home_registry, {"replies": ["Score: 4"]}, share=0.5)
    responses = [await chat(api) for _ in range(80)]
    await settled(api)
    ids = {r.headers["x-modelyard-request-id"] for r in responses}
    found = judgements(api)
    # a fair coin over 80 answers: outside 20-60 with probability below 1e-5
    assert 20 <= len(found) <= 60, len(found)
    assert len({j.request_id for j in found}) == len(found) and {j.request_id for j in found} <= ids
    for row in found:
        assert (row.route, row.version, row.variant, row.judge) == (
            "chat",
            "chat@1",
            "stable",
            "judge@1",
        )
        assert (row.score, row.quality, row.error) == (4.0, 0.75, None)
        assert (row.scale_low, row.scale_high) == (1, 5)
    # Each judge call is logged as judge traffic under the judge's route, not charged.
    logged = log_rows(api)
    for row in found:
        call = logged[row.judge_request_id]
        assert call.id == f"{row.request_id}.judge"
        assert (call.route, call.variant, call.version, call.status) == (
            "judge",
            "live_judge",
            "judge@1",
            200,
        )
    assert sum(r.variant == "live_judge" for r in logged.values()) == len(found)
    usage = (await api.get("/api/usage", params={"route": "chat"})).json()["data"]
    assert sum(day["requests"] for day in usage) == 80
    # The metric: one observation per judged answer, on 0-1; judge calls are not requests.
    metrics = (await api.get("/metrics")).text
    labels = (("route", "chat"), ("version", "chat@1"))
    assert samples(metrics, "modelyard_live_quality_count") == {labels: len(found)}
    assert samples(metrics, "modelyard_live_quality_sum")[labels] == pytest.approx(
        0.75 * len(found)
    )
    judged = samples(metrics, "modelyard_live_judge_samples_total")
    assert judged == {(("outcome", "judged"), ("route", "chat")): len(found)}
    requests = samples(metrics, "modelyard_requests_total")
    assert {dict(k)["route"] for k in requests} == {"chat"}
    # The API: the route's version's online quality over the window.
    quality = (
        await api.get("/api/quality", params={"route": "chat", "hours": 1, "bucket_s": 60})
    ).json()
    [series] = quality["series"]
    assert (series["route"], series["version"], series["judged"]) == ("chat", "chat@1", len(found))
    assert series["mean"] == pytest.approx(0.75)
    assert sum(p["judged"] for p in series["points"]) == len(found)
    assert quality["replica"]["judged"] == len(found)
    listed = (await api.get("/api/quality/judgements", params={"route": "chat", "limit": 5})).json()
    assert [j["request_id"] for j in listed["data"]] == [j.request_id for j in found[::-1][:5]]


async def test_the_answer_does_not_wait_for_a_slow_judge(
    api: AppClient, home_registry: Registry
) -> None:
    await judged_route(api, home_registry, {"replies": ["5"], "first_token_delay_ms": 1000})
    await chat(api)  # starts both engines
    await settled(api)
    started = time.perf_counter()
    response = await chat(api)
    elapsed = time.perf_counter() - started
    assert elapsed < 0.5, elapsed
    assert api.services.live_judge.pending == 1  # still judging after the answer came
    request_id = response.headers["x-modelyard-request-id"]
    assert request_id not in {j.request_id for j in judgements(api)}
    await settled(api)
    [row] = [j for j in judgements(api) if j.request_id == request_id]
    assert row.score == 5.0 and row.latency_ms >= 1000


async def test_judge_calls_stop_at_the_budget_and_are_counted(
    api: AppClient, home_registry: Registry
) -> None:
    await judged_route(api, home_registry, {"replies": ["3"]}, max_per_minute=3)
    for _ in range(8):
        await chat(api)
    await settled(api)
    assert [j.score for j in judgements(api)] == [3.0, 3.0, 3.0]
    assert sum(r.variant == "live_judge" for r in log_rows(api).values()) == 3
    counts = api.services.live_judge.counts
    assert (counts.judged, counts.over_budget) == (3, 5)
    judged = samples((await api.get("/metrics")).text, "modelyard_live_judge_samples_total")
    assert judged == {
        (("outcome", "judged"), ("route", "chat")): 3.0,
        (("outcome", "over_budget"), ("route", "chat")): 5.0,
    }


async def test_a_cost_budget_stops_judging_once_spent(
    api: AppClient, home_registry: Registry
) -> None:
    # each one-token reply costs 0.001
    judge = {"replies": ["4"], "price": {"output_per_million": 1000.0}}
    await judged_route(api, home_registry, judge, max_per_minute=None, max_cost_per_day=0.0025)
    for _ in range(6):
        await chat(api)
        await settled(api)
    found = judgements(api)
    assert len(found) == 3 and all(j.cost == pytest.approx(0.001) for j in found)
    assert api.services.live_judge.counts.over_budget == 3


async def test_a_full_queue_drops_samples_and_counts_them(home_registry: Registry) -> None:
    register_scripted(home_registry, "chat", replies=[ANSWER])
    register_scripted(home_registry, "judge", replies=["2"], first_token_delay_ms=600)
    settings = Settings(live_judge_queue=1, live_judge_concurrency=1)
    async with app_client(settings) as api:
        setting = {"judge": "judge", "share": 1.0, "max_per_minute": 1000}
        response = await api.put("/api/routes/chat", json={"policy": {"live_judge": setting}})
        assert response.status_code == 200, response.text
        await chat(api)
        await asyncio.sleep(0.05)  # the worker takes it: one judging, the queue empty
        started = time.perf_counter()
        for _ in range(4):  # one waits in the queue, three find it full
            await chat(api)
        assert time.perf_counter() - started < 0.5
        counts = api.services.live_judge.counts
        assert (counts.sampled, counts.dropped) == (2, 3)
        metrics = (await api.get("/metrics")).text
        dropped = samples(metrics, "modelyard_live_judge_samples_total")
        assert dropped[(("outcome", "dropped"), ("route", "chat"))] == 3.0
        await settled(api)
        assert [j.score for j in judgements(api)] == [2.0, 2.0]


async def test_a_judge_that_gives_no_score_or_fails_is_recorded_as_such(
    api: AppClient, home_registry: Registry
) -> None:
    await judged_route(api, home_registry, {"replies": ["I cannot grade this", "9 of 10"]})
    await chat(api)
    await chat(api)
    await settled(api)
    rows = judgements(api)
    assert [(j.score, j.quality) for j in rows] == [(None, None), (None, None)]
    assert all("no score from 1 to 5" in (j.error or "") for j in rows)
    assert api.services.live_judge.counts.unscored == 2
    register_scripted(home_registry, "judge", replies=["5"], fail_rate=1.0, fail_code="judge_down")
    await api.reload_routes()
    await chat(api)
    await settled(api)
    failed = judgements(api)[-1]
    assert failed.score is None and failed.error is not None
    assert log_rows(api)[failed.judge_request_id].error_code == "judge_down"
    assert api.services.live_judge.counts.failed == 1


async def test_an_online_quality_alert_fires_below_its_threshold(
    api: AppClient, home_registry: Registry
) -> None:
    await judged_route(api, home_registry, {"replies": ["2"]})  # quality 0.25
    for _ in range(4):
        await chat(api)
    await settled(api)
    alerts = AlertService(api.services.store)
    rule = AlertRule(
        name="chat-quality",
        metric="online_quality",
        route="chat",
        comparison="<",
        threshold=0.5,
        min_requests=3,
    )
    alerts.create(rule, actor="tests")
    assert alerts.evaluate_metric(rule, _now()) == (pytest.approx(0.25), 4)
    evaluator = AlertEvaluator(alerts)
    events = await evaluator.evaluate_once()
    assert [(e.rule, e.state, e.value) for e in events] == [("chat-quality", "firing", 0.25)]
    other = rule.model_copy(update={"name": "other", "route": "judge"})
    assert alerts.evaluate_metric(other, _now()) == (None, 0)  # the judge's route: no judgements
    await evaluator.aclose()


def _now() -> datetime:
    return datetime.now(UTC)
