"""The request log: rows queued in memory on the request path, written by one task.

``submit`` never waits: it puts the row on a bounded in-process queue (dropping and
counting when full). One writer task drains the queue in batches bounded by rows and by
time, sealing content (encryption) and inserting each batch in one transaction on a
worker thread, so neither the database nor the cipher runs on the event loop.

With a journal (``observe.journal``), ``submit`` also appends the row to a local file, so
that rows still queued when the process is killed are replayed (``recover``) by the next
process started on the same home, before it serves.

That thread still holds the GIL while it works, stealing it from the event loop, so a
batch costs as little Python as it can: rows are plain dicts given to one Core
``INSERT`` (executemany; no ORM objects, no unit of work), and content is sealed with one
``seal_many`` call per batch when the sealer offers it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast, runtime_checkable

from pydantic import Field
from pydantic_core import from_json, to_json
from sqlalchemy import Insert, Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from modelyard.observe.answers import format_error, merge_tool_calls, tool_names
from modelyard.observe.journal import Leftover, RequestJournal, leftovers
from modelyard.observe.language import language_of, prompt_text
from modelyard.observe.protocol import LOGGED_COLUMNS, LoggedRequest
from modelyard.store import Store
from modelyard.store.tables import RequestLogRow

log = logging.getLogger(__name__)
WRITE_ATTEMPTS = 3
# Core INSERT of the request_log table: the same SQL, types and column defaults the ORM
# used, without building an ORM object per row.
REQUEST_LOG = cast(Table, RequestLogRow.__table__)
INSERT_ROWS = REQUEST_LOG.insert()
REPLAY_BATCH_ROWS = 500


# (route, tool calls made, why the answer is not the JSON asked for, if it is not)
Answered = Callable[[str, int, str | None], None]


@runtime_checkable
class BatchSealer(Protocol):
    """Something that seals many plaintexts at once (``ContentCipher``)."""

    def seal_many(self, plaintexts: Sequence[bytes]) -> list[bytes]: ...


class RequestRecord(LoggedRequest):
    """A row on its way to the request log, with the request's content (sealed when
    written) instead of whether it has some."""

    content: dict[str, Any] | None = None
    # Choice 0's tool-call deltas as relayed: the writer assembles the calls into the
    # content (sealed) and counts and names them in the row.
    tool_parts: list[Any] = Field(default_factory=list)


@dataclass
class WriterStats:
    submitted: int = 0
    written: int = 0
    dropped: int = 0
    failed: int = 0
    recovered: int = 0  # rows replayed from a journal left by an earlier process
    journal_errors: int = 0  # rows the journal could not append


class RequestLogWriter:
    def __init__(
        self,
        store: Store,
        *,
        seal: BatchSealer | Callable[[bytes], bytes] | None,
        store_content: bool,
        flush_interval_s: float,
        batch_rows: int,
        queue_rows: int,
        answered: Answered | None = None,
        journal: RequestJournal | None = None,
    ) -> None:
        """``seal`` encrypts stored content: an object with ``seal_many`` (a
        ``ContentCipher``: one call per batch) or a function sealing one plaintext; None
        stores content as plain JSON. ``answered`` hears, on the writer's thread, of each
        answer with tool calls or that missed its JSON format. ``journal`` keeps each
        queued row on local disk until it is stored."""
        self._store = store
        self._journal = journal
        self._answered = answered
        self._seal_many: Callable[[Sequence[bytes]], list[bytes]] | None
        if seal is None:
            self._seal_many = None
        elif isinstance(seal, BatchSealer):
            self._seal_many = seal.seal_many
        else:
            one = seal
            self._seal_many = lambda plaintexts: [one(plain) for plain in plaintexts]
        self._store_content = store_content
        self._interval = flush_interval_s
        self._batch_rows = batch_rows
        self._queue: asyncio.Queue[RequestRecord] = asyncio.Queue(maxsize=queue_rows)
        self.stats = WriterStats()
        # Who made each request whose row is not written yet (insertion-ordered, bounded):
        # feedback checks ownership here before it asks the store. A written row's entry
        # goes, so at a steady rate this holds about one flush interval of requests.
        self._recent: dict[str, str] = {}
        self._recent_max = max(queue_rows, 10_000)
        self._collecting: list[RequestRecord] = []

    def submit(self, record: RequestRecord) -> None:
        self._recent[record.id] = record.key_id
        if len(self._recent) > self._recent_max:
            del self._recent[next(iter(self._recent))]
        try:
            self._queue.put_nowait(record)
        except asyncio.QueueFull:
            self.stats.dropped += 1
            log.warning("request log queue full: dropped the row of request %s", record.id)
            return
        self.stats.submitted += 1
        if self._journal is not None:
            content = record.content if self._store_content else None
            if not self._journal.append(
                record.__pydantic_serializer__.to_json(record, exclude={"content"}),
                None if content is None else to_json(content),
            ):
                self.stats.journal_errors += 1

    def recover(self, directory: Path, open_sealed: Callable[[bytes], bytes] | None) -> int:
        """Store the rows of the journal segments that earlier processes left in
        ``directory`` (blocking: at start-up, on a worker thread, before serving). A row
        already in the store is skipped, so a row is never logged twice. Returns the rows
        stored."""
        stored = 0
        for leftover in leftovers(directory):
            try:
                stored += self._replay(leftover, open_sealed)
            except SQLAlchemyError as error:
                leftover.keep()
                log.warning("request log journal %s not replayed: %s", leftover.path, error)
                continue
            leftover.done()
        self.stats.recovered += stored
        if stored:
            log.warning("request log: %d rows recovered from a dead process's journal", stored)
        return stored

    def _replay(self, leftover: Leftover, open_sealed: Callable[[bytes], bytes] | None) -> int:
        batch: list[RequestRecord] = []
        stored = 0
        for fields, content in leftover.rows(open_sealed):
            try:
                batch.append(
                    RequestRecord.model_validate(
                        {**fields, "content": None if content is None else from_json(content)}
                    )
                )
            except ValueError as error:  # pydantic's ValidationError is one
                log.warning("request log journal %s: a row skipped: %s", leftover.path, error)
                continue
            if len(batch) >= REPLAY_BATCH_ROWS:
                stored += self._insert_new(self._rows(batch))
                batch = []
        if batch:
            stored += self._insert_new(self._rows(batch))
        return stored

    def _insert_new(self, rows: list[dict[str, Any]]) -> int:
        """Insert the rows not already stored (by id); returns how many were new."""
        ids = [row["id"] for row in rows]
        with self._store.session() as session:
            stored = set(session.scalars(select(REQUEST_LOG.c.id).where(REQUEST_LOG.c.id.in_(ids))))
            new = [row for row in rows if row["id"] not in stored]
            if new:  # and if another process stores one meanwhile, it is skipped still
                session.execute(_insert_ignoring_stored(self._store.engine.dialect.name), new)
            return len(new)

    def recent_owner(self, request_id: str) -> str | None:
        """The key that made a request this process logged recently, if it did."""
        return self._recent.get(request_id)

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    async def run(self) -> None:
        """Drain the queue forever (run as one background task)."""
        loop = asyncio.get_running_loop()
        while True:
            # Rows taken off the queue live in ``_collecting`` until written, so a cancel
            # while a batch is being gathered (shutdown) leaves them to ``close``.
            batch = self._collecting
            batch.append(await self._queue.get())
            deadline = loop.time() + self._interval
            while len(batch) < self._batch_rows:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel.
                try:
                    async with asyncio.timeout(remaining):
                        batch.append(await self._queue.get())
                except TimeoutError:
                    break
            self._collecting = []
            await self._write_batch(batch)

    async def flush(self) -> None:
        """Wait until every row submitted so far is written (or given up)."""
        await self._queue.join()

    async def close(self) -> None:
        """Write what is still queued or being gathered (at shutdown, after the writer task
        is cancelled)."""
        batch, self._collecting = self._collecting, []
        while not self._queue.empty():
            batch.append(self._queue.get_nowait())
            if len(batch) >= self._batch_rows:
                await self._write_batch(batch)
                batch = []
        if batch:
            await self._write_batch(batch)
        if self._journal is not None:
            self._journal.close()

    async def _write_batch(self, batch: list[RequestRecord]) -> None:
        stored = False
        try:
            rows = await asyncio.to_thread(self._rows, batch)  # once, whatever the attempts
            for attempt in range(1, WRITE_ATTEMPTS + 1):
                try:
                    await asyncio.to_thread(self._insert, rows)
                except SQLAlchemyError as error:
                    log.warning("request log write failed (attempt %d): %s", attempt, error)
                    if attempt < WRITE_ATTEMPTS:
                        await asyncio.sleep(0.2 * 2**attempt)
                        continue
                    self.stats.failed += len(batch)
                    stored = False
                else:
                    self.stats.written += len(batch)
                    stored = True
                break
        finally:
            if self._journal is not None:
                self._journal.settled(len(batch), stored=stored)
            for record in batch:
                self._recent.pop(record.id, None)  # the store answers for it from now on
                self._queue.task_done()

    def _rows(self, batch: list[RequestRecord]) -> list[dict[str, Any]]:
        """The batch's rows (on the writer's thread): what each answer holds read off it,
        counted (``answered``), and the content sealed."""
        rows: list[dict[str, Any]] = []
        contents: list[dict[str, Any] | None] = []
        for record in batch:
            row, content = _row(record)
            rows.append(row)
            contents.append(content)
            if self._answered is not None and (row["tool_calls"] or row["format_error"]):
                self._answered(row["route"], row["tool_calls"], row["format_error"])
        if self._store_content:
            self._add_content(contents, rows)
        return rows

    def _insert(self, rows: list[dict[str, Any]]) -> None:
        with self._store.session() as session:
            session.execute(INSERT_ROWS, rows)

    def _add_content(
        self, contents: list[dict[str, Any] | None], rows: list[dict[str, Any]]
    ) -> None:
        """Fill in the rows' content: the request's JSON, sealed in one call per batch."""
        where: list[dict[str, Any]] = []
        plain: list[bytes] = []
        for content, row in zip(contents, rows, strict=True):
            if content is not None:
                where.append(row)
                plain.append(to_json(content))  # compact UTF-8 JSON, 4x json.dumps's speed
        if not plain:
            return
        sealed = self._seal_many(plain) if self._seal_many is not None else plain
        for row, blob in zip(where, sealed, strict=True):  # one blob per plaintext
            row["content"] = blob


def _insert_ignoring_stored(dialect: str) -> Insert:
    """An INSERT of request-log rows that skips a row whose id is stored already."""
    if dialect == "postgresql":
        return postgresql.insert(REQUEST_LOG).on_conflict_do_nothing(index_elements=["id"])
    if dialect == "sqlite":
        return sqlite.insert(REQUEST_LOG).on_conflict_do_nothing(index_elements=["id"])
    raise ValueError(f"no journal replay for the {dialect} dialect")


def _row(record: RequestRecord) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The request_log row of one record (its content left for ``_add_content``) and the
    content to store: the record's, with the answer's tool calls (arguments and all)."""
    content = record.content
    prompt = prompt_text(content)
    # Every row has every key: one executemany needs the same columns in each row.
    row = {name: getattr(record, name) for name in LOGGED_COLUMNS}
    row["day"] = record.at.date().isoformat()
    row["content"] = None
    row["language"] = language_of(prompt)
    row["prompt_chars"] = len(prompt)
    if record.tool_parts:
        calls = merge_tool_calls(record.tool_parts)
        row["tool_calls"] = len(calls)
        row["tool_names"] = tool_names(calls)
        if content is not None:
            content = {**content, "tool_calls": calls}
    elif content is not None and record.status == 200 and record.response_format:
        response = content.get("response")
        if isinstance(response, str) and record.finish_reason != "tool_calls":
            row["format_error"] = format_error(content.get("response_format"), response)
    return row, content
