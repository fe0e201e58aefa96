"""Finishing a review: its decisions become a new version of the dataset.

Accepted items stay as they are, corrected ones carry the correction (``corrected``, and
the label field of a labelled review), rejected ones are left out, undecided ones are kept
or dropped as the caller says, and items the filter left out of the queue stay as they
are. Every item keeps its request ids, split and fingerprint. The version is written by
``DatasetService.register_stream`` like any other (content-hashed), and its ``source``
records the review.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from modelyard.evaluate.datasets import DatasetOut, DatasetService, StoredItem
from modelyard.improve.review.errors import UndecidedItems
from modelyard.improve.review.protocol import (
    FinishRequest,
    ReviewOut,
    ReviewResult,
    Undecided,
)
from modelyard.improve.review.records import locked, review_out, review_row
from modelyard.improve.review.reviews import PAGE, Clock
from modelyard.improve.review.view import corrected
from modelyard.registry.protocol import version_name
from modelyard.store import Store
from modelyard.store.tables import ReviewItemRow, utcnow

KIND = "reviewed"  # the new version's ``source.kind``


@dataclass
class _Plan:
    """The decisions to apply, read once the review is closed to further changes."""

    review_id: int
    dataset: str
    version: int
    spec: dict[str, Any]
    undecided: Undecided
    decisions: dict[int, tuple[str | None, str | None]] = field(default_factory=dict)
    reviewers: set[str] = field(default_factory=set)


def finish_review(
    store: Store, review_id: int, request: FinishRequest, actor: str, clock: Clock = utcnow
) -> ReviewOut:
    """Write the review's version and mark the review finished (reopened if the version
    cannot be written)."""
    plan = _close(store, review_id, request, actor, clock)
    result = None
    try:
        result = _write(store, plan, request.name, actor)
    finally:
        _record(store, plan, result)
    with store.session() as session:
        return review_out(session, review_row(session, review_id), clock())


def _write(store: Store, plan: _Plan, name: str | None, actor: str) -> ReviewResult:
    """The new version, through the datasets' own machinery, and what it holds."""
    datasets = DatasetService(store)
    base = datasets.get(plan.dataset, plan.version)
    counts = _counts(plan, base)
    source = _source(plan, base, counts)
    written = datasets.register_stream(
        name or base.name, _apply(datasets, base, plan), source, actor
    )
    return ReviewResult(
        dataset=version_name(written.name, written.version),
        undecided=plan.undecided,
        reviewers=sorted(plan.reviewers),
        **counts,
    )


def _record(store: Store, plan: _Plan, result: ReviewResult | None) -> None:
    """The review's result, or the review open again when no version was written."""
    with store.session() as session:
        row = review_row(session, plan.review_id)
        if result is None:
            row.status, row.finished_at, row.finished_by = "open", None, None
            return
        name, _, number = result.dataset.rpartition("@")
        row.result_dataset, row.result_version = name, int(number)
        row.result = result.model_dump(mode="json")


def _close(store: Store, review_id: int, request: FinishRequest, actor: str, clock: Clock) -> _Plan:
    """Mark the review finished (no decision lands after this) and read its decisions;
    UndecidedItems when some are undecided and the request does not say what to do."""
    now = clock()
    with store.session() as session:
        row = locked(session, review_id, now)
        rows = session.execute(
            select(
                ReviewItemRow.item_index,
                ReviewItemRow.decision,
                ReviewItemRow.correction,
                ReviewItemRow.decided_by,
            ).where(ReviewItemRow.review_id == review_id)
        ).all()
        undecided = sum(1 for _, decision, _, _ in rows if decision is None)
        if undecided and request.undecided is None:
            raise UndecidedItems(
                f"{undecided} item(s) of review {review_id} are undecided: say whether to keep "
                "or drop them (undecided: keep or drop)"
            )
        row.status, row.finished_at, row.finished_by = "finished", now, actor
        return _Plan(
            review_id=review_id,
            dataset=row.dataset,
            version=row.dataset_version,
            spec=dict(row.spec),
            undecided=request.undecided or "keep",
            decisions={index: (decision, correction) for index, decision, correction, _ in rows},
            reviewers={str(by) for _, decision, _, by in rows if decision is not None},
        )


def _apply(datasets: DatasetService, base: DatasetOut, plan: _Plan) -> Iterator[StoredItem]:
    """The base version's items, page by page, with the decisions applied."""
    label_field = plan.spec["label_field"]
    for offset in range(0, base.item_count, PAGE):
        page = datasets.stored_items(base.name, base.version, offset, PAGE)
        for index, item in enumerate(page, start=offset):
            decision, correction = plan.decisions.get(index, ("accept", None))
            if decision == "correct" and correction is not None:
                data = corrected(item.data, correction, label_field)
                yield StoredItem(data, item.request_id, item.split, item.fingerprint)
            elif decision == "accept" or (decision is None and plan.undecided == "keep"):
                yield item  # items outside the filter too: as they are


def _counts(plan: _Plan, base: DatasetOut) -> dict[str, int]:
    """What the decisions make of the version, counted before it is written."""
    decided = [decision for decision, _ in plan.decisions.values()]
    undecided = decided.count(None)
    rejected = decided.count("reject")
    return {
        "accepted": decided.count("accept"),
        "corrected": decided.count("correct"),
        "rejected": rejected,
        "undecided_items": undecided,
        "outside_filter": base.item_count - len(plan.decisions),
        "items": base.item_count - rejected - (undecided if plan.undecided == "drop" else 0),
    }


def _source(plan: _Plan, base: DatasetOut, counts: dict[str, int]) -> dict[str, Any]:
    """The provenance of the new version (its counts are complete once it is written:
    the dict fills as the items stream)."""
    return {
        "kind": KIND,
        "from": version_name(base.name, base.version),
        "sha256": base.sha256,
        "review": plan.review_id,
        "filter": plan.spec["filter"],
        "instructions": plan.spec["instructions"],
        "label_field": plan.spec["label_field"],
        "undecided": plan.undecided,
        "counts": counts,
        "reviewers": sorted(plan.reviewers),
    }
