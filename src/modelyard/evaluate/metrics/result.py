"""What every metric returns and takes: the result, the contract, the errors, input checks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

# One acceptable answer, or several (any of them counts: the best-scoring one is used).
Reference = str | Sequence[str]
# For roc_auc: per item, the score of the positive label (binary), or a score per label.
Scores = Sequence[float] | Sequence[Mapping[str, float]]


class UnknownMetric(ValueError):
    """No metric has this name."""


class MetricOptionError(ValueError):
    """A metric was given an option it does not take, or a value it does not accept."""


class MetricInputError(ValueError):
    """Predictions, references or scores that a metric cannot be computed on."""


@dataclass(frozen=True)
class MetricResult:
    name: str
    value: float
    # One score per item, in input order, when the metric decomposes (for paired comparisons).
    per_item: list[float] | None
    details: dict[str, Any]


class Metric(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def higher_is_better(self) -> bool: ...

    def compute(
        self,
        predictions: Sequence[str],
        references: Sequence[Reference],
        *,
        scores: Scores | None = None,
    ) -> MetricResult:
        """Score predictions against references; only roc_auc reads ``scores``."""
        ...


def reference_lists(
    name: str, predictions: Sequence[str], references: Sequence[Reference]
) -> list[list[str]]:
    """Each item's references as a non-empty list, after checking the inputs line up."""
    check_lengths(name, predictions, references)
    lists = [[ref] if isinstance(ref, str) else list(ref) for ref in references]
    for index, refs in enumerate(lists):
        if not refs:
            raise MetricInputError(f"{name}: item {index} has an empty list of references")
        if not all(isinstance(ref, str) for ref in refs):
            raise MetricInputError(f"{name}: item {index} has a reference that is not a string")
    return lists


def single_labels(
    name: str, predictions: Sequence[str], references: Sequence[Reference]
) -> list[str]:
    """Classification references: exactly one label per item."""
    labels = []
    for index, refs in enumerate(reference_lists(name, predictions, references)):
        if len(refs) != 1:
            raise MetricInputError(
                f"{name}: item {index} has {len(refs)} references; classification metrics take "
                "exactly one label per item"
            )
        labels.append(refs[0])
    return labels


def check_lengths(name: str, predictions: Sequence[object], references: Sequence[object]) -> None:
    if isinstance(predictions, str) or isinstance(references, str):
        raise MetricInputError(f"{name}: predictions and references must be lists, not a string")
    if len(predictions) != len(references):
        raise MetricInputError(
            f"{name}: {len(predictions)} predictions but {len(references)} references"
        )
    if not predictions:
        raise MetricInputError(f"{name}: no items to score")


def mean_result(name: str, per_item: list[float], details: dict[str, Any]) -> MetricResult:
    return MetricResult(name, sum(per_item) / len(per_item), per_item, details)


def check_choice(name: str, option: str, value: object, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise MetricOptionError(
            f"{name}: option {option!r} must be one of {', '.join(allowed)}; got {value!r}"
        )


def check_bool(name: str, option: str, value: object) -> None:
    if not isinstance(value, bool):
        raise MetricOptionError(f"{name}: option {option!r} must be true or false; got {value!r}")


def check_labels(name: str, labels: object) -> tuple[str, ...] | None:
    """An explicit label order, as a tuple (so the metric stays hashable)."""
    if labels is None:
        return None
    if (
        isinstance(labels, str)
        or not isinstance(labels, Sequence)
        or not labels
        or not all(isinstance(label, str) for label in labels)
        or len(set(labels)) != len(labels)
    ):
        raise MetricOptionError(
            f"{name}: option 'labels' must be a non-empty list of distinct strings; got {labels!r}"
        )
    return tuple(labels)
