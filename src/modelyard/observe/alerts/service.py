"""Alert rules and events in the store: audited rule changes, metric evaluation, and the
append-only record of firing and resolving."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from modelyard.observe.alerts.errors import AlertRuleExists, AlertRuleNotFound, InvalidAlertRule
from modelyard.observe.alerts.metrics import Measurement, measure
from modelyard.observe.alerts.protocol import (
    AlertEventOut,
    AlertRule,
    AlertRuleOut,
    Delivery,
    EventState,
)
from modelyard.store import Store
from modelyard.store.audit import append_audit
from modelyard.store.tables import AlertEventRow, AlertRuleRow, utcnow

MAX_EVENTS = 1000
# Columns of their own, so not repeated in the rule's JSON.
OWN_COLUMNS = frozenset({"name", "enabled"})


class AlertService:
    def __init__(self, store: Store) -> None:
        self._store = store

    # -- rules ------------------------------------------------------------------------

    def create(self, rule: AlertRule, actor: str) -> AlertRuleOut:
        now = utcnow()
        try:
            with self._store.session() as session:
                if _find(session, rule.name) is not None:
                    raise AlertRuleExists(rule.name)
                row = AlertRuleRow(
                    name=rule.name,
                    rule=_body(rule),
                    enabled=rule.enabled,
                    created_at=now,
                    updated_at=now,
                    updated_by=actor,
                )
                session.add(row)
                session.flush()
                out = _rule_out(row)
                append_audit(
                    session,
                    actor=actor,
                    action="alert.create",
                    target=rule.name,
                    after=_audited(out),
                )
                return out
        except IntegrityError:
            raise AlertRuleExists(rule.name) from None

    def list_rules(self, *, enabled: bool | None = None) -> list[AlertRuleOut]:
        query = select(AlertRuleRow).order_by(AlertRuleRow.name)
        if enabled is not None:
            query = query.where(AlertRuleRow.enabled == enabled)
        with self._store.session() as session:
            return [_rule_out(row) for row in session.scalars(query)]

    def get(self, name: str) -> AlertRuleOut:
        with self._store.session() as session:
            return _rule_out(_existing(session, name))

    def update(self, name: str, rule: AlertRule, actor: str) -> AlertRuleOut:
        """Replace rule ``name`` with ``rule`` (which may rename it)."""
        try:
            with self._store.session() as session:
                row = _existing(session, name)
                if rule.name != name and _find(session, rule.name) is not None:
                    raise AlertRuleExists(rule.name)
                before = _audited(_rule_out(row))
                row.name = rule.name
                row.rule = _body(rule)
                row.enabled = rule.enabled
                row.updated_at = utcnow()
                row.updated_by = actor
                session.flush()
                out = _rule_out(row)
                append_audit(
                    session,
                    actor=actor,
                    action="alert.update",
                    target=name,
                    before=before,
                    after=_audited(out),
                )
                return out
        except IntegrityError:
            raise AlertRuleExists(rule.name) from None

    def delete(self, name: str, actor: str) -> None:
        """Remove the rule and its events (the audit trail keeps the rule)."""
        with self._store.session() as session:
            row = _existing(session, name)
            session.execute(delete(AlertEventRow).where(AlertEventRow.rule_id == row.id))
            append_audit(
                session,
                actor=actor,
                action="alert.delete",
                target=name,
                before=_audited(_rule_out(row)),
            )
            session.delete(row)

    # -- evaluation -------------------------------------------------------------------

    def evaluate_metric(self, rule: AlertRule, now: datetime) -> Measurement:
        """``(value, samples)`` of ``rule``'s metric in the window ending at ``now``."""
        if now.tzinfo is None:
            raise InvalidAlertRule("evaluate_metric needs a timezone-aware time")
        with self._store.session() as session:
            return measure(session, rule, now)

    # -- events -----------------------------------------------------------------------

    def events(
        self,
        *,
        rule: str | None = None,
        state: EventState | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[AlertEventOut]:
        """Newest first."""
        e, r = AlertEventRow, AlertRuleRow
        query = (
            select(e, r.name)
            .join(r, r.id == e.rule_id)
            .order_by(e.id.desc())
            .limit(max(1, min(limit, MAX_EVENTS)))
        )
        if rule is not None:
            query = query.where(r.name == rule)
        if state is not None:
            query = query.where(e.state == state)
        if since is not None:
            query = query.where(e.at >= since)
        with self._store.session() as session:
            return [_event_out(row, name) for row, name in session.execute(query)]

    def latest_events(self) -> dict[int, AlertEventOut]:
        """The last event of every rule that has one, by rule id."""
        e, r = AlertEventRow, AlertRuleRow
        last = select(func.max(e.id)).group_by(e.rule_id).scalar_subquery()
        query = select(e, r.name).join(r, r.id == e.rule_id).where(e.id.in_(last))
        with self._store.session() as session:
            return {row.rule_id: _event_out(row, name) for row, name in session.execute(query)}

    def record_event(
        self,
        rule_id: int,
        state: EventState,
        *,
        at: datetime,
        value: float | None,
        details: dict[str, Any],
    ) -> AlertEventOut | None:
        """Append a firing or resolved event, unless the rule is gone or its last event
        already says ``state`` (another replica or an earlier run wrote it): then None.

        ``details.incident_id`` is the id of the firing event, on it and on its resolution.
        """
        e = AlertEventRow
        with self._store.session() as session:
            # The row lock orders concurrent evaluators (PostgreSQL; SQLite writes serially).
            rule = session.get(AlertRuleRow, rule_id, with_for_update=True)
            if rule is None:
                return None
            last = session.scalar(select(e).where(e.rule_id == rule_id).order_by(e.id.desc()))
            if (last.state if last is not None else "resolved") == state:
                return None
            row = AlertEventRow(
                rule_id=rule_id, state=state, at=at, value=value, details={}, deliveries=[]
            )
            session.add(row)
            session.flush()
            incident = row.id if state == "firing" or last is None else last.id
            row.details = {**details, "incident_id": incident}
            return _event_out(row, rule.name)

    def record_deliveries(self, event_id: int, deliveries: list[Delivery]) -> None:
        with self._store.session() as session:
            row = session.get(AlertEventRow, event_id)
            if row is not None:
                row.deliveries = [delivery.model_dump(mode="json") for delivery in deliveries]


def _find(session: Session, name: str) -> AlertRuleRow | None:
    return session.scalar(select(AlertRuleRow).where(AlertRuleRow.name == name))


def _existing(session: Session, name: str) -> AlertRuleRow:
    row = _find(session, name)
    if row is None:
        raise AlertRuleNotFound(name)
    return row


def _body(rule: AlertRule) -> dict[str, Any]:
    return rule.model_dump(mode="json", include=set(AlertRule.model_fields) - OWN_COLUMNS)


def _audited(rule: AlertRuleOut) -> dict[str, Any]:
    return rule.model_dump(mode="json", include=set(AlertRule.model_fields))


def _rule_out(row: AlertRuleRow) -> AlertRuleOut:
    return AlertRuleOut(
        id=row.id,
        name=row.name,
        enabled=row.enabled,
        created_at=row.created_at,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
        **row.rule,
    )


def _event_out(row: AlertEventRow, rule: str) -> AlertEventOut:
    return AlertEventOut(
        id=row.id,
        rule_id=row.rule_id,
        rule=rule,
        state=row.state,
        at=row.at,
        value=row.value,
        details=dict(row.details),
        deliveries=[Delivery.model_validate(item) for item in row.deliveries],
    )
