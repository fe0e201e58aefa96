"""Stopping work whose client went away, with one watcher task per request.

A watcher waits for the ASGI ``http.disconnect`` message and cancels the request's own
task; the work runs in that task rather than in a task of its own. Starlette's
``StreamingResponse`` does the same with an anyio task group per response (uvicorn speaks
ASGI 2.3, so Starlette cannot rely on failed sends), which showed in the request path's
profile; ``EventStreamResponse`` is that response with the lighter watcher.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

T = TypeVar("T")


class ClientDisconnected(Exception):
    """The client went away before its answer was ready."""


class DisconnectWatch:
    """One watcher task for all of a request's phases (starting its generation, collecting
    or streaming it): a phase run through ``run`` is cancelled, and raises
    ClientDisconnected, when the client disconnects. Between phases a disconnect is only
    noted, and the next phase raises at once, so no cancel lands outside a phase.
    ``close`` ends the watcher (every path must call it)."""

    def __init__(self, receive: Receive) -> None:
        this = asyncio.current_task()
        if this is None:
            raise RuntimeError("a DisconnectWatch must start in a task")
        self._task = this
        self._receive = receive
        self._running = False
        self.gone = False
        self._watcher: asyncio.Task[None] | None = asyncio.get_running_loop().create_task(
            self._watch()
        )

    async def _watch(self) -> None:
        while (await self._receive())["type"] != "http.disconnect":
            pass
        self.gone = True
        if self._running:
            self._task.cancel()

    async def run(self, work: Awaitable[T]) -> T:
        """``work``, in this task; cancelled (ClientDisconnected) if the client leaves."""
        if self.gone:
            if inspect.iscoroutine(work):
                work.close()
            raise ClientDisconnected
        self._running = True
        try:
            return await work
        except asyncio.CancelledError:
            if self.gone and self._task.uncancel() == 0:  # our own cancel, and nobody else's
                raise ClientDisconnected from None
            raise
        finally:
            self._running = False

    def close(self) -> None:
        """End the watcher. The watcher task refers to this object and this object to the
        request's task: dropping the references breaks the cycle, so a finished request is
        freed at once rather than by the cyclic collector (whose full passes slowed every
        request while such garbage piled up)."""
        watcher = self._watcher
        if watcher is None:
            return
        self._watcher = None
        if not watcher.done():
            watcher.cancel()


async def until_disconnect(receive: Receive, work: Awaitable[T]) -> T:
    """Await ``work`` in this task; raise ClientDisconnected, having cancelled it, if the
    client disconnects first. ``work`` must be the only reader of ``receive`` by then (the
    request body already read)."""
    watch = DisconnectWatch(receive)
    try:
        return await watch.run(work)
    finally:
        watch.close()


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """``work``, cancelled (so that it frees its engine) if the client disconnects."""
    return await until_disconnect(request.receive, work)


class EventStreamResponse(StreamingResponse):
    """A streamed response that stops, and closes its body iterator (which logs how the
    stream ended), as soon as the client disconnects. With ``watch``, the request's own
    watcher is reused (and closed when the response ends)."""

    def __init__(self, *args: Any, watch: DisconnectWatch | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._watch = watch

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        watch = self._watch or DisconnectWatch(receive)
        try:
            await watch.run(self.stream_response(send))
        except ClientDisconnected:
            closing = getattr(self.body_iterator, "aclose", None)
            if closing is not None:
                await closing()
            return
        finally:
            watch.close()
        if self.background is not None:
            await self.background()
