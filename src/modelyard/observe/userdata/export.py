"""Reading what is stored about one user: how much (``summarise_user``) and all of it, with
the content decrypted (``export_user``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from modelyard.observe.feedback import feedback_out
from modelyard.observe.protocol import FeedbackOut, RequestDetail
from modelyard.observe.queries import opened, request_out
from modelyard.observe.userdata import derived
from modelyard.observe.userdata.errors import UserNotFound
from modelyard.observe.userdata.protocol import (
    DatasetItemOut,
    LabelAnswerOut,
    ReviewCorrectionOut,
    UserExport,
    UserSummary,
)
from modelyard.observe.userdata.pseudonym import checked, pseudonym
from modelyard.registry.protocol import version_name
from modelyard.store import Store
from modelyard.store.audit import append_audit
from modelyard.store.tables import RequestLogRow


def summarise_user(store: Store, user: str, secret: bytes) -> UserSummary:
    """How many requests, contents, feedback and dataset items are stored about ``user``
    (UserNotFound when no logged request names it)."""
    t = RequestLogRow
    counts = select(func.count(t.id), func.count(t.content), func.min(t.at), func.max(t.at)).where(
        t.user == checked(user)
    )
    with store.session() as session:
        requests, with_content, first_at, last_at = session.execute(counts).one()
        if not requests:
            raise UserNotFound(user)
        feedback = session.scalar(
            select(func.count()).select_from(derived.feedback_of(user).subquery())
        )
        held = session.execute(derived.item_counts(user)).all()
    return UserSummary(
        user=user,
        pseudonym=pseudonym(secret, user),
        requests=requests,
        with_content=with_content,
        feedback=feedback or 0,
        dataset_items=sum(count for _, _, count in held),
        datasets=[version_name(name, number) for name, number, _ in held],
        first_at=first_at,
        last_at=last_at,
    )


def export_user(
    store: Store, open_content: Callable[[bytes], bytes], user: str, now: datetime | None = None
) -> UserExport:
    """Everything stored about ``user``, oldest request first (UserNotFound when no logged
    request names it). Content is decrypted after the transaction, off the database."""
    query = (
        select(RequestLogRow)
        .where(RequestLogRow.user == checked(user))
        .order_by(RequestLogRow.at, RequestLogRow.id)
    )
    with store.session() as session:
        rows = list(session.scalars(query))
        if not rows:
            raise UserNotFound(user)
        given: dict[str, list[FeedbackOut]] = {}
        for judgement in session.scalars(derived.feedback_of(user)):
            given.setdefault(judgement.request_id, []).append(feedback_out(judgement))
        items, corrections, answers = _derived(session, user)
    requests = []
    for row in rows:
        content, error = opened(row.content, open_content)
        requests.append(
            RequestDetail(
                **request_out(row).model_dump(),
                content=content,
                content_error=error,
                feedback=given.get(row.id, []),
            )
        )
    return UserExport(
        user=user,
        exported_at=now or datetime.now(UTC),
        requests=requests,
        dataset_items=items,
        review_corrections=corrections,
        label_answers=answers,
    )


def record_export(store: Store, export: UserExport, actor: str, secret: bytes) -> None:
    """Audit that ``actor`` read everything stored about a user (named by pseudonym)."""
    with store.session() as session:
        append_audit(
            session,
            actor=actor,
            action="user.export",
            target=pseudonym(secret, export.user),
            after={
                "requests": len(export.requests),
                "dataset_items": len(export.dataset_items),
            },
        )


def _derived(
    session: Session, user: str
) -> tuple[list[DatasetItemOut], list[ReviewCorrectionOut], list[LabelAnswerOut]]:
    """The dataset items made from the user's requests, and what reviews and teachers said
    of them."""
    items = [
        DatasetItemOut(
            dataset=version.name,
            version=version.version,
            index=item.item_index,
            request_id=item.request_id,
            split=item.split,
            data=dict(item.data),
            created_at=version.created_at,
        )
        for item, version in session.execute(derived.items_of(user))
    ]
    corrections = [
        ReviewCorrectionOut(
            review_id=review.id,
            dataset=review.dataset,
            version=review.dataset_version,
            index=item.item_index,
            decision=item.decision,
            correction=item.correction,
            decided_by=item.decided_by,
            decided_at=item.decided_at,
        )
        for item, review in session.execute(derived.review_items_of(user))
        if item.decision is not None or item.correction is not None
    ]
    answers = [
        LabelAnswerOut(
            run_id=run.id,
            dataset=run.dataset,
            version=run.dataset_version,
            index=item.item_index,
            label=item.label,
            answer=item.answer,
            teacher_request_id=item.request_id,
        )
        for item, run in session.execute(derived.label_items_of(user))
    ]
    return items, corrections, answers
