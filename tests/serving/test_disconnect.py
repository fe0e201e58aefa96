"""Work whose client disconnects is stopped; work whose client stays is not touched."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from starlette.types import Message

from modelyard.serving.disconnect import (
    ClientDisconnected,
    DisconnectWatch,
    EventStreamResponse,
    until_disconnect,
)

pytestmark = pytest.mark.anyio


class Client:
    """An ASGI receive channel whose disconnect the test triggers."""

    def __init__(self) -> None:
        self.gone = asyncio.Event()
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        self.sent.append(message)


async def test_work_that_finishes_returns_its_result() -> None:
    client = Client()

    async def work() -> int:
        await asyncio.sleep(0.01)
        return 7

    assert await until_disconnect(client.receive, work()) == 7


async def test_a_disconnect_cancels_the_work() -> None:
    client = Client()
    cancelled = asyncio.Event()

    async def work() -> int:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return 1

    asyncio.get_running_loop().call_later(0.02, client.gone.set)
    with pytest.raises(ClientDisconnected):
        await until_disconnect(client.receive, work())
    assert cancelled.is_set()
    this = asyncio.current_task()
    assert this is not None and this.cancelling() == 0  # the task is usable afterwards
    await asyncio.sleep(0)


async def test_a_cancel_from_elsewhere_stays_a_cancel() -> None:
    client = Client()

    async def waiting() -> None:
        await until_disconnect(client.receive, asyncio.sleep(30))

    task = asyncio.create_task(waiting())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_stream_stops_and_closes_its_iterator_when_the_client_goes() -> None:
    client = Client()
    closed = asyncio.Event()

    async def events() -> AsyncIterator[bytes]:
        try:
            while True:
                yield b"data: x\n\n"
                await asyncio.sleep(0.005)
        finally:
            closed.set()

    asyncio.get_running_loop().call_later(0.05, client.gone.set)
    response = EventStreamResponse(events(), media_type="text/event-stream")
    scope = {"type": "http", "method": "POST", "asgi": {"spec_version": "2.3"}}
    async with asyncio.timeout(5):
        await response(scope, client.receive, client.send)
    assert closed.is_set()
    bodies = [m for m in client.sent if m["type"] == "http.response.body"]
    assert len(bodies) >= 2
    assert client.sent[0]["type"] == "http.response.start"


async def test_a_stream_that_ends_is_sent_whole() -> None:
    client = Client()

    async def events() -> AsyncIterator[bytes]:
        for part in (b"a", b"b", b"c"):
            yield part

    response = EventStreamResponse(events(), media_type="text/event-stream")
    await response({"type": "http", "method": "POST"}, client.receive, client.send)
    bodies = [m.get("body") for m in client.sent if m["type"] == "http.response.body"]
    assert bodies == [b"a", b"b", b"c", b""]


async def test_one_watch_serves_several_phases() -> None:
    client = Client()
    watch = DisconnectWatch(client.receive)
    watcher = watch._watcher
    assert watcher is not None
    try:
        assert await watch.run(asyncio.sleep(0.01, result=1)) == 1
        assert await watch.run(asyncio.sleep(0.01, result=2)) == 2
    finally:
        watch.close()
    await asyncio.sleep(0)
    assert watcher.done()  # closed: it reads nothing more


async def test_a_disconnect_between_phases_stops_the_next_one_at_once() -> None:
    client = Client()
    watch = DisconnectWatch(client.receive)
    try:
        await watch.run(asyncio.sleep(0))
        client.gone.set()
        await asyncio.sleep(0.01)  # the client leaves while no phase runs: nothing cancelled
        assert watch.gone
        started = False

        async def next_phase() -> None:
            nonlocal started
            started = True

        with pytest.raises(ClientDisconnected):
            await watch.run(next_phase())
        assert not started
    finally:
        watch.close()
    this = asyncio.current_task()
    assert this is not None and this.cancelling() == 0


async def test_a_disconnect_during_a_later_phase_cancels_it() -> None:
    client = Client()
    watch = DisconnectWatch(client.receive)
    try:
        await watch.run(asyncio.sleep(0))
        asyncio.get_running_loop().call_later(0.02, client.gone.set)
        with pytest.raises(ClientDisconnected):
            await watch.run(asyncio.sleep(30))
    finally:
        watch.close()


async def test_a_closed_watch_is_freed_without_the_cyclic_collector() -> None:
    """A finished request's watcher leaves no reference cycle behind: cycles of finished
    requests made every full collection walk them, which cost throughput under load."""
    import gc
    import weakref

    client = Client()

    async def request() -> weakref.ref[DisconnectWatch]:
        watch = DisconnectWatch(client.receive)
        await watch.run(asyncio.sleep(0))
        watch.close()
        return weakref.ref(watch)

    gc.disable()
    try:
        gone = await asyncio.create_task(request())
        for _ in range(3):  # the cancelled watcher task finishes on the loop
            await asyncio.sleep(0)
        assert gone() is None
    finally:
        gc.enable()
