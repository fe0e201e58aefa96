"""Starting a generation on a request's plan: its target first, then the route's fallback
chain. A target fails over when it errors on the server side (5xx), passes its time to
first token, or has its circuit breaker open. Only starting can fail over: once the first
chunk is in hand the response is committed to that target, so a stream that has begun is
never retried elsewhere."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from modelyard.engines import EngineError, GenerationRequest
from modelyard.engines.pool import EnginePool
from modelyard.routing.breaker import Breakers
from modelyard.routing.protocol import BreakerSettings
from modelyard.routing.table import Plan, Target
from modelyard.serving.errors import APIError
from modelyard.serving.generation import Generation, Restorer, start_generation


class TargetTimedOut(EngineError):
    status = 504
    code = "target_timeout"
    error_type = "timeout"


@dataclass(frozen=True)
class Dispatched:
    generation: Generation
    fallback_from: str | None  # the first target that failed or was skipped, if any


def _chain(plan: Plan) -> Iterator[tuple[Target, float | None]]:
    yield plan.primary, plan.timeout_s
    for fallback in plan.fallbacks:
        yield fallback.target, fallback.timeout_s


async def dispatch(
    pool: EnginePool,
    breakers: Breakers,
    plan: Plan,
    request: GenerationRequest,
    prefix: str,
    *,
    deadline: float | None = None,
    restorer: Restorer | None = None,
    worked: Callable[[float], None] | None = None,
    on_fallback: Callable[[Target], None] = lambda _target: None,
) -> Dispatched:
    async def start(target: Target, timeout_s: float | None = None) -> Generation:
        try:
            async with asyncio.timeout(timeout_s):
                return await start_generation(
                    pool,
                    target,
                    request,
                    prefix,
                    deadline=deadline,
                    restorer=restorer,
                    worked=worked,
                )
        except TimeoutError:
            raise TargetTimedOut(
                f"{target.name} gave no first token within {timeout_s:g} s"
            ) from None

    if plan.breaker is None:
        return Dispatched(await start(plan.primary), None)
    settings: BreakerSettings = plan.breaker
    failed_first: str | None = None
    first_error: EngineError | None = None
    for target, timeout_s in _chain(plan):
        if not breakers.allow(target.name, settings):
            failed_first = failed_first or target.name
            continue
        try:
            generation = await start(target, timeout_s)
        except EngineError as error:
            if error.status < 500:
                breakers.released(target.name)
                raise  # the request itself is at fault; every target would refuse it
            breakers.failed(target.name, settings)
            failed_first = failed_first or target.name
            first_error = first_error or error
            continue
        except BaseException:
            breakers.released(target.name)  # cancelled or refused: no verdict on the target
            raise
        breakers.succeeded(target.name)
        if failed_first is not None:
            on_fallback(target)
        return Dispatched(generation, failed_first)
    if first_error is not None:
        raise first_error  # the assigned target's own failure says most
    raise APIError(
        503,
        f"Every target of '{plan.primary.public_name}' has an open circuit breaker after "
        "repeated failures; retry after the cooldown.",
        code="no_healthy_target",
    )
