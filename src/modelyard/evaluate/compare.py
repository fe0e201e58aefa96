"""Comparing two runs of one task on the same items: per-metric paired bootstrap CIs and
McNemar's exact test on per-item correctness."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelyard.errors import ModelyardError
from modelyard.evaluate.gates import GateResult, GateRule, evaluate_gate
from modelyard.evaluate.metrics import metric
from modelyard.evaluate.protocol import EvalItemOut, EvalRunOut
from modelyard.evaluate.stats import PairedDifference, mcnemar_exact, paired_bootstrap
from modelyard.evaluate.tasks import Task


class NotComparable(ModelyardError, ValueError):
    status = 400
    code = "not_comparable"


def per_item(task: Task, items: list[EvalItemOut]) -> dict[str, list[float]]:
    """Each metric's per-item scores (metrics without them are left out)."""
    predictions = [i.extracted for i in items]
    references = [i.reference for i in items]
    scores: dict[str, list[float]] = {}
    for spec in task.metrics:
        result = metric(spec.name, **spec.options).compute(predictions, references)
        if result.per_item is not None:
            scores[result.name] = list(result.per_item)
    return scores


def paired(
    task: Task,
    baseline: EvalRunOut,
    baseline_items: list[EvalItemOut],
    candidate: EvalRunOut,
    candidate_items: list[EvalItemOut],
) -> tuple[list[EvalItemOut], list[EvalItemOut]]:
    if baseline.dataset_sha256 != candidate.dataset_sha256 or baseline.task != candidate.task:
        raise NotComparable(
            f"runs {baseline.id} and {candidate.id} are not on the same task and dataset"
        )
    common = {i.item_index for i in baseline_items} & {i.item_index for i in candidate_items}
    if not common:
        raise NotComparable(f"runs {baseline.id} and {candidate.id} share no items")
    pick = sorted(common)
    by_b = {i.item_index: i for i in baseline_items}
    by_c = {i.item_index: i for i in candidate_items}
    return [by_b[i] for i in pick], [by_c[i] for i in pick]


def compare(
    task: Task,
    baseline: EvalRunOut,
    baseline_items: list[EvalItemOut],
    candidate: EvalRunOut,
    candidate_items: list[EvalItemOut],
) -> dict[str, Any]:
    b_items, c_items = paired(task, baseline, baseline_items, candidate, candidate_items)
    b_scores, c_scores = per_item(task, b_items), per_item(task, c_items)
    differences = {
        name: paired_bootstrap(b_scores[name], c_scores[name], metric=name) for name in b_scores
    }
    first = next(iter(b_scores), None)
    mcnemar = None
    if first is not None:
        test = mcnemar_exact(
            [s >= 1.0 for s in b_scores[first]], [s >= 1.0 for s in c_scores[first]]
        )
        mcnemar = {"metric": first, **test.__dict__}
    return {
        "baseline": baseline.id,
        "candidate": candidate.id,
        "items": len(next(iter(b_scores.values()), [])),
        "differences": {name: d.__dict__ for name, d in differences.items()},
        "mcnemar": mcnemar,
        "significant": any(d.significant for d in differences.values()),
    }


def gate(
    rules: list[GateRule],
    task: Task,
    candidate: EvalRunOut,
    candidate_items: list[EvalItemOut],
    baseline: EvalRunOut | None = None,
    baseline_items: list[EvalItemOut] | None = None,
    *,
    extra: Mapping[str, float] | None = None,
    baseline_extra: Mapping[str, float] | None = None,
) -> GateResult:
    """``extra``, ``baseline_extra``: values rules read besides the runs' metrics (a slice,
    a fairness measure: ``breakdown.gate_values``)."""
    values = {n: float(m["value"]) for n, m in candidate.metrics.items() if m["value"] is not None}
    values.update(extra or {})
    base_values = None
    differences: dict[str, PairedDifference] | None = None
    if baseline is not None and baseline_items is not None:
        base_values = {
            n: float(m["value"]) for n, m in baseline.metrics.items() if m["value"] is not None
        }
        base_values.update(baseline_extra or {})
        b_items, c_items = paired(task, baseline, baseline_items, candidate, candidate_items)
        b_scores, c_scores = per_item(task, b_items), per_item(task, c_items)
        differences = {
            name: paired_bootstrap(b_scores[name], c_scores[name], metric=name) for name in b_scores
        }
    return evaluate_gate(rules, values, base_values, differences)
