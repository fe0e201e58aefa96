"""A/B experiments: a fixed split of one route's traffic between versions, a primary
metric and guardrails, analysed every interval with the same always-valid intervals as
rollouts (so the results may be read, and the experiment stopped, at any time).

Each treatment is compared with the control (the first variant, served by the alias). The
primary metric's difference and relative lift come with their confidence sequences at
``alpha / (treatments)``; a guardrail fails when a treatment is significantly worse on it.
Stop rules: the primary is significant (every treatment decided), a guardrail fails, the
split mismatches its weights (SRM), the longest duration or the sample size is reached.
An experiment never moves an alias: its result says what won, a person ships it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelyard.registry import Registry
from modelyard.registry.errors import RegistryError
from modelyard.release.analysis import compare_metric, ratio_check
from modelyard.release.errors import ReleaseError
from modelyard.release.events import add_event, events_of, measurements_of
from modelyard.release.observations import observe
from modelyard.release.protocol import (
    LOWER_IS_BETTER,
    ExperimentCreate,
    ExperimentOut,
    MeasurementOut,
    ReleaseEventOut,
)
from modelyard.routing.policies import TrafficPolicies
from modelyard.routing.protocol import Candidate, TrafficPolicy
from modelyard.store import Store
from modelyard.store.tables import ExperimentRow, ReleaseMeasurementRow, RolloutRow, utcnow

CONTROLLER = "release-controller"


class Experiments:
    def __init__(self, store: Store, registry: Registry, policies: TrafficPolicies) -> None:
        self._store = store
        self._registry = registry
        self._policies = policies

    def get(self, name: str) -> ExperimentOut:
        with self._store.session() as session:
            return _out(_row(session, name))

    def list_experiments(self, model: str | None = None, limit: int = 100) -> list[ExperimentOut]:
        query = select(ExperimentRow).order_by(ExperimentRow.id.desc()).limit(min(limit, 1000))
        if model is not None:
            query = query.where(ExperimentRow.model == model)
        with self._store.session() as session:
            return [_out(row) for row in session.scalars(query)]

    def running(self) -> list[str]:
        with self._store.session() as session:
            query = select(ExperimentRow.name).where(ExperimentRow.status == "running")
            return list(session.scalars(query.order_by(ExperimentRow.id)))

    def measurements(self, name: str) -> list[MeasurementOut]:
        return measurements_of(self._store, "experiment", self.get(name).id)

    def events(self, name: str) -> list[ReleaseEventOut]:
        return events_of(self._store, "experiment", self.get(name).id)

    def start(self, spec: ExperimentCreate, actor: str) -> ExperimentOut:
        try:
            detail = self._registry.model(spec.model)
            for variant in spec.variants:
                self._registry.version(spec.model, variant.version)
        except RegistryError as error:
            raise ReleaseError(str(error), status=404, code="not_found") from None
        aliases = {a.name: a.version for a in detail.aliases}
        control = spec.variants[0]
        if aliases.get(spec.alias) != control.version:
            raise ReleaseError(
                f"the control variant '{control.name}' must be the version "
                f"'{spec.model}:{spec.alias}' points to ({aliases.get(spec.alias)}), "
                f"not {control.version}"
            )
        prior = self._policies.get(spec.model)
        if prior is not None and prior.policy.owner is not None:
            raise ReleaseError(
                f"route '{spec.model}' is managed by {prior.policy.owner.replace(':', ' ')}; "
                "abort or stop it first",
                status=409,
                code="conflict",
            )
        with self._store.session() as session:
            _check_free(session, spec)
            row = ExperimentRow(
                name=spec.name,
                model=spec.model,
                spec={
                    **spec.model_dump(mode="json"),
                    "prior_policy": None if prior is None else prior.policy.model_dump(mode="json"),
                },
                status="running",
                message="started",
                result={},
                started_at=utcnow(),
                created_by=actor,
                revision=0,
            )
            session.add(row)
            session.flush()
            experiment_id = row.id
            add_event(session, "experiment", experiment_id, "started", actor, "started")
            owner = f"experiment:{experiment_id}"
            base = prior.policy if prior is not None else TrafficPolicy(stable_alias=spec.alias)
            policy = base.model_copy(
                update={
                    "stable_alias": spec.alias,
                    "stable_variant": control.name,
                    "candidates": [
                        Candidate(name=v.name, version=v.version, weight=v.weight)
                        for v in spec.variants[1:]
                    ],
                    "salt": f"experiment-{experiment_id}",
                    "owner": owner,
                }
            )
            # In the same transaction: the experiment exists only with its split.
            self._policies.put(
                spec.model,
                policy,
                actor=actor,
                reason=f"experiment {spec.name}",
                owner=owner,
                session=session,
            )
        return self.get(spec.name)

    def stop(self, name: str, actor: str, reason: str = "") -> ExperimentOut:
        experiment = self.get(name)
        if experiment.status != "running":
            raise ReleaseError(
                f"experiment '{name}' is already stopped", status=409, code="conflict"
            )
        return self._stop(experiment, actor, reason or "stopped by hand")

    def analyse(self, name: str, now: datetime | None = None) -> ExperimentOut:
        """Measure if the interval has passed; stop when a stop rule says so."""
        now = now or utcnow()
        experiment = self.get(name)
        if experiment.status != "running":
            return experiment
        spec = experiment.spec
        stored = self.measurements(name)
        last = stored[-1].at if stored else experiment.started_at
        if now - last < timedelta(seconds=spec.interval_s):
            return experiment
        result = self.result(experiment, now)
        with self._store.session() as session:
            row = _row(session, name)
            session.add(
                ReleaseMeasurementRow(
                    subject="experiment",
                    subject_id=row.id,
                    step=0,
                    seq=len(stored) + 1,
                    at=now,
                    outcome=result["outcome"],
                    data=result,
                )
            )
            row.result = result
            row.message = result["summary"]
        reason = _stop_reason(spec, result, now - experiment.started_at)
        if reason is not None:
            return self._stop(self.get(name), CONTROLLER, reason)
        return self.get(name)

    def result(self, experiment: ExperimentOut, now: datetime) -> dict[str, Any]:
        spec = experiment.spec
        metrics = [spec.primary, *spec.guardrails]
        names = [v.name for v in spec.variants]
        observations = observe(
            self._store,
            spec.model,
            names,
            experiment.started_at,
            now,
            [m.feedback for m in metrics if m.name in ("positive_feedback_rate", "judge_score")],
        )
        data = [observations.of(n) for n in names]
        srm = ratio_check(data, [v.weight for v in spec.variants])
        treatments = len(spec.variants) - 1
        alpha = spec.alpha / treatments
        comparisons = []
        decided = 0
        guardrail_failed: list[str] = []
        for variant, treated in zip(spec.variants[1:], data[1:], strict=True):
            primary = compare_metric(
                spec.primary,
                data[0],
                treated,
                alpha=alpha,
                min_samples=spec.min_samples,
                planned_samples=spec.planned_samples,
            )
            enough = min(primary.baseline_n, primary.candidate_n) >= spec.min_samples
            low, high = primary.low, primary.high
            significant = enough and (low > 0 or high < 0)
            decided += significant
            better = (primary.estimate < 0) == (spec.primary.name in LOWER_IS_BETTER)
            guardrails = [
                compare_metric(
                    g,
                    data[0],
                    treated,
                    alpha=alpha / max(len(spec.guardrails), 1),
                    min_samples=spec.min_samples,
                    planned_samples=spec.planned_samples,
                )
                for g in spec.guardrails
            ]
            guardrail_failed += [
                f"{variant.name}: {g.name}" for g in guardrails if g.outcome == "Failed"
            ]
            comparisons.append(
                {
                    "variant": variant.name,
                    "version": variant.version,
                    "primary": primary.as_json(),
                    "significant": significant,
                    "verdict": ("better" if better else "worse") if significant else "undecided",
                    "guardrails": [g.as_json() for g in guardrails],
                }
            )
        samples = {n: len(d.errors) for n, d in zip(names, data, strict=True)}
        outcome = (
            "Failed"
            if srm["mismatch"] or guardrail_failed
            else ("Successful" if decided == treatments else "Inconclusive")
        )
        summary = "; ".join(f"{c['variant']}: {c['verdict']}" for c in comparisons)
        if guardrail_failed:
            summary += "; guardrail failed: " + ", ".join(guardrail_failed)
        if srm["mismatch"]:
            summary += "; sample ratio mismatch"
        return {
            "outcome": outcome,
            "summary": summary,
            "at": now.isoformat(),
            "samples": samples,
            "srm": srm,
            "comparisons": comparisons,
            "all_decided": decided == treatments,
            "guardrail_failed": guardrail_failed,
        }

    def _stop(self, experiment: ExperimentOut, actor: str, reason: str) -> ExperimentOut:
        owner = f"experiment:{experiment.id}"
        with self._store.session() as session:
            prior = _row(session, experiment.name).spec.get("prior_policy")
        current = self._policies.get(experiment.model)
        why = f"experiment {experiment.name} stopped"
        if current is not None and current.policy.owner == owner:
            if prior is None:
                self._policies.delete(experiment.model, actor=actor, reason=why, owner=owner)
            else:
                self._policies.put(
                    experiment.model,
                    TrafficPolicy.model_validate(prior),
                    actor=actor,
                    reason=why,
                    owner=owner,
                )
        with self._store.session() as session:
            row = _row(session, experiment.name)
            if row.status != "running":
                raise ReleaseError(
                    f"experiment '{experiment.name}' was stopped meanwhile",
                    status=409,
                    code="conflict",
                )
            row.status = "stopped"
            row.finished_at = utcnow()
            row.message = reason
            row.revision += 1
            add_event(session, "experiment", row.id, "stopped", actor, reason)
        return self.get(experiment.name)


def _stop_reason(spec: ExperimentCreate, result: dict[str, Any], ran: timedelta) -> str | None:
    rules = spec.stop
    summary = str(result["summary"])
    if result["srm"]["mismatch"]:
        return "sample ratio mismatch: the split does not match its weights"
    if rules.on_guardrail and result["guardrail_failed"]:
        return "guardrail failed: " + ", ".join(result["guardrail_failed"])
    if rules.on_significance and result["all_decided"]:
        return "primary metric decided: " + summary
    if rules.max_duration_s is not None and ran.total_seconds() >= rules.max_duration_s:
        return f"ran its longest duration ({rules.max_duration_s:g} s): " + summary
    if rules.max_samples is not None and min(result["samples"].values()) >= rules.max_samples:
        return f"every variant reached {rules.max_samples} samples: " + summary
    return None


def _check_free(session: Session, spec: ExperimentCreate) -> None:
    if session.scalar(select(ExperimentRow.id).where(ExperimentRow.name == spec.name)):
        raise ReleaseError(
            f"an experiment named '{spec.name}' exists; pick another name",
            status=409,
            code="conflict",
        )
    busy = session.scalar(
        select(ExperimentRow.name).where(
            ExperimentRow.model == spec.model, ExperimentRow.status == "running"
        )
    )
    if busy is not None:
        raise ReleaseError(
            f"experiment '{busy}' already runs on '{spec.model}'", status=409, code="conflict"
        )
    rollout = session.scalar(
        select(RolloutRow.id).where(
            RolloutRow.model == spec.model, RolloutRow.status.in_(("running", "paused"))
        )
    )
    if rollout is not None:
        raise ReleaseError(
            f"rollout {rollout} of '{spec.model}' is active; finish it first",
            status=409,
            code="conflict",
        )


def _row(session: Session, name: str) -> ExperimentRow:
    row = session.scalar(select(ExperimentRow).where(ExperimentRow.name == name))
    if row is None:
        raise ReleaseError(f"experiment '{name}' does not exist", status=404, code="not_found")
    return row


def _out(row: ExperimentRow) -> ExperimentOut:
    spec = {k: v for k, v in row.spec.items() if k != "prior_policy"}
    return ExperimentOut(
        id=row.id,
        name=row.name,
        model=row.model,
        spec=ExperimentCreate.model_validate(spec),
        status=row.status,
        message=row.message,
        result=row.result,
        started_at=row.started_at,
        finished_at=row.finished_at,
        created_by=row.created_by,
    )
