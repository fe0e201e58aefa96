"""What a curation reads, in batches: logged requests (newest first, a page at a time by
keyset, so memory holds one batch of rows) with their feedback, and registered datasets'
items a page at a time."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, or_, select

from modelyard.evaluate.datasets import (
    DatasetService,
    feedback_by_request,
    judged_requests,
    log_item,
)
from modelyard.improve.cleaning import RowFacts
from modelyard.improve.protocol import LogSelection
from modelyard.store import Store
from modelyard.store.tables import RequestLogRow

Item = dict[str, Any]
BATCH = 500  # logged requests read per query
PAGE = 1000  # dataset items read per query
# Where a dataset item's question and answer are, in order of preference.
INPUT_FIELDS = ("input", "text", "question", "prompt")
OUTPUT_FIELDS = ("output", "answer", "response", "label", "category")


@dataclass
class Candidate:
    """One row read: its item (None when its content cannot be read, and why), what
    cleaning and the outlier features need, and the requests it stands for."""

    request_ids: list[str]
    item: Item | None
    problem: str | None = None
    facts: RowFacts | None = None
    latency_ms: float | None = None
    tokens: tuple[int | None, int | None] = (None, None)


def logged(
    store: Store,
    selection: LogSelection,
    since: datetime,
    until: datetime,
    open_content: Callable[[bytes], bytes],
    batch: int = BATCH,
) -> Iterator[list[Candidate]]:
    """The selected requests logged from ``since`` to ``until``, newest first, ``batch``
    at a time."""
    query = _selected(selection, since, until)
    last: tuple[datetime, str] | None = None
    read = 0
    while read < selection.limit:
        page = query
        if last is not None:
            at, request_id = last
            page = page.where(
                or_(
                    RequestLogRow.at < at,
                    and_(RequestLogRow.at == at, RequestLogRow.id < request_id),
                )
            )
        with store.session() as session:
            rows = list(session.scalars(page.limit(min(batch, selection.limit - read))))
            if not rows:
                return
            given = feedback_by_request(session, [row.id for row in rows])
            out = [_candidate(row, open_content, given.get(row.id, [])) for row in rows]
        yield out
        read += len(rows)
        last = (rows[-1].at, rows[-1].id)


def _selected(selection: LogSelection, since: datetime, until: datetime) -> Select[RequestLogRow]:
    query = select(RequestLogRow).where(RequestLogRow.at >= since, RequestLogRow.at <= until)
    if selection.route is not None:
        query = query.where(RequestLogRow.route == selection.route)
    judged = judged_requests(selection.feedback, selection.negative_only)
    if judged is not None:
        query = query.where(RequestLogRow.id.in_(judged))
    return query.order_by(RequestLogRow.at.desc(), RequestLogRow.id.desc())


def _candidate(
    row: RequestLogRow, open_content: Callable[[bytes], bytes], feedback: list[Item]
) -> Candidate:
    ids = [row.id]
    if row.content is None:
        return Candidate(ids, None, "no_content")
    try:
        content = json.loads(open_content(row.content))
    except ValueError:  # not JSON, or a key this ring does not hold (ContentKeyError)
        return Candidate(ids, None, "unreadable")
    item = {**log_item(row, content, feedback), "source": "log"}
    facts = RowFacts(
        status=row.status,
        variant=row.variant,
        finish_reason=row.finish_reason,
        question=str(item["input"] or ""),
        answer=item["output"] if isinstance(item["output"], str) else None,
    )
    tokens = (row.prompt_tokens, row.completion_tokens)
    return Candidate(ids, item, None, facts, row.latency_ms, tokens)


def dataset_items(
    datasets: DatasetService, name: str, version: int, page: int = PAGE
) -> Iterator[list[Candidate]]:
    """The items of ``name@version`` as candidates, ``page`` at a time."""
    offset = 0
    while True:
        items = datasets.items(name, version, offset, page)
        if not items:
            return
        yield [_from_dataset(item, f"dataset:{name}@{version}") for item in items]
        offset += len(items)


def _from_dataset(original: Item, source: str) -> Candidate:
    question = _first_text(original, INPUT_FIELDS) or ""
    answer = _first_text(original, OUTPUT_FIELDS)
    ids = original.get("request_ids")
    if not isinstance(ids, list):
        ids = [original["request_id"]] if isinstance(original.get("request_id"), str) else []
    item = {**original, "input": question, "output": answer, "source": source}
    facts = RowFacts(None, None, None, question, answer)
    return Candidate([str(i) for i in ids], item, None, facts)


def _first_text(item: Item, names: tuple[str, ...]) -> str | None:
    for name in names:
        value = item.get(name)
        if isinstance(value, str):
            return value
    return None
