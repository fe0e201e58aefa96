"""Evaluation metrics over predictions and references, computed by the libraries made for
them (scikit-learn, sacrebleu, rouge-score) or transcribed from official scripts (SQuAD,
CMRC 2018).

Pure computation (no I/O), CPU-bound: callers run it on a worker thread.
``metric(name, **options).compute(predictions, references)`` gives a MetricResult; a
reference is a string or a list of acceptable strings (classification: one label); roc_auc
also takes ``scores=`` (see ``RocAuc``).
"""

from modelyard.evaluate.metrics.overlap import MixedScriptTokenizer
from modelyard.evaluate.metrics.registry import METRICS, metric, metric_options
from modelyard.evaluate.metrics.result import (
    Metric,
    MetricInputError,
    MetricOptionError,
    MetricResult,
    Reference,
    Scores,
    UnknownMetric,
)

__all__ = [
    "METRICS",
    "Metric",
    "MetricInputError",
    "MetricOptionError",
    "MetricResult",
    "MixedScriptTokenizer",
    "Reference",
    "Scores",
    "UnknownMetric",
    "metric",
    "metric_options",
]
