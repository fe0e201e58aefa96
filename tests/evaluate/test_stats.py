"""Paired comparisons against independent computations: scipy's paired percentile bootstrap,
a resample-by-resample loop, and statsmodels' exact McNemar test (the oracle, imported only
here)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from scipy import stats  # type: ignore[import-untyped]
from statsmodels.stats.contingency_tables import mcnemar  # type: ignore[import-untyped]

from modelyard.evaluate import stats as evaluate_stats
from modelyard.evaluate.stats import mcnemar_exact, paired_bootstrap


def scores(seed: int, n: int, shift: float, noise: float = 0.1) -> tuple[Any, Any]:
    """Per-item scores that vary a lot between items; the candidate moves by ``shift``."""
    rng = np.random.default_rng(seed)
    baseline = rng.random(n)
    return baseline, baseline + shift + rng.normal(0.0, noise, n)


def median_of(values: Any) -> float:
    """A statistic without an ``axis`` argument: aggregated one resample at a time."""
    return float(np.median(values))


@pytest.mark.parametrize(
    ("aggregate", "vectorised"),
    [(np.mean, np.mean), (np.median, np.median), (median_of, np.median)],
)
def test_bootstrap_is_scipys_paired_percentile_interval(
    aggregate: Callable[[Any], float], vectorised: Callable[..., Any]
) -> None:
    baseline, candidate = scores(3, 40, 0.05)

    def difference(x: Any, y: Any, axis: int = -1) -> Any:
        return vectorised(y, axis=axis) - vectorised(x, axis=axis)

    oracle = stats.bootstrap(
        (baseline, candidate),
        difference,
        paired=True,
        method="percentile",
        confidence_level=0.9,
        n_resamples=2000,
        rng=np.random.default_rng(7),
    ).confidence_interval
    result = paired_bootstrap(
        baseline,
        candidate,
        metric="score",
        aggregate=aggregate,
        confidence=0.9,
        resamples=2000,
        seed=7,
    )
    assert result.ci_low == pytest.approx(oracle.low, rel=1e-12, abs=1e-15)
    assert result.ci_high == pytest.approx(oracle.high, rel=1e-12, abs=1e-15)
    assert result.baseline == pytest.approx(float(vectorised(baseline)), rel=1e-15)
    assert result.candidate == pytest.approx(float(vectorised(candidate)), rel=1e-15)
    assert result.difference == pytest.approx(result.candidate - result.baseline, rel=1e-15)
    assert (result.metric, result.confidence, result.resamples) == ("score", 0.9, 2000)


def test_bootstrap_is_a_loop_over_resamples_in_any_batch_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    baseline, candidate = scores(5, 33, 0.02)
    rng = np.random.default_rng(11)
    differences = []
    for _ in range(999):
        items = rng.integers(0, 33, 33)
        differences.append(candidate[items].mean() - baseline[items].mean())
    expected = np.percentile(differences, [2.5, 97.5])

    whole = paired_bootstrap(baseline, candidate, metric="m", resamples=999, seed=11)
    monkeypatch.setattr(evaluate_stats, "RESAMPLE_BATCH_ELEMENTS", 33 * 10)
    batched = paired_bootstrap(baseline, candidate, metric="m", resamples=999, seed=11)

    assert [whole.ci_low, whole.ci_high] == pytest.approx(expected, rel=1e-12)
    assert batched == whole


def test_interval_contains_a_known_shift_and_is_significant() -> None:
    baseline, candidate = scores(1, 200, 0.1)
    result = paired_bootstrap(baseline, candidate, metric="accuracy", resamples=2000)
    assert result.ci_low < 0.1 < result.ci_high
    assert result.ci_low > 0
    assert result.significant


def test_interval_covers_the_true_shift_about_as_often_as_its_confidence() -> None:
    covered = 0
    for seed in range(100):
        baseline, candidate = scores(seed, 60, 0.03)
        result = paired_bootstrap(baseline, candidate, metric="m", resamples=1000, seed=seed)
        covered += result.ci_low <= 0.03 <= result.ci_high
    # A 90% interval would cover ~90 of 100; a 99% one ~99 (the percentile interval runs a
    # little narrow for 60 items).
    assert 87 <= covered <= 99


def test_pairs_stay_together() -> None:
    """Items differ far more from each other than the runs differ on an item: kept in pairs,
    the small improvement is certain; resampled independently, it would not be."""
    baseline, candidate = scores(2, 100, 0.01, noise=0.001)
    result = paired_bootstrap(baseline, candidate, metric="m", resamples=1000)
    assert 0.009 < result.ci_low < result.ci_high < 0.011
    assert result.significant


def test_no_significant_difference_when_there_is_none() -> None:
    baseline, candidate = scores(4, 80, 0.0)
    result = paired_bootstrap(baseline, candidate, metric="m", resamples=2000)
    assert result.ci_low < 0 < result.ci_high
    assert not result.significant


@pytest.mark.parametrize("aggregate", [np.mean, np.median, median_of, np.max])
def test_a_run_compared_with_itself_is_never_significant(
    aggregate: Callable[[Any], float],
) -> None:
    run = np.random.default_rng(9).random(50).tolist()
    result = paired_bootstrap(run, run, metric="m", aggregate=aggregate, resamples=500)
    assert (result.difference, result.ci_low, result.ci_high) == (0.0, 0.0, 0.0)
    assert not result.significant


def test_same_seed_same_interval_other_seed_other_interval() -> None:
    baseline, candidate = scores(6, 50, 0.02)
    first = paired_bootstrap(baseline, candidate, metric="m", resamples=500, seed=42)
    again = paired_bootstrap(list(baseline), list(candidate), metric="m", resamples=500, seed=42)
    other = paired_bootstrap(baseline, candidate, metric="m", resamples=500, seed=43)
    assert again == first
    assert (other.ci_low, other.ci_high) != (first.ci_low, first.ci_high)


def test_booleans_are_scored_as_zero_and_one() -> None:
    result = paired_bootstrap(
        [True, False, False, True], [True, True, True, True], metric="exact", resamples=100
    )
    assert (result.baseline, result.candidate, result.difference) == (0.5, 1.0, 0.5)


@pytest.mark.parametrize(
    ("baseline", "candidate", "kwargs", "message"),
    [
        ([0.1, 0.2], [0.1], {}, "same items: got 2 and 1"),
        ([], [], {}, "empty"),
        ([[0.1], [0.2]], [[0.1], [0.2]], {}, "flat sequences"),
        ([0.1, float("nan")], [0.1, 0.2], {}, "finite"),
        ([0.1, 0.2], [0.1, float("inf")], {}, "finite"),
        ([0.1, 0.2], [0.1, 0.2], {"confidence": 1.0}, "confidence"),
        ([0.1, 0.2], [0.1, 0.2], {"confidence": 0.0}, "confidence"),
        ([0.1, 0.2], [0.1, 0.2], {"resamples": 0}, "resamples"),
    ],
)
def test_bootstrap_rejects_what_it_cannot_compare(
    baseline: Any, candidate: Any, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        paired_bootstrap(baseline, candidate, metric="m", **kwargs)


def correctness(
    both_correct: int, baseline_only: int, candidate_only: int, both_wrong: int
) -> tuple[list[bool], list[bool]]:
    """Per-item correctness of two runs with the given 2x2 counts, the items shuffled."""
    cells = (
        [(True, True)] * both_correct
        + [(True, False)] * baseline_only
        + [(False, True)] * candidate_only
        + [(False, False)] * both_wrong
    )
    order = np.random.default_rng(len(cells)).permutation(len(cells))
    return [cells[i][0] for i in order], [cells[i][1] for i in order]


@pytest.mark.parametrize(
    "table",
    [
        (5, 0, 0, 7),  # no discordant pair
        (3, 0, 12, 2),  # all discordant one way
        (3, 12, 0, 2),  # ... and the other
        (0, 1, 0, 0),  # a single item
        (10, 5, 5, 10),  # balanced
        (10, 3, 9, 1),
        (50, 2, 9, 30),
        (400, 40, 65, 95),  # large enough for the tails to matter
    ],
)
def test_mcnemar_is_statsmodels_exact_test(table: tuple[int, int, int, int]) -> None:
    both_correct, baseline_only, candidate_only, both_wrong = table
    table_2x2 = np.array([[both_correct, baseline_only], [candidate_only, both_wrong]])
    oracle = mcnemar(table_2x2, exact=True)
    result = mcnemar_exact(*correctness(*table))
    counts = (result.both_correct, result.baseline_only, result.candidate_only)
    assert (*counts, result.both_wrong) == table
    assert result.statistic == oracle.statistic
    assert result.p_value == pytest.approx(oracle.pvalue, rel=1e-12)
    assert result.significant == (oracle.pvalue < 0.05)


def test_mcnemar_of_a_run_with_itself_has_p_value_one() -> None:
    run = [True, False, True, True, False]
    result = mcnemar_exact(run, run)
    assert (result.statistic, result.p_value, result.significant) == (0.0, 1.0, False)


def test_mcnemar_significance_follows_alpha() -> None:
    baseline, candidate = correctness(10, 1, 8, 5)  # p = 0.0390625
    assert mcnemar_exact(baseline, candidate).significant
    assert not mcnemar_exact(baseline, candidate, alpha=0.01).significant


@pytest.mark.parametrize(
    ("baseline", "candidate", "kwargs", "message"),
    [
        ([True], [True, False], {}, "same items: got 1 and 2"),
        ([], [], {}, "empty"),
        ([True], [False], {"alpha": 0.0}, "alpha"),
    ],
)
def test_mcnemar_rejects_what_it_cannot_compare(
    baseline: list[bool], candidate: list[bool], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        mcnemar_exact(baseline, candidate, **kwargs)
