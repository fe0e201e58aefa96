"""Exports and registered fine-tunes are records of the audit trail (append-only, never
purged): who made each and when, and what it holds. An export's id is its event's id, which
a fine-tune's lineage names."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select

from modelyard.improve.export.errors import ExportNotFound, FineTuneNotFound
from modelyard.improve.export.protocol import ExportOut, FineTuneOut, FineTuneOverview
from modelyard.registry.protocol import version_name
from modelyard.store import Store
from modelyard.store.audit import append_audit
from modelyard.store.tables import AuditEventRow

EXPORTED = "finetune.export"  # target: the dataset version (name@version)
REGISTERED = "finetune.register"  # target: the version registered (model@n)


def file_url(export_id: int) -> str:
    return f"/api/finetune/exports/{export_id}/file"


def record_export(store: Store, manifest: dict[str, Any], actor: str) -> ExportOut:
    """Record an export (its manifest, less what the record itself gives)."""
    with store.session() as session:
        row = append_audit(
            session, actor=actor, action=EXPORTED, target=manifest["dataset"], after=manifest
        )
        session.flush()
        return _export_out(row)


def get_export(store: Store, export_id: int) -> ExportOut:
    with store.session() as session:
        row = session.get(AuditEventRow, export_id)
        if row is None or row.action != EXPORTED:
            raise ExportNotFound(export_id)
        return _export_out(row)


def latest_export(store: Store, dataset: str, format: str, split: str | None) -> ExportOut | None:
    """The latest export of ``dataset`` (``name@version``) in ``format`` and ``split``."""
    query = (
        select(AuditEventRow)
        .where(AuditEventRow.action == EXPORTED, AuditEventRow.target == dataset)
        .order_by(AuditEventRow.id.desc())
    )
    with store.session() as session:
        for row in session.scalars(query):
            after = row.after or {}
            if after.get("format") == format and after.get("split") == split:
                return _export_out(row)
    return None


def list_exports(store: Store, limit: int = 100) -> list[ExportOut]:
    with store.session() as session:
        return [_export_out(row) for row in session.scalars(_newest(EXPORTED, limit))]


def record_finetune(store: Store, registered: dict[str, Any], actor: str) -> FineTuneOut:
    """Record a registered fine-tune: its version, artifact and lineage."""
    target = version_name(registered["model"], registered["version"])
    with store.session() as session:
        row = append_audit(session, actor=actor, action=REGISTERED, target=target, after=registered)
        session.flush()
        return _finetune_out(row)


def finetune_of(store: Store, model: str, version: int) -> FineTuneOut:
    """The fine-tune registered as ``model@version`` (FineTuneNotFound if none was)."""
    target = version_name(model, version)
    query = (
        select(AuditEventRow)
        .where(AuditEventRow.action == REGISTERED, AuditEventRow.target == target)
        .order_by(AuditEventRow.id.desc())
        .limit(1)
    )
    with store.session() as session:
        row = session.scalars(query).first()
        if row is None:
            raise FineTuneNotFound(target)
        return _finetune_out(row)


def list_finetunes(store: Store, limit: int = 100) -> list[FineTuneOut]:
    with store.session() as session:
        return [_finetune_out(row) for row in session.scalars(_newest(REGISTERED, limit))]


def overview(store: Store, limit: int = 100) -> FineTuneOverview:
    """Exports and registered fine-tunes, newest first: what ``GET /api/finetune`` returns."""
    return FineTuneOverview(
        exports=list_exports(store, limit), finetunes=list_finetunes(store, limit)
    )


def _newest(action: str, limit: int) -> Select[AuditEventRow]:
    return (
        select(AuditEventRow)
        .where(AuditEventRow.action == action)
        .order_by(AuditEventRow.id.desc())
        .limit(limit)
    )


def _export_out(row: AuditEventRow) -> ExportOut:
    return ExportOut(
        **(row.after or {}),
        id=row.id,
        file_url=file_url(row.id),
        created_at=row.at,
        created_by=row.actor,
    )


def _finetune_out(row: AuditEventRow) -> FineTuneOut:
    return FineTuneOut(**(row.after or {}), id=row.id, created_at=row.at, created_by=row.actor)
