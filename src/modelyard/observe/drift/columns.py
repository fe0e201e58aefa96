"""A column's present values in both windows, and what kind of feature they are.

Missing values (None, NaN, ±inf) are dropped per column, as Evidently does. Without a
declared kind, the kind is inferred like Evidently 0.7's ``infer_column_type``: floats are
numeric, integers with at most 10 distinct values and booleans are categorical, strings are
text when more than half of them are distinct (a NaN makes integers floats, as in pandas).
Evidently looks at the current window alone; we look at both, so that a drifting current
window cannot change the kind. Then, as Evidently's default test choice does, a column with
at most two distinct values is binary and a numeric one with at most five is categorical.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

Value = float | str | bool | None
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
    """One column's present values in each window: floats for numbers, else booleans or
    strings (as objects)."""

    name: str
    reference: npt.NDArray[Any]
    current: npt.NDArray[Any]
    values: ValueType

    def numbers(self) -> tuple[FloatArray, FloatArray]:
        return self.reference, self.current

    @cached_property
    def counts(self) -> tuple[CountArray, CountArray]:
        """How often each distinct value occurs in each window (same order for both)."""
        distinct, index = np.unique(
            np.concatenate([self.reference, self.current]), return_inverse=True
        )
        split = len(self.reference)
        return (
            np.bincount(index[:split], minlength=len(distinct)),
            np.bincount(index[split:], minlength=len(distinct)),
        )

    def distinct(self) -> int:
        return len(self.counts[0])

    def texts(self) -> tuple[list[str], list[str]]:
        return [str(v) for v in self.reference], [str(v) for v in self.current]


def prepare(name: str, reference: Sequence[Value], current: Sequence[Value]) -> Column:
    """Drop missing values; both windows must keep some, all of one type."""
    windows = {"reference": reference, "current": current}
    classes = {cls for values in windows.values() for cls in set(map(type, values))}
    types = _value_types(name, classes)
    if types <= {"integer", "float"}:
        # numpy reads None as NaN; NaN and infinities then go in one vectorised step.
        arrays = {w: _finite(np.asarray(values, dtype=np.float64)) for w, values in windows.items()}
        value_type: ValueType = "integer" if types == {"integer"} else "float"
    else:
        present = {w: list(values) for w, values in windows.items()}
        if type(None) in classes or "float" in types:  # floats here can only be NaN
            present = {w: [v for v in values if not _missing(v)] for w, values in present.items()}
            types = _value_types(name, [type(v) for values in present.values() for v in values])
        if len(types) > 1:
            raise ValueError(
                f"column {name!r} mixes {' and '.join(sorted(types))} values; "
                "give each column values of one type"
            )
        value_type = types.pop()
        dtype = np.bool_ if value_type == "bool" else object
        arrays = {w: np.asarray(values, dtype=dtype) for w, values in present.items()}
    for window, array in arrays.items():
        if not len(array):
            raise ValueError(
                f"column {name!r}: the {window} window has no values (None, NaN and "
                "infinities are dropped); compare windows that both have data"
            )
    return Column(name, arrays["reference"], arrays["current"], value_type)


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


def _finite(values: FloatArray) -> FloatArray:
    finite: FloatArray = values[np.isfinite(values)]
    return finite


def _missing(value: Value) -> bool:
    if value is None:
        return True
    return isinstance(value, float | np.floating) and not math.isfinite(value)


def _value_types(name: str, classes: Iterable[type]) -> set[ValueType]:
    return {_value_type(name, cls) for cls in set(classes) if cls is not type(None)}


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
