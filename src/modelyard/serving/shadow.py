"""Shadow traffic: copies of requests sent to a version whose answers are logged and never
returned. Mirrors start after the primary has answered and run in the background with a
bounded number in flight; when that many are running, new mirrors are dropped (and
counted) instead of queueing, so shadows never delay or crowd out real traffic."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

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
