"""Eval runs in the store: create, resume, record items, finish with metrics."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from modelyard.errors import ModelyardError
from modelyard.evaluate.protocol import EvalItemOut, EvalRunOut
from modelyard.evaluate.tasks import Item, Task
from modelyard.store import Store
from modelyard.store.tables import EvalItemRow, EvalRunRow, utcnow


class RunNotFound(ModelyardError, LookupError):
    status = 404
    code = "not_found"

    def __init__(self, run_id: int) -> None:
        super().__init__(f"no eval run {run_id}")


def dataset_digest(items: Sequence[Item]) -> str:
    """A content hash of the items: runs on equal digests compare item by item."""
    canonical = json.dumps(list(items), sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def twin_index(index: int) -> int:
    """Where item ``index``'s counterfactual twin is stored (negative: never an item's)."""
    return -(index + 1)


def sample(count: int, limit: int | None, seed: int) -> list[int]:
    """Which item indices a run uses: all, or ``limit`` of them drawn with ``seed``."""
    if limit is None or limit >= count:
        return list(range(count))
    return sorted(random.Random(seed).sample(range(count), limit))


@dataclass(frozen=True)
class ItemResult:
    item_index: int
    request_id: str | None
    version: str | None
    question: str
    prediction: str
    extracted: str
    reference: Any
    error: str | None
    latency_ms: float
    prompt_tokens: int
    completion_tokens: int


class EvalRuns:
    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def store(self) -> Store:
        return self._store

    def create(
        self,
        task: Task,
        digest: str,
        model: str,
        indices: list[int],
        seed: int,
        actor: str,
        overlap: dict[str, Any] | None = None,
        attributes: dict[int, dict[str, Any]] | None = None,
        twins: Sequence[int] = (),
    ) -> int:
        """A new run; ``overlap`` is what the train-versus-eval check found, ``attributes``
        the items' short fields (what a report slices by), ``twins`` the items asked with a
        counterfactual twin."""
        spec = {
            **task.model_dump(mode="json"),
            "indices": indices,
            "seed": seed,
            "train_overlap": overlap,
            "item_attributes": {str(i): a for i, a in (attributes or {}).items()},
            "twins": sorted(twins),
        }
        with self._store.session() as session:
            row = EvalRunRow(
                task=task.name,
                spec=spec,
                dataset_sha256=digest,
                model=model,
                versions=[],
                item_count=len(indices),
                status="running",
                metrics={},
                created_at=utcnow(),
                created_by=actor,
            )
            session.add(row)
            session.flush()
            return row.id

    def spec(self, run_id: int) -> dict[str, Any]:
        with self._store.session() as session:
            row = session.get(EvalRunRow, run_id)
            if row is None:
                raise RunNotFound(run_id)
            return dict(row.spec)

    def done_indices(self, run_id: int) -> set[int]:
        with self._store.session() as session:
            return set(
                session.scalars(select(EvalItemRow.item_index).where(EvalItemRow.run_id == run_id))
            )

    def add(self, run_id: int, results: Sequence[ItemResult]) -> None:
        with self._store.session() as session:
            session.add_all(EvalItemRow(run_id=run_id, **result.__dict__) for result in results)

    def items(self, run_id: int) -> list[EvalItemOut]:
        with self._store.session() as session:
            rows = session.scalars(
                select(EvalItemRow)
                .where(EvalItemRow.run_id == run_id, EvalItemRow.item_index >= 0)
                .order_by(EvalItemRow.item_index)
            )
            return [_item_out(row) for row in rows]

    def twins(self, run_id: int) -> dict[int, EvalItemOut]:
        """The answers of the counterfactual twins, by their original item's index."""
        with self._store.session() as session:
            rows = session.scalars(
                select(EvalItemRow).where(EvalItemRow.run_id == run_id, EvalItemRow.item_index < 0)
            )
            twins = (_item_out(row) for row in rows)
            return {
                twin_index(t.item_index): t.model_copy(
                    update={"item_index": twin_index(t.item_index)}
                )
                for t in twins
            }

    def finish(
        self,
        run_id: int,
        metrics: dict[str, Any],
        facts: dict[str, Any] | None = None,
        failed: bool = False,
    ) -> EvalRunOut:
        with self._store.session() as session:
            row = session.get_one(EvalRunRow, run_id)
            versions = session.scalars(
                select(EvalItemRow.version)
                .where(EvalItemRow.run_id == run_id, EvalItemRow.version.is_not(None))
                .distinct()
            )
            row.versions = sorted(v for v in versions if v)
            row.metrics = metrics
            row.spec = {**row.spec, "facts": facts or {}}
            row.status = "failed" if failed else "done"
            row.finished_at = utcnow()
            session.flush()
            return _run_out(session, row)

    def fail(self, run_id: int, error: str) -> EvalRunOut:
        """A run that stopped before its metrics: its answers so far are kept, and
        ``modelyard eval run TASK --resume RUN`` finishes it."""
        with self._store.session() as session:
            row = session.get_one(EvalRunRow, run_id)
            row.spec = {**row.spec, "error": error}
            row.status = "failed"
            row.finished_at = utcnow()
            session.flush()
            return _run_out(session, row)

    def get(self, run_id: int) -> EvalRunOut:
        with self._store.session() as session:
            row = session.get(EvalRunRow, run_id)
            if row is None:
                raise RunNotFound(run_id)
            return _run_out(session, row)

    def list_runs(self, task: str | None = None, limit: int = 100) -> list[EvalRunOut]:
        query = select(EvalRunRow).order_by(EvalRunRow.id.desc()).limit(min(limit, 1000))
        if task is not None:
            query = query.where(EvalRunRow.task == task)
        with self._store.session() as session:
            return [_run_out(session, row) for row in session.scalars(query)]


def _run_out(session: Any, row: EvalRunRow) -> EvalRunOut:
    done = session.scalar(
        select(func.count())
        .select_from(EvalItemRow)
        .where(EvalItemRow.run_id == row.id, EvalItemRow.item_index >= 0)
    )
    return EvalRunOut(
        id=row.id,
        task=row.task,
        dataset_sha256=row.dataset_sha256,
        model=row.model,
        versions=list(row.versions),
        item_count=row.item_count,
        done=int(done or 0),
        status=row.status,
        metrics=dict(row.metrics),
        created_at=row.created_at,
        finished_at=row.finished_at,
        created_by=row.created_by,
        error=row.spec.get("error") if row.status == "failed" else None,  # a resumed one is done
    )


def _item_out(row: EvalItemRow) -> EvalItemOut:
    return EvalItemOut(
        item_index=row.item_index,
        request_id=row.request_id,
        version=row.version,
        question=row.question,
        prediction=row.prediction,
        extracted=row.extracted,
        reference=row.reference,
        error=row.error,
        latency_ms=row.latency_ms,
        prompt_tokens=row.prompt_tokens,
        completion_tokens=row.completion_tokens,
    )
