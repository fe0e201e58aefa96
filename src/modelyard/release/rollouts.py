"""Rollouts: a candidate version takes a growing share of one route's traffic, step by
step, and is promoted (its alias moves to it) or aborted (its weight goes to 0).

All state is in the store (the rollout row, its measurements and events), so a restarted
server takes a rollout up where it stood: timers run from stored times, an analysis counts
the measurements stored since its step began. The API, the CLI and the release controller
call these methods; each state change checks the row's ``revision`` so two replicas (or a
person and the controller) cannot both act on the same state.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from modelyard.evaluate.runs import EvalRuns
from modelyard.observe.alerts import AlertRule, AlertRuleExists, AlertService
from modelyard.registry import Registry
from modelyard.release.analysis import Measurement, measure, run_state
from modelyard.release.errors import ReleaseError
from modelyard.release.events import add_event, measurements_of
from modelyard.release.gate_step import GateVerdict, check_gate
from modelyard.release.observations import observe
from modelyard.release.protocol import Outcome, RolloutCreate, RolloutOut, Step
from modelyard.release.subjects import ReleaseSubjects, stored_spec
from modelyard.routing.policies import TrafficPolicies
from modelyard.routing.protocol import Candidate, TrafficPolicy
from modelyard.store import Store
from modelyard.store.tables import (
    ExperimentRow,
    ReleaseMeasurementRow,
    RolloutRow,
    utcnow,
)

CONTROLLER = "release-controller"
ACTIVE = ("running", "paused")
BASELINE, CANDIDATE = "stable", "candidate"


class Rollouts(ReleaseSubjects[int, RolloutRow, RolloutOut]):
    subject = "rollout"

    def __init__(
        self,
        store: Store,
        registry: Registry,
        policies: TrafficPolicies,
        alerts: AlertService,
    ) -> None:
        super().__init__(store, registry, policies)
        self._alerts = alerts
        self._runs = EvalRuns(store)

    # -- reading --------------------------------------------------------------------------

    def list_rollouts(self, model: str | None = None, limit: int = 100) -> list[RolloutOut]:
        return self.recent(model, limit)

    def active_ids(self) -> list[int]:
        with self._store.session() as session:
            query = select(RolloutRow.id).where(RolloutRow.status == "running")
            return list(session.scalars(query.order_by(RolloutRow.id)))

    def _table(self) -> type[RolloutRow]:
        return RolloutRow

    def _row(self, session: Session, key: int) -> RolloutRow:
        row = session.get(RolloutRow, key)
        if row is None:
            raise ReleaseError(f"rollout {key} does not exist", status=404, code="not_found")
        return row

    def _out(self, row: RolloutRow) -> RolloutOut:
        return _out(row)

    # -- starting -------------------------------------------------------------------------

    def start(self, spec: RolloutCreate, actor: str) -> RolloutOut:
        baseline, prior = self._baseline(spec)
        now = utcnow()
        with self._store.session() as session:
            _check_no_other(session, spec.model)
            row = RolloutRow(
                model=spec.model,
                alias=spec.alias,
                baseline=baseline,
                candidate=spec.candidate,
                spec=stored_spec(spec, prior),
                status="running",
                step=0,
                step_started_at=now,
                weight=0.0,
                weight_since=now,
                message="started",
                started_at=now,
                created_by=actor,
                revision=0,
            )
            session.add(row)
            session.flush()
            rollout_id = row.id
            add_event(
                session,
                "rollout",
                rollout_id,
                "started",
                actor,
                f"rolling out {spec.model}@{spec.candidate} against {spec.model}@{baseline}"
                + (f": {spec.reason}" if spec.reason else ""),
            )
            # In the same transaction: the controller never sees a rollout without its policy.
            self._set_policy(
                rollout_id, spec.model, spec.candidate, 0.0, actor, "rollout started", session
            )
        self._ensure_alert(spec, actor)
        return self.get(rollout_id)

    def _baseline(self, spec: RolloutCreate) -> tuple[int, TrafficPolicy | None]:
        """The version the alias serves now, and the route's policy, if ``spec`` may start."""
        aliases = self._aliases(spec.model, [spec.candidate])
        if spec.alias not in aliases:
            raise ReleaseError(
                f"model '{spec.model}' has no alias '{spec.alias}' to roll out against"
            )
        baseline = aliases[spec.alias]
        if baseline == spec.candidate:
            raise ReleaseError(
                f"'{spec.model}:{spec.alias}' already points to version {spec.candidate}"
            )
        prior = self._free_policy(spec.model)
        if prior is not None and prior.stable_alias != spec.alias:
            raise ReleaseError(
                f"route '{spec.model}' serves its stable variant from alias "
                f"'{prior.stable_alias}', not '{spec.alias}'"
            )
        return baseline, prior

    # -- what people do -------------------------------------------------------------------

    def promote(self, rollout_id: int, actor: str, reason: str = "") -> RolloutOut:
        """Promote now, skipping the remaining steps, but never past a required eval gate:
        every gate step must pass first."""
        rollout = self.get(rollout_id)
        _check_active(rollout)
        for index, step in enumerate(rollout.steps):
            if step.gate is None:
                continue
            verdict = self._gate(rollout, step)
            if verdict.state != "passed":
                raise ReleaseError(
                    f"step {index} requires an eval gate: {verdict.message}",
                    status=409,
                    code="gate_not_passed",
                )
        return self._finish(rollout, "promoted", actor, reason or "promoted by hand")

    def abort(self, rollout_id: int, actor: str, reason: str = "") -> RolloutOut:
        rollout = self.get(rollout_id)
        _check_active(rollout)
        return self._finish(rollout, "aborted", actor, reason or "aborted by hand")

    def resume(self, rollout_id: int, actor: str, reason: str = "") -> RolloutOut:
        """Continue a paused rollout: a pause step ends, an inconclusive analysis starts over."""
        rollout = self.get(rollout_id)
        if rollout.status != "paused":
            raise ReleaseError(
                f"rollout {rollout_id} is {rollout.status}, not paused", status=409, code="conflict"
            )
        step = rollout.steps[rollout.step] if rollout.step < len(rollout.steps) else None
        with self._store.session() as session:
            row = _locked(session, rollout_id, rollout)
            row.status = "running"
            if step is not None and step.pause is not None:
                row.step += 1
            row.step_started_at = utcnow()
            row.message = f"resumed by {actor}" + (f": {reason}" if reason else "")
            add_event(session, "rollout", rollout_id, "resumed", actor, row.message)
        return self.get(rollout_id)

    # -- what the controller does ---------------------------------------------------------

    def advance(self, rollout_id: int, now: datetime | None = None) -> RolloutOut:
        """Take a running rollout as far as it can go now (several steps when they are
        instant); never waits."""
        now = now or utcnow()
        for _ in range(64):  # bounded: at most one pass per step
            rollout = self.get(rollout_id)
            if rollout.status != "running":
                return rollout
            if rollout.step >= len(rollout.steps):
                return self._finish(rollout, "promoted", CONTROLLER, "every step passed")
            step = rollout.steps[rollout.step]
            if not self._advance_step(rollout, step, now):
                return self.get(rollout_id)
        return self.get(rollout_id)

    def _advance_step(self, rollout: RolloutOut, step: Step, now: datetime) -> bool:
        """Work on the current step; True when it finished and the next may start now."""
        if step.set_weight is not None:
            self._set_policy(
                rollout.id,
                rollout.model,
                rollout.candidate,
                step.set_weight,
                CONTROLLER,
                f"step {rollout.step}",
            )
            self._next(rollout, f"weight {step.set_weight:g}%", weight=step.set_weight, now=now)
            return True
        if step.pause is not None:
            if step.pause.duration_s is None:
                self._pause(rollout, "waiting at a pause step: `modelyard rollout resume`")
                return False
            if now - rollout.step_started_at < timedelta(seconds=step.pause.duration_s):
                return False
            self._next(rollout, f"paused {step.pause.duration_s:g} s", now=now)
            return True
        if step.gate is not None:
            verdict = self._gate(rollout, step)
            if verdict.state == "waiting":
                self._note(rollout, verdict.message)
                return False
            if verdict.state == "failed":
                self._finish(rollout, "aborted", CONTROLLER, verdict.message, verdict.checks)
                return False
            self._next(rollout, verdict.message, now=now)
            return True
        assert step.analysis is not None
        return self._analyse(rollout, step, now)

    def _analyse(self, rollout: RolloutOut, step: Step, now: datetime) -> bool:
        spec = step.analysis
        assert spec is not None
        stored = [
            m
            for m in measurements_of(self._store, "rollout", rollout.id)
            if m.step == rollout.step and m.at >= rollout.step_started_at
        ]
        last = stored[-1].at if stored else rollout.step_started_at
        if now - last < timedelta(seconds=spec.interval_s):
            return False
        if rollout.weight <= 0 or rollout.weight >= 100:
            self._pause(rollout, "an analysis needs both variants to get traffic (weight 0-100%)")
            return False
        observations = observe(
            self._store,
            rollout.model,
            (BASELINE, CANDIDATE),
            rollout.weight_since,
            now,
            [
                m.feedback
                for m in spec.metrics
                if m.name in ("positive_feedback_rate", "judge_score")
            ],
        )
        result = measure(
            spec,
            observations,
            baseline=BASELINE,
            candidate=CANDIDATE,
            weights=(100 - rollout.weight, rollout.weight),
            earlier=[m.data for m in stored],
        )
        outcomes: list[Outcome] = [m.outcome for m in stored] + [result.outcome]
        self._record(rollout, result, now)
        state = run_state(outcomes, spec, spent=result.final)
        if result.srm["mismatch"]:
            self._finish(rollout, "aborted", CONTROLLER, _mismatch(result.srm))
            return False
        if state == "failed":
            failed = "; ".join(
                f"{m.name}: {m.reason}" for m in result.metrics if m.outcome == "Failed"
            )
            self._finish(rollout, "aborted", CONTROLLER, f"analysis failed: {failed}")
            return False
        if state == "inconclusive":
            self._pause(rollout, "analysis inconclusive: " + _summary(result))
            return False
        if state == "successful":
            self._next(rollout, "analysis successful: " + _summary(result), now=now)
            return True
        self._note(rollout, f"measurement {len(outcomes)}: {result.outcome}: {_summary(result)}")
        return False

    # -- transitions ----------------------------------------------------------------------

    def _next(
        self, rollout: RolloutOut, message: str, *, now: datetime, weight: float | None = None
    ) -> None:
        with self._store.session() as session:
            row = _locked(session, rollout.id, rollout)
            row.step += 1
            row.step_started_at = now
            if weight is not None and weight != row.weight:
                row.weight = weight
                row.weight_since = now
            row.message = message
            add_event(
                session,
                "rollout",
                rollout.id,
                "step",
                CONTROLLER,
                message,
                {"step": rollout.step, "weight": row.weight},
            )

    def _pause(self, rollout: RolloutOut, message: str) -> None:
        with self._store.session() as session:
            row = _locked(session, rollout.id, rollout)
            row.status = "paused"
            row.message = message
            add_event(session, "rollout", rollout.id, "paused", CONTROLLER, message)

    def _note(self, rollout: RolloutOut, message: str) -> None:
        with self._store.session() as session:
            row = _locked(session, rollout.id, rollout)
            row.message = message

    def _record(self, rollout: RolloutOut, result: Measurement, now: datetime) -> None:
        with self._store.session() as session:
            count = session.scalar(
                select(func.count())
                .select_from(ReleaseMeasurementRow)
                .where(
                    ReleaseMeasurementRow.subject == "rollout",
                    ReleaseMeasurementRow.subject_id == rollout.id,
                    ReleaseMeasurementRow.step == rollout.step,
                )
            )
            session.add(
                ReleaseMeasurementRow(
                    subject="rollout",
                    subject_id=rollout.id,
                    step=rollout.step,
                    seq=int(count or 0) + 1,
                    at=now,
                    outcome=result.outcome,
                    data={**result.as_json(), "weight": rollout.weight},
                )
            )

    def _finish(
        self,
        rollout: RolloutOut,
        status: str,
        actor: str,
        reason: str,
        checks: list[dict[str, object]] | None = None,
    ) -> RolloutOut:
        """Promote (move the alias to the candidate) or abort (candidate weight to 0);
        either way the route's policy goes back to what it was before the rollout.

        The rollout is claimed first (its revision moves on, or a 409 says someone acted
        meanwhile), so the alias and the policy are only touched by whoever claimed it."""
        with self._store.session() as session:
            _locked(session, rollout.id, rollout)
        if status == "promoted":
            self._registry.set_alias(
                rollout.model,
                rollout.alias,
                rollout.candidate,
                actor=actor,
                reason=f"rollout {rollout.id} promoted: {reason}",
            )
        self._restore_policy(rollout, actor, f"rollout {rollout.id} {status}")
        with self._store.session() as session:
            row = _locked(session, rollout.id, rollout)  # still the same state: claimed above
            row.status = status
            row.weight = 100.0 if status == "promoted" else 0.0
            row.weight_since = utcnow()
            row.finished_at = utcnow()
            row.message = reason
            add_event(
                session, "rollout", rollout.id, status, actor, reason, {"checks": checks or []}
            )
        return self.get(rollout.id)

    # -- the route's policy ---------------------------------------------------------------

    def _set_policy(
        self,
        rollout_id: int,
        model: str,
        candidate: int,
        weight: float,
        actor: str,
        why: str,
        session: Session | None = None,
    ) -> None:
        owner = f"rollout:{rollout_id}"
        current = self._policies.get(model)
        base = current.policy if current is not None else TrafficPolicy()
        policy = base.model_copy(
            update={
                "candidates": [Candidate(name=CANDIDATE, version=candidate, weight=weight)],
                "stable_variant": BASELINE,
                "salt": f"rollout-{rollout_id}",
                "owner": owner,
            }
        )
        self._policies.put(model, policy, actor=actor, reason=why, owner=owner, session=session)

    def _gate(self, rollout: RolloutOut, step: Step) -> GateVerdict:
        assert step.gate is not None
        return check_gate(self._runs, step.gate, rollout.model, rollout.baseline, rollout.candidate)

    def _ensure_alert(self, spec: RolloutCreate, actor: str) -> None:
        """A standing rule per route fires when one of its rollouts aborts."""
        rule = AlertRule(
            name=f"rollout-aborted.{spec.model}",
            metric="rollout_aborts",
            route=spec.model,
            comparison=">",
            threshold=0,
            window_s=3600,
            severity="critical",
            webhooks=list(spec.notify),
        )
        try:
            self._alerts.create(rule, actor)
        except AlertRuleExists:
            if spec.notify:
                self._alerts.update(rule.name, rule, actor)


def _summary(result: Measurement) -> str:
    return "; ".join(f"{m.name} {m.outcome}" for m in result.metrics)


def _locked(session: Session, rollout_id: int, seen: RolloutOut) -> RolloutRow:
    """The row, if nobody changed it since ``seen`` was read; its revision moves on."""
    row = session.get(RolloutRow, rollout_id, with_for_update=True)
    if row is None:
        raise ReleaseError(f"rollout {rollout_id} does not exist", status=404, code="not_found")
    if row.status != seen.status or row.step != seen.step:
        raise ReleaseError(
            f"rollout {rollout_id} changed meanwhile (now {row.status} at step {row.step}); "
            "look again",
            status=409,
            code="conflict",
        )
    row.revision += 1
    return row


def _check_active(rollout: RolloutOut) -> None:
    if rollout.status not in ACTIVE:
        raise ReleaseError(
            f"rollout {rollout.id} is already {rollout.status}", status=409, code="conflict"
        )


def _check_no_other(session: Session, model: str) -> None:
    other = session.scalar(
        select(RolloutRow.id).where(RolloutRow.model == model, RolloutRow.status.in_(ACTIVE))
    )
    if other is not None:
        raise ReleaseError(
            f"rollout {other} of '{model}' is still active; promote or abort it first",
            status=409,
            code="conflict",
        )
    experiment = session.scalar(
        select(ExperimentRow.name).where(
            ExperimentRow.model == model, ExperimentRow.status == "running"
        )
    )
    if experiment is not None:
        raise ReleaseError(
            f"experiment '{experiment}' runs on '{model}'; stop it first",
            status=409,
            code="conflict",
        )


def _out(row: RolloutRow) -> RolloutOut:
    spec: dict[str, Any] = row.spec
    return RolloutOut(
        id=row.id,
        model=row.model,
        alias=row.alias,
        baseline=row.baseline,
        candidate=row.candidate,
        status=row.status,
        step=row.step,
        steps=[Step.model_validate(s) for s in spec.get("steps", [])],
        weight=row.weight,
        weight_since=row.weight_since,
        step_started_at=row.step_started_at,
        message=row.message,
        started_at=row.started_at,
        finished_at=row.finished_at,
        created_by=row.created_by,
    )


def _mismatch(srm: dict[str, Any]) -> str:
    return (
        f"sample ratio mismatch: traffic {srm['counts']} does not match the weights (Bayes "
        f"factor {srm['bayes_factor']:.3g}, chi-square p = {srm['p_value']:.2g})"
    )
