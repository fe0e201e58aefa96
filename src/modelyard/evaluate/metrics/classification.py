"""Classification metrics, computed by scikit-learn on string labels.

The label order (per-class details, the confusion matrix) is the ``labels`` option when
given, else the sorted labels seen in references and predictions. Per-class precision,
recall and F1 are 0 where undefined (``zero_division=0``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelyard.evaluate.metrics.result import (
    MetricInputError,
    MetricOptionError,
    MetricResult,
    Reference,
    Scores,
    check_choice,
    check_labels,
    single_labels,
)
from modelyard.lazy import lazy_module

if TYPE_CHECKING:
    import numpy as np
else:  # imported on first use: the server imports this module at start-up (issue 8)
    np = lazy_module("numpy")
sk_metrics = lazy_module("sklearn.metrics")

AVERAGES = ("macro", "micro", "weighted")
ROC_AUC_AVERAGES = ("macro", "weighted")
_PRF_INDEX = {"precision": 0, "recall": 1, "f1": 2}


def label_order(labels: tuple[str, ...] | None, *columns: Sequence[str]) -> list[str]:
    return list(labels) if labels is not None else sorted(set().union(*columns))


@dataclass(frozen=True)
class Accuracy:
    """Share of items whose predicted label equals the reference; per item 1 or 0."""

    name: str = field(default="accuracy", init=False)
    higher_is_better: bool = field(default=True, init=False)

    def compute(
        self,
        predictions: Sequence[str],
        references: Sequence[Reference],
        *,
        scores: Scores | None = None,
    ) -> MetricResult:
        truth = single_labels(self.name, predictions, references)
        value = float(sk_metrics.accuracy_score(truth, list(predictions)))
        per_item = [float(p == t) for p, t in zip(predictions, truth, strict=True)]
        return MetricResult(self.name, value, per_item, {})


@dataclass(frozen=True)
class PrecisionRecallF1:
    """``precision``, ``recall`` or ``f1``, averaged (``average``: macro, micro, weighted)
    over ``labels``, with every label's scores and support in the details."""

    name: str
    average: str = "macro"
    labels: Sequence[str] | None = None
    higher_is_better: bool = field(default=True, init=False)

    def __post_init__(self) -> None:
        check_choice(self.name, "average", self.average, AVERAGES)
        object.__setattr__(self, "labels", check_labels(self.name, self.labels))

    def compute(
        self,
        predictions: Sequence[str],
        references: Sequence[Reference],
        *,
        scores: Scores | None = None,
    ) -> MetricResult:
        truth = single_labels(self.name, predictions, references)
        labels = label_order(check_labels(self.name, self.labels), truth, predictions)
        common: dict[str, Any] = {"labels": labels, "zero_division": 0}
        averaged = sk_metrics.precision_recall_fscore_support(
            truth, list(predictions), average=self.average, **common
        )
        precision, recall, f1, support = sk_metrics.precision_recall_fscore_support(
            truth, list(predictions), average=None, **common
        )
        per_class = {
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        }
        value = float(averaged[_PRF_INDEX[self.name]])
        details = {"average": self.average, "labels": labels, "per_class": per_class}
        return MetricResult(self.name, value, None, details)


@dataclass(frozen=True)
class ConfusionMatrix:
    """The confusion matrix in the details (rows: references, columns: predictions, both in
    ``labels`` order); the value is its trace over its total, which is the accuracy unless
    ``labels`` leaves some items out."""

    labels: Sequence[str] | None = None
    name: str = field(default="confusion_matrix", init=False)
    higher_is_better: bool = field(default=True, init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", check_labels(self.name, self.labels))

    def compute(
        self,
        predictions: Sequence[str],
        references: Sequence[Reference],
        *,
        scores: Scores | None = None,
    ) -> MetricResult:
        truth = single_labels(self.name, predictions, references)
        labels = label_order(check_labels(self.name, self.labels), truth, predictions)
        matrix = sk_metrics.confusion_matrix(truth, list(predictions), labels=labels)
        total = int(matrix.sum())
        if total == 0:
            raise MetricInputError(f"{self.name}: no item has both labels among {labels}")
        value = float(np.trace(matrix)) / total
        return MetricResult(self.name, value, None, {"labels": labels, "matrix": matrix.tolist()})


@dataclass(frozen=True)
class RocAuc:
    """Area under the ROC curve of ``scores`` (the keyword argument of ``compute``) against
    the reference labels; the predictions are not used.

    - Binary: ``scores`` holds one number per item, the score for the positive label:
      ``positive_label`` when given (every other label counts as negative), else the second
      of the two reference labels in sorted order (scikit-learn's convention).
    - Multi-class: ``scores`` holds one mapping per item from every label to its probability
      (rows sum to 1); one-vs-rest AUC, averaged by ``average`` (macro or weighted). With
      exactly two labels in the mappings it is the binary case on the positive label's column.
    """

    positive_label: str | None = None
    average: str = "macro"
    name: str = field(default="roc_auc", init=False)
    higher_is_better: bool = field(default=True, init=False)

    def __post_init__(self) -> None:
        check_choice(self.name, "average", self.average, ROC_AUC_AVERAGES)
        if self.positive_label is not None and not isinstance(self.positive_label, str):
            raise MetricOptionError(f"{self.name}: option 'positive_label' must be a string")

    def compute(
        self,
        predictions: Sequence[str],
        references: Sequence[Reference],
        *,
        scores: Scores | None = None,
    ) -> MetricResult:
        truth = single_labels(self.name, predictions, references)
        if scores is None or isinstance(scores, str | Mapping) or len(scores) != len(truth):
            raise MetricInputError(
                f"{self.name}: pass scores=[...] with one entry per item: a number (the "
                "positive label's score) or a mapping from each label to its probability"
            )
        if all(isinstance(s, Mapping) for s in scores):
            return self._by_label(truth, [dict(s) for s in scores])  # type: ignore[arg-type]
        if all(_is_number(s) for s in scores):
            numbers = [float(s) for s in scores]  # type: ignore[arg-type]
            return self._binary(truth, numbers, self.positive_label)
        raise MetricInputError(
            f"{self.name}: scores must be all numbers or all label-to-probability mappings"
        )

    def _binary(self, truth: list[str], scores: list[float], positive: str | None) -> MetricResult:
        if positive is None:
            seen = sorted(set(truth))
            if len(seen) != 2:
                raise MetricInputError(
                    f"{self.name}: number scores need exactly two reference labels or the "
                    f"positive_label option; the references have {len(seen)}: {seen}"
                )
            positive = seen[1]
        positives = [label == positive for label in truth]
        if all(positives) or not any(positives):
            raise MetricInputError(
                f"{self.name}: the references need both the positive label {positive!r} and "
                "another label"
            )
        value = float(sk_metrics.roc_auc_score(positives, scores))
        return MetricResult(self.name, value, None, {"positive_label": positive})

    def _by_label(self, truth: list[str], scores: list[dict[str, float]]) -> MetricResult:
        labels = sorted(scores[0])
        for index, row in enumerate(scores):
            if sorted(row) != labels:
                raise MetricInputError(
                    f"{self.name}: item {index} scores labels {sorted(row)}, item 0 {labels}"
                )
        if len(labels) == 2:
            positive = self.positive_label or labels[1]
            if positive not in labels:
                raise MetricInputError(f"{self.name}: positive_label {positive!r} not scored")
            return self._binary(truth, [row[positive] for row in scores], positive)
        missing = sorted(set(labels) - set(truth))
        unknown = sorted(set(truth) - set(labels))
        if missing or unknown:
            raise MetricInputError(
                f"{self.name}: one-vs-rest AUC needs every scored label among the references "
                f"and every reference label scored; not in references: {missing}, not scored: "
                f"{unknown}"
            )
        matrix = np.array([[row[label] for label in labels] for row in scores], dtype=float)
        try:
            value = float(
                sk_metrics.roc_auc_score(
                    truth, matrix, labels=labels, multi_class="ovr", average=self.average
                )
            )
        except ValueError as error:  # e.g. rows that do not sum to 1
            raise MetricInputError(f"{self.name}: {error}") from error
        return MetricResult(self.name, value, None, {"labels": labels, "average": self.average})


def _is_number(value: object) -> bool:
    return (
        isinstance(value, int | float | np.number)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )
