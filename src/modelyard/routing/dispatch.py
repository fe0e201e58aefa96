"""Starting a request's generation on its plan: its target first, then the route's fallback
chain. A target fails over when it errors on the server side (5xx), passes its time to
first token, or has its circuit breaker open; a client-side error (4xx) is the request's
own fault and every target would refuse it, so it is returned as is. Only starting can
fail over: once the first chunk is in hand the response is committed to that target, so a
stream that has begun is never retried elsewhere."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass

from modelyard.engines import EngineError
from modelyard.routing.breaker import Breakers
from modelyard.routing.generation import Generation, Launch, start_generation
from modelyard.routing.protocol import BreakerSettings
from modelyard.routing.table import Plan, Target


class TargetTimedOut(EngineError):
    status = 504
    code = "target_timeout"
    error_type = "timeout"


class NoHealthyTarget(EngineError):
    status = 503
    code = "no_healthy_target"


@dataclass(frozen=True)
class Dispatched:
    generation: Generation
    fallback_from: str | None  # the first target that failed or was skipped, if any


def chain(plan: Plan) -> Iterator[tuple[Target, float | None]]:
    """The targets to try in order, each with its time-to-first-token limit."""
    yield plan.primary, plan.timeout_s
    for fallback in plan.fallbacks:
        yield fallback.target, fallback.timeout_s


async def dispatch(plan: Plan, launch: Launch, breakers: Breakers) -> Dispatched:
    """The first target of ``plan`` that starts; without a fallback chain, the primary."""
    if plan.breaker is None:
        return Dispatched(await start_generation(launch, plan.primary), None)
    attempt = _Attempt(plan.breaker, breakers)
    for target, timeout_s in chain(plan):
        generation = await attempt.start(launch, target, timeout_s)
        if generation is not None:
            return Dispatched(generation, attempt.failed_first)
    if attempt.first_error is not None:
        raise attempt.first_error  # the assigned target's own failure says most
    raise NoHealthyTarget(
        f"Every target of '{plan.primary.public_name}' has an open circuit breaker after "
        "repeated failures; retry after the cooldown."
    )


@dataclass
class _Attempt:
    """One request's way along a fallback chain: what failed first, the breakers' verdicts."""

    settings: BreakerSettings
    breakers: Breakers
    failed_first: str | None = None
    first_error: EngineError | None = None

    async def start(
        self, launch: Launch, target: Target, timeout_s: float | None
    ) -> Generation | None:
        """The target's generation, or None when it is skipped or fails over."""
        if not self.breakers.allow(target.name, self.settings):
            self.failed_first = self.failed_first or target.name
            return None
        try:
            generation = await _start_within(launch, target, timeout_s)
        except EngineError as error:
            if error.status < 500:
                self.breakers.released(target.name)
                raise  # the request itself is at fault; every target would refuse it
            self.breakers.failed(target.name, self.settings)
            self.failed_first = self.failed_first or target.name
            self.first_error = self.first_error or error
            return None
        except BaseException:
            self.breakers.released(target.name)  # cancelled or refused: no verdict on it
            raise
        self.breakers.succeeded(target.name)
        return generation


async def _start_within(launch: Launch, target: Target, timeout_s: float | None) -> Generation:
    try:
        async with asyncio.timeout(timeout_s):
            return await start_generation(launch, target)
    except TimeoutError:
        raise TargetTimedOut(f"{target.name} gave no first token within {timeout_s:g} s") from None
