"""Starting a request's generation on its plan: its target first, then the route's fallback
chain. A target fails over when it errors on the server side (5xx), passes its time to
first token, or has its circuit breaker open; a client-side error (4xx) is the request's
own fault and every target would refuse it, so it is returned as is. Only starting can
fail over: once the first chunk is in hand the response is committed to that target, so a
stream that has begun is never retried elsewhere.

A target whose engine kind cannot honour the request (a field it needs: tools, ``n``, an
extra field, ...) is skipped without a verdict on its breaker; when every target is
skipped so, the request is refused (400) naming the field."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field

from modelyard.engines import EngineError
from modelyard.routing.breaker import Breakers
from modelyard.routing.combine import Decision, Report, combine
from modelyard.routing.generation import (
    Generation,
    Launch,
    Unhonoured,
    refusal,
    start_generation,
)
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
    # Targets skipped because their engine kind cannot honour the request: "name: why".
    skipped: tuple[str, ...] = ()
    decision: Decision | None = None  # how a combination route chose its answer


def chain(plan: Plan) -> Iterator[tuple[Target, float | None]]:
    """The targets to try in order, each with its time-to-first-token limit."""
    yield plan.primary, plan.timeout_s
    for fallback in plan.fallbacks:
        yield fallback.target, fallback.timeout_s


async def dispatch(
    plan: Plan, launch: Launch, breakers: Breakers, report: Report = lambda _call: None
) -> Dispatched:
    """The first target of ``plan`` that starts; without a fallback chain, the primary.
    A combination route's answer comes from its members (``routing.combine``); ``report``
    hears each of their calls whose answer is not returned."""
    if plan.combination is not None:
        answer, decision = await combine(plan.combination, launch, report)
        return Dispatched(answer, None, decision=decision)
    if plan.breaker is None:
        return Dispatched(await start_generation(launch, plan.primary), None)
    attempt = _Attempt(plan.breaker, breakers)
    for target, timeout_s in chain(plan):
        generation = await attempt.start(launch, target, timeout_s)
        if generation is not None:
            return Dispatched(generation, attempt.failed_first, tuple(attempt.skipped))
    if attempt.first_error is not None:
        raise attempt.first_error  # the assigned target's own failure says most
    if attempt.unhonoured is not None and not attempt.open:
        raise attempt.unhonoured  # no target can honour it
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
    unhonoured: Unhonoured | None = None  # the first target's reason to be skipped
    skipped: list[str] = field(default_factory=list)
    open: bool = False  # a target was passed over for its open breaker

    async def start(
        self, launch: Launch, target: Target, timeout_s: float | None
    ) -> Generation | None:
        """The target's generation, or None when it is skipped or fails over."""
        refused = refusal(launch, target)
        if refused is not None:
            self.unhonoured = self.unhonoured or refused
            self.skipped.append(f"{target.name}: {refused}")
            self.failed_first = self.failed_first or target.name
            return None
        if not self.breakers.allow(target.name, self.settings):
            self.open = True
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
