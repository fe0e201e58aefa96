"""Drift edge cases: missing values, constant columns, empty windows, kinds and the JSON."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from modelyard.observe.drift import ColumnKind, column_drift, drift_report, stattests

rng = np.random.default_rng(11)
NORMAL = rng.normal(0, 1, 300).tolist()
SHIFTED = rng.normal(1, 1, 200).tolist()


def test_none_nan_and_infinities_are_dropped_per_column() -> None:
    holes = [None, math.nan, math.inf, -math.inf, np.float64("nan")]

    with_holes = column_drift("x", NORMAL + holes, holes + SHIFTED)

    assert with_holes == column_drift("x", NORMAL, SHIFTED)
    assert (with_holes.reference_rows, with_holes.current_rows) == (300, 200)
    assert with_holes.drifted


def test_missing_text_is_dropped_too() -> None:
    reference = ["yes", None, "no", math.nan, "yes"]
    current = ["no", "no", None]

    result = column_drift("answer", reference, current)

    assert (result.kind, result.test) == ("binary", "z")
    assert (result.reference_rows, result.current_rows) == (3, 2)


@pytest.mark.parametrize(
    ("reference", "current", "empty"),
    [
        ([], [1.0], "reference"),
        ([1.0], [], "current"),
        ([None, math.nan], [1.0], "reference"),
        ([1.0, 2.0], [math.inf, None], "current"),
    ],
)
def test_a_window_without_values_is_a_clear_error(
    reference: list[float | None], current: list[float | None], empty: str
) -> None:
    with pytest.raises(ValueError, match=f"column 'x': the {empty} window has no values"):
        column_drift("x", reference, current)


@pytest.mark.parametrize("rows", [300, 1500])
def test_a_constant_column_that_stays_constant_does_not_drift(rows: int) -> None:
    result = column_drift("c", [3.0] * rows, [3.0] * 100)

    assert result.kind == "binary"
    assert (result.test, result.statistic) == (("z", 0.0) if rows <= 1000 else ("jensenshannon", 0))
    assert not result.drifted


@pytest.mark.parametrize("rows", [300, 1500])
def test_a_constant_column_that_changes_value_drifts(rows: int) -> None:
    result = column_drift("c", ["a"] * rows, ["b"] * 100)

    assert result.drifted
    if rows > 1000:
        assert result.statistic == pytest.approx(math.sqrt(math.log(2)))


def test_a_constant_reference_keeps_the_wasserstein_distance_finite() -> None:
    result = column_drift("x", [0.0] * 2000, [0.0] * 90 + [float(i) for i in range(10)])

    assert result.test == "wasserstein"
    assert result.statistic == pytest.approx((45 / 100) / 0.001)
    assert result.drifted


def test_a_value_new_in_the_current_window_makes_chi_square_infinite() -> None:
    result = column_drift("c", ["a", "b", "c"] * 50, ["a", "b", "c", "d"] * 40)

    assert (result.test, result.statistic, result.p_value) == ("chisquare", math.inf, 0.0)
    assert result.drifted
    assert result.as_dict()["statistic"] is None


@pytest.mark.parametrize(
    ("reference", "current", "kind", "test"),
    [
        (NORMAL, SHIFTED, "numeric", "ks"),
        ([i % 12 for i in range(300)], [i % 12 for i in range(200)], "numeric", "ks"),
        ([i % 10 for i in range(300)], [i % 10 for i in range(200)], "categorical", "chisquare"),
        ([0.5, 1.5, 2.5] * 100, [0.5, 1.5, 2.5] * 50, "categorical", "chisquare"),
        ([0.0, 1.0] * 100, [1.0] * 50, "binary", "z"),
        ([True, False] * 100, [np.bool_(True)] * 50, "binary", "z"),
        (["a", "b", "c"] * 100, ["a", "b"] * 50, "categorical", "chisquare"),
        ([f"prompt {i}" for i in range(60)], [f"prompt {i}" for i in range(40)], "text", None),
    ],
    ids=[
        "floats",
        "ints-over-10",
        "ints-up-to-10",
        "floats-up-to-5",
        "two-floats",
        "bools",
        "strings",
        "distinct-strings",
    ],
)
def test_the_kind_is_inferred_as_evidently_does(
    reference: list[float], current: list[float], kind: ColumnKind, test: str | None
) -> None:
    result = column_drift("x", reference, current)

    assert result.kind == kind
    assert result.test == (test or "domain_classifier")


def test_numpy_values_are_taken_as_they_come() -> None:
    as_numpy = column_drift("x", np.array(NORMAL), np.array(SHIFTED))
    ints = column_drift("n", np.arange(30), np.arange(5, 35))

    assert as_numpy == column_drift("x", NORMAL, SHIFTED)
    assert (ints.kind, ints.test) == ("numeric", "ks")


def test_a_declared_kind_picks_the_test() -> None:
    ints = [i % 8 for i in range(300)]

    assert column_drift("x", ints, ints, kind="numeric").test == "ks"
    assert column_drift("x", NORMAL, SHIFTED, kind="categorical").test == "chisquare"
    assert column_drift("x", ["a", "b"] * 10, ["a"] * 5, kind="categorical").kind == "binary"
    assert column_drift("x", [1.0, 2.0, 3.0] * 9, [1.0] * 9, kind="numeric").kind == "categorical"


@pytest.mark.parametrize(
    ("reference", "kind", "message"),
    [
        (["a", "b", "c"], "binary", "has 3 distinct values; a binary column has at most two"),
        (["a", "b", "c"], "numeric", "numeric columns hold numbers"),
        ([1.0, 2.0, 3.0], "text", "text columns hold strings"),
        ([1.0, 2.0, 3.0], "ordinal", "unknown kind 'ordinal'"),
    ],
)
def test_a_declared_kind_that_does_not_fit_is_refused(
    reference: list[float | str], kind: ColumnKind, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        column_drift("x", reference, reference, kind=kind)


@pytest.mark.parametrize(
    ("reference", "current", "message"),
    [
        ([1.0, 2.0], ["a", "b"], "mixes float and str values"),
        ([True, False], [1, 0], "mixes bool and integer values"),
        ([1.0, object()], [1.0], "unsupported object values"),
    ],
)
def test_values_of_mixed_or_odd_types_are_refused(
    reference: list[object], current: list[object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        column_drift("x", reference, current)


def test_integers_and_floats_together_are_numbers() -> None:
    assert column_drift("x", [1, 2.5, 3] * 10, [4, 5.5] * 10).kind == "categorical"
    assert column_drift("x", list(range(20)), [float(i) + 0.5 for i in range(20)]).kind == "numeric"


def test_the_dataset_drifts_when_at_least_the_share_of_columns_drifts() -> None:
    reference = {"moved": NORMAL, "kept": NORMAL}
    current = {"moved": SHIFTED, "kept": NORMAL}

    half = drift_report(reference, current)
    stricter = drift_report(reference, current, drift_share=0.6)

    assert [c.drifted for c in half.columns] == [True, False]
    assert (half.share_drifted, half.drifted) == (0.5, True)
    assert (stricter.share_drifted, stricter.drifted) == (0.5, False)


def test_declared_kinds_apply_per_column() -> None:
    ints = {"tokens": [i % 8 for i in range(100)]}

    report = drift_report(ints, ints, kinds={"tokens": "numeric"})

    assert report.columns[0].test == "ks"


@pytest.mark.parametrize(
    ("reference", "current", "kinds", "share", "message"),
    [
        ({"a": [1.0]}, {"b": [1.0]}, None, 0.5, r"same columns; only one has \['a', 'b'\]"),
        ({}, {}, None, 0.5, "no columns to compare"),
        ({"a": [1.0]}, {"a": [1.0]}, {"z": "numeric"}, 0.5, r"do not have: \['z'\]"),
        ({"a": [1.0]}, {"a": [1.0]}, None, 0.0, r"drift_share is a share of columns in \(0, 1\]"),
    ],
)
def test_a_report_refuses_windows_that_do_not_fit(
    reference: dict[str, list[float]],
    current: dict[str, list[float]],
    kinds: dict[str, ColumnKind] | None,
    share: float,
    message: str,
) -> None:
    with pytest.raises(ValueError, match=message):
        drift_report(reference, current, kinds=kinds, drift_share=share)


def test_the_report_is_json_and_states_each_method() -> None:
    report = drift_report(
        {"latency": NORMAL, "model": ["a", "b", "c"] * 10},
        {"latency": SHIFTED, "model": ["a", "b", "c", "d"] * 10},
    )

    data = json.loads(json.dumps(report.as_dict(), allow_nan=False))

    assert data["drifted"] is True
    assert (data["share_drifted"], data["drift_share"]) == (1.0, 0.5)
    latency, model = data["columns"]
    assert latency["test"] == "ks"
    assert latency["threshold"] == 0.05
    assert latency["score"] == latency["p_value"] == report.columns[0].p_value
    assert latency["statistic"] == report.columns[0].statistic
    assert (latency["kind"], latency["reference_rows"], latency["current_rows"]) == (
        "numeric",
        300,
        200,
    )
    assert (model["test"], model["statistic"], model["p_value"], model["drifted"]) == (
        "chisquare",
        None,
        0.0,
        True,
    )


def test_at_the_threshold_only_kolmogorov_smirnov_flags_drift_as_in_evidently(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ks = column_drift("x", NORMAL, SHIFTED[:20])
    chi = column_drift("c", ["a", "b", "c"] * 20, ["a", "b", "c", "c"] * 5)
    assert ks.p_value is not None
    assert chi.p_value is not None

    monkeypatch.setattr(stattests, "P_VALUE_THRESHOLD", ks.p_value)
    assert column_drift("x", NORMAL, SHIFTED[:20]).drifted
    monkeypatch.setattr(stattests, "P_VALUE_THRESHOLD", chi.p_value)
    assert not column_drift("c", ["a", "b", "c"] * 20, ["a", "b", "c", "c"] * 5).drifted
