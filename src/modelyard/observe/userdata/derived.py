"""Where one user's data is in the store: their request-log rows (by the ``user`` column),
the feedback on them, the dataset items made from them (by each item's source request,
``dataset_items.request_id``, which every version built from the log or from another
version carries), and the review decisions and teacher answers given on those items (by
the item's version and index). Every query joins on the user's rows, so none carries a
list of ids, however many requests a user made."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, func, select

from modelyard.store.tables import (
    DatasetItemRow,
    DatasetRow,
    FeedbackRow,
    LabelItemRow,
    LabelRunRow,
    RequestLogRow,
    ReviewEventRow,
    ReviewItemRow,
    ReviewRow,
)


def requests_of(user: str) -> Select[str]:
    """The ids of the user's logged requests."""
    return select(RequestLogRow.id).where(RequestLogRow.user == user)


def feedback_of(user: str) -> Select[FeedbackRow]:
    return (
        select(FeedbackRow)
        .where(FeedbackRow.request_id.in_(requests_of(user)))
        .order_by(FeedbackRow.id)
    )


def items_of(user: str) -> Select[DatasetItemRow, DatasetRow]:
    """The dataset items made from the user's requests, with their versions, in order."""
    return (
        select(DatasetItemRow, DatasetRow)
        .join(DatasetRow, DatasetRow.id == DatasetItemRow.dataset_id)
        .where(DatasetItemRow.request_id.in_(requests_of(user)))
        .order_by(DatasetRow.name, DatasetRow.version, DatasetItemRow.item_index)
    )


def _item_of(user: str, name: object, version: object, index: object) -> ColumnElement[bool]:
    """Whether ``name@version``'s item ``index`` is one made from the user's requests."""
    made = (
        select(DatasetItemRow.id)
        .join(DatasetRow, DatasetRow.id == DatasetItemRow.dataset_id)
        .where(
            DatasetRow.name == name,
            DatasetRow.version == version,
            DatasetItemRow.item_index == index,
            DatasetItemRow.request_id.in_(requests_of(user)),
        )
    )
    return made.exists()


def review_items_of(user: str) -> Select[ReviewItemRow, ReviewRow]:
    """Review decisions on the user's items (in any review of a version holding them)."""
    return (
        select(ReviewItemRow, ReviewRow)
        .join(ReviewRow, ReviewRow.id == ReviewItemRow.review_id)
        .where(
            _item_of(user, ReviewRow.dataset, ReviewRow.dataset_version, ReviewItemRow.item_index)
        )
        .order_by(ReviewRow.id, ReviewItemRow.item_index)
    )


def review_events_of(user: str) -> Select[ReviewEventRow]:
    return (
        select(ReviewEventRow)
        .join(ReviewRow, ReviewRow.id == ReviewEventRow.review_id)
        .where(
            _item_of(user, ReviewRow.dataset, ReviewRow.dataset_version, ReviewEventRow.item_index)
        )
    )


def label_items_of(user: str) -> Select[LabelItemRow, LabelRunRow]:
    """Teacher answers on the user's items (in any label run of a version holding them)."""
    return (
        select(LabelItemRow, LabelRunRow)
        .join(LabelRunRow, LabelRunRow.id == LabelItemRow.run_id)
        .where(_labelled(user))
        .order_by(LabelRunRow.id, LabelItemRow.item_index)
    )


def _labelled(user: str) -> ColumnElement[bool]:
    """Whether a label item answers one of the user's items."""
    run = LabelRunRow
    return _item_of(user, run.dataset, run.dataset_version, LabelItemRow.item_index)


def teacher_requests_of(user: str) -> Select[str | None]:
    """The ids of the requests a teacher was asked about the user's items with (their
    stored content holds the items' text)."""
    return (
        select(LabelItemRow.request_id)
        .join(LabelRunRow, LabelRunRow.id == LabelItemRow.run_id)
        .where(
            LabelItemRow.request_id.is_not(None),
            _labelled(user),
        )
    )


def item_counts(user: str) -> Select[str, int, int]:
    """How many of the user's items each dataset version holds."""
    return (
        select(DatasetRow.name, DatasetRow.version, func.count(DatasetItemRow.id))
        .join(DatasetRow, DatasetRow.id == DatasetItemRow.dataset_id)
        .where(DatasetItemRow.request_id.in_(requests_of(user)))
        .group_by(DatasetRow.name, DatasetRow.version)
        .order_by(DatasetRow.name, DatasetRow.version)
    )
