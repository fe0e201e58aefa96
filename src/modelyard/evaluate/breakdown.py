"""A run's breakdown: its metrics by slice, its group fairness over a sensitive attribute,
and its counterfactual pairs compared with paired tests; and the values gate rules on them
read (``accuracy[group=b]``, ``demographic_parity_difference[group]``, ...).

Reads the store (``load_breakdown``) and computes (the rest): callers run both on a worker
thread."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from modelyard.errors import ModelyardError
from modelyard.evaluate.compare import per_item
from modelyard.evaluate.fairness import MEASURES, fairness
from modelyard.evaluate.gates import GateRule
from modelyard.evaluate.protocol import EvalItemOut, EvalRunOut
from modelyard.evaluate.report import task_of
from modelyard.evaluate.runs import EvalRuns
from modelyard.evaluate.slices import DERIVED, Labelled, label_items, slice_table
from modelyard.evaluate.stats import mcnemar_exact, paired_bootstrap
from modelyard.evaluate.tasks import Task

VARIANT = "variant"  # original or counterfactual: the pairs' own attribute
COUNTERFACTUAL = "counterfactual_"  # gate metrics: counterfactual_flip_rate, ..._difference:M


class InvalidSlice(ModelyardError, ValueError):
    status = 400
    code = "invalid_slice"


@dataclass(frozen=True)
class RunAnswers:
    """What a breakdown reads of a run: its task, answers, twins' answers and item fields."""

    run: EvalRunOut
    task: Task
    items: list[EvalItemOut]
    twins: dict[int, EvalItemOut]
    attributes: dict[int, dict[str, Any]]


def load_breakdown(runs: EvalRuns, run_id: int) -> RunAnswers:
    run = runs.get(run_id)
    spec = runs.spec(run_id)
    attributes = {int(i): a for i, a in (spec.get("item_attributes") or {}).items()}
    return RunAnswers(run, task_of(spec), runs.items(run_id), runs.twins(run_id), attributes)


def attributes_of(answers: RunAnswers) -> list[str]:
    """The attributes this run's items can be sliced by."""
    fields = sorted({name for attrs in answers.attributes.values() for name in attrs})
    return [*DERIVED, *([VARIANT] if answers.twins else []), *fields]


def breakdown(
    answers: RunAnswers, by: Sequence[str], sensitive: str | None, positive: str | None
) -> dict[str, Any]:
    """Slices by each attribute of ``by``, fairness over ``sensitive`` (a classification
    task), and the counterfactual comparison when the run asked twins."""
    if not answers.items:
        raise InvalidSlice(f"run {answers.run.id} has no answers yet", param="run_id")
    slices = [slice_table(answers.task, *_labelled(answers, name)) for name in by]
    fair = None
    if sensitive is not None:
        items, labelled = _labelled(answers, sensitive, "sensitive")
        fair = fairness(items, labelled.labels, sensitive, positive)
    return {
        "run": answers.run.id,
        "task": answers.task.name,
        "items": len(answers.items),
        "attributes": attributes_of(answers),
        "slices": slices,
        "fairness": fair,
        "counterfactual": counterfactual(answers),
    }


def _labelled(
    answers: RunAnswers, attribute: str, param: str = "by"
) -> tuple[list[EvalItemOut], Labelled]:
    known = attributes_of(answers)
    if attribute not in known:
        raise InvalidSlice(
            f"run {answers.run.id}'s items have no attribute '{attribute}' (they have: "
            f"{', '.join(known)})",
            param=param,
        )
    if attribute == VARIANT:
        originals = [i for i in answers.items if i.item_index in answers.twins]
        twins = [answers.twins[i.item_index] for i in originals]
        labels = ["original"] * len(originals) + ["counterfactual"] * len(twins)
        return originals + twins, Labelled(VARIANT, labels)
    return answers.items, label_items(attribute, answers.items, answers.attributes)


def counterfactual(answers: RunAnswers) -> dict[str, Any] | None:
    """Each original answer against its twin's: how often the extracted answer flips, and
    per metric the paired difference (twin minus original) with its bootstrap interval and
    McNemar's exact test on the first metric's correctness."""
    pairs = [
        (i, answers.twins[i.item_index]) for i in answers.items if i.item_index in answers.twins
    ]
    if not pairs:
        return None
    originals, twins = [p[0] for p in pairs], [p[1] for p in pairs]
    base, swapped = per_item(answers.task, originals), per_item(answers.task, twins)
    differences = {
        name: paired_bootstrap(base[name], swapped[name], metric=name).__dict__ for name in base
    }
    first = next(iter(base), None)
    mcnemar = None
    if first is not None:
        test = mcnemar_exact([s >= 1.0 for s in base[first]], [s >= 1.0 for s in swapped[first]])
        mcnemar = {"metric": first, **test.__dict__}
    flips = [o.extracted != t.extracted for o, t in pairs]
    return {
        "swaps": answers.task.counterfactual.swaps if answers.task.counterfactual else [],
        "pairs": len(pairs),
        "flip_rate": sum(flips) / len(flips),
        "differences": differences,
        "mcnemar": mcnemar,
        "flipped": [
            {
                "item_index": o.item_index,
                "original": o.question,
                "twin": t.question,
                "original_answer": o.extracted,
                "twin_answer": t.extracted,
            }
            for (o, t), flipped in zip(pairs, flips, strict=True)
            if flipped
        ][:20],
    }


def needs_breakdown(rules: Sequence[GateRule]) -> bool:
    """Whether any rule reads a slice, a fairness measure or the counterfactual pairs."""
    return any(rule.key != rule.metric or rule.metric.startswith(COUNTERFACTUAL) for rule in rules)


def gate_values(rules: Sequence[GateRule], answers: RunAnswers) -> dict[str, float]:
    """The values the rules read that are not a run metric, by ``GateRule.key``; a value
    that does not exist (a slice too small to be the worst, an undefined ratio) is left out,
    and the gate says it is missing."""
    values: dict[str, float] = {}
    for rule in rules:
        value = _rule_value(rule, answers)
        if value is not None:
            values[rule.key] = value
    return values


def _rule_value(rule: GateRule, answers: RunAnswers) -> float | None:
    if rule.sensitive is not None:
        if rule.metric not in MEASURES:
            raise InvalidSlice(
                f"sensitive is for the fairness measures ({', '.join(MEASURES)}), not "
                f"{rule.metric!r}",
                param="sensitive",
            )
        report = breakdown(answers, [], rule.sensitive, rule.positive)["fairness"]
        found = report["worst"][rule.metric]
        return None if found is None else float(found["value"])
    if rule.slice is not None:
        attribute, _, value = rule.slice.partition("=")
        table = breakdown(answers, [attribute], None, None)["slices"][0]
        return _slice_value(table, rule.metric, value or None)
    if rule.metric.startswith(COUNTERFACTUAL):
        return _counterfactual_value(rule.metric, answers)
    return None


def _slice_value(table: Mapping[str, Any], name: str, value: str | None) -> float | None:
    if value is None:
        worst = table["worst"].get(name)
        return None if worst is None else float(worst["value"])
    for found in table["slices"]:
        if found["value"] == value:
            score = found["metrics"].get(name, {}).get("value")
            return None if score is None else float(score)
    return None


def _counterfactual_value(name: str, answers: RunAnswers) -> float | None:
    report = counterfactual(answers)
    if report is None:
        return None
    if name == "counterfactual_flip_rate":
        return float(report["flip_rate"])
    measured = name.removeprefix("counterfactual_difference:")
    difference = report["differences"].get(measured)
    return None if difference is None else float(difference["difference"])
