"""A generation's deadline, kept by one timer for the whole stream.

``asyncio.timeout_at`` around each chunk's wait schedules and cancels a timer and builds a
context every time (about 3 µs a chunk, a tenth of relaying one). Here one timer is
scheduled at the first wait and cancelled when the stream ends; when it fires, it cancels
the waiting task only while that task is inside ``next_of``, so no cancel ever lands in
the consumer's own code between chunks.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TypeVar

T = TypeVar("T")


class Deadline:
    """Waits for a stream's next item until an event-loop time; ``TimeoutError`` after it.
    ``close`` must be called when the stream ends (it frees the timer)."""

    __slots__ = ("_handle", "_task", "_waiting", "expired", "when")

    def __init__(self, when: float) -> None:
        self.when = when
        self.expired = False
        self._handle: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[object] | None = None
        self._waiting = False

    async def next_of(self, stream: AsyncIterator[T]) -> T:
        if self._handle is None and not self.expired:
            loop = asyncio.get_running_loop()
            if loop.time() >= self.when:
                self.expired = True
            else:
                self._handle = loop.call_at(self.when, self._expire)
        if self.expired:
            raise TimeoutError
        task = self._task = asyncio.current_task()
        self._waiting = True
        try:
            return await anext(stream)
        except asyncio.CancelledError:
            if self.expired and task is not None and task.uncancel() == 0:
                raise TimeoutError from None  # our own cancel, and nobody else's
            raise
        finally:
            self._waiting = False

    def _expire(self) -> None:
        self.expired = True
        self._handle = None
        if self._waiting and self._task is not None:
            self._task.cancel()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._task = None
