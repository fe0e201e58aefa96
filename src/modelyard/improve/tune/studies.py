"""Studies and their trials in the store: every trial is written as it starts and as it
ends, so nothing a study found lives only in memory."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, defer

from modelyard.evaluate.tasks import Item
from modelyard.improve.tune.errors import StudyNotFound
from modelyard.improve.tune.measure import Measured
from modelyard.improve.tune.partition import Split
from modelyard.improve.tune.protocol import (
    Confirmation,
    Importances,
    Partition,
    StudyOut,
    StudyRequest,
    StudyStatus,
    StudySummary,
    TrialOut,
    TrialSettings,
)
from modelyard.improve.tune.ranking import best_of, history_of
from modelyard.improve.tune.space import Objective
from modelyard.store import Store
from modelyard.store.tables import TuneStudyRow, TuneTrialRow, utcnow

# What a read of a study's results leaves in the database: its items (up to MAX_ITEMS).
WITHOUT_ITEMS = (defer(TuneStudyRow.search_items), defer(TuneStudyRow.holdout_items))


@dataclass(frozen=True)
class StudyState:
    """What a runner needs of a study: its request, objective, items and trials so far."""

    id: int
    request: StudyRequest
    objective: Objective
    search: list[Item]
    holdout: list[Item]
    trials: list[TrialOut]
    confirmation: Confirmation | None


class Studies:
    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def store(self) -> Store:
        return self._store

    def create(self, request: StudyRequest, split: Split, objective: Objective, actor: str) -> int:
        now = utcnow()
        with self._store.session() as session:
            row = TuneStudyRow(
                task=request.task.name,
                model=request.model,
                status="running",
                request=request.model_dump(mode="json"),
                objective=objective.key,
                direction=objective.direction,
                search_items=split.search,
                holdout_items=split.holdout,
                partition=split.out.model_dump(mode="json"),
                created_at=now,
                created_by=actor,
                updated_at=now,
            )
            session.add(row)
            session.flush()
            return row.id

    def state(self, study_id: int) -> StudyState:
        with self._store.session() as session:
            row = _study(session, study_id)
            confirmation = row.confirmation
            return StudyState(
                id=row.id,
                request=StudyRequest.model_validate(row.request),
                objective=Objective(row.objective, row.direction == "maximize"),
                search=list(row.search_items),
                holdout=list(row.holdout_items),
                trials=_trials(session, study_id),
                confirmation=Confirmation.model_validate(confirmation) if confirmation else None,
            )

    def status(self, study_id: int) -> StudyStatus:
        with self._store.session() as session:
            return _status(_study(session, study_id, items=False).status)

    def get(self, study_id: int) -> StudyOut:
        with self._store.session() as session:
            row = _study(session, study_id, items=False)
            return _study_out(row, _trials(session, study_id))

    def list_studies(self, limit: int = 100) -> list[StudySummary]:
        query = (
            select(TuneStudyRow)
            .options(*WITHOUT_ITEMS)
            .order_by(TuneStudyRow.id.desc())
            .limit(min(limit, 1000))
        )
        with self._store.session() as session:
            return [_summary(session, row) for row in session.scalars(query)]

    def set_status(self, study_id: int, status: StudyStatus, message: str | None = None) -> None:
        with self._store.session() as session:
            row = _study(session, study_id)
            row.status, row.message, row.updated_at = status, message, utcnow()
            row.finished_at = utcnow() if status in ("done", "failed") else None

    def start_trial(
        self,
        study_id: int,
        number: int,
        params: dict[str, Any],
        settings: TrialSettings,
        default: bool,
    ) -> None:
        with self._store.session() as session:
            session.add(
                TuneTrialRow(
                    study_id=study_id,
                    number=number,
                    state="running",
                    is_default=default,
                    params=params,
                    settings=settings.model_dump(mode="json"),
                    constraints={},
                    errors=0,
                    started_at=utcnow(),
                )
            )
            _study(session, study_id).updated_at = utcnow()

    def attach_run(self, study_id: int, number: int, run_id: int) -> None:
        with self._store.session() as session:
            _trial(session, study_id, number).run_id = run_id

    def finish_trial(self, study_id: int, number: int, measured: Measured) -> TrialOut:
        with self._store.session() as session:
            row = _trial(session, study_id, number)
            row.state = measured.state
            row.value, row.latency_ms, row.cost = measured.value, measured.latency_ms, measured.cost
            row.constraints, row.feasible = measured.constraints, measured.feasible
            row.errors, row.message = measured.errors, measured.message
            row.finished_at = utcnow()
            _study(session, study_id).updated_at = utcnow()
            session.flush()
            return _trial_out(row)

    def save_importances(self, study_id: int, importances: Importances) -> None:
        with self._store.session() as session:
            _study(session, study_id).importances = importances.model_dump(mode="json")

    def save_confirmation(self, study_id: int, confirmation: Confirmation) -> None:
        with self._store.session() as session:
            row = _study(session, study_id)
            row.confirmation, row.updated_at = confirmation.model_dump(mode="json"), utcnow()


def _study(session: Session, study_id: int, items: bool = True) -> TuneStudyRow:
    row = session.get(TuneStudyRow, study_id, options=() if items else WITHOUT_ITEMS)
    if row is None:
        raise StudyNotFound(study_id)
    return row


def _trial(session: Session, study_id: int, number: int) -> TuneTrialRow:
    row = session.scalar(
        select(TuneTrialRow).where(TuneTrialRow.study_id == study_id, TuneTrialRow.number == number)
    )
    if row is None:  # the runner writes a trial before it touches it again
        raise LookupError(f"study {study_id} has no trial {number}")
    return row


def _trials(session: Session, study_id: int) -> list[TrialOut]:
    rows = session.scalars(
        select(TuneTrialRow).where(TuneTrialRow.study_id == study_id).order_by(TuneTrialRow.number)
    )
    return [_trial_out(row) for row in rows]


def _status(value: str) -> StudyStatus:
    for status in ("running", "interrupted", "failed", "done"):
        if value == status:
            return status
    raise ValueError(f"a study's status is not {value!r}")


def _trial_out(row: TuneTrialRow) -> TrialOut:
    return TrialOut.model_validate(
        {
            "number": row.number,
            "state": row.state,
            "default": row.is_default,
            "params": dict(row.params),
            "settings": dict(row.settings),
            "value": row.value,
            "latency_ms": row.latency_ms,
            "cost": row.cost,
            "constraints": dict(row.constraints),
            "feasible": row.feasible,
            "errors": row.errors,
            "run_id": row.run_id,
            "message": row.message,
            "started_at": row.started_at,
            "finished_at": row.finished_at,
        }
    )


def _study_out(row: TuneStudyRow, trials: list[TrialOut]) -> StudyOut:
    higher = row.direction == "maximize"
    best = best_of(trials, higher)
    return StudyOut.model_validate(
        {
            **_common(row),
            "message": row.message,
            "partition": Partition.model_validate(row.partition),
            "best_trial": best.number if best else None,
            "best_value": best.value if best else None,
            "trials": trials,
            "history": history_of(trials, higher),
            "importances": row.importances,
            "confirmation": row.confirmation,
            "request": row.request,
            "updated_at": row.updated_at,
        }
    )


def _summary(session: Session, row: TuneStudyRow) -> StudySummary:
    trials = _trials(session, row.id)
    best = best_of(trials, row.direction == "maximize")
    confirmation = row.confirmation or {}
    return StudySummary.model_validate(
        {
            **_common(row),
            "trials_done": sum(t.state != "running" for t in trials),
            "best_trial": best.number if best else None,
            "best_value": best.value if best else None,
            "confirmed": confirmation.get("better"),
        }
    )


def _common(row: TuneStudyRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "task": row.task,
        "model": row.model,
        "status": row.status,
        "objective": row.objective,
        "direction": row.direction,
        "trials_planned": int(row.request.get("trials", 0)),
        "created_at": row.created_at,
        "created_by": row.created_by,
        "finished_at": row.finished_at,
    }
