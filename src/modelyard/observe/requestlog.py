"""The request log: rows queued in memory on the request path, written by one task.

``submit`` never waits: it puts the row on a bounded in-process queue (dropping and
counting when full). One writer task drains the queue in batches bounded by rows and by
time, sealing content (encryption) and inserting each batch in one transaction on a
worker thread, so neither the database nor the cipher runs on the event loop.

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
from typing import Any, Protocol, cast, runtime_checkable

from pydantic import Field
from pydantic_core import to_json
from sqlalchemy import Table
from sqlalchemy.exc import SQLAlchemyError

from modelyard.observe.answers import format_error, merge_tool_calls, tool_names
from modelyard.observe.language import prompt_text, script_of
from modelyard.observe.protocol import LOGGED_COLUMNS, LoggedRequest
from modelyard.store import Store
from modelyard.store.tables import RequestLogRow

log = logging.getLogger(__name__)
WRITE_ATTEMPTS = 3
# Core INSERT of the request_log table: the same SQL, types and column defaults the ORM
# used, without building an ORM object per row.
INSERT_ROWS = cast(Table, RequestLogRow.__table__).insert()


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
    ) -> None:
        """``seal`` encrypts stored content: an object with ``seal_many`` (a
        ``ContentCipher``: one call per batch) or a function sealing one plaintext; None
        stores content as plain JSON. ``answered`` hears, on the writer's thread, of each
        answer with tool calls or that missed its JSON format."""
        self._store = store
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

    async def _write_batch(self, batch: list[RequestRecord]) -> None:
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
                else:
                    self.stats.written += len(batch)
                break
        finally:
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


def _row(record: RequestRecord) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The request_log row of one record (its content left for ``_add_content``) and the
    content to store: the record's, with the answer's tool calls (arguments and all)."""
    content = record.content
    prompt = prompt_text(content)
    # Every row has every key: one executemany needs the same columns in each row.
    row = {name: getattr(record, name) for name in LOGGED_COLUMNS}
    row["day"] = record.at.date().isoformat()
    row["content"] = None
    row["language"] = script_of(prompt)
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
