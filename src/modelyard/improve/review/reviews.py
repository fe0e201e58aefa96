"""Making a review of a dataset version (its queue: the items its filter selects) and
reading reviews back."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, select

from modelyard.evaluate.datasets import DatasetOut, DatasetService
from modelyard.improve.review.errors import InvalidReview
from modelyard.improve.review.protocol import (
    ReviewCreate,
    ReviewFilter,
    ReviewItemList,
    ReviewOut,
    ReviewStatus,
)
from modelyard.improve.review.records import item_state, review_out, review_row
from modelyard.store import Store
from modelyard.store.tables import ReviewItemRow, ReviewRow, utcnow

Item = dict[str, Any]
PAGE = 1000  # items read, and queue rows written, at a time
MAX_LABELS = 1000
INSERT_ITEMS = cast(Table, ReviewItemRow.__table__).insert()
Clock = Callable[[], datetime]
_MISSING = object()  # a field an item lacks equals no value


class Reviews:
    def __init__(self, store: Store, clock: Clock = utcnow) -> None:
        self._store, self._clock = store, clock

    def create(self, request: ReviewCreate, actor: str) -> ReviewOut:
        """A review of the version with the items the filter selects, in their order;
        InvalidReview when it selects none or the label settings do not fit the items."""
        datasets = DatasetService(self._store)
        dataset = datasets.get(request.dataset, request.version)
        label_field = request.label_field or _label_field_of(dataset)
        indexes, seen_labels = _select(datasets, dataset, request.filter, label_field)
        if not indexes:
            raise InvalidReview(
                f"no item of {request.dataset}@{dataset.version} matches the filter",
                param="filter",
            )
        labels = _labels(request, label_field, seen_labels)
        spec = {
            "filter": request.filter.model_dump(mode="json"),
            "instructions": request.instructions,
            "label_field": label_field,
            "labels": labels,
            "lease_minutes": request.lease_minutes,
        }
        now = self._clock()
        with self._store.session() as session:
            row = ReviewRow(
                dataset=dataset.name,
                dataset_version=dataset.version,
                spec=spec,
                status="open",
                item_count=len(indexes),
                created_at=now,
                created_by=actor,
                updated_at=now,
            )
            session.add(row)
            session.flush()
            for start in range(0, len(indexes), PAGE):
                rows = [
                    {"review_id": row.id, "item_index": index}
                    for index in indexes[start : start + PAGE]
                ]
                session.execute(INSERT_ITEMS, rows)
            return review_out(session, row, now)

    def get(self, review_id: int) -> ReviewOut:
        with self._store.session() as session:
            return review_out(session, review_row(session, review_id), self._clock())

    def list_reviews(self, status: ReviewStatus | None = None, limit: int = 100) -> list[ReviewOut]:
        """Reviews, newest first."""
        query = select(ReviewRow).order_by(ReviewRow.id.desc()).limit(limit)
        if status is not None:
            query = query.where(ReviewRow.status == status)
        now = self._clock()
        with self._store.session() as session:
            return [review_out(session, row, now) for row in session.scalars(query)]

    def items(
        self, review_id: int, decided: str | None = None, offset: int = 0, limit: int = 100
    ) -> ReviewItemList:
        """The queue's items in order with their state; ``decided``: a decision, or
        ``undecided``."""
        query = select(ReviewItemRow).where(ReviewItemRow.review_id == review_id)
        if decided == "undecided":
            query = query.where(ReviewItemRow.decision.is_(None))
        elif decided is not None:
            query = query.where(ReviewItemRow.decision == decided)
        query = query.order_by(ReviewItemRow.item_index).offset(offset).limit(limit)
        with self._store.session() as session:
            review_row(session, review_id)
            return ReviewItemList(data=[item_state(row) for row in session.scalars(query)])


def _label_field_of(dataset: DatasetOut) -> str | None:
    """Where a version made by labelling or curation keeps each item's label."""
    source = dataset.source
    if source.get("kind") == "labelled" and isinstance(source.get("label_field"), str):
        return str(source["label_field"])
    request = source.get("request")
    if source.get("kind") == "curated" and isinstance(request, dict) and request.get("label"):
        return "label"
    return None


def _pages(datasets: DatasetService, dataset: DatasetOut) -> Iterator[list[Item]]:
    for offset in range(0, dataset.item_count, PAGE):
        yield datasets.items(dataset.name, dataset.version, offset, PAGE)


def _select(
    datasets: DatasetService, dataset: DatasetOut, where: ReviewFilter, label_field: str | None
) -> tuple[list[int], set[str]]:
    """The indexes of the items the filter selects, and the labels the version holds."""
    wanted = dict(where.where)
    if where.split is not None:
        wanted["split"] = where.split
    indexes: list[int] = []
    labels: set[str] = set()
    index = 0
    for page in _pages(datasets, dataset):
        for item in page:
            if all(item.get(name, _MISSING) == value for name, value in wanted.items()):
                indexes.append(index)
            if label_field is not None and item.get(label_field) not in (None, ""):
                labels.add(str(item[label_field]))
            index += 1
    return indexes, labels


def _labels(request: ReviewCreate, label_field: str | None, seen: set[str]) -> list[str] | None:
    """The labels a correction may be: those asked for, else those the items hold."""
    if label_field is None:
        if request.labels is not None:
            raise InvalidReview("labels need a label_field to put them in", param="labels")
        return None
    if request.labels is not None:
        if len(set(request.labels)) != len(request.labels):
            raise InvalidReview("labels must be distinct", param="labels")
        return list(request.labels)
    if not seen:
        raise InvalidReview(
            f"no item has a value in '{label_field}': name the field that holds the label, "
            "or give labels",
            param="label_field",
        )
    if len(seen) > MAX_LABELS:
        raise InvalidReview(
            f"'{label_field}' holds {len(seen)} distinct values; give the labels (at most "
            f"{MAX_LABELS})",
            param="labels",
        )
    return sorted(seen)
