"""The request log's journal: rows appended before the answer, deleted once stored, and
replayed exactly once by the next process when the one that wrote them died."""

from __future__ import annotations

import asyncio
import fcntl
import os
from pathlib import Path

import pytest
from sqlalchemy import select

from modelyard.observe.journal import RequestJournal, leftovers
from modelyard.observe.requestlog import RequestLogWriter
from modelyard.store import Store
from modelyard.store.tables import RequestLogRow
from tests.observe.test_requestlog import record

pytestmark = pytest.mark.anyio
SECRET = "the-prompt-in-clear"


def seal(plain: bytes) -> bytes:
    return b"sealed:" + plain[::-1]


def unseal(blob: bytes) -> bytes:
    assert blob.startswith(b"sealed:")
    return blob.removeprefix(b"sealed:")[::-1]


def journaled_writer(store: Store, directory: Path, **overrides: object) -> RequestLogWriter:
    options: dict[str, object] = {
        "seal": seal,
        "store_content": True,
        "flush_interval_s": 0.05,
        "batch_rows": 10,
        "queue_rows": 1000,
        "journal": RequestJournal(directory, seal=seal, segment_rows=25),
    }
    options.update(overrides)
    return RequestLogWriter(store, **options)  # type: ignore[arg-type]


def rows(store: Store) -> dict[str, bytes | None]:
    with store.session() as session:
        query = select(RequestLogRow.id, RequestLogRow.content)
        return {row[0]: row[1] for row in session.execute(query)}


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.jsonl"))


async def test_rows_are_journaled_sealed_and_their_segments_go_once_stored(
    store: Store, tmp_path: Path
) -> None:
    directory = tmp_path / "journal"
    log = journaled_writer(store, directory)
    for i in range(60):
        log.submit(record(i).model_copy(update={"content": {"prompt": f"{SECRET} {i}"}}))
    files = segments(directory)
    assert len(files) == 3  # 25 + 25 + 10 rows
    text = b"".join(path.read_bytes() for path in files)
    assert text.count(b"\n") == 60 and SECRET.encode() not in text  # content sealed
    task = asyncio.create_task(log.run())
    await log.flush()
    task.cancel()
    assert len(rows(store)) == 60
    assert segments(directory) == []  # every row stored: every segment deleted
    log.submit(record(60))  # a new segment after the last one was removed
    assert len(segments(directory)) == 1


async def test_a_killed_process_s_rows_are_replayed_once_by_the_next(
    store: Store, tmp_path: Path
) -> None:
    directory = tmp_path / "journal"
    dead = journaled_writer(store, directory)
    task = asyncio.create_task(dead.run())
    for i in range(30):
        dead.submit(record(i))
    await dead.flush()  # these 30 are stored; their segments may still be on disk
    task.cancel()
    for i in range(30, 75):
        dead.submit(record(i))  # these never reach the store: the process "dies"
    assert len(rows(store)) == 30
    # What SIGKILL leaves: the files, their locks released with the process.
    for segment in list(dead._journal._segments):  # type: ignore[union-attr]
        os.close(segment.fd)
    dead._journal._segments.clear()  # type: ignore[union-attr]
    # A row of the 30 stored ones journaled again (a kill between the store's commit and
    # the segment's deletion looks like this): it must not be stored twice.
    again = journaled_writer(store, directory)
    again.submit(record(5))
    for segment in list(again._journal._segments):  # type: ignore[union-attr]
        os.close(segment.fd)
    again._journal._segments.clear()  # type: ignore[union-attr]

    recovered = journaled_writer(store, directory).recover(directory, unseal)
    assert recovered == 45
    stored = rows(store)
    assert sorted(stored) == sorted(f"req-{i}" for i in range(75))
    assert stored["req-70"] == seal(b'{"prompt":"p70"}')  # sealed as the writer seals
    assert segments(directory) == []
    assert journaled_writer(store, directory).recover(directory, unseal) == 0


async def test_a_live_process_s_segment_is_left_alone(store: Store, tmp_path: Path) -> None:
    directory = tmp_path / "journal"
    live = journaled_writer(store, directory)
    live.submit(record(1))
    assert leftovers(directory) == []  # locked by its writer
    assert journaled_writer(store, directory).recover(directory, unseal) == 0
    assert rows(store) == {} and len(segments(directory)) == 1


async def test_a_line_cut_short_by_the_kill_is_skipped(store: Store, tmp_path: Path) -> None:
    directory = tmp_path / "journal"
    directory.mkdir()
    log = journaled_writer(store, directory)
    log.submit(record(1))
    log.submit(record(2))
    (path,) = segments(directory)
    for segment in list(log._journal._segments):  # type: ignore[union-attr]
        os.close(segment.fd)
    with path.open("ab") as out:
        out.write(b'{"record":{"id":"req-3","at":"2026-')  # no newline, no end
    assert journaled_writer(store, directory).recover(directory, unseal) == 2
    assert sorted(rows(store)) == ["req-1", "req-2"]


async def test_rows_the_store_refused_stay_journaled(store: Store, tmp_path: Path) -> None:
    directory = tmp_path / "journal"
    log = journaled_writer(store, directory)

    def refuse(batch: object) -> None:
        from sqlalchemy.exc import OperationalError

        raise OperationalError("INSERT", {}, Exception("database is down"))

    log._insert = refuse  # type: ignore[method-assign]
    log.submit(record(1))
    task = asyncio.create_task(log.run())
    await log.flush()
    task.cancel()
    await log.close()
    assert log.stats.failed == 1 and rows(store) == {}
    assert len(segments(directory)) == 1  # kept, unlocked, for the next start
    assert journaled_writer(store, directory).recover(directory, unseal) == 1
    assert list(rows(store)) == ["req-1"]


async def test_no_content_is_journaled_when_none_is_stored(store: Store, tmp_path: Path) -> None:
    directory = tmp_path / "journal"
    log = journaled_writer(
        store,
        directory,
        store_content=False,
        journal=RequestJournal(directory, seal=None, segment_rows=25),
    )
    log.submit(record(1).model_copy(update={"content": {"prompt": SECRET}}))
    (path,) = segments(directory)
    assert SECRET.encode() not in path.read_bytes()


async def test_an_unwritable_journal_costs_the_row_nothing(store: Store, tmp_path: Path) -> None:
    blocker = tmp_path / "journal"
    blocker.write_text("a file where the directory should be")
    log = journaled_writer(store, blocker)
    task = asyncio.create_task(log.run())
    log.submit(record(1))
    await log.flush()
    task.cancel()
    assert log.stats.journal_errors == 1 and list(rows(store)) == ["req-1"]


def test_a_segment_is_locked_by_its_writer(tmp_path: Path) -> None:
    journal = RequestJournal(tmp_path, seal=None, segment_rows=10)
    journal.append(b'{"id":"x"}', None)
    (path,) = segments(tmp_path)
    fd = os.open(path, os.O_RDONLY)
    try:
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd)
    journal.close()  # nothing settled: kept, unlocked
    assert [leftover.path for leftover in leftovers(tmp_path)] == [path]
