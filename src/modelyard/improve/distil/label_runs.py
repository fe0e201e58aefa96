"""Labelling runs in the store: one row per run, one per item the teacher answered (or
failed on); a run resumes from the items it holds."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from modelyard.improve.distil.errors import LabelRunActive, LabelRunNotFound
from modelyard.improve.distil.protocol import (
    LabelCounts,
    LabelExample,
    LabelRequest,
    LabelRunDetail,
    LabelRunOut,
    LabelStatus,
)
from modelyard.registry.protocol import version_name
from modelyard.store import Store
from modelyard.store.tables import LabelItemRow, LabelRunRow, utcnow

# A run whose heartbeat is older than this is no longer being labelled (its process died).
STALE_AFTER = timedelta(seconds=60)
EXAMPLES = 10


@dataclass(frozen=True)
class LabelAnswer:
    """What the teacher made of one item."""

    item_index: int
    request_id: str | None
    version: str | None
    answer: str
    label: str | None
    error: str | None
    latency_ms: float
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class RunPlan:
    """What a run labels, as its job reads it back."""

    id: int
    dataset: str
    dataset_version: int
    teacher: str
    request: LabelRequest
    labels: tuple[str, ...]
    input_field: str


def labelling_key(dataset: str, version: int, request: LabelRequest) -> str:
    what = {"dataset": version_name(dataset, version), **request.identity()}
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()


class LabelRuns:
    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def store(self) -> Store:
        return self._store

    def create(
        self,
        dataset: str,
        version: int,
        request: LabelRequest,
        labels: Sequence[str],
        input_field: str,
        item_count: int,
        actor: str,
    ) -> int:
        spec = {
            "request": request.model_dump(mode="json"),
            "labels": list(labels),
            "input_field": input_field,
        }
        with self._store.session() as session:
            row = LabelRunRow(
                dataset=dataset,
                dataset_version=version,
                teacher=request.teacher,
                spec=spec,
                key=labelling_key(dataset, version, request),
                status="running",
                item_count=item_count,
                counts={},
                versions=[],
                created_by=actor,
            )
            session.add(row)
            session.flush()
            return row.id

    def latest_of(self, key: str) -> int | None:
        """The newest run of a labelling, if any."""
        query = select(LabelRunRow.id).where(LabelRunRow.key == key)
        with self._store.session() as session:
            return session.scalar(query.order_by(LabelRunRow.id.desc()).limit(1))

    def claim(
        self, run_id: int, request: LabelRequest | None = None, now: datetime | None = None
    ) -> None:
        """Mark the run as being labelled from now on (with ``request``'s concurrency and
        output name); LabelRunActive when another job is at it (its heartbeat is fresh).
        Failed items are forgotten: they are asked again."""
        now = now or utcnow()
        with self._store.session() as session:
            row = _row(session, run_id)
            if row.status == "running" and now - row.heartbeat_at < STALE_AFTER:
                ago = (now - row.heartbeat_at).total_seconds()
                raise LabelRunActive(
                    f"label run {run_id} is being labelled (its last sign of life {ago:.0f} s "
                    "ago); wait for it, or resume it once it stopped"
                )
            row.status, row.heartbeat_at, row.finished_at, row.message = "running", now, None, None
            if request is not None:
                row.spec = {**row.spec, "request": request.model_dump(mode="json")}
            session.execute(
                delete(LabelItemRow).where(
                    LabelItemRow.run_id == run_id, LabelItemRow.error.is_not(None)
                )
            )

    def plan(self, run_id: int) -> RunPlan:
        with self._store.session() as session:
            row = _row(session, run_id)
            return RunPlan(
                id=row.id,
                dataset=row.dataset,
                dataset_version=row.dataset_version,
                teacher=row.teacher,
                request=LabelRequest.model_validate(row.spec["request"]),
                labels=tuple(row.spec["labels"]),
                input_field=str(row.spec["input_field"]),
            )

    def done_indices(self, run_id: int) -> set[int]:
        query = select(LabelItemRow.item_index).where(LabelItemRow.run_id == run_id)
        with self._store.session() as session:
            return set(session.scalars(query))

    def add(self, run_id: int, answers: Sequence[LabelAnswer]) -> None:
        """Record answers and show the run is alive."""
        with self._store.session() as session:
            session.add_all(LabelItemRow(run_id=run_id, **a.__dict__) for a in answers)
            _row(session, run_id).heartbeat_at = utcnow()

    def beat(self, run_id: int) -> None:
        with self._store.session() as session:
            _row(session, run_id).heartbeat_at = utcnow()

    def answers(self, run_id: int) -> list[LabelAnswer]:
        query = (
            select(LabelItemRow)
            .where(LabelItemRow.run_id == run_id)
            .order_by(LabelItemRow.item_index)
        )
        with self._store.session() as session:
            return [_answer(row) for row in session.scalars(query)]

    def end(
        self,
        run_id: int,
        status: str,
        message: str | None = None,
        result: tuple[str, int] | None = None,
    ) -> LabelRunOut:
        """Record how the run ended (``stopped``, ``failed`` or ``done``) and its counts."""
        with self._store.session() as session:
            row = _row(session, run_id)
            row.status, row.message = status, message
            row.finished_at = utcnow()
            row.counts = _counts(session, row).model_dump()
            row.versions = _versions(session, run_id)
            if result is not None:
                row.result_dataset, row.result_version = result
            session.flush()
            return _out(session, row)

    def get(self, run_id: int) -> LabelRunOut:
        with self._store.session() as session:
            return _out(session, _row(session, run_id))

    def detail(self, run_id: int) -> LabelRunDetail:
        """The run with its label distribution and examples of what was left out (their
        texts empty: ``labelling.run_detail`` reads them)."""
        with self._store.session() as session:
            row = _row(session, run_id)
            out = _out(session, row)
            labels = session.execute(
                select(LabelItemRow.label, func.count())
                .where(LabelItemRow.run_id == run_id, LabelItemRow.label.is_not(None))
                .group_by(LabelItemRow.label)
            )
            distribution = {str(label): int(n) for label, n in labels}
            unmapped = _examples(session, run_id, failed=False)
            failed = _examples(session, run_id, failed=True)
        return LabelRunDetail(
            **out.model_dump(),
            distribution=dict(sorted(distribution.items(), key=lambda kv: (-kv[1], kv[0]))),
            unmapped_examples=unmapped,
            failed_examples=failed,
        )

    def list_runs(self, limit: int = 100) -> list[LabelRunOut]:
        query = select(LabelRunRow).order_by(LabelRunRow.id.desc()).limit(limit)
        with self._store.session() as session:
            return [_out(session, row) for row in session.scalars(query)]


def _row(session: Session, run_id: int) -> LabelRunRow:
    row = session.get(LabelRunRow, run_id)
    if row is None:
        raise LabelRunNotFound(run_id)
    return row


def _answer(row: LabelItemRow) -> LabelAnswer:
    return LabelAnswer(
        item_index=row.item_index,
        request_id=row.request_id,
        version=row.version,
        answer=row.answer,
        label=row.label,
        error=row.error,
        latency_ms=row.latency_ms,
        prompt_tokens=row.prompt_tokens,
        completion_tokens=row.completion_tokens,
    )


def _counts(session: Session, row: LabelRunRow) -> LabelCounts:
    done, labelled, failed = session.execute(
        select(func.count(), func.count(LabelItemRow.label), func.count(LabelItemRow.error)).where(
            LabelItemRow.run_id == row.id
        )
    ).one()
    return LabelCounts(
        items=row.item_count,
        done=int(done),
        labelled=int(labelled),
        unmapped=int(done) - int(labelled) - int(failed),
        failed=int(failed),
    )


def _versions(session: Session, run_id: int) -> list[str]:
    query = (
        select(LabelItemRow.version)
        .where(LabelItemRow.run_id == run_id, LabelItemRow.version.is_not(None))
        .distinct()
    )
    return sorted(str(v) for v in session.scalars(query) if v)


def _examples(session: Session, run_id: int, *, failed: bool) -> list[LabelExample]:
    which = LabelItemRow.error.is_not(None) if failed else LabelItemRow.label.is_(None)
    query = select(LabelItemRow).where(LabelItemRow.run_id == run_id, which)
    if not failed:
        query = query.where(LabelItemRow.error.is_(None))
    rows = session.scalars(query.order_by(LabelItemRow.item_index).limit(EXAMPLES))
    return [
        LabelExample(
            item_index=r.item_index,
            request_id=r.request_id,
            text="",
            answer=r.answer,
            error=r.error,
        )
        for r in rows
    ]


def _out(session: Session, row: LabelRunRow) -> LabelRunOut:
    result = (
        version_name(row.result_dataset, row.result_version)
        if row.result_dataset is not None and row.result_version is not None
        else None
    )
    return LabelRunOut(
        id=row.id,
        dataset=version_name(row.dataset, row.dataset_version),
        teacher=row.teacher,
        status=cast(LabelStatus, row.status),
        request=LabelRequest.model_validate(row.spec["request"]),
        labels=list(row.spec["labels"]),
        input_field=str(row.spec["input_field"]),
        counts=_counts(session, row),
        versions=list(row.versions) or _versions(session, row.id),
        result=result,
        message=row.message,
        created_at=row.created_at,
        created_by=row.created_by,
        heartbeat_at=row.heartbeat_at,
        finished_at=row.finished_at,
    )
