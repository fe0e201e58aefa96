"""Stopping work whose client went away, with one watcher task per request.

A watcher waits for the ASGI ``http.disconnect`` message and cancels the request's own
task; the work runs in that task rather than in a task of its own. Starlette's
``StreamingResponse`` does the same with an anyio task group per response (uvicorn speaks
ASGI 2.3, so Starlette cannot rely on failed sends), which showed in the request path's
profile; ``EventStreamResponse`` is that response with the lighter watcher.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

T = TypeVar("T")


class ClientDisconnected(Exception):
    """The client went away before its answer was ready."""


async def until_disconnect(receive: Receive, work: Awaitable[T]) -> T:
    """Await ``work`` in this task; raise ClientDisconnected, having cancelled it, if the
    client disconnects first. ``work`` must be the only reader of ``receive`` by then (the
    request body already read)."""
    this = asyncio.current_task()
    if this is None:
        raise RuntimeError("until_disconnect must run in a task")
    gone = False

    async def watch() -> None:
        nonlocal gone
        while (await receive())["type"] != "http.disconnect":
            pass
        gone = True
        this.cancel()

    watcher = asyncio.get_running_loop().create_task(watch())
    try:
        return await work
    except asyncio.CancelledError:
        if gone and this.uncancel() == 0:  # our own cancel, and nobody else's
            raise ClientDisconnected from None
        raise
    finally:
        if not watcher.done():
            watcher.cancel()


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """``work``, cancelled (so that it frees its engine) if the client disconnects."""
    return await until_disconnect(request.receive, work)


class EventStreamResponse(StreamingResponse):
    """A streamed response that stops, and closes its body iterator (which logs how the
    stream ended), as soon as the client disconnects."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await until_disconnect(receive, self.stream_response(send))
        except ClientDisconnected:
            closing = getattr(self.body_iterator, "aclose", None)
            if closing is not None:
                await closing()
            return
        if self.background is not None:
            await self.background()
