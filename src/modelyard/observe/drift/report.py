"""Per-column drift and the dataset verdict, with Evidently 0.7's default test choice.

The kind is narrowed first (see ``columns``): at most two distinct values make a column
binary, a numeric one with at most five is categorical. Then:

| kind        | reference ≤ 1,000 values          | more reference values      |
|-------------|-----------------------------------|----------------------------|
| numeric     | Kolmogorov-Smirnov (p ≤ 0.05)     | normed Wasserstein (≥ 0.1) |
| categorical | chi-square (p < 0.05)             | Jensen-Shannon (≥ 0.1)     |
| binary      | two-proportion z-test (p < 0.05)  | Jensen-Shannon (≥ 0.1)     |
| text        | domain classifier (ROC-AUC > 0.55 and p < 0.05), any size      |

The dataset drifted when the share of drifted columns is at least ``drift_share``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from modelyard.observe.drift import stattests
from modelyard.observe.drift.columns import (
    Column,
    ColumnKind,
    CountArray,
    Value,
    prepare,
    resolve_kind,
)
from modelyard.observe.drift.stattests import StatResult
from modelyard.observe.drift.text import domain_classifier

SMALL_REFERENCE = 1000  # Evidently switches from tests to distances above this many rows
DRIFT_SHARE = 0.5


@dataclass(frozen=True)
class ColumnDrift:
    """One column's verdict. ``p_value`` is None for distances; the drift decision compares
    ``score`` (the p-value, else the statistic) with ``threshold``. Row counts exclude
    missing values."""

    column: str
    kind: ColumnKind | Literal["embedding"]
    test: str
    statistic: float
    threshold: float
    p_value: float | None
    drifted: bool
    reference_rows: int
    current_rows: int

    @property
    def score(self) -> float:
        return self.statistic if self.p_value is None else self.p_value

    def as_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "kind": self.kind,
            "test": self.test,
            "statistic": _finite(self.statistic),
            "threshold": self.threshold,
            "p_value": None if self.p_value is None else _finite(self.p_value),
            "score": _finite(self.score),
            "drifted": self.drifted,
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
        }


@dataclass(frozen=True)
class DriftReport:
    columns: list[ColumnDrift]
    share_drifted: float
    drifted: bool
    drift_share: float = DRIFT_SHARE

    def with_column(self, column: ColumnDrift) -> DriftReport:
        """The report with one more column (an embedding drift, say), its share redone."""
        columns = [*self.columns, column]
        share = sum(c.drifted for c in columns) / len(columns)
        return DriftReport(columns, share, share >= self.drift_share, self.drift_share)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready; infinite statistics (a category new in the current window) are None."""
        return {
            "drifted": self.drifted,
            "share_drifted": self.share_drifted,
            "drift_share": self.drift_share,
            "columns": [column.as_dict() for column in self.columns],
        }


def column_drift(
    name: str,
    reference: Sequence[Value],
    current: Sequence[Value],
    kind: ColumnKind | None = None,
) -> ColumnDrift:
    """Test one column; ``kind`` None infers it (see ``columns``)."""
    column = prepare(name, reference, current)
    resolved = resolve_kind(column, kind)
    result = _test(column, resolved)
    return ColumnDrift(
        column=name,
        kind=resolved,
        test=result.test,
        statistic=result.statistic,
        threshold=result.threshold,
        p_value=result.p_value,
        drifted=result.drifted,
        reference_rows=len(column.reference),
        current_rows=len(column.current),
    )


def drift_report(
    reference: Mapping[str, Sequence[Value]],
    current: Mapping[str, Sequence[Value]],
    kinds: Mapping[str, ColumnKind] | None = None,
    drift_share: float = DRIFT_SHARE,
) -> DriftReport:
    """Test every column of the two windows (both must have the same columns)."""
    kinds = kinds or {}
    if set(reference) != set(current):
        only = sorted(set(reference) ^ set(current))
        raise ValueError(f"the windows must have the same columns; only one has {only}")
    if not reference:
        raise ValueError("no columns to compare")
    if unknown := sorted(set(kinds) - set(reference)):
        raise ValueError(f"kinds given for columns the windows do not have: {unknown}")
    if not 0 < drift_share <= 1:
        raise ValueError(f"drift_share is a share of columns in (0, 1], not {drift_share}")
    columns = [
        column_drift(name, reference[name], current[name], kinds.get(name)) for name in reference
    ]
    share = sum(column.drifted for column in columns) / len(columns)
    return DriftReport(columns, share, share >= drift_share, drift_share)


def _test(column: Column, kind: ColumnKind) -> StatResult:
    if kind == "text":
        return domain_classifier(*column.texts())
    small = len(column.reference) <= SMALL_REFERENCE
    if kind == "numeric":
        numeric = stattests.kolmogorov_smirnov if small else stattests.wasserstein
        return numeric(*column.numbers())
    categorical: Callable[[CountArray, CountArray], StatResult]
    if not small:
        categorical = stattests.jensen_shannon
    else:
        categorical = stattests.z_test if kind == "binary" else stattests.chi_square
    return categorical(*column.counts)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
