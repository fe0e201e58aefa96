"""Reading the request log: filtered lists, exports, one request with its content opened."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select

from modelyard.errors import ModelyardError
from modelyard.observe.feedback import feedback_of
from modelyard.observe.protocol import LOGGED_COLUMNS, RequestDetail, RequestOut
from modelyard.store import Store
from modelyard.store.tables import FeedbackRow, RequestLogRow

MAX_ROWS = 1000
EXPORT_BATCH = 1000


class RequestNotFound(ModelyardError, LookupError):
    status = 404
    code = "request_not_found"

    def __init__(self, request_id: str) -> None:
        super().__init__(f"no logged request with id '{request_id}'")


@dataclass(frozen=True)
class RequestFilter:
    key_id: str | None = None
    route: str | None = None
    version: str | None = None
    status: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    feedback: str | None = None  # requests with feedback of this name ("*": any)
    language: str | None = None  # the prompt's language (observe.language), as stored

    def apply(self, query: Select[Any]) -> Select[Any]:
        t = RequestLogRow
        if self.key_id is not None:
            query = query.where(t.key_id == self.key_id)
        if self.route is not None:
            query = query.where(t.route == self.route)
        if self.version is not None:
            query = query.where(t.version == self.version)
        if self.status is not None:
            query = query.where(t.status == self.status)
        if self.since is not None:
            query = query.where(t.at >= self.since)
        if self.until is not None:
            query = query.where(t.at < self.until)
        if self.language is not None:
            query = query.where(t.language == self.language)
        if self.feedback is not None:
            given = select(FeedbackRow.request_id)
            if self.feedback != "*":
                given = given.where(FeedbackRow.name == self.feedback)
            query = query.where(t.id.in_(given))
        return query


def list_requests(store: Store, where: RequestFilter, limit: int = 100) -> list[RequestOut]:
    t = RequestLogRow
    query = where.apply(select(t)).order_by(t.at.desc(), t.id).limit(min(limit, MAX_ROWS))
    with store.session() as session:
        return [request_out(row) for row in session.scalars(query)]


def export_rows(store: Store, where: RequestFilter) -> Iterator[RequestOut]:
    """Every matching row, oldest first, read in batches (keyset pagination)."""
    t = RequestLogRow
    after: tuple[datetime, str] | None = None
    while True:
        query = where.apply(select(t)).order_by(t.at, t.id).limit(EXPORT_BATCH)
        if after is not None:
            query = query.where((t.at > after[0]) | ((t.at == after[0]) & (t.id > after[1])))
        with store.session() as session:
            rows = [request_out(row) for row in session.scalars(query)]
        yield from rows
        if len(rows) < EXPORT_BATCH:
            return
        after = (rows[-1].at, rows[-1].id)


def as_jsonl(rows: Iterator[RequestOut]) -> Iterator[str]:
    for row in rows:
        yield row.model_dump_json() + "\n"


CSV_COLUMNS = tuple(RequestOut.model_fields)


def as_csv(rows: Iterator[RequestOut]) -> Iterator[str]:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        data = row.model_dump(mode="json")
        writer.writerow(
            [
                json.dumps(data[c]) if isinstance(data[c], dict | list) else data[c]
                for c in CSV_COLUMNS
            ]
        )
        yield out.getvalue()
        out.seek(0)
        out.truncate()
    yield out.getvalue()


def get_request(
    store: Store, request_id: str, open_content: Callable[[bytes], bytes]
) -> RequestDetail:
    with store.session() as session:
        row = session.get(RequestLogRow, request_id)
        if row is None:
            raise RequestNotFound(request_id)
        out = request_out(row)
        blob = row.content
    content, error = opened(blob, open_content)
    return RequestDetail(
        **out.model_dump(),
        content=content,
        content_error=error,
        feedback=feedback_of(store, request_id),
    )


def opened(
    blob: bytes | None, open_content: Callable[[bytes], bytes]
) -> tuple[dict[str, Any] | None, str | None]:
    """A row's stored content decrypted, or None and why it cannot be (its key is gone)."""
    if blob is None:
        return None, None
    try:
        content: dict[str, Any] = json.loads(open_content(blob))
    except ValueError as failure:
        return None, str(failure)
    return content, None


def request_out(row: RequestLogRow) -> RequestOut:
    return RequestOut(
        **{name: getattr(row, name) for name in LOGGED_COLUMNS},
        has_content=row.content is not None,
        language=row.language,
    )
