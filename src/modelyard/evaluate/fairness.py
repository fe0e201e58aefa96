"""Group fairness of a classification run over a sensitive attribute, computed by fairlearn.

Each label is judged one against the rest (the label is the "positive" outcome): the
demographic-parity difference and ratio (the ratio is the disparate impact, the "80 %
rule") of the rates at which each group is given the label, and the equalised-odds
difference (the larger of the groups' gaps in true- and false-positive rates). A task with
many labels reports every label and the worst of them; ``positive`` picks one label.
Pure computation, CPU-bound: callers run it on a worker thread.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

from modelyard.errors import ModelyardError
from modelyard.evaluate.protocol import EvalItemOut
from modelyard.lazy import lazy_module

fairlearn_metrics = lazy_module("fairlearn.metrics")

MAX_LABELS = 20  # one MetricFrame per label: a task with more names its positive label
MEASURES = ("demographic_parity_difference", "disparate_impact_ratio", "equalized_odds_difference")


class FairnessRefused(ModelyardError, ValueError):
    status = 400
    code = "invalid_fairness"


def labels_of(items: Sequence[EvalItemOut]) -> list[str]:
    """Each item's one reference label; FairnessRefused when an item has several."""
    labels = []
    for item in items:
        reference = item.reference
        if isinstance(reference, list) and len(reference) == 1:
            reference = reference[0]
        if not isinstance(reference, str):
            raise FairnessRefused(
                f"fairness measures need a classification task (one label per item); item "
                f"{item.item_index} has the reference {reference!r}",
                param="sensitive",
            )
        labels.append(reference)
    return labels


def fairness(
    items: Sequence[EvalItemOut], groups: Sequence[str], sensitive: str, positive: str | None
) -> dict[str, Any]:
    """The measures of every label (or of ``positive``) over the ``groups`` of ``sensitive``,
    each group's rates, and the worst of each measure over the labels."""
    truth = labels_of(items)
    sizes = Counter(groups)
    if len(sizes) < 2:
        raise FairnessRefused(
            f"fairness over '{sensitive}' needs at least two groups; every item is in "
            f"'{next(iter(sizes), '-')}'",
            param="sensitive",
        )
    predicted = [i.extracted for i in items]
    chosen = [positive] if positive is not None else sorted(set(truth))
    if len(chosen) > MAX_LABELS:
        raise FairnessRefused(
            f"the items have {len(chosen)} labels; fairness is measured one label against the "
            f"rest for at most {MAX_LABELS} at once (about a quarter second each): name the "
            f"label with positive (one of: {', '.join(chosen[:5])}, ...)",
            param="positive",
        )
    by_label = {label: _label_measures(truth, predicted, groups, label) for label in chosen}
    return {
        "sensitive": sensitive,
        "positive": positive,
        "groups": dict(sorted(sizes.items())),
        "labels": by_label,
        "worst": _worst(by_label),
    }


def _label_measures(
    truth: Sequence[str], predicted: Sequence[str], groups: Sequence[str], label: str
) -> dict[str, Any]:
    """fairlearn's measures of one label against the rest: its ``MetricFrame`` per group,
    and the between-groups difference and ratio that ``demographic_parity_difference``,
    ``demographic_parity_ratio`` and ``equalized_odds_difference`` take of it."""
    y_true = [int(t == label) for t in truth]
    y_pred = [int(p == label) for p in predicted]
    undefined = _without_both_outcomes(y_true, groups)
    metrics = {"selection_rate": fairlearn_metrics.selection_rate}
    if not undefined:  # a rate over no item is undefined, not the 0 fairlearn would give
        metrics["true_positive_rate"] = fairlearn_metrics.true_positive_rate
        metrics["false_positive_rate"] = fairlearn_metrics.false_positive_rate
    frame = fairlearn_metrics.MetricFrame(
        metrics=metrics, y_true=y_true, y_pred=y_pred, sensitive_features=list(groups)
    )
    differences = frame.difference(method="between_groups")
    ratio = float(frame.ratio(method="between_groups")["selection_rate"])
    odds = None
    if not undefined:
        odds = float(max(differences["true_positive_rate"], differences["false_positive_rate"]))
    return {
        "demographic_parity_difference": float(differences["selection_rate"]),
        "disparate_impact_ratio": None if math.isnan(ratio) else ratio,  # no group given it
        "equalized_odds_difference": odds,
        "by_group": {
            str(group): {name: float(value) for name, value in row.items()}
            for group, row in frame.by_group.iterrows()
        },
        "note": (
            f"equalised odds undefined: group(s) {', '.join(undefined)} lack items labelled "
            f"'{label}' or items labelled otherwise"
            if undefined
            else None
        ),
    }


def _without_both_outcomes(y_true: Sequence[int], groups: Sequence[str]) -> list[str]:
    seen: dict[str, set[int]] = {}
    for truth, group in zip(y_true, groups, strict=True):
        seen.setdefault(group, set()).add(truth)
    return sorted(group for group, outcomes in seen.items() if outcomes != {0, 1})


def _worst(by_label: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The largest differences and the smallest ratio over the labels, with their label."""
    worst: dict[str, Any] = {}
    for measure in MEASURES:
        defined = [(m[measure], label) for label, m in by_label.items() if m[measure] is not None]
        if not defined:
            worst[measure] = None
            continue
        value, label = min(defined) if measure == "disparate_impact_ratio" else max(defined)
        worst[measure] = {"value": value, "label": label}
    return worst
