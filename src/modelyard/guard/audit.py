"""Reading the audit trail (rows are appended by the services that act)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from modelyard.guard.protocol import AuditEvent
from modelyard.store import Store
from modelyard.store.tables import AuditEventRow

MAX_EVENTS = 1000


def audit_events(
    store: Store,
    *,
    action: str | None = None,
    target: str | None = None,
    actor: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[AuditEvent]:
    """Newest first. ``action`` matches a prefix (``key`` finds key.create, key.revoke…)."""
    t = AuditEventRow
    query = select(t).order_by(t.id.desc()).limit(min(limit, MAX_EVENTS))
    if action:
        query = query.where(t.action.startswith(action, autoescape=True))
    if target:
        query = query.where(t.target == target)
    if actor:
        query = query.where(t.actor == actor)
    if since:
        query = query.where(t.at >= since)
    with store.session() as session:
        return [
            AuditEvent(
                id=row.id,
                at=row.at,
                actor=row.actor,
                action=row.action,
                target=row.target,
                before=row.before,
                after=row.after,
            )
            for row in session.scalars(query)
        ]
