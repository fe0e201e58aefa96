"""Compressions in the store: what was asked, how far it got, the table it made."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import select

from modelyard.improve.compress.errors import CompressionNotFound
from modelyard.improve.compress.protocol import (
    Axis,
    CompressionOut,
    CompressRequest,
    CompressStatus,
    Stage,
    VariantOut,
)
from modelyard.improve.compress.table import axes
from modelyard.store import Store
from modelyard.store.tables import CompressionRow, utcnow


class Compressions:
    def __init__(self, store: Store) -> None:
        self._store = store

    def create(self, request: CompressRequest, engine_kind: str, actor: str) -> CompressionOut:
        with self._store.session() as session:
            row = CompressionRow(
                model=request.model,
                version=request.version,
                engine_kind=engine_kind,
                request=request.model_dump(mode="json"),
                status="running",
                stage="queued",
                variants=[],
                created_by=actor,
            )
            session.add(row)
            session.flush()
            return compression_out(row)

    def update(
        self, compression_id: int, variants: list[VariantOut] | None = None, **fields: Any
    ) -> CompressionOut:
        """Set ``fields`` (stage, status, message) and the rows; an end status stamps
        ``finished_at``."""
        with self._store.session() as session:
            row = _row(session, compression_id)
            for name, value in fields.items():
                setattr(row, name, value)
            if variants is not None:
                row.variants = [variant.model_dump(mode="json") for variant in variants]
            if fields.get("status") in ("done", "failed"):
                row.finished_at = utcnow()
            session.flush()
            return compression_out(row)

    def stopped(self, compression_id: int, message: str) -> None:
        """Mark a compression that was still running as failed."""
        with self._store.session() as session:
            row = _row(session, compression_id)
            if row.status == "running":
                row.status, row.stage, row.message = "failed", "failed", message
                row.finished_at = utcnow()

    def get(self, compression_id: int) -> CompressionOut:
        with self._store.session() as session:
            return compression_out(_row(session, compression_id))

    def list_compressions(self, model: str | None = None, limit: int = 100) -> list[CompressionOut]:
        query = select(CompressionRow).order_by(CompressionRow.id.desc()).limit(limit)
        if model is not None:
            query = query.where(CompressionRow.model == model)
        with self._store.session() as session:
            return [compression_out(row) for row in session.scalars(query)]


def _row(session: Any, compression_id: int) -> CompressionRow:
    row = session.get(CompressionRow, compression_id)
    if row is None:
        raise CompressionNotFound(compression_id)
    return cast(CompressionRow, row)


def compression_out(row: CompressionRow) -> CompressionOut:
    variants = [VariantOut.model_validate(variant) for variant in row.variants]
    measured = [variant for variant in variants if variant.measurements]
    return CompressionOut(
        id=row.id,
        model=row.model,
        version=row.version,
        engine_kind=row.engine_kind,
        status=cast(CompressStatus, row.status),
        stage=cast(Stage, row.stage),
        request=CompressRequest.model_validate(row.request),
        variants=variants,
        axes=[
            Axis(role=role, metric=metric, greater_is_better=better)
            for role, metric, better in (axes(row.engine_kind, measured) if measured else [])
        ],
        message=row.message,
        created_at=row.created_at,
        created_by=row.created_by,
        finished_at=row.finished_at,
    )
