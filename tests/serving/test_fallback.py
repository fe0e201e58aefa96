"""Fallback chains and circuit breakers on the request path: a failing, slow or open
primary gives way to the route's fallbacks; a refused request or a started stream never
does."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelyard.engines import Engine, EngineSpec
from modelyard.registry import Registry
from modelyard.store.tables import RequestLogRow
from tests.conftest import AppClient, register_scripted

pytestmark = pytest.mark.anyio
BOOM = "please boom now"
COOLDOWN_S = 0.3


@pytest.fixture(autouse=True)
def quick_log(modelyard_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Write the request log every 50 ms, so reading it back does not wait a second."""
    monkeypatch.setenv("MODELYARD_LOG_FLUSH_INTERVAL_S", "0.05")


def ask(text: str = "hello") -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


async def setup(
    api: AppClient,
    registry: Registry,
    primary: dict[str, Any],
    backup: dict[str, Any] | None = None,
    **policy: Any,
) -> Counter[str]:
    """Register ``chat`` (the primary) and ``backup``, set ``chat``'s policy and count the
    engine calls per version from then on."""
    register_scripted(registry, "chat", **{"replies": ["primary answers"], **primary})
    register_scripted(registry, "backup", **{"replies": ["backup answers"], **(backup or {})})
    await api.reload_routes()
    body = {
        "fallbacks": [{"model": "backup"}],
        "breaker": {"failures": 2, "cooldown_s": COOLDOWN_S},
        **policy,
    }
    response = await api.put("/api/routes/chat", json={"policy": body})
    assert response.status_code == 200, response.text
    return count_engine_calls(api)


def count_engine_calls(api: AppClient) -> Counter[str]:
    calls: Counter[str] = Counter()
    pool = api.services.engines
    get: Callable[[EngineSpec], Awaitable[Engine]] = pool.get

    async def counted(spec: EngineSpec) -> Engine:
        calls[f"{spec.model}@{spec.version}"] += 1
        return await get(spec)

    pool.get = counted  # type: ignore[method-assign]
    return calls


async def chat(api: httpx.AsyncClient, text: str = "hello", **body: Any) -> httpx.Response:
    return await api.post(
        "/v1/chat/completions", json={"model": "chat", "messages": ask(text), **body}
    )


def answer(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return str(response.json()["choices"][0]["message"]["content"])


async def log_row(api: AppClient, response: httpx.Response) -> RequestLogRow:
    await api.logged()
    with api.services.store.session() as session:
        row = session.get(RequestLogRow, response.headers["x-modelyard-request-id"])
        assert row is not None
        session.expunge(row)
        return row


async def breaker_states(api: httpx.AsyncClient) -> dict[str, tuple[str, int]]:
    route = (await api.get("/api/routes/chat")).json()
    return {b["target"]: (b["state"], b["consecutive_failures"]) for b in route["breakers"]}


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


async def test_a_failing_primary_falls_back(api: AppClient, home_registry: Registry) -> None:
    calls = await setup(api, home_registry, {"fail_when_prompt_contains": "boom"})
    response = await chat(api, BOOM)
    assert answer(response) == "backup answers"
    assert response.headers["x-modelyard-fallback-from"] == "chat@1"
    assert response.headers["x-modelyard-version"] == "backup@1"
    assert response.headers["x-modelyard-variant"] == "stable"
    assert calls == {"chat@1": 1, "backup@1": 1}
    row = await log_row(api, response)
    assert (row.route, row.version, row.status, row.error_code) == ("chat", "backup@1", 200, None)
    assert (row.fallback_from, row.variant) == ("chat@1", "stable")
    metrics = (await api.get("/metrics")).text
    assert 'modelyard_fallbacks_total{failed_version="chat@1",route="chat"} 1.0' in metrics

    # The primary itself still answers what it can, without a fallback header.
    fine = await chat(api)
    assert answer(fine) == "primary answers"
    assert "x-modelyard-fallback-from" not in fine.headers
    assert (await log_row(api, fine)).fallback_from is None


async def test_an_open_breaker_skips_the_primary_until_one_probe(
    api: AppClient, home_registry: Registry
) -> None:
    calls = await setup(
        api, home_registry, {"fail_when_prompt_contains": "boom", "first_token_delay_ms": 300}
    )
    for _ in range(2):
        assert answer(await chat(api, BOOM)) == "backup answers"
    assert calls["chat@1"] == 2
    assert (await breaker_states(api))["chat@1"] == ("open", 2)

    # Open: the primary is skipped, even for requests it would answer.
    for _ in range(3):
        response = await chat(api)
        assert answer(response) == "backup answers"
        assert response.headers["x-modelyard-fallback-from"] == "chat@1"
    assert calls == {"chat@1": 2, "backup@1": 5}

    # After the cooldown exactly one request probes; the others go on to the backup.
    await asyncio.sleep(COOLDOWN_S + 0.05)
    assert (await breaker_states(api))["chat@1"] == ("half_open", 2)
    responses = await asyncio.gather(*(chat(api) for _ in range(4)))
    assert calls["chat@1"] == 3
    versions = Counter(r.headers["x-modelyard-version"] for r in responses)
    assert versions == {"chat@1": 1, "backup@1": 3}
    probe = next(r for r in responses if r.headers["x-modelyard-version"] == "chat@1")
    assert answer(probe) == "primary answers"
    assert "x-modelyard-fallback-from" not in probe.headers

    # The probe succeeded: closed, and the primary serves again.
    assert "chat@1" not in await breaker_states(api)
    for _ in range(3):
        assert answer(await chat(api)) == "primary answers"
    assert calls["chat@1"] == 6


async def test_a_failed_probe_reopens_the_breaker(api: AppClient, home_registry: Registry) -> None:
    calls = await setup(api, home_registry, {"fail_when_prompt_contains": "boom"})
    for _ in range(2):
        await chat(api, BOOM)
    await asyncio.sleep(COOLDOWN_S + 0.05)
    for _ in range(3):
        response = await chat(api, BOOM)
        assert answer(response) == "backup answers"
        assert response.headers["x-modelyard-fallback-from"] == "chat@1"
    assert calls["chat@1"] == 3  # one probe, which failed; the next two skipped it
    assert (await breaker_states(api))["chat@1"] == ("open", 3)


async def test_a_primary_slower_than_its_timeout_falls_back(
    api: AppClient, home_registry: Registry
) -> None:
    calls = await setup(api, home_registry, {"first_token_delay_ms": 2000}, timeout_s=0.2)
    started = time.perf_counter()
    response = await chat(api)
    elapsed = time.perf_counter() - started
    assert answer(response) == "backup answers"
    assert response.headers["x-modelyard-fallback-from"] == "chat@1"
    assert elapsed < 1.5, elapsed
    assert calls == {"chat@1": 1, "backup@1": 1}
    row = await log_row(api, response)
    assert (row.status, row.version, row.fallback_from) == (200, "backup@1", "chat@1")
    assert (await breaker_states(api))["chat@1"] == ("closed", 1)


async def test_a_refused_request_is_not_retried_elsewhere(
    api: AppClient, home_registry: Registry
) -> None:
    calls = await setup(api, home_registry, {"context_length": 8})
    response = await chat(api, " ".join(["word"] * 20), max_tokens=4)
    error = error_of(response, 400)
    assert error["code"] == "context_length_exceeded"
    assert "x-modelyard-fallback-from" not in response.headers
    assert calls == {"chat@1": 1}
    assert await breaker_states(api) == {}  # the request's fault, not the target's
    row = await log_row(api, response)
    assert (row.status, row.error_code, row.fallback_from) == (400, "context_length_exceeded", None)


async def test_a_started_stream_is_never_retried_elsewhere(
    api: AppClient, home_registry: Registry
) -> None:
    calls = await setup(
        api, home_registry, {"fail_after_tokens": 2, "replies": ["one two three four"]}
    )
    response = await chat(api, stream=True)
    assert response.status_code == 200
    assert response.headers["x-modelyard-version"] == "chat@1"
    assert "x-modelyard-fallback-from" not in response.headers
    events = [
        json.loads(block[6:])
        for block in response.text.split("\n\n")
        if block.startswith("data: ") and block != "data: [DONE]"
    ]
    assert "data: [DONE]" not in response.text
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events[:-1])
    assert text == "one two"
    assert events[-1]["error"]["code"] == "engine_error"
    assert calls == {"chat@1": 1}
    row = await log_row(api, response)
    assert row.status >= 500
    assert (row.error_code, row.fallback_from, row.version) == ("engine_error", None, "chat@1")
    assert row.streamed


async def test_when_every_target_fails_the_primarys_error_is_returned_as_is(
    api: AppClient, home_registry: Registry
) -> None:
    failing = {"fail_when_prompt_contains": "boom", "fail_status": 502}
    calls = await setup(api, home_registry, failing, failing)
    response = await chat(api, BOOM)
    assert error_of(response, 502)["code"] == "upstream_error"
    assert calls == {"chat@1": 1, "backup@1": 1}
    row = await log_row(api, response)
    assert (row.status, row.error_code, row.fallback_from) == (502, "upstream_error", None)


async def test_when_every_target_fails_the_status_is_the_primarys(
    api: AppClient, home_registry: Registry
) -> None:
    await setup(
        api,
        home_registry,
        {"fail_when_prompt_contains": "boom", "fail_status": 502},
        {"fail_when_prompt_contains": "boom", "fail_status": 503},
    )
    assert (await chat(api, BOOM)).status_code == 502


async def test_when_every_breaker_is_open_the_answer_is_503(
    api: AppClient, home_registry: Registry
) -> None:
    failing = {"fail_when_prompt_contains": "boom"}
    calls = await setup(api, home_registry, failing, failing, breaker={"failures": 2})
    for _ in range(2):
        assert (await chat(api, BOOM)).status_code == 502
    assert calls == {"chat@1": 2, "backup@1": 2}
    states = await breaker_states(api)
    assert (states["chat@1"][0], states["backup@1"][0]) == ("open", "open")
    response = await chat(api)  # one both would answer, were they tried
    error = error_of(response, 503)
    assert error["code"] == "no_healthy_target"
    assert "open circuit breaker" in error["message"]
    assert calls == {"chat@1": 2, "backup@1": 2}
    row = await log_row(api, response)
    assert (row.status, row.error_code) == (503, "no_healthy_target")


async def test_a_route_shows_only_its_own_breakers(api: AppClient, home_registry: Registry) -> None:
    await setup(api, home_registry, {"fail_when_prompt_contains": "boom"})
    register_scripted(home_registry, "other")
    await api.reload_routes()
    for _ in range(2):
        await chat(api, BOOM)
    assert "chat@1" in await breaker_states(api)
    other = (await api.get("/api/routes/other")).json()
    assert other["breakers"] == []
