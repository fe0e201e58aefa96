"""A review's rows as its wire types: the review with its progress, an item's state.

Every change to a review starts by writing its row (``locked``): on PostgreSQL that row
lock, on SQLite the database's write lock, puts a review's changes one after another, so
two reviewers asking at the same moment never get the same item and a decision never
lands in a review that is being finished.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from modelyard.improve.review.errors import ReviewFinished, ReviewNotFound
from modelyard.improve.review.protocol import (
    Decision,
    DecisionCounts,
    ReviewFilter,
    ReviewItemState,
    ReviewOut,
    ReviewProgress,
    ReviewResult,
    ReviewStatus,
)
from modelyard.store.tables import ReviewEventRow, ReviewItemRow, ReviewRow


def review_row(session: Session, review_id: int) -> ReviewRow:
    row = session.get(ReviewRow, review_id)
    if row is None:
        raise ReviewNotFound(review_id)
    return row


def locked(session: Session, review_id: int, now: datetime) -> ReviewRow:
    """The review, locked for a change until the session ends; ReviewFinished when it is
    finished."""
    touched = session.execute(
        update(ReviewRow).where(ReviewRow.id == review_id).values(updated_at=now)
    )
    if not touched.rowcount:  # type: ignore[attr-defined]
        raise ReviewNotFound(review_id)
    row = review_row(session, review_id)
    if row.status != "open":
        raise ReviewFinished(review_id)
    return row


def item_state(row: ReviewItemRow) -> ReviewItemState:
    return ReviewItemState(
        index=row.item_index,
        decision=cast(Decision | None, row.decision),
        correction=row.correction,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        leased_by=row.leased_by,
        lease_expires_at=row.lease_expires_at,
    )


def progress(session: Session, row: ReviewRow, now: datetime) -> ReviewProgress:
    """Decided and remaining items, live leases, and the decisions and skips by reviewer."""
    of_review = ReviewItemRow.review_id == row.id
    decided = session.execute(
        select(ReviewItemRow.decided_by, ReviewItemRow.decision, func.count())
        .where(of_review, ReviewItemRow.decision.is_not(None))
        .group_by(ReviewItemRow.decided_by, ReviewItemRow.decision)
    ).all()
    skips = session.execute(
        select(ReviewEventRow.reviewer, func.count())
        .where(
            ReviewEventRow.review_id == row.id,
            ReviewEventRow.action == "skip",
            ReviewEventRow.undone_at.is_(None),
        )
        .group_by(ReviewEventRow.reviewer)
    ).all()
    leased = session.scalar(
        select(func.count()).where(
            of_review,
            ReviewItemRow.decision.is_(None),
            ReviewItemRow.lease_expires_at > now,
        )
    )
    total, by_reviewer = DecisionCounts(), dict[str, DecisionCounts]()
    for reviewer, decision, count in decided:
        _add(total, by_reviewer, str(reviewer), str(decision), int(count))
    for reviewer, count in skips:
        _add(total, by_reviewer, str(reviewer), "skip", int(count))
    done = total.accept + total.correct + total.reject
    return ReviewProgress(
        items=row.item_count,
        decided=done,
        remaining=row.item_count - done,
        leased=int(leased or 0),
        by_decision=total,
        by_reviewer=dict(sorted(by_reviewer.items())),
    )


def _add(total: DecisionCounts, by: dict[str, DecisionCounts], who: str, what: str, n: int) -> None:
    setattr(total, what, getattr(total, what) + n)
    counts = by.setdefault(who, DecisionCounts())
    setattr(counts, what, getattr(counts, what) + n)


def review_out(session: Session, row: ReviewRow, now: datetime) -> ReviewOut:
    spec: dict[str, Any] = row.spec
    return ReviewOut(
        id=row.id,
        dataset=row.dataset,
        version=row.dataset_version,
        status=cast(ReviewStatus, row.status),
        filter=ReviewFilter.model_validate(spec["filter"]),
        instructions=str(spec["instructions"]),
        label_field=spec["label_field"],
        labels=spec["labels"],
        lease_minutes=int(spec["lease_minutes"]),
        progress=progress(session, row, now),
        result=ReviewResult.model_validate(row.result) if row.result else None,
        created_at=row.created_at,
        created_by=row.created_by,
        finished_at=row.finished_at,
        finished_by=row.finished_by,
    )
