"""Erasing what is stored about one user, in one transaction, keeping every figure that
usage, cost, energy and release analyses add up.

- The user's request-log rows stay (tokens, cost, energy, latency, status); their stored
  content goes and their ``user`` becomes the user's pseudonym.
- Feedback on those requests stays (its value counts in quality figures); its comment goes.
- A dataset item made from one of their requests is emptied in place (``erased: true``,
  its split kept): a version's items are addressed by index (reviews, label runs, eval
  items), so an item is never removed. Each version changed gets a new ``sha256`` of
  what it now holds and an entry in its source's ``erasures`` (the indexes, the digest it
  had, the audit record), so no version changes silently.
- Review corrections and teacher answers on those items go, and so does the stored
  content of the teacher's requests; curation reports (and the audit records of their
  versions) no longer quote the user's requests.
- One audit record says who erased, when, the pseudonym (never the user id) and the counts.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from modelyard.observe.userdata import derived
from modelyard.observe.userdata.errors import InvalidUser, UserNotFound
from modelyard.observe.userdata.protocol import ErasureCounts, UserErasure
from modelyard.observe.userdata.pseudonym import checked, is_erased, pseudonym
from modelyard.registry.protocol import version_name
from modelyard.store import Store
from modelyard.store.audit import append_audit
from modelyard.store.tables import (
    AuditEventRow,
    DatasetItemRow,
    DatasetRow,
    FeedbackRow,
    RequestLogRow,
    ReviewRow,
)

ERASED = "[erased]"
KEPT_FIELDS = ("split",)  # an emptied item keeps its split: filters by split still add up
CURATED = "curated"
WORD = re.compile(r"\w+")  # a request id (req_<hex>), as a report's note quotes it


def erase_user(
    store: Store, user: str, actor: str, secret: bytes, now: datetime | None = None
) -> UserErasure:
    """Erase what is stored about ``user`` (UserNotFound when no logged request names
    it); ``secret`` keys the pseudonym that replaces the user id."""
    now = now or datetime.now(UTC)
    name = pseudonym(secret, checked(user))
    with store.session() as session:
        ids = set(session.scalars(derived.requests_of(user)))
        if not ids:
            raise UserNotFound(user)
        if is_erased(user):
            raise InvalidUser(f"'{user}' is the pseudonym of a user already erased")
        examples = _redact_reports(session, ids)
        answers, teacher = _erase_label_answers(session, user)
        corrections = _erase_corrections(session, user, now)
        emptied = _empty_items(session, user)
        comments = _rowcount(
            session,
            update(FeedbackRow)
            .where(FeedbackRow.request_id.in_(derived.requests_of(user)), FeedbackRow.comment != "")
            .values(comment=""),
        )
        t = RequestLogRow
        contents = _rowcount(
            session,
            update(t).where(t.user == user, t.content.is_not(None)).values(content=None),
        )
        requests = _rowcount(session, update(t).where(t.user == user).values(user=name))
        counts = ErasureCounts(
            requests=requests,
            contents=contents,
            feedback_comments=comments,
            dataset_items=sum(len(indexes) for indexes in emptied.values()),
            review_corrections=corrections,
            label_answers=answers,
            teacher_contents=teacher,
            report_examples=examples,
        )
        datasets = [version_name(v.name, v.version) for v in emptied]
        audit = append_audit(
            session,
            actor=actor,
            action="user.erase",
            target=name,
            after={"counts": counts.model_dump(), "datasets": datasets},
        )
        session.flush()
        for version, indexes in emptied.items():
            _note(session, version, indexes, audit.id, now)
    return UserErasure(
        pseudonym=name,
        erased_at=now,
        actor=actor,
        counts=counts,
        datasets=datasets,
        audit_id=audit.id,
    )


def _rowcount(session: Session, statement: Any) -> int:
    return int(session.execute(statement).rowcount or 0)  # type: ignore[attr-defined]


def _erase_label_answers(session: Session, user: str) -> tuple[int, int]:
    """Blank the teacher's answers on the user's items and erase the content of the
    requests that asked them; (answers blanked, contents erased)."""
    teacher = _rowcount(
        session,
        update(RequestLogRow)
        .where(
            RequestLogRow.id.in_(derived.teacher_requests_of(user)),
            RequestLogRow.content.is_not(None),
        )
        .values(content=None),
    )
    answers = 0
    for item, _ in session.execute(derived.label_items_of(user)).all():
        if item.answer:
            item.answer = ""
            answers += 1
    return answers, teacher


def _erase_corrections(session: Session, user: str, now: datetime) -> int:
    """Drop reviewers' corrections of the user's items (the decisions stay), in the items
    and in the undo history."""
    found = session.execute(derived.review_items_of(user)).all()
    reviews = sorted({review.id for _, review in found})
    if reviews:  # written first, as every change to a review is (its row lock)
        session.execute(update(ReviewRow).where(ReviewRow.id.in_(reviews)).values(updated_at=now))
    corrections = 0
    for item, _ in found:
        if item.correction is not None:
            item.correction = None
            corrections += 1
    for event in session.scalars(derived.review_events_of(user)).all():
        event.correction = None
        if event.before.get("correction") is not None:
            event.before = {**event.before, "correction": None}
    return corrections


def _empty_items(session: Session, user: str) -> dict[DatasetRow, list[int]]:
    """Empty the user's items in place; the indexes emptied, by version."""
    emptied: dict[DatasetRow, list[int]] = {}
    for item, version in session.execute(derived.items_of(user)).all():
        item.data = emptied_item(item.data)
        item.fingerprint = None  # a hash of the item's input text
        emptied.setdefault(version, []).append(item.item_index)
    return emptied


def emptied_item(data: dict[str, Any]) -> dict[str, Any]:
    """An erased item: its fields without their values (text empty, anything else null),
    so readers that expect a field still find one, its split, and ``erased: true``."""
    out: dict[str, Any] = {
        key: "" if isinstance(value, str) else None
        for key, value in data.items()
        if key not in KEPT_FIELDS
    }
    out.update({key: data[key] for key in KEPT_FIELDS if key in data})
    out["erased"] = True
    return out


def _note(
    session: Session, version: DatasetRow, indexes: list[int], audit_id: int, now: datetime
) -> None:
    """Record in the version what the erasure changed, and hash what it now holds."""
    session.flush()
    items = session.scalars(
        select(DatasetItemRow.data)
        .where(DatasetItemRow.dataset_id == version.id)
        .order_by(DatasetItemRow.item_index)
    )
    note = {
        "at": now.isoformat(),
        "why": "a user's data erased on request",
        "indexes": sorted(indexes),
        "previous_sha256": version.sha256,
        "audit_id": audit_id,
    }
    version.sha256 = items_sha256(items)
    version.source = {**version.source, "erasures": [*version.source.get("erasures", []), note]}


def items_sha256(items: Iterable[dict[str, Any]]) -> str:
    """A version's ``sha256``: ``evaluate.runs.dataset_digest`` of its items, written as
    ``evaluate.datasets`` writes a version (a test holds the three equal)."""
    digest = hashlib.sha256(b"[")
    for index, item in enumerate(items):
        canonical = json.dumps(item, sort_keys=True, ensure_ascii=False, default=str)
        digest.update((", " if index else "").encode() + canonical.encode("utf-8"))
    digest.update(b"]")
    return digest.hexdigest()


def _redact_reports(session: Session, ids: set[str]) -> int:
    """Replace the examples of curation reports that quote the user's requests, in the
    curated versions and in the audit records of their creation; how many were replaced
    in the versions."""
    replaced = 0
    kind = DatasetRow.source["kind"].as_string()
    for row in session.scalars(select(DatasetRow).where(kind == CURATED)):
        source, count = _redacted(row.source, ids)
        if count:
            row.source = source
            replaced += count
    created = AuditEventRow.after["source"]["kind"].as_string()
    query = select(AuditEventRow).where(
        AuditEventRow.action == "dataset.create", created == CURATED
    )
    for event in session.scalars(query):
        after = event.after or {}
        source, count = _redacted(after.get("source") or {}, ids)
        if count:
            event.after = {**after, "source": source}
    return replaced


def _redacted(source: dict[str, Any], ids: set[str]) -> tuple[dict[str, Any], int]:
    """``source`` with its report's examples that quote one of ``ids`` replaced, and how
    many were (the examples of a duplicate name the request it was kept as in the note,
    with that request's text)."""
    report = source.get("report")
    if not isinstance(report, dict):
        return source, 0
    count = 0
    steps: list[Any] = []
    for step in report.get("steps") or []:
        if not isinstance(step, dict):
            steps.append(step)
            continue
        examples = []
        for example in step.get("examples") or []:
            if isinstance(example, dict) and _quotes(example, ids):
                example = {**example, "text": ERASED, "note": ERASED}
                count += 1
            examples.append(example)
        steps.append({**step, "examples": examples})
    if not count:
        return source, 0
    return {**source, "report": {**report, "steps": steps}}, count


def _quotes(example: dict[str, Any], ids: set[str]) -> bool:
    named = {str(i) for i in example.get("request_ids") or []}
    named.update(WORD.findall(str(example.get("note") or "")))
    return not named.isdisjoint(ids)
