"""The one-timer deadline of a generation's stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from modelyard.routing.deadline import Deadline

pytestmark = pytest.mark.anyio


async def _slow(first_delay_s: float, then_s: float) -> AsyncIterator[int]:
    await asyncio.sleep(first_delay_s)
    yield 1
    await asyncio.sleep(then_s)
    yield 2


async def test_items_before_the_deadline_pass_and_close_frees_the_timer() -> None:
    loop = asyncio.get_running_loop()
    deadline = Deadline(loop.time() + 5.0)
    stream = _slow(0.0, 0.0)
    assert await deadline.next_of(stream) == 1
    assert await deadline.next_of(stream) == 2
    handle = deadline._handle
    assert handle is not None and not handle.cancelled()
    deadline.close()
    assert handle.cancelled()
    assert not deadline.expired


async def test_a_wait_past_the_deadline_raises_timeout_and_stops_the_stream() -> None:
    stopped = asyncio.Event()

    async def stream() -> AsyncIterator[int]:
        try:
            yield 1
            await asyncio.sleep(10)
            yield 2
        finally:
            stopped.set()

    loop = asyncio.get_running_loop()
    deadline = Deadline(loop.time() + 0.05)
    items = stream()
    assert await deadline.next_of(items) == 1
    with pytest.raises(TimeoutError):
        await deadline.next_of(items)
    assert deadline.expired
    assert stopped.is_set()  # the cancel went into the stream's own wait
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
    deadline.close()


async def test_expiry_between_waits_does_not_cancel_the_consumer() -> None:
    loop = asyncio.get_running_loop()
    deadline = Deadline(loop.time() + 0.02)
    items = _slow(0.0, 0.0)
    assert await deadline.next_of(items) == 1
    await asyncio.sleep(0.05)  # the consumer's own work, while the deadline passes
    assert deadline.expired
    with pytest.raises(TimeoutError):
        await deadline.next_of(items)
    await items.aclose()


async def test_a_deadline_already_past_raises_at_once() -> None:
    deadline = Deadline(asyncio.get_running_loop().time() - 1.0)
    items = _slow(0.0, 0.0)
    with pytest.raises(TimeoutError):
        await deadline.next_of(items)
    await items.aclose()


async def test_someone_elses_cancel_stays_a_cancel() -> None:
    loop = asyncio.get_running_loop()
    deadline = Deadline(loop.time() + 5.0)

    async def consume() -> int:
        return await deadline.next_of(_slow(10.0, 0.0))

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not deadline.expired
    deadline.close()
