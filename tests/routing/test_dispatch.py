"""Fallback, circuit breakers and shadows decided by routing alone: scripted engines in a
pool, plans built by hand, no HTTP server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from modelyard.config import Settings
from modelyard.engines import EngineError, GenerationRequest, Message
from modelyard.engines.pool import EnginePool
from modelyard.registry.protocol import VersionOut
from modelyard.routing.breaker import Breakers
from modelyard.routing.dispatch import NoHealthyTarget, TargetTimedOut, dispatch
from modelyard.routing.generation import Launch, WrongTask, collect
from modelyard.routing.protocol import BreakerSettings
from modelyard.routing.shadow import Mirrored, ShadowRunner
from modelyard.routing.table import Fallback, Plan, Target

pytestmark = pytest.mark.anyio
HELLO = GenerationRequest(messages=[Message("user", "hello")])
BREAKER = BreakerSettings(failures=2, cooldown_s=60)


def target(number: int, task: str = "chat", **parameters: Any) -> Target:
    version = VersionOut(
        model="m",
        number=number,
        engine_kind="scripted",
        artifact_uri="scripted:",
        artifact_sha256=None,
        parameters=parameters,
        created_at=datetime.now(UTC),
        created_by="tests",
        notes="",
    )
    return Target("m", "m", task, None, version)


@pytest.fixture
async def pool(modelyard_home: Any) -> AsyncIterator[EnginePool]:
    engines = EnginePool(Settings())
    yield engines
    await engines.aclose()


def launch(pool: EnginePool, request: GenerationRequest = HELLO) -> Launch:
    return Launch(pool, request, "test")


def chain(*targets: Target, timeout_s: float | None = None) -> Plan:
    primary, *rest = targets
    return Plan(
        primary,
        timeout_s=timeout_s,
        fallbacks=tuple(Fallback(t, None) for t in rest),
        breaker=BREAKER,
    )


FAILING = {"fail_when_prompt_contains": "hello", "fail_status": 502}


async def test_without_a_chain_the_primary_answers(pool: EnginePool) -> None:
    dispatched = await dispatch(Plan(target(1, replies=["one"])), launch(pool), Breakers())
    assert dispatched.fallback_from is None
    assert (await collect(dispatched.generation)).text == "one"


async def test_a_server_error_falls_over_to_the_next_target(pool: EnginePool) -> None:
    plan = chain(target(1, **FAILING), target(2, replies=["two"]))
    dispatched = await dispatch(plan, launch(pool), Breakers())
    assert dispatched.fallback_from == "m@1"
    assert dispatched.generation.target.name == "m@2"
    assert (await collect(dispatched.generation)).text == "two"


async def test_a_client_error_is_returned_and_no_verdict_is_kept(pool: EnginePool) -> None:
    breakers = Breakers()
    plan = chain(target(1, context_length=8), target(2, replies=["two"]))
    too_long = GenerationRequest(messages=[Message("user", "hello")], max_tokens=100)
    with pytest.raises(EngineError) as raised:
        await dispatch(plan, launch(pool, too_long), breakers)
    assert raised.value.status == 400
    assert breakers.state("m@1", BREAKER) == "closed"


async def test_a_wrong_task_is_refused_before_any_engine_starts(pool: EnginePool) -> None:
    with pytest.raises(WrongTask) as raised:
        await dispatch(Plan(target(1, task="embedding")), launch(pool), Breakers())
    assert (raised.value.status, raised.value.code, raised.value.param) == (
        400,
        "wrong_task",
        "model",
    )
    assert pool.states() == []


async def test_repeated_failures_open_the_breaker_and_skip_the_target(pool: EnginePool) -> None:
    breakers = Breakers()
    plan = chain(target(1, **FAILING), target(2, replies=["two"]))
    for _ in range(BREAKER.failures):
        await dispatch(plan, launch(pool), breakers)
    assert breakers.state("m@1", BREAKER) == "open"
    skipped = await dispatch(plan, launch(pool), breakers)
    assert skipped.fallback_from == "m@1" and skipped.generation.target.name == "m@2"


async def test_when_every_target_fails_the_first_error_is_raised(pool: EnginePool) -> None:
    plan = chain(
        target(1, fail_when_prompt_contains="hello", fail_status=503), target(2, **FAILING)
    )
    with pytest.raises(EngineError) as raised:
        await dispatch(plan, launch(pool), Breakers())
    assert raised.value.status == 503


async def test_when_every_breaker_is_open_the_answer_is_no_healthy_target(
    pool: EnginePool,
) -> None:
    breakers = Breakers()
    for name in ("m@1", "m@2"):
        for _ in range(BREAKER.failures):
            breakers.failed(name, BREAKER)
    with pytest.raises(NoHealthyTarget) as raised:
        await dispatch(chain(target(1), target(2)), launch(pool), breakers)
    assert raised.value.status == 503


async def test_a_primary_slower_than_its_timeout_falls_over(pool: EnginePool) -> None:
    slow = target(1, first_token_delay_ms=2000, replies=["slow"])
    plan = chain(slow, target(2, replies=["fast"]), timeout_s=0.05)
    dispatched = await dispatch(plan, launch(pool), Breakers())
    assert dispatched.fallback_from == "m@1"
    assert (await collect(dispatched.generation)).text == "fast"


async def test_a_slow_primary_times_out_when_nothing_else_answers(pool: EnginePool) -> None:
    slow = target(1, first_token_delay_ms=2000)
    with pytest.raises(TargetTimedOut):
        await dispatch(chain(slow, timeout_s=0.05), launch(pool), Breakers())


async def test_a_cancelled_probe_leaves_the_breaker_ready_for_another(pool: EnginePool) -> None:
    now = [0.0]
    breakers = Breakers(clock=lambda: now[0])
    for _ in range(BREAKER.failures):
        breakers.failed("m@1", BREAKER)
    now[0] = BREAKER.cooldown_s + 1
    plan = chain(target(1, first_token_delay_ms=2000), target(2))
    task = asyncio.ensure_future(dispatch(plan, launch(pool), breakers))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert breakers.allow("m@1", BREAKER)  # the next request may probe


async def test_shadows_report_their_outcome_through_the_callback(pool: EnginePool) -> None:
    runner = ShadowRunner(concurrency=4)
    shadows = (target(2, replies=["shadow says"]), target(3, **FAILING))
    plan = Plan(target(1), shadows=shadows)
    outcomes: list[Mirrored] = []
    sent: list[bool] = []
    runner.mirror(plan, launch(pool), 5.0, on_done=outcomes.append, on_sent=sent.append)
    await runner.drain()
    assert sent == [True, True]
    by_index = {m.index: m for m in outcomes}
    assert by_index[0].status == 200 and by_index[0].response == "shadow says"
    assert by_index[0].usage is not None and by_index[0].usage.completion_tokens == 2
    assert (by_index[1].status, by_index[1].error_code, by_index[1].response) == (
        502,
        "upstream_error",
        None,
    )


async def test_shadows_beyond_the_limit_are_dropped_without_waiting(pool: EnginePool) -> None:
    runner = ShadowRunner(concurrency=1)
    plan = Plan(target(1), shadows=(target(2, first_token_delay_ms=200), target(3)))
    sent: list[bool] = []
    runner.mirror(plan, launch(pool), 5.0, on_done=lambda _m: None, on_sent=sent.append)
    assert sent == [True, False] and runner.dropped == 1
    await runner.drain()
