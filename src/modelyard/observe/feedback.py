"""Feedback on logged requests: who may give it, and storing it."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from modelyard.errors import ModelyardError
from modelyard.observe.protocol import FeedbackIn, FeedbackOut
from modelyard.store import Store
from modelyard.store.tables import FeedbackRow, RequestLogRow


class FeedbackRefused(ModelyardError):
    """Feedback on a request the key did not make (or that does not exist)."""

    status = 404
    code = "request_not_found"
    param = "request_id"

    def __init__(self, request_id: str) -> None:
        super().__init__(
            f"no logged request '{request_id}' made with this API key "
            "(only the key that made a request, or an admin, may give feedback on it)"
        )


def owner_of(store: Store, request_id: str) -> str | None:
    with store.session() as session:
        key_id: str | None = session.scalar(
            select(RequestLogRow.key_id).where(RequestLogRow.id == request_id)
        )
        return key_id


def add_feedback(store: Store, feedback: FeedbackIn, key_id: str) -> FeedbackOut:
    value = feedback.value
    if isinstance(value, bool):
        kind, number, category = "boolean", float(value), None
    elif isinstance(value, int | float):
        kind, number, category = "number", float(value), None
    else:
        kind, number, category = "category", None, value
    row = FeedbackRow(
        request_id=feedback.request_id,
        key_id=key_id,
        name=feedback.name,
        kind=kind,
        number=number,
        category=category,
        comment=feedback.comment,
        source=feedback.source,
        at=datetime.now(UTC),
    )
    with store.session() as session:
        session.add(row)
        session.flush()
        return feedback_out(row)


def feedback_of(store: Store, request_id: str) -> list[FeedbackOut]:
    with store.session() as session:
        rows = session.scalars(
            select(FeedbackRow).where(FeedbackRow.request_id == request_id).order_by(FeedbackRow.id)
        )
        return [feedback_out(row) for row in rows]


def feedback_out(row: FeedbackRow) -> FeedbackOut:
    value: bool | float | str | None
    if row.kind == "boolean":
        value = bool(row.number)
    elif row.kind == "number":
        value = row.number
    else:
        value = row.category
    return FeedbackOut(
        id=row.id,
        request_id=row.request_id,
        key_id=row.key_id,
        name=row.name,
        value=value,
        comment=row.comment,
        source=row.source,
        at=row.at,
    )
