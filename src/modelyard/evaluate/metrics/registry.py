"""The metrics by name: ``metric("f1", average="micro")`` builds one with its options."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from functools import partial
from types import MappingProxyType
from typing import Any

from modelyard.evaluate.metrics.answers import (
    CharF1,
    CmrcExactMatch,
    Contains,
    ExactMatch,
    NumericMatch,
    RegexMatch,
)
from modelyard.evaluate.metrics.classification import (
    Accuracy,
    ConfusionMatrix,
    PrecisionRecallF1,
    RocAuc,
)
from modelyard.evaluate.metrics.leakage import Refusal, SecretLeak
from modelyard.evaluate.metrics.overlap import Bleu, Chrf, Rouge
from modelyard.evaluate.metrics.result import Metric, MetricOptionError, UnknownMetric

METRICS: Mapping[str, Callable[..., Metric]] = MappingProxyType(
    {
        "accuracy": Accuracy,
        "precision": partial(PrecisionRecallF1, "precision"),
        "recall": partial(PrecisionRecallF1, "recall"),
        "f1": partial(PrecisionRecallF1, "f1"),
        "confusion_matrix": ConfusionMatrix,
        "roc_auc": RocAuc,
        "bleu": Bleu,
        "chrf": Chrf,
        "rouge1": partial(Rouge, "rouge1"),
        "rouge2": partial(Rouge, "rouge2"),
        "rougeL": partial(Rouge, "rougeL"),
        "exact_match": ExactMatch,
        "char_f1": CharF1,
        "cmrc_exact_match": CmrcExactMatch,
        "numeric_match": NumericMatch,
        "contains": Contains,
        "regex": RegexMatch,
        "attack_success": partial(SecretLeak, "attack_success"),
        "leak": partial(SecretLeak, "leak"),
        "refusal": Refusal,
    }
)


def metric(name: str, **options: Any) -> Metric:
    """The metric called ``name``, built with ``options``."""
    try:
        factory = METRICS[name]
    except KeyError:
        raise UnknownMetric(
            f"unknown metric {name!r}; known metrics: {', '.join(sorted(METRICS))}"
        ) from None
    try:
        inspect.signature(factory).bind(**options)
    except TypeError as error:
        raise MetricOptionError(
            f"{name}: {error}; its options: {', '.join(metric_options(name)) or 'none'}"
        ) from None
    return factory(**options)


def metric_options(name: str) -> list[str]:
    return list(inspect.signature(METRICS[name]).parameters)
