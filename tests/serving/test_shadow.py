"""Shadow traffic: copies of requests go to a shadow version after the primary answered,
are logged under variant ``shadow``, never change or slow the client's answer, are dropped
(and counted) beyond the concurrency limit and are never charged to the client."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from modelyard.config import Settings
from modelyard.registry import Registry
from modelyard.store.tables import RequestLogRow
from tests.conftest import AppClient, app_client, register_scripted

pytestmark = pytest.mark.anyio
HELLO = [{"role": "user", "content": "hello"}]
PRIMARY_REPLY = "primary reply"
SHADOW_REPLY = "a much longer shadow reply than that"


@pytest.fixture(autouse=True)
def quick_log(modelyard_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Write the request log every 50 ms, so reading it back does not wait a second."""
    monkeypatch.setenv("MODELYARD_LOG_FLUSH_INTERVAL_S", "0.05")


async def setup(api: AppClient, registry: Registry, **shadow: Any) -> None:
    """``chat`` 1 (production) with ``chat`` 2 as its shadow for every request."""
    register_scripted(registry, "chat", replies=[PRIMARY_REPLY])
    register_scripted(registry, "chat", alias="shadowed", **{"replies": [SHADOW_REPLY], **shadow})
    await api.reload_routes()
    response = await api.put(
        "/api/routes/chat", json={"policy": {"shadows": [{"version": 2, "share": 100}]}}
    )
    assert response.status_code == 200, response.text


async def chat(api: httpx.AsyncClient, **body: Any) -> httpx.Response:
    response = await api.post(
        "/v1/chat/completions", json={"model": "chat", "messages": HELLO, **body}
    )
    assert response.status_code == 200, response.text
    return response


async def settled(api: AppClient) -> None:
    """Wait for the shadows in flight to finish, then for the log to be written."""
    for _ in range(500):
        if api.services.shadows.in_flight == 0:
            break
        await asyncio.sleep(0.01)
    assert api.services.shadows.in_flight == 0
    await api.logged()


def rows(api: AppClient) -> dict[str, RequestLogRow]:
    with api.services.store.session() as session:
        found = session.scalars(select(RequestLogRow)).all()
        for row in found:
            session.expunge(row)
        return {row.id: row for row in found}


def shadow_counts(metrics_text: str) -> dict[str, float]:
    return {
        sample.labels["outcome"]: sample.value
        for family in text_string_to_metric_families(metrics_text)
        if family.name == "modelyard_shadow_requests"
        for sample in family.samples
        if sample.name == "modelyard_shadow_requests_total"
    }


async def test_the_client_gets_the_primary_and_the_shadow_is_logged(
    api: AppClient, home_registry: Registry
) -> None:
    await setup(api, home_registry)
    response = await chat(api, user="u1")
    assert response.json()["choices"][0]["message"]["content"] == PRIMARY_REPLY
    assert response.headers["x-modelyard-version"] == "chat@1"
    assert response.headers["x-modelyard-variant"] == "stable"
    streamed = await chat(api, stream=True)
    assert PRIMARY_REPLY.split()[0] in streamed.text
    assert "shadow" not in streamed.text
    await settled(api)
    logged = rows(api)
    for parent in (response, streamed):
        request_id = parent.headers["x-modelyard-request-id"]
        primary, shadow = logged[request_id], logged[f"{request_id}.shadow0"]
        assert (primary.variant, primary.version, primary.status) == ("stable", "chat@1", 200)
        assert (shadow.variant, shadow.version, shadow.status) == ("shadow", "chat@2", 200)
        assert (shadow.route, shadow.key_id, shadow.endpoint) == (
            primary.route,
            primary.key_id,
            primary.endpoint,
        )
        assert shadow.completion_tokens == len(SHADOW_REPLY.split())
        assert primary.completion_tokens == len(PRIMARY_REPLY.split())
    assert logged[f"{response.headers['x-modelyard-request-id']}.shadow0"].user == "u1"
    assert len(logged) == 4
    assert api.services.shadows.sent == 2
    assert shadow_counts((await api.get("/metrics")).text) == {"sent": 2.0}


async def test_a_failing_shadow_never_affects_the_primary(
    api: AppClient, home_registry: Registry
) -> None:
    await setup(api, home_registry, fail_rate=1.0, fail_status=500, fail_code="shadow_broke")
    responses = [await chat(api) for _ in range(3)]
    assert all(r.json()["choices"][0]["message"]["content"] == PRIMARY_REPLY for r in responses)
    await settled(api)
    logged = rows(api)
    for response in responses:
        request_id = response.headers["x-modelyard-request-id"]
        assert (logged[request_id].status, logged[request_id].error_code) == (200, None)
        shadow = logged[f"{request_id}.shadow0"]
        assert (shadow.status, shadow.error_code, shadow.variant) == (500, "shadow_broke", "shadow")


async def test_a_slow_shadow_does_not_slow_the_primary(
    api: AppClient, home_registry: Registry
) -> None:
    await setup(api, home_registry, first_token_delay_ms=800)
    await chat(api, model="chat@2")  # load the shadow's engine ahead
    await chat(api)  # and the primary's
    await settled(api)
    started = time.perf_counter()
    response = await chat(api)
    elapsed = time.perf_counter() - started
    assert elapsed < 0.4, elapsed
    assert api.services.shadows.in_flight == 1  # the shadow still runs after the answer
    await settled(api)
    shadow = rows(api)[f"{response.headers['x-modelyard-request-id']}.shadow0"]
    assert shadow.status == 200
    assert shadow.latency_ms >= 800


async def test_mirrors_beyond_the_limit_are_dropped_and_counted(home_registry: Registry) -> None:
    register_scripted(home_registry, "chat", replies=[PRIMARY_REPLY])
    register_scripted(
        home_registry, "chat", alias="shadowed", replies=[SHADOW_REPLY], first_token_delay_ms=800
    )
    async with app_client(Settings(shadow_concurrency=1)) as api:
        response = await api.put(
            "/api/routes/chat", json={"policy": {"shadows": [{"version": 2, "share": 100}]}}
        )
        assert response.status_code == 200, response.text
        started = time.perf_counter()
        responses = await asyncio.gather(*(chat(api) for _ in range(4)))
        assert time.perf_counter() - started < 0.7
        assert all(r.json()["choices"][0]["message"]["content"] == PRIMARY_REPLY for r in responses)
        shadows = api.services.shadows
        assert (shadows.sent, shadows.dropped, shadows.in_flight) == (1, 3, 1)
        metrics = (await api.get("/metrics")).text
        assert shadow_counts(metrics) == {"sent": 1.0, "dropped": 3.0}
        assert 'modelyard_shadow_requests_total{outcome="dropped",route="chat"} 3.0' in metrics
        await settled(api)
        logged = rows(api)
        mirrored = [row for row in logged.values() if row.variant == "shadow"]
        assert len(mirrored) == 1
        assert mirrored[0].id.removesuffix(".shadow0") in {
            r.headers["x-modelyard-request-id"] for r in responses
        }
        # With the slot free again, the next request is mirrored.
        await chat(api)
        assert (shadows.sent, shadows.dropped) == (2, 3)


async def test_shadow_rows_are_not_charged_as_usage(
    api: AppClient, home_registry: Registry
) -> None:
    await setup(api, home_registry)
    for _ in range(2):
        await chat(api)
    await settled(api)
    logged = rows(api)
    assert sum(row.variant == "shadow" for row in logged.values()) == 2
    usage = (await api.get("/api/usage", params={"route": "chat"})).json()["data"]
    assert len(usage) == 1
    [day] = usage
    primary_tokens = len(PRIMARY_REPLY.split())
    assert (day["requests"], day["errors"]) == (2, 0)
    assert day["completion_tokens"] == 2 * primary_tokens
    assert day["prompt_tokens"] == sum(
        row.prompt_tokens for row in logged.values() if row.variant != "shadow"
    )
