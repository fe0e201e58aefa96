"""Micro-batching: concurrent requests queue their texts; one worker encodes up to
``max_batch`` of them in one forward pass (in a thread) and hands each request its slice."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass

from modelyard.engines.base import EngineNotReady
from modelyard.engines.embedding.backend import Encoded


@dataclass
class _Piece:
    """Up to ``max_batch`` consecutive texts of one request, and where their result goes."""

    texts: list[str]
    result: asyncio.Future[Encoded]


class MicroBatcher:
    """Batches texts from concurrent ``submit`` calls; one forward pass runs at a time.

    The worker waits at most ``max_wait_s`` after the first queued text for more to arrive,
    unless ``max_batch`` texts are queued already. A request with more than ``max_batch``
    texts is split into several pieces, which batch like any others.
    """

    def __init__(
        self,
        encode: Callable[[list[str]], Encoded],
        executor: Executor,
        *,
        max_batch: int = 32,
        max_wait_s: float = 0.005,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._encode = encode
        self._executor = executor
        self._max_batch = max_batch
        self._max_wait_s = max_wait_s
        self._waiting: deque[_Piece] = deque()
        self._queued_texts = 0
        self._arrived = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._closed = False
        self.forward_passes = 0

    async def submit(self, texts: Sequence[str]) -> Encoded:
        if self._closed:
            raise EngineNotReady("the embedding engine is closed")
        if not texts:
            return Encoded([], [])
        loop = asyncio.get_running_loop()
        pieces = [
            _Piece(list(texts[start : start + self._max_batch]), loop.create_future())
            for start in range(0, len(texts), self._max_batch)
        ]
        self._waiting.extend(pieces)
        self._queued_texts += len(texts)
        self._arrived.set()
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._run(), name="embedding micro-batcher")
        # gather cancels the pieces when the caller is cancelled (the client left).
        return Encoded.joined(list(await asyncio.gather(*(p.result for p in pieces))))

    async def aclose(self) -> None:
        self._closed = True
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        for piece in self._waiting:
            piece.result.cancel()
        self._waiting.clear()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._next_batch()
            if not batch:
                continue
            texts = [text for piece in batch for text in piece.texts]
            done = loop.run_in_executor(self._executor, self._encode, texts)
            try:
                await asyncio.wait([done])
            except asyncio.CancelledError:
                for piece in batch:
                    piece.result.cancel()
                raise
            self.forward_passes += 1
            _hand_out(batch, done)

    async def _next_batch(self) -> list[_Piece]:
        while not self._waiting:
            self._arrived.clear()
            await self._arrived.wait()
        deadline = asyncio.get_running_loop().time() + self._max_wait_s
        while self._queued_texts < self._max_batch:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)
        return self._take()

    def _take(self) -> list[_Piece]:
        batch: list[_Piece] = []
        size = 0
        while self._waiting and size + len(self._waiting[0].texts) <= self._max_batch:
            piece = self._waiting.popleft()
            self._queued_texts -= len(piece.texts)
            if not piece.result.done():  # a cancelled request's texts are not encoded
                batch.append(piece)
                size += len(piece.texts)
        return batch


def _hand_out(batch: list[_Piece], done: asyncio.Future[Encoded]) -> None:
    """Give each piece its slice of the batch's result, or the batch's error."""
    if done.cancelled():  # the executor shut down before running it
        for piece in batch:
            piece.result.cancel()
        return
    error = done.exception()
    start = 0
    for piece in batch:
        stop = start + len(piece.texts)
        if not piece.result.done():
            if error is not None:
                piece.result.set_exception(error)
            else:
                piece.result.set_result(done.result().part(start, stop))
        start = stop
