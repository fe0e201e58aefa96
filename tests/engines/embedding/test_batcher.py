from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from modelyard.engines import EngineNotReady
from modelyard.engines.embedding.backend import Encoded
from modelyard.engines.embedding.batcher import MicroBatcher

pytestmark = pytest.mark.anyio


class FakeModel:
    """Encodes a text as [len(text)]; records batch sizes; can fail or block on demand."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.fail_on: str | None = None
        self.gate = threading.Event()
        self.gate.set()

    def encode(self, texts: list[str]) -> Encoded:
        self.gate.wait(timeout=5)
        self.batches.append(texts)
        if self.fail_on in texts:
            raise RuntimeError("model failure")
        return Encoded([[float(len(t))] for t in texts], [len(t.split()) for t in texts])


@pytest.fixture
def model() -> FakeModel:
    return FakeModel()


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(max_workers=1)
    yield pool
    pool.shutdown(wait=True)


@pytest.fixture
async def batcher(model: FakeModel, executor: ThreadPoolExecutor) -> AsyncIterator[MicroBatcher]:
    made = MicroBatcher(model.encode, executor, max_batch=4, max_wait_s=0.01)
    yield made
    await made.aclose()


async def test_concurrent_requests_share_forward_passes(
    batcher: MicroBatcher, model: FakeModel
) -> None:
    texts = ["a" * n for n in range(1, 9)]
    results = await asyncio.gather(*(batcher.submit([t]) for t in texts))
    assert [r.vectors for r in results] == [[[float(len(t))]] for t in texts]
    assert batcher.forward_passes == len(model.batches) == 2
    assert all(len(b) <= 4 for b in model.batches)


async def test_a_long_request_is_split_and_comes_back_in_order(
    batcher: MicroBatcher, model: FakeModel
) -> None:
    texts = [f"{'w ' * n}x" for n in range(10)]
    result = await batcher.submit(texts)
    assert result.vectors == [[float(len(t))] for t in texts]
    assert result.tokens == [n + 1 for n in range(10)]
    assert [len(b) for b in model.batches] == [4, 4, 2]


async def test_an_error_reaches_every_caller_of_the_batch_and_the_worker_goes_on(
    batcher: MicroBatcher, model: FakeModel
) -> None:
    model.fail_on = "bad"
    outcomes = await asyncio.gather(
        batcher.submit(["bad"]), batcher.submit(["good"]), return_exceptions=True
    )
    assert all(isinstance(o, RuntimeError) for o in outcomes)
    model.fail_on = None
    assert (await batcher.submit(["fine"])).vectors == [[4.0]]


async def test_a_cancelled_request_is_not_encoded(batcher: MicroBatcher, model: FakeModel) -> None:
    model.gate.clear()  # the first batch blocks in the thread, so the next ones queue
    first = asyncio.create_task(batcher.submit(["first"]))
    await asyncio.sleep(0.05)
    gone = asyncio.create_task(batcher.submit(["gone"]))
    kept = asyncio.create_task(batcher.submit(["kept"]))
    await asyncio.sleep(0)
    gone.cancel()
    model.gate.set()
    assert (await first).vectors == [[5.0]]
    assert (await kept).vectors == [[4.0]]
    assert ["gone"] not in model.batches
    assert all("gone" not in b for b in model.batches)


async def test_closing_refuses_new_requests(batcher: MicroBatcher) -> None:
    await batcher.aclose()
    with pytest.raises(EngineNotReady):
        await batcher.submit(["late"])


async def test_no_texts_need_no_forward_pass(batcher: MicroBatcher) -> None:
    assert await batcher.submit([]) == Encoded([], [])
    assert batcher.forward_passes == 0


def test_max_batch_must_be_positive(executor: ThreadPoolExecutor, model: FakeModel) -> None:
    with pytest.raises(ValueError, match="max_batch"):
        MicroBatcher(model.encode, executor, max_batch=0)
