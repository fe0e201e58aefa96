"""The stored history of rollouts and experiments: events and measurements."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelyard.release.protocol import MeasurementOut, ReleaseEventOut
from modelyard.store import Store
from modelyard.store.tables import ReleaseEventRow, ReleaseMeasurementRow, utcnow


def add_event(
    session: Session,
    subject: str,
    subject_id: int,
    kind: str,
    actor: str,
    message: str,
    data: dict[str, Any] | None = None,
) -> None:
    session.add(
        ReleaseEventRow(
            subject=subject,
            subject_id=subject_id,
            at=utcnow(),
            kind=kind,
            actor=actor,
            message=message,
            data=data or {},
        )
    )


def events_of(store: Store, subject: str, subject_id: int) -> list[ReleaseEventOut]:
    e = ReleaseEventRow
    with store.session() as session:
        rows = session.scalars(
            select(e).where(e.subject == subject, e.subject_id == subject_id).order_by(e.id)
        )
        return [
            ReleaseEventOut(
                id=r.id, at=r.at, kind=r.kind, actor=r.actor, message=r.message, data=r.data
            )
            for r in rows
        ]


def measurements_of(store: Store, subject: str, subject_id: int) -> list[MeasurementOut]:
    m = ReleaseMeasurementRow
    with store.session() as session:
        rows = session.scalars(
            select(m).where(m.subject == subject, m.subject_id == subject_id).order_by(m.id)
        )
        return [
            MeasurementOut(
                id=r.id,
                step=r.step,
                seq=r.seq,
                at=r.at,
                outcome=r.outcome,
                data=r.data,
            )
            for r in rows
        ]
