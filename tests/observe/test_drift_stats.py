"""Drift statistics against Evidently 0.7 (the oracle, imported only here): the same test
chosen for the same column, the same score within 1e-6 and the same verdict, per column and
for the dataset."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelyard.observe.drift import column_drift, drift_report

Frames = tuple[pd.DataFrame, pd.DataFrame]
# What importing evidently 0.7.23 warns about (numpy, and the litestar its UI uses).
IMPORT_DEPRECATIONS = [
    "numpy.core is deprecated",
    "Call to deprecated function 'Dependency'",
    "Use of deprecated class 'DependencyKwarg'",
]
LETTERS = np.array(list("abcdef"))
WORDS = np.array(
    ["card", "transfer", "refund", "pin", "cash", "balance", "fee", "limit", "app", "top", "up"]
)


def numbers(rng: np.random.Generator, n: int, shift: float = 0.0) -> Any:
    return rng.normal(shift, 1.0, n)


def letters(rng: np.random.Generator, n: int, weights: list[float], first: int = 0) -> Any:
    p = np.array(weights) / sum(weights)
    return LETTERS[first : first + len(p)][rng.choice(len(p), n, p=p)]


def with_missing(rng: np.random.Generator, values: Any) -> Any:
    """About 10% NaN and a few infinities (both dropped, by Evidently too)."""
    values = values.copy()
    values[rng.random(len(values)) < 0.1] = np.nan
    values[:2] = [np.inf, -np.inf]
    return values


def texts(rng: np.random.Generator, n: int) -> list[str]:
    return [" ".join(rng.choice(WORDS, 8)) for _ in range(n)]


def window(rng: np.random.Generator, n: int, drift: bool) -> pd.DataFrame:
    """A window of columns named for the test Evidently should pick and whether they drift.

    ``drift`` is the current window: ``*_shift`` and ``*_new`` columns move, ``*_same`` and
    ``*_const`` do not."""
    shift = 0.4 if drift else 0.0
    skew = [1, 1, 2, 4] if drift else [4, 2, 1, 1]
    return pd.DataFrame(
        {
            "num_same": numbers(rng, n),
            "num_shift": numbers(rng, n, shift),
            "num_missing": with_missing(rng, numbers(rng, n, shift / 4)),
            "num_int": rng.integers(0, 60 + 20 * drift, n),
            "cat_same": letters(rng, n, [4, 2, 1, 1]),
            "cat_shift": letters(rng, n, skew),
            "cat_new": letters(rng, n, [3, 2, 1], first=drift),
            "cat_int": rng.integers(0, 7, n),
            "cat_few_floats": rng.choice([0.5, 1.5, 2.5, 3.5], n),
            "bin_same": rng.choice(["yes", "no"], n, p=[0.3, 0.7]),
            "bin_shift": rng.choice(["yes", "no"], n, p=[0.5, 0.5] if drift else [0.3, 0.7]),
            "bin_bool": rng.random(n) < (0.5 if drift else 0.6),
            "bin_floats": rng.choice([0.0, 1.0], n),
            "bin_const": np.full(n, "same"),
        }
    )


def frames(seed: int, reference_rows: int, current_rows: int) -> Frames:
    rng = np.random.default_rng(seed)
    return window(rng, reference_rows, False), window(rng, current_rows, True)


FRAMES: dict[str, Frames] = {
    "tiny": frames(1, 40, 25),
    "small": frames(2, 400, 300),
    "at-1000": frames(3, 1000, 700),
    "large": frames(4, 1500, 1200),
    "large-small-current": frames(5, 3000, 400),
}


@dataclass(frozen=True)
class Verdict:
    test: str
    score: float
    drifted: bool


@dataclass(frozen=True)
class EvidentlyRun:
    columns: dict[str, Verdict]
    share_drifted: float
    drifted: bool


class Evidently:
    """The oracle: Evidently's reports, and its default test choice on its own."""

    def __init__(self) -> None:
        with warnings.catch_warnings():
            for message in IMPORT_DEPRECATIONS:
                warnings.filterwarnings("ignore", message=message, category=DeprecationWarning)
            from evidently import Report
            from evidently.core.datasets import infer_column_type
            from evidently.legacy.calculations import stattests
            from evidently.metrics import DriftedColumnsCount, ValueDrift

        self._report = lambda columns: Report(
            [*(ValueDrift(column=c) for c in columns), DriftedColumnsCount()], include_tests=True
        )
        self._infer_column_type = infer_column_type
        self._get_stattest = stattests.get_stattest
        known = [
            stattests.ks_stat_test,
            stattests.chi_stat_test,
            stattests.z_stat_test,
            stattests.wasserstein_stat_test,
            stattests.jensenshannon_stat_test,
        ]
        self._names = {test.display_name: test.name for test in known}
        self._runs: dict[int, EvidentlyRun] = {}

    def run(self, pair: Frames) -> EvidentlyRun:
        """ValueDrift of every column and DriftedColumnsCount (run once per pair)."""
        if id(pair) not in self._runs:
            self._runs[id(pair)] = self._run(*pair)
        return self._runs[id(pair)]

    def choice(self, reference: pd.Series, current: pd.Series) -> str:
        """The test a report would pick: the column type inferred from the current data,
        then ``get_stattest`` without a stattest."""
        column_type = self._infer_column_type(current)
        name: str = self._get_stattest(reference, current, column_type, None).name
        return name

    def _run(self, reference: pd.DataFrame, current: pd.DataFrame) -> EvidentlyRun:
        report = self._report([str(name) for name in reference.columns])
        # Evidently's summaries average the infinities (inf - inf), and scipy's chisquare
        # divides by the zero reference count of a value new in the current window.
        with np.errstate(divide="ignore", invalid="ignore"):
            snapshot = report.run(current, reference).dict()
        flags = {
            test["name"].removeprefix("Value Drift for column "): test["status"] == "FAIL"
            for test in snapshot["tests"]
        }
        columns = {
            metric["config"]["column"]: Verdict(
                self._names[metric["config"]["method"]],
                metric["value"],
                flags[metric["config"]["column"]],
            )
            for metric in snapshot["metrics"]
            if metric["config"]["type"] == "evidently:metric_v2:ValueDrift"
        }
        (count,) = (m for m in snapshot["metrics"] if "DriftedColumnsCount" in m["metric_name"])
        (share_test,) = (t for t in snapshot["tests"] if t["name"].startswith("Share"))
        return EvidentlyRun(columns, count["value"]["share"], share_test["status"] == "FAIL")


@pytest.fixture(scope="module")
def evidently() -> Evidently:
    return Evidently()


def values(frame: pd.DataFrame, column: str) -> list[Any]:
    """The column as plain Python values, as a caller of the drift API holds them."""
    listed: list[Any] = frame[column].tolist()
    return listed


CASES = [(frame, str(column)) for frame, pair in FRAMES.items() for column in pair[0].columns]


@pytest.mark.parametrize(("frame", "column"), CASES, ids=[f"{f}-{c}" for f, c in CASES])
def test_column_drift_matches_evidently(frame: str, column: str, evidently: Evidently) -> None:
    reference, current = FRAMES[frame]
    expected = evidently.run(FRAMES[frame]).columns[column]

    ours = column_drift(column, values(reference, column), values(current, column))

    assert ours.test == expected.test
    assert ours.score == pytest.approx(expected.score, abs=1e-6)
    assert ours.drifted == expected.drifted
    if column.endswith(("_shift", "_new")) and frame != "tiny":
        assert ours.drifted, "the data meant to drift should drift"
    if column.endswith(("_same", "_const")):
        assert not ours.drifted, "the data meant to stay should not drift"


def test_the_cases_cover_every_test(evidently: Evidently) -> None:
    chosen = {
        verdict.test for pair in FRAMES.values() for verdict in evidently.run(pair).columns.values()
    }
    assert chosen == {"ks", "chisquare", "z", "wasserstein", "jensenshannon"}


@pytest.mark.parametrize("frame", list(FRAMES))
def test_dataset_drift_matches_evidently(frame: str, evidently: Evidently) -> None:
    reference, current = FRAMES[frame]
    expected = evidently.run(FRAMES[frame])

    report = drift_report(
        {str(c): values(reference, str(c)) for c in reference.columns},
        {str(c): values(current, str(c)) for c in current.columns},
    )

    assert [c.column for c in report.columns] == list(reference.columns)
    assert report.share_drifted == pytest.approx(expected.share_drifted, abs=1e-12)
    assert report.drifted == expected.drifted


TEXT_WINDOWS = {"small": (300, 200), "large": (1200, 800)}


@pytest.mark.parametrize("size", list(TEXT_WINDOWS))
def test_text_columns_get_a_domain_classifier_where_evidently_picks_text_drift(
    size: str, evidently: Evidently
) -> None:
    rng = np.random.default_rng(6)
    reference, current = (texts(rng, rows) for rows in TEXT_WINDOWS[size])

    ours = column_drift("prompt", reference, current)

    # Evidently's percentile variant up to 1,000 reference rows, the absolute one above.
    variant = {"small": "perc", "large": "abs"}[size]
    choice = evidently.choice(pd.Series(reference), pd.Series(current))
    assert choice == f"{variant}_text_content_drift"
    assert (ours.kind, ours.test) == ("text", "domain_classifier")
    assert not ours.drifted


def test_the_choice_alone_is_the_reports_choice(evidently: Evidently) -> None:
    """Guards ``choice`` (the text test's oracle) against the reports' own choice."""
    for pair in FRAMES.values():
        cleaned = [w.replace([np.inf, -np.inf], np.nan) for w in pair]
        chosen = {
            str(c): evidently.choice(*(w[c].dropna() for w in cleaned)) for c in pair[0].columns
        }
        reported = {c: verdict.test for c, verdict in evidently.run(pair).columns.items()}
        assert chosen == reported
