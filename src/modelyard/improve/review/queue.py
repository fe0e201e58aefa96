"""What reviewers do: take the next item, hold one, decide it, skip it, undo.

A reviewer holds one item at a time, leased for the review's ``lease_minutes`` and renewed
by each of their steps on it; an expired lease puts the item back in the queue. The next
item is the first undecided one nobody holds, those the reviewer skipped last (a skip
hands the item to others, and the reviewer goes on). Each decision and skip is recorded
with the state it replaced, so a reviewer's latest step can be undone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, exists, or_, select, update
from sqlalchemy.orm import Session

from modelyard.evaluate.datasets import DatasetService
from modelyard.improve.review.errors import (
    DecisionChanged,
    InvalidDecision,
    ItemLeased,
    NothingToUndo,
    ReviewItemNotFound,
)
from modelyard.improve.review.protocol import (
    Accept,
    Correct,
    Reject,
    ReviewItemOut,
    ReviewProgress,
    ReviewStep,
    Skip,
)
from modelyard.improve.review.records import item_state, locked, progress
from modelyard.improve.review.reviews import Clock
from modelyard.improve.review.view import item_view
from modelyard.store import Store
from modelyard.store.tables import ReviewEventRow, ReviewItemRow, ReviewRow, utcnow

Choice = Accept | Correct | Reject | Skip


@dataclass(frozen=True)
class _Taken:
    """What one step left: the review, the item it concerns (if any), and the progress."""

    review: ReviewRow
    item: ReviewItemRow | None
    skipped_before: bool
    progress: ReviewProgress
    message: str = ""


class ReviewQueue:
    """The steps of reviewers; ``reviewer`` names who acts (``key:ID (name)`` over the
    API, ``user@host`` from the CLI)."""

    def __init__(self, store: Store, clock: Clock = utcnow) -> None:
        self._store, self._clock = store, clock

    def next(self, review_id: int, reviewer: str) -> ReviewStep:
        """The item the reviewer holds (renewed), else the next one in the queue, leased
        to them; no item when nothing is left for them."""
        now = self._clock()
        with self._store.session() as session:
            review = locked(session, review_id, now)
            row = _held(session, review_id, reviewer, now)
            skipped = False
            if row is None:
                _release(session, review_id, reviewer)
                row, skipped = _first_free(session, review_id, reviewer, now)
            if row is None:
                found = progress(session, review, now)
                return self._step(_Taken(review, None, False, found, _nothing_left(found)))
            _lease(row, review, reviewer, now)
            skipped = skipped or _skipped(session, row, reviewer)
            taken = _Taken(review, row, skipped, progress(session, review, now))
        return self._step(taken)

    def lease(self, review_id: int, index: int, reviewer: str) -> ReviewStep:
        """Hold one item (to decide it, or to change its decision), or renew the hold;
        ItemLeased while another reviewer holds it."""
        now = self._clock()
        with self._store.session() as session:
            review = locked(session, review_id, now)
            row = _item(session, review_id, index)
            _check_free(row, reviewer, now)
            _release(session, review_id, reviewer)
            _lease(row, review, reviewer, now)
            skipped = _skipped(session, row, reviewer)
            taken = _Taken(review, row, skipped, progress(session, review, now))
        return self._step(taken)

    def decide(self, review_id: int, index: int, choice: Choice, reviewer: str) -> ReviewStep:
        """Record a decision (or a skip, which hands the item back to the queue); the
        item is free again either way."""
        now = self._clock()
        with self._store.session() as session:
            review = locked(session, review_id, now)
            row = _item(session, review_id, index)
            _check_free(row, reviewer, now)
            correction = choice.correction if isinstance(choice, Correct) else None
            _check_label(review, correction)
            session.add(
                ReviewEventRow(
                    review_id=review_id,
                    item_index=index,
                    reviewer=reviewer,
                    action=choice.decision,
                    correction=correction,
                    before=_state(row),
                    at=now,
                )
            )
            if not isinstance(choice, Skip):
                row.decision, row.correction = choice.decision, correction
                row.decided_by, row.decided_at = reviewer, now
            row.leased_by, row.lease_expires_at = None, None
            skipped = isinstance(choice, Skip) or _skipped(session, row, reviewer)
            taken = _Taken(review, row, skipped, progress(session, review, now))
        return self._step(taken)

    def undo(self, review_id: int, reviewer: str) -> ReviewStep:
        """Take back the reviewer's latest decision or skip: the item's state before it is
        restored, and the item is leased to them again."""
        now = self._clock()
        with self._store.session() as session:
            review = locked(session, review_id, now)
            event = _latest_step(session, review_id, reviewer)
            row = _item(session, review_id, event.item_index)
            _check_free(row, reviewer, now)
            if event.action != "skip":
                mine = (event.action, event.correction, reviewer)
                if (row.decision, row.correction, row.decided_by) != mine:
                    raise DecisionChanged(
                        f"item {row.item_index} was decided again since (by {row.decided_by}):"
                        " decide it anew instead"
                    )
                _restore(row, event.before)
            event.undone_at = now
            _release(session, review_id, reviewer)
            _lease(row, review, reviewer, now)
            skipped = _skipped(session, row, reviewer)
            taken = _Taken(review, row, skipped, progress(session, review, now))
        return self._step(taken)

    def _step(self, taken: _Taken) -> ReviewStep:
        """The step's answer, with the item as the version holds it (read after the
        change is committed: a version's items never change)."""
        review, row = taken.review, taken.item
        item = None
        if row is not None:
            found = DatasetService(self._store).items(
                review.dataset, review.dataset_version, row.item_index, 1
            )
            data = found[0] if found else {}
            item = ReviewItemOut(
                **item_state(row).model_dump(),
                data=data,
                view=item_view(data, review.spec["label_field"]),
                skipped_before=taken.skipped_before,
            )
        return ReviewStep(
            review=review.id, item=item, progress=taken.progress, message=taken.message
        )


def _free(now: datetime) -> ColumnElement[bool]:
    """Undecided and held by nobody (or by a lease that expired)."""
    return ReviewItemRow.decision.is_(None) & or_(
        ReviewItemRow.leased_by.is_(None), ReviewItemRow.lease_expires_at <= now
    )


def _skipped_by(reviewer: str) -> ColumnElement[bool]:
    """The item (of the outer query) is one ``reviewer`` skipped (and did not undo)."""
    return exists().where(
        ReviewEventRow.review_id == ReviewItemRow.review_id,
        ReviewEventRow.item_index == ReviewItemRow.item_index,
        ReviewEventRow.reviewer == reviewer,
        ReviewEventRow.action == "skip",
        ReviewEventRow.undone_at.is_(None),
    )


def _first_free(
    session: Session, review_id: int, reviewer: str, now: datetime
) -> tuple[ReviewItemRow | None, bool]:
    """The first free item the reviewer has not skipped, else the first they skipped."""
    for skipped in (False, True):
        query = select(ReviewItemRow).where(ReviewItemRow.review_id == review_id, _free(now))
        seen = _skipped_by(reviewer)
        query = query.where(seen if skipped else ~seen)
        row = session.scalars(query.order_by(ReviewItemRow.item_index).limit(1)).first()
        if row is not None:
            return row, skipped
    return None, False


def _held(session: Session, review_id: int, reviewer: str, now: datetime) -> ReviewItemRow | None:
    query = select(ReviewItemRow).where(
        ReviewItemRow.review_id == review_id,
        ReviewItemRow.leased_by == reviewer,
        ReviewItemRow.lease_expires_at > now,
        ReviewItemRow.decision.is_(None),
    )
    return session.scalars(query.order_by(ReviewItemRow.item_index).limit(1)).first()


def _release(session: Session, review_id: int, reviewer: str) -> None:
    """The reviewer holds no item any more (one at a time)."""
    session.execute(
        update(ReviewItemRow)
        .where(ReviewItemRow.review_id == review_id, ReviewItemRow.leased_by == reviewer)
        .values(leased_by=None, lease_expires_at=None)
        .execution_options(synchronize_session="fetch")
    )


def _lease(row: ReviewItemRow, review: ReviewRow, reviewer: str, now: datetime) -> None:
    row.leased_by = reviewer
    row.lease_expires_at = now + timedelta(minutes=int(review.spec["lease_minutes"]))


def _item(session: Session, review_id: int, index: int) -> ReviewItemRow:
    row = session.scalars(
        select(ReviewItemRow).where(
            ReviewItemRow.review_id == review_id, ReviewItemRow.item_index == index
        )
    ).first()
    if row is None:
        raise ReviewItemNotFound(review_id, index)
    return row


def _check_free(row: ReviewItemRow, reviewer: str, now: datetime) -> None:
    expires = row.lease_expires_at
    if row.leased_by not in (None, reviewer) and expires is not None and expires > now:
        left = (expires - now).total_seconds() / 60
        raise ItemLeased(
            f"item {row.item_index} is held by {row.leased_by} for {left:.0f} more minute(s);"
            " take the next item instead"
        )


def _check_label(review: ReviewRow, correction: str | None) -> None:
    labels = review.spec["labels"]
    if correction is not None and labels is not None and correction not in labels:
        shown = ", ".join(labels[:20]) + (", …" if len(labels) > 20 else "")
        raise InvalidDecision(
            f"'{correction}' is not a label of this review: one of {shown}", param="correction"
        )


def _skipped(session: Session, row: ReviewItemRow, reviewer: str) -> bool:
    query = select(ReviewEventRow.id).where(
        ReviewEventRow.review_id == row.review_id,
        ReviewEventRow.item_index == row.item_index,
        ReviewEventRow.reviewer == reviewer,
        ReviewEventRow.action == "skip",
        ReviewEventRow.undone_at.is_(None),
    )
    return session.scalars(query.limit(1)).first() is not None


def _latest_step(session: Session, review_id: int, reviewer: str) -> ReviewEventRow:
    query = select(ReviewEventRow).where(
        ReviewEventRow.review_id == review_id,
        ReviewEventRow.reviewer == reviewer,
        ReviewEventRow.undone_at.is_(None),
    )
    event = session.scalars(query.order_by(ReviewEventRow.id.desc()).limit(1)).first()
    if event is None:
        raise NothingToUndo(f"you have nothing left to undo in review {review_id}")
    return event


def _state(row: ReviewItemRow) -> dict[str, Any]:
    decided_at = row.decided_at.isoformat() if row.decided_at is not None else None
    return {
        "decision": row.decision,
        "correction": row.correction,
        "decided_by": row.decided_by,
        "decided_at": decided_at,
    }


def _restore(row: ReviewItemRow, before: dict[str, Any]) -> None:
    decided_at = before.get("decided_at")
    row.decision, row.correction = before.get("decision"), before.get("correction")
    row.decided_by = before.get("decided_by")
    row.decided_at = datetime.fromisoformat(decided_at) if decided_at else None


def _nothing_left(found: ReviewProgress) -> str:
    if not found.remaining:
        return "every item is decided: the review can be finished"
    return (
        f"nothing left for you: {found.remaining} undecided item(s) are held by other "
        "reviewers (each goes back to the queue when its lease expires)"
    )
