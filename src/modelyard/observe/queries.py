"""Reading the request log: filtered lists and one request with its content opened."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select

from modelyard.observe.protocol import RequestDetail, RequestOut
from modelyard.store import Store
from modelyard.store.tables import RequestLogRow

MAX_ROWS = 1000


class RequestNotFound(LookupError):
    def __init__(self, request_id: str) -> None:
        super().__init__(f"no logged request with id '{request_id}'")


def list_requests(
    store: Store,
    *,
    key_id: str | None = None,
    route: str | None = None,
    status: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
) -> list[RequestOut]:
    t = RequestLogRow
    query = select(t).order_by(t.at.desc(), t.id).limit(min(limit, MAX_ROWS))
    if key_id is not None:
        query = query.where(t.key_id == key_id)
    if route is not None:
        query = query.where(t.route == route)
    if status is not None:
        query = query.where(t.status == status)
    if since is not None:
        query = query.where(t.at >= since)
    if until is not None:
        query = query.where(t.at < until)
    with store.session() as session:
        return [_out(row) for row in session.scalars(query)]


def get_request(
    store: Store, request_id: str, open_content: Callable[[bytes], bytes]
) -> RequestDetail:
    with store.session() as session:
        row = session.get(RequestLogRow, request_id)
        if row is None:
            raise RequestNotFound(request_id)
        out = _out(row)
        blob = row.content
    content, error = None, None
    if blob is not None:
        try:
            content = json.loads(open_content(blob))
        except ValueError as failure:
            error = str(failure)
    return RequestDetail(**out.model_dump(), content=content, content_error=error)


def _out(row: RequestLogRow) -> RequestOut:
    return RequestOut(
        id=row.id,
        at=row.at,
        key_id=row.key_id,
        endpoint=row.endpoint,
        route=row.route,
        version=row.version,
        status=row.status,
        error_code=row.error_code,
        latency_ms=row.latency_ms,
        ttft_ms=row.ttft_ms,
        prompt_tokens=row.prompt_tokens,
        completion_tokens=row.completion_tokens,
        cost=row.cost,
        streamed=row.streamed,
        pii=dict(row.pii),
        injection=list(row.injection),
        has_content=row.content is not None,
    )
