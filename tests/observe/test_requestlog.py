"""The request-log writer: batches by rows and time, never blocks, drops when full."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from modelyard.observe.requestlog import RequestLogWriter, RequestRecord
from modelyard.store import Store
from modelyard.store.tables import RequestLogRow

pytestmark = pytest.mark.anyio


def record(i: int) -> RequestRecord:
    return RequestRecord(
        id=f"req-{i}",
        at=datetime(2026, 11, 24, 1, tzinfo=UTC),
        key_id="k",
        endpoint="chat.completions",
        route="bot",
        version="bot@1",
        status=200,
        error_code=None,
        latency_ms=1.0,
        content={"prompt": f"p{i}"},
    )


def count(store: Store) -> int:
    with store.session() as session:
        return int(session.scalar(select(func.count()).select_from(RequestLogRow)) or 0)


def writer(store: Store, **overrides: object) -> RequestLogWriter:
    options: dict[str, object] = {
        "seal": lambda plain: b"sealed:" + plain,
        "store_content": True,
        "flush_interval_s": 0.05,
        "batch_rows": 10,
        "queue_rows": 1000,
    }
    options.update(overrides)
    return RequestLogWriter(store, **options)  # type: ignore[arg-type]


async def test_every_row_is_written_once_in_bounded_batches(store: Store) -> None:
    log = writer(store)
    batches: list[int] = []
    insert = log._insert

    def counted(batch: list[dict[str, Any]]) -> None:  # the rows, sealed
        batches.append(len(batch))
        insert(batch)

    log._insert = counted  # type: ignore[method-assign]
    task = asyncio.create_task(log.run())
    for i in range(95):
        log.submit(record(i))
    await log.flush()
    task.cancel()
    assert count(store) == 95 and sum(batches) == 95
    assert max(batches) <= 10
    assert (log.stats.submitted, log.stats.written, log.stats.dropped) == (95, 95, 0)
    with store.session() as session:
        row = session.get_one(RequestLogRow, "req-7")
        assert row.content == b'sealed:{"prompt":"p7"}' and row.day == "2026-11-24"


async def test_a_lone_row_waits_at_most_the_flush_interval(store: Store) -> None:
    log = writer(store, flush_interval_s=0.2, batch_rows=500)
    task = asyncio.create_task(log.run())
    log.submit(record(1))
    await asyncio.sleep(0.05)
    assert count(store) == 0  # still waiting for company
    await asyncio.sleep(0.4)
    assert count(store) == 1
    task.cancel()


async def test_a_full_queue_drops_and_counts_instead_of_blocking(store: Store) -> None:
    log = writer(store, queue_rows=3)
    for i in range(5):
        log.submit(record(i))  # no writer running: the queue fills
    assert (log.stats.submitted, log.stats.dropped) == (3, 2)
    await log.close()  # shutdown writes what is queued
    assert count(store) == 3


async def test_store_content_false_writes_metadata_only(store: Store) -> None:
    log = writer(store, store_content=False)
    log.submit(record(1))
    await log.close()
    with store.session() as session:
        assert session.get_one(RequestLogRow, "req-1").content is None


async def test_shutdown_mid_batch_loses_no_row(store: Store) -> None:
    """Cancelled while gathering a batch (rows already off the queue), the writer leaves
    them to close(): a clean shutdown writes every row."""
    log = writer(store, flush_interval_s=5.0, batch_rows=100)
    task = asyncio.create_task(log.run())
    for i in range(3):
        log.submit(record(i))
    await asyncio.sleep(0.1)  # the writer has taken the rows and waits for more
    assert log.queued == 0 and count(store) == 0
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await log.close()
    assert count(store) == 3


async def test_owners_are_kept_in_memory_only_until_their_rows_are_written(store: Store) -> None:
    log = writer(store, flush_interval_s=60.0, batch_rows=1000)
    log.submit(record(1))
    assert log.recent_owner("req-1") == "k"  # feedback may come before the row is written
    task = asyncio.create_task(log.run())
    await asyncio.sleep(0)
    await log.close()  # writes what is queued
    task.cancel()
    assert count(store) == 1
    assert log.recent_owner("req-1") is None  # the store answers for it now
