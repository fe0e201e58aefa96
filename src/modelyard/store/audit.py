"""Appending to the audit trail inside the caller's transaction, so an action and its
record commit (or roll back) together."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from modelyard.store.tables import AuditEventRow, utcnow


def append_audit(
    session: Session,
    *,
    actor: str,
    action: str,
    target: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEventRow:
    row = AuditEventRow(
        at=utcnow(), actor=actor, action=action, target=target, before=before, after=after
    )
    session.add(row)
    return row
