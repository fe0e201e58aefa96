"""A rollout's eval-gate step: the latest finished eval runs of the task on the candidate
(and the baseline, for rules that compare with it) judged by the gate's rules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from modelyard.evaluate.breakdown import gate_values, load_breakdown, needs_breakdown
from modelyard.evaluate.compare import gate
from modelyard.evaluate.protocol import EvalRunOut
from modelyard.evaluate.report import task_of
from modelyard.evaluate.runs import EvalRuns
from modelyard.registry.protocol import version_name
from modelyard.release.protocol import Gate


@dataclass(frozen=True)
class GateVerdict:
    state: Literal["passed", "failed", "waiting"]
    message: str
    checks: list[dict[str, object]]


def _latest(runs: EvalRuns, task: str, version: str) -> EvalRunOut | None:
    for run in runs.list_runs(task=task, limit=1000):
        if run.status == "done" and run.versions == [version]:
            return run
    return None


def check_gate(
    runs: EvalRuns, spec: Gate, model: str, baseline: int, candidate: int
) -> GateVerdict:
    wanted = version_name(model, candidate)
    cand = _latest(runs, spec.task, wanted)
    if cand is None:
        return GateVerdict(
            "waiting",
            f"waiting for a finished eval run of task '{spec.task}' on {wanted} "
            f"(`modelyard eval run <task file> -m {wanted}`)",
            [],
        )
    compares = any(
        r.max_drop is not None
        or r.max_relative_drop is not None
        or r.require_significant_improvement
        for r in spec.rules
    )
    base = _latest(runs, spec.task, version_name(model, baseline)) if compares else None
    if compares and base is None:
        return GateVerdict(
            "waiting",
            f"waiting for a finished eval run of task '{spec.task}' on the baseline "
            f"{model}@{baseline}, which the gate's rules compare with",
            [],
        )
    try:
        result = gate(
            list(spec.rules),
            task_of(runs.spec(cand.id)),
            cand,
            runs.items(cand.id),
            base,
            runs.items(base.id) if base is not None else None,
            extra=_breakdown_values(runs, spec, cand),
            baseline_extra=_breakdown_values(runs, spec, base),
        )
    except ValueError as error:  # a metric the run lacks, runs on different data
        return GateVerdict("failed", f"the gate cannot be checked: {error}", [])
    checks: list[dict[str, object]] = [
        {"passed": c.passed, "reason": c.reason} for c in result.checks
    ]
    runs_named = f"run {cand.id}" + (f" against run {base.id}" if base is not None else "")
    if result.passed:
        return GateVerdict("passed", f"eval gate '{spec.task}' passed ({runs_named})", checks)
    failed = "; ".join(str(c["reason"]) for c in checks if not c["passed"])
    return GateVerdict("failed", f"eval gate '{spec.task}' failed ({runs_named}): {failed}", checks)


def _breakdown_values(
    runs: EvalRuns, spec: Gate, run: EvalRunOut | None
) -> dict[str, float] | None:
    """What the rules read of ``run``'s slices, fairness or counterfactual pairs."""
    if run is None or not needs_breakdown(spec.rules):
        return None
    return gate_values(spec.rules, load_breakdown(runs, run.id))
