"""Drift: whether a current window of request features differs from a reference window.

Pure computation (no I/O), CPU-bound: callers run it on a worker thread. The tests and
their choice follow Evidently 0.7's defaults (see ``report``).
"""

from modelyard.observe.drift.columns import ColumnKind
from modelyard.observe.drift.embeddings import embedding_drift
from modelyard.observe.drift.report import ColumnDrift, DriftReport, column_drift, drift_report

__all__ = [
    "ColumnDrift",
    "ColumnKind",
    "DriftReport",
    "column_drift",
    "drift_report",
    "embedding_drift",
]
