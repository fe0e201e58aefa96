"""A column's present values in both windows, and what kind of feature they are.

Missing values (None, NaN, ±inf) are dropped per column, as Evidently does. Without a
declared kind, the kind is inferred like Evidently 0.7's ``infer_column_type``, from both
windows together: floats are numeric, integers with at most 10 distinct values and booleans
are categorical, strings are text when more than half of them are distinct. Then, as
Evidently's default test choice does, a column with at most two distinct values is binary
and a numeric one with at most five is categorical.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

Value = float | str | bool | None
Present = float | str | bool
ColumnKind = Literal["numeric", "categorical", "binary", "text"]
ValueType = Literal["integer", "float", "bool", "str"]
FloatArray = npt.NDArray[np.float64]
CountArray = npt.NDArray[np.int64]

KINDS: tuple[ColumnKind, ...] = ("numeric", "categorical", "binary", "text")
INTEGER_CATEGORIES = 10  # Evidently: integers with at most this many values are categories
TEXT_DISTINCT_SHARE = 0.5  # Evidently: strings are text when this share or more are distinct
NUMERIC_CATEGORIES = 5  # Evidently tests numbers with at most this many values as categories
BINARY_CATEGORIES = 2


@dataclass(frozen=True)
class Column:
    name: str
    reference: list[Present]
    current: list[Present]
    values: ValueType

    def numbers(self) -> tuple[FloatArray, FloatArray]:
        return (
            np.asarray(self.reference, dtype=np.float64),
            np.asarray(self.current, dtype=np.float64),
        )

    def counts(self) -> tuple[CountArray, CountArray]:
        """How often each distinct value occurs in each window (same order for both)."""
        dtype = {"integer": np.float64, "float": np.float64, "bool": np.bool_, "str": object}
        both: npt.NDArray[Any] = np.asarray(self.reference + self.current, dtype=dtype[self.values])
        distinct, index = np.unique(both, return_inverse=True)
        split = len(self.reference)
        return (
            np.bincount(index[:split], minlength=len(distinct)),
            np.bincount(index[split:], minlength=len(distinct)),
        )

    def distinct(self) -> int:
        return len(set(self.reference) | set(self.current))

    def texts(self) -> tuple[list[str], list[str]]:
        return [str(v) for v in self.reference], [str(v) for v in self.current]


def prepare(name: str, reference: Sequence[Value], current: Sequence[Value]) -> Column:
    """Drop missing values; both windows must keep some, all of one type."""
    present = {"reference": _present(reference), "current": _present(current)}
    for window, values in present.items():
        if not values:
            raise ValueError(
                f"column {name!r}: the {window} window has no values (None, NaN and "
                "infinities are dropped); compare windows that both have data"
            )
    classes = {type(v) for values in present.values() for v in values}
    types = {_value_type(name, cls) for cls in classes}
    if types == {"integer", "float"}:
        types = {"float"}
    if len(types) > 1:
        raise ValueError(
            f"column {name!r} mixes {' and '.join(sorted(types))} values; "
            "give each column values of one type"
        )
    return Column(name, present["reference"], present["current"], types.pop())


def resolve_kind(column: Column, declared: ColumnKind | None) -> ColumnKind:
    """The kind that picks the test: the declared (or inferred) kind, narrowed by counts."""
    kind = declared or infer_kind(column)
    if kind not in KINDS:
        raise ValueError(f"column {column.name!r}: unknown kind {kind!r}; use one of {KINDS}")
    if kind == "text":
        if column.values != "str":
            raise ValueError(f"column {column.name!r}: text columns hold strings")
        return kind
    if kind == "numeric" and column.values not in ("integer", "float"):
        raise ValueError(f"column {column.name!r}: numeric columns hold numbers")
    distinct = column.distinct()
    if distinct <= BINARY_CATEGORIES:
        return "binary"
    if kind == "binary":
        raise ValueError(
            f"column {column.name!r} has {distinct} distinct values; a binary column has at "
            "most two (declare it categorical)"
        )
    if kind == "numeric" and distinct <= NUMERIC_CATEGORIES:
        return "categorical"
    return kind


def infer_kind(column: Column) -> ColumnKind:
    if column.values == "float":
        return "numeric"
    if column.values == "integer":
        return "categorical" if column.distinct() <= INTEGER_CATEGORIES else "numeric"
    if column.values == "str":
        rows = len(column.reference) + len(column.current)
        return "text" if column.distinct() > rows * TEXT_DISTINCT_SHARE else "categorical"
    return "categorical"


def _present(values: Sequence[Value]) -> list[Present]:
    return [v for v in values if v is not None and not _not_finite(v)]


def _not_finite(value: Present) -> bool:
    return isinstance(value, float | np.floating) and not math.isfinite(value)


def _value_type(name: str, cls: type) -> ValueType:
    if issubclass(cls, bool | np.bool_):
        return "bool"
    if issubclass(cls, str):
        return "str"
    if issubclass(cls, numbers.Integral):
        return "integer"
    if issubclass(cls, numbers.Real):
        return "float"
    raise ValueError(
        f"column {name!r}: unsupported {cls.__name__} values; use numbers, booleans or strings"
    )
