"""A/B experiments: a fixed split of one route's traffic between versions, a primary
metric and guardrails, analysed every interval.

Each treatment is compared with the control (the first variant, served by the alias), at
``alpha / (treatments)``. With a planned size (``stop.max_samples``) the group-sequential
tests of rollouts decide (``analysis``, ``release.sequential``): the primary is two
one-sided tests at half that alpha each, "worse" and "better"; a guardrail fails when its
one-sided "worse" test rejects at its share of it. Each spends its alpha over the looks up to
the planned information (every variant at ``max_samples``); a look is taken once the
information has grown by ``LOOK_STEP`` of the plan (so at most about 100), and the look that
reaches the plan, or the longest duration, spends what is left. Without a planned size, the
always-valid confidence sequences decide: the difference and relative lift may be read, and
the experiment stopped, at any time.

Stop rules: the primary is significant (every treatment decided), a guardrail fails, the
split mismatches its weights (SRM), the longest duration or the sample size is reached.
An experiment never moves an alias: its result says what won, a person ships it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelyard.release.analysis import (
    MetricResult,
    Sequential,
    compare_metric,
    ratio_check,
    sequential_design,
    shown_name,
)
from modelyard.release.errors import ReleaseError
from modelyard.release.events import add_event
from modelyard.release.observations import VariantData, observe
from modelyard.release.protocol import (
    LOWER_IS_BETTER,
    AnalysisMetric,
    ExperimentCreate,
    ExperimentOut,
    SpendingName,
)
from modelyard.release.subjects import ReleaseSubjects, stored_spec
from modelyard.routing.protocol import Candidate, TrafficPolicy
from modelyard.store.tables import ExperimentRow, ReleaseMeasurementRow, RolloutRow, utcnow

CONTROLLER = "release-controller"


class Experiments(ReleaseSubjects[str, ExperimentRow, ExperimentOut]):
    subject = "experiment"

    def list_experiments(self, model: str | None = None, limit: int = 100) -> list[ExperimentOut]:
        return self.recent(model, limit)

    def running(self) -> list[str]:
        with self._store.session() as session:
            query = select(ExperimentRow.name).where(ExperimentRow.status == "running")
            return list(session.scalars(query.order_by(ExperimentRow.id)))

    def _table(self) -> type[ExperimentRow]:
        return ExperimentRow

    def _row(self, session: Session, key: str) -> ExperimentRow:
        row = session.scalar(select(ExperimentRow).where(ExperimentRow.name == key))
        if row is None:
            raise ReleaseError(f"experiment '{key}' does not exist", status=404, code="not_found")
        return row

    def _out(self, row: ExperimentRow) -> ExperimentOut:
        return _out(row)

    def start(self, spec: ExperimentCreate, actor: str) -> ExperimentOut:
        prior = self._prior(spec)
        with self._store.session() as session:
            _check_free(session, spec)
            row = ExperimentRow(
                name=spec.name,
                model=spec.model,
                spec=stored_spec(spec, prior),
                status="running",
                message="started",
                result={},
                started_at=utcnow(),
                created_by=actor,
                revision=0,
            )
            session.add(row)
            session.flush()
            add_event(session, "experiment", row.id, "started", actor, "started")
            # In the same transaction: the experiment exists only with its split.
            self._split(session, row.id, spec, prior, actor)
        return self.get(spec.name)

    def _prior(self, spec: ExperimentCreate) -> TrafficPolicy | None:
        """The route's policy, if ``spec`` may start: its control is what the alias serves."""
        aliases = self._aliases(spec.model, [v.version for v in spec.variants])
        control = spec.variants[0]
        if aliases.get(spec.alias) != control.version:
            raise ReleaseError(
                f"the control variant '{control.name}' must be the version "
                f"'{spec.model}:{spec.alias}' points to ({aliases.get(spec.alias)}), "
                f"not {control.version}"
            )
        return self._free_policy(spec.model)

    def _split(
        self,
        session: Session,
        experiment_id: int,
        spec: ExperimentCreate,
        prior: TrafficPolicy | None,
        actor: str,
    ) -> None:
        """The route's policy while the experiment runs: the control on the alias, the
        treatments at their weights."""
        owner = f"experiment:{experiment_id}"
        base = prior if prior is not None else TrafficPolicy(stable_alias=spec.alias)
        policy = base.model_copy(
            update={
                "stable_alias": spec.alias,
                "stable_variant": spec.variants[0].name,
                "candidates": [
                    Candidate(name=v.name, version=v.version, weight=v.weight)
                    for v in spec.variants[1:]
                ],
                "salt": f"experiment-{experiment_id}",
                "owner": owner,
            }
        )
        self._policies.put(
            spec.model,
            policy,
            actor=actor,
            reason=f"experiment {spec.name}",
            owner=owner,
            session=session,
        )

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
        result = self.result(experiment, now, [m.data for m in stored])
        if result is None:  # group-sequential: not enough new information for a look
            return experiment
        with self._store.session() as session:
            row = self._row(session, name)
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

    def result(
        self,
        experiment: ExperimentOut,
        now: datetime,
        earlier: Sequence[Mapping[str, Any]] = (),
    ) -> dict[str, Any] | None:
        """The experiment's result now; ``earlier`` are its stored results, whose looks the
        group-sequential tests continue (None: no look is due yet)."""
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
        return decide(spec, data, earlier, now - experiment.started_at, now)

    def _stop(self, experiment: ExperimentOut, actor: str, reason: str) -> ExperimentOut:
        self._restore_policy(experiment, actor, f"experiment {experiment.name} stopped")
        with self._store.session() as session:
            row = self._row(session, experiment.name)
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


def decide(
    spec: ExperimentCreate,
    data: Sequence[VariantData],
    earlier: Sequence[Mapping[str, Any]],
    ran: timedelta,
    now: datetime,
) -> dict[str, Any] | None:
    """The result of one measurement of the variants' ``data`` (control first), after
    ``ran`` of the experiment; ``earlier`` are the stored results (None: no look is due)."""
    names = [v.name for v in spec.variants]
    plan = _Plan.of(spec, data, earlier, ran)
    if plan is not None and not plan.due:
        return None
    srm = ratio_check(data, [v.weight for v in spec.variants])
    alpha = spec.alpha / (len(spec.variants) - 1)
    comparisons = [
        _comparison(spec, index, data[0], treated, alpha, plan)
        for index, treated in enumerate(data[1:], start=1)
    ]
    all_decided = all(c["significant"] for c in comparisons)
    guardrail_failed = [
        f"{c['variant']}: {g['name']}"
        for c in comparisons
        for g in c["guardrails"]
        if g["outcome"] == "Failed"
    ]
    outcome = (
        "Failed"
        if srm["mismatch"] or guardrail_failed
        else ("Successful" if all_decided else "Inconclusive")
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
        "samples": {n: len(d.errors) for n, d in zip(names, data, strict=True)},
        "test": "group_sequential" if plan is not None else "always_valid",
        "final": plan is not None and plan.final,
        "information": [_information(len(data[0].errors), len(d.errors)) for d in data],
        "srm": srm,
        "comparisons": comparisons,
        "all_decided": all_decided,
        "guardrail_failed": guardrail_failed,
    }


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


LOOK_STEP = 0.01  # of the planned information: a group-sequential look needs this much more


@dataclass(frozen=True)
class _Plan:
    """A group-sequential experiment's design at this measurement."""

    spending: SpendingName
    max_information: tuple[float, ...]  # per variant, against the control (index 0: unused)
    earlier: tuple[Mapping[str, Any], ...]  # the stored results, oldest first
    final: bool  # the planned size or the longest duration is reached: spend what is left
    due: bool  # the information grew enough since the last look (or this one is final)

    @staticmethod
    def of(
        spec: ExperimentCreate,
        data: Sequence[VariantData],
        earlier: Sequence[Mapping[str, Any]],
        ran: timedelta,
    ) -> _Plan | None:
        if not spec.sequential:
            return None
        planned = spec.stop.max_samples or 0
        smallest = min(v.weight for v in spec.variants)
        sizes = [planned * v.weight / smallest for v in spec.variants]  # when every arm has it
        maxima = tuple(_information(sizes[0], size) for size in sizes)
        now = [_information(len(data[0].errors), len(d.errors)) for d in data]
        before = earlier[-1].get("information") if earlier else None
        grown = not isinstance(before, list) or any(
            now[i] >= before[i] + LOOK_STEP * maxima[i] for i in range(1, len(data))
        )
        final = min(len(d.errors) for d in data) >= planned or (
            spec.stop.max_duration_s is not None and ran.total_seconds() >= spec.stop.max_duration_s
        )
        return _Plan(spec.spending, maxima, tuple(earlier), final, grown or final)

    def design(self, index: int, key: str, name: str, alpha: float) -> Sequential:
        """Treatment ``index``'s metric ``name`` (``primary`` or ``guardrails``) design."""
        results: list[Mapping[str, Any]] = []
        for result in self.earlier:
            for comparison in result.get("comparisons", ()):
                if comparison.get("index") != index:
                    continue
                found = comparison.get(key)
                found = [found] if isinstance(found, dict) else (found or [])
                results += [r for r in found if r.get("name") == name]
        return sequential_design(
            results,
            spending=self.spending,
            promote_alpha=alpha,
            max_information=self.max_information[index],
            final=self.final,
        )


def _information(a: float, b: float) -> float:
    return a * b / (a + b) if a + b > 0 else 0.0


def _comparison(
    spec: ExperimentCreate,
    index: int,
    control: VariantData,
    treated: VariantData,
    alpha: float,
    plan: _Plan | None,
) -> dict[str, Any]:
    """Treatment ``index`` against the control: the primary metric (and whether it is
    decided, which way) and the guardrails."""
    variant = spec.variants[index]
    guard_alpha = alpha / max(len(spec.guardrails), 1)
    if plan is None:
        primary = _always_valid(spec, spec.primary, control, treated, alpha)
        enough = min(primary.baseline_n, primary.candidate_n) >= spec.min_samples
        significant = enough and (primary.low > 0 or primary.high < 0)
        better = (primary.estimate < 0) == (spec.primary.name in LOWER_IS_BETTER)
        guardrails = [
            _always_valid(spec, g, control, treated, guard_alpha) for g in spec.guardrails
        ]
    else:
        # "worse" and "better" (within a margin of 0), at half the alpha each.
        two_sided = spec.primary.model_copy(update={"margin": 0.0})
        name = shown_name(spec.primary)
        primary = compare_metric(
            two_sided,
            control,
            treated,
            alpha=alpha / 2,
            min_samples=spec.min_samples,
            planned_samples=spec.planned_samples,
            sequential=plan.design(index, "primary", name, alpha / 2),
        )
        significant = primary.outcome in ("Failed", "Successful")
        better = primary.outcome == "Successful"
        guardrails = [
            compare_metric(
                g,
                control,
                treated,
                alpha=guard_alpha,
                min_samples=spec.min_samples,
                planned_samples=spec.planned_samples,
                sequential=plan.design(index, "guardrails", shown_name(g), guard_alpha),
            )
            for g in spec.guardrails
        ]
    return {
        "index": index,
        "variant": variant.name,
        "version": variant.version,
        "primary": primary.as_json(),
        "significant": significant,
        "verdict": ("better" if better else "worse") if significant else "undecided",
        "guardrails": [g.as_json() for g in guardrails],
    }


def _always_valid(
    spec: ExperimentCreate,
    metric: AnalysisMetric,
    control: VariantData,
    treated: VariantData,
    alpha: float,
) -> MetricResult:
    return compare_metric(
        metric,
        control,
        treated,
        alpha=alpha,
        min_samples=spec.min_samples,
        planned_samples=spec.planned_samples,
    )


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
