"""Shadow traffic: copies of requests sent to a version whose answers are logged and never
returned. Mirrors start after the primary has answered and run in the background with a
bounded number in flight; when that many are running, new mirrors are dropped (and
counted) instead of queueing, so shadows never delay or crowd out real traffic."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from modelyard.engines import EngineError, Usage
from modelyard.routing.generation import (
    Generation,
    Launch,
    Unhonoured,
    collect,
    start_generation,
)
from modelyard.routing.table import Plan, Target

log = logging.getLogger(__name__)


class ShadowRunner:
    def __init__(self, concurrency: int) -> None:
        self._limit = concurrency
        self._tasks: set[asyncio.Task[None]] = set()
        self.sent = 0
        self.dropped = 0

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    def submit(self, work: Coroutine[Any, Any, None]) -> bool:
        """Start ``work`` now if a slot is free; otherwise drop it. Never waits."""
        if len(self._tasks) >= self._limit:
            work.close()
            self.dropped += 1
            return False
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        self.sent += 1
        return True

    def mirror(
        self,
        plan: Plan,
        launch: Launch,
        timeout_s: float,
        on_done: Callable[[Mirrored], None],
        on_sent: Callable[[bool], None] = lambda _sent: None,
    ) -> None:
        """Send copies of a request that has answered to its plan's shadows; each copy's
        outcome goes to ``on_done`` (which logs it), ``on_sent`` hears whether each was
        sent or dropped."""
        for index, target in enumerate(plan.shadows):
            on_sent(self.submit(_reported(launch, index, target, timeout_s, on_done)))

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("a shadow request failed unexpectedly: %r", task.exception())

    async def drain(self, timeout_s: float = 5.0) -> None:
        """Let running mirrors finish (up to ``timeout_s``), then cancel the rest."""
        if not self._tasks:
            return
        _done, pending = await asyncio.wait(set(self._tasks), timeout=timeout_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)


@dataclass(frozen=True)
class Mirrored:
    """How one shadow copy ended: what its callback logs."""

    index: int  # its place among the plan's shadows
    target: Target
    at: datetime  # when it was sent
    status: int
    error_code: str | None
    latency_s: float
    ttft_s: float | None
    usage: Usage | None
    response: str | None  # what the shadow answered, if it started


async def mirrored(launch: Launch, index: int, target: Target, timeout_s: float) -> Mirrored:
    """Run one shadow copy to its end; an engine failure is its outcome, never raised."""
    at = datetime.now(UTC)
    started = time.perf_counter()
    status, code = 200, None
    generation: Generation | None = None
    try:
        async with asyncio.timeout(timeout_s):
            generation = await start_generation(launch, target)
            await collect(generation)
    except (EngineError, Unhonoured) as error:  # a shadow unable to honour it: a 400
        status, code = error.status, error.code
    except TimeoutError:
        status, code = 504, "request_timeout"
    return Mirrored(
        index=index,
        target=target,
        at=at,
        status=status,
        error_code=code,
        latency_s=time.perf_counter() - started,
        ttft_s=None if generation is None else generation.first_token_at - started,
        usage=None if generation is None else generation.usage,
        response=None if generation is None else "".join(generation.produced),
    )


async def _reported(
    launch: Launch,
    index: int,
    target: Target,
    timeout_s: float,
    on_done: Callable[[Mirrored], None],
) -> None:
    on_done(await mirrored(launch, index, target, timeout_s))
