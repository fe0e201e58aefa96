"""Always-valid intervals and SRM: numpy/scipy as oracles, simulations for time-uniform coverage.

The simulations look at two randomly allocated arms after every 50 units up to 3000 and count
the sequences whose interval *ever* misses the true difference: at most ``alpha`` for the
confidence sequence, far more for the fixed-horizon interval checked at every look.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from scipy import optimize, stats  # type: ignore[import-untyped]

from modelyard.release.stats import (
    SRM_CONCENTRATION,
    Interval,
    Sample,
    boundary,
    difference_sequence,
    exceedance,
    fixed_horizon_interval,
    lift_sequence,
    mixture_rho,
    percentile,
    sample_ratio_mismatch,
)

ALPHA = 0.05
SEQUENCES = 300
LOOK_EVERY = 50
HORIZON = 3000
CANDIDATE_SHARE = 0.1

Draw = Callable[[np.random.Generator, bool, tuple[int, int]], np.ndarray]


def looks(draw: Draw, seed: int) -> list[list[tuple[Sample, Sample]]]:
    """Per sequence, the (baseline, candidate) summaries at every look."""
    rng = np.random.default_rng(seed)
    shape = (SEQUENCES, HORIZON)
    to_candidate = rng.random(shape) < CANDIDATE_SHARE
    values = np.where(to_candidate, draw(rng, True, shape), draw(rng, False, shape))
    at = np.arange(LOOK_EVERY, HORIZON + 1, LOOK_EVERY) - 1
    baselines = summaries(~to_candidate, values, at)
    candidates = summaries(to_candidate, values, at)
    return [list(zip(b, c, strict=True)) for b, c in zip(baselines, candidates, strict=True)]


def summaries(member: np.ndarray, values: np.ndarray, at: np.ndarray) -> list[list[Sample]]:
    """One arm's running summaries from cumulative sums, per sequence and look."""
    n = np.cumsum(member, axis=1)[:, at]
    total = np.cumsum(np.where(member, values, 0.0), axis=1)[:, at]
    squares = np.cumsum(np.where(member, values * values, 0.0), axis=1)[:, at]
    mean = np.divide(total, n, out=np.zeros_like(total), where=n > 0)
    spread = np.divide(squares - n * mean * mean, n - 1, out=np.zeros_like(total), where=n > 1)
    return [
        [Sample(int(k), float(m), max(float(v), 0.0)) for k, m, v in zip(*row, strict=True)]
        for row in zip(n, mean, spread, strict=True)
    ]


def ever_misses(
    sequences: list[list[tuple[Sample, Sample]]],
    interval: Callable[[Sample, Sample], Interval],
    truth: float,
) -> float:
    """Fraction of sequences whose interval misses ``truth`` at one look or more."""
    misses = sum(
        any(not _covers(interval(b, c), truth) for b, c in sequence) for sequence in sequences
    )
    return misses / len(sequences)


def _covers(interval: Interval, value: float) -> bool:
    return interval.low <= value <= interval.high


def sequence_at(b: Sample, c: Sample) -> Interval:
    return difference_sequence(b, c, alpha=ALPHA, planned_n=HORIZON)


def fixed_at(b: Sample, c: Sample) -> Interval:
    return fixed_horizon_interval(b, c, alpha=ALPHA)


def unpooled_sequence_at(b: Sample, c: Sample) -> Interval:
    """The paper's boundary with the plug-in (unpooled) variance only."""
    if b.n < 2 or c.n < 2:
        return Interval(c.mean - b.mean, -math.inf, math.inf, ALPHA)
    variance = b.variance / b.n + c.variance / c.n
    half = boundary(variance, b.n + c.n, ALPHA, mixture_rho(ALPHA, HORIZON))
    return Interval(c.mean - b.mean, c.mean - b.mean - half, c.mean - b.mean + half, ALPHA)


def normal(rng: np.random.Generator, candidate: bool, shape: tuple[int, int]) -> np.ndarray:
    return rng.normal(1.3, 2.0, shape) if candidate else rng.normal(1.0, 1.0, shape)


def bernoulli(rng: np.random.Generator, candidate: bool, shape: tuple[int, int]) -> np.ndarray:
    return (rng.random(shape) < 0.05).astype(float)


def not_above_alpha(rate: float) -> bool:
    """The observed miss rate is not significantly above ``alpha`` (one-sided, at 1 %)."""
    misses = round(rate * SEQUENCES)
    return bool(stats.binomtest(misses, SEQUENCES, ALPHA, alternative="greater").pvalue > 0.01)


@pytest.mark.parametrize(("draw", "truth"), [(normal, 0.3), (bernoulli, 0.0)])
def test_sequence_is_time_uniform_and_peeking_at_a_fixed_interval_is_not(
    draw: Draw, truth: float
) -> None:
    sequences = looks(draw, seed=7)
    sequence_rate = ever_misses(sequences, sequence_at, truth)
    fixed_rate = ever_misses(sequences, fixed_at, truth)
    print(f"{draw.__name__}: sequence {sequence_rate:.3f}, fixed-horizon {fixed_rate:.3f}")
    assert sequence_rate <= ALPHA or not_above_alpha(sequence_rate)
    assert fixed_rate > 2 * ALPHA


def test_rare_events_in_the_small_arm_need_the_pooled_variance() -> None:
    """Why V is never below the pooled variance: the plug-in one misses far too often."""
    sequences = looks(bernoulli, seed=7)
    unpooled_rate = ever_misses(sequences, unpooled_sequence_at, 0.0)
    print(f"bernoulli: unpooled sequence {unpooled_rate:.3f}")
    assert unpooled_rate > 2 * ALPHA
    assert ever_misses(sequences, sequence_at, 0.0) <= ALPHA


def test_sample_is_numpys_mean_and_unbiased_variance() -> None:
    values = np.random.default_rng(1).normal(3.0, 2.0, 57)
    sample = Sample.of(values.tolist())
    assert sample.n == 57
    assert sample.mean == pytest.approx(np.mean(values), rel=1e-12)
    assert sample.variance == pytest.approx(np.var(values, ddof=1), rel=1e-12)
    assert Sample.of([]) == Sample(0, 0.0, 0.0)
    assert Sample.of([4.0]) == Sample(1, 4.0, 0.0)
    assert Sample.of([0.1] * 7) == Sample(7, 0.1, 0.0)  # constants are exact


@pytest.mark.parametrize(("successes", "n"), [(0, 0), (0, 1), (1, 1), (0, 5), (3, 10), (10, 10)])
def test_counts_are_the_sample_of_zeros_and_ones(successes: int, n: int) -> None:
    expected = Sample.of([1.0] * successes + [0.0] * (n - successes))
    actual = Sample.of_counts(successes, n)
    assert actual.n == expected.n
    assert actual.mean == pytest.approx(expected.mean)
    assert actual.variance == pytest.approx(expected.variance)


def test_invalid_summaries_are_refused() -> None:
    with pytest.raises(ValueError, match="successes"):
        Sample.of_counts(6, 5)
    with pytest.raises(ValueError, match="finite"):
        Sample.of([1.0, math.nan])
    with pytest.raises(ValueError, match="variance"):
        Sample(3, 1.0, -0.5)


def test_boundary_shrinks_with_data_and_widens_with_confidence() -> None:
    rho = mixture_rho(ALPHA, 1000)
    sizes = (10, 100, 1000, 10_000, 100_000)
    widths = [boundary(1.0 / n, n, ALPHA, rho) for n in sizes]  # unit variance per value
    assert widths == sorted(widths, reverse=True)
    assert widths[-1] < 0.02
    by_alpha = [boundary(1e-3, 1000, alpha, rho) for alpha in (0.001, 0.01, 0.05, 0.2)]
    assert by_alpha == sorted(by_alpha, reverse=True)
    assert boundary(0.0, 1000, ALPHA, rho) == 0.0
    with pytest.raises(ValueError, match="alpha"):
        boundary(1.0, 10, 1.0, rho)


@pytest.mark.parametrize("alpha", [0.01, 0.05, 0.1])
@pytest.mark.parametrize("planned_n", [100, 3000, 100_000])
def test_mixture_rho_makes_the_planned_size_near_tightest(alpha: float, planned_n: int) -> None:
    variance = 1.0 / planned_n  # the variance of a mean of planned_n unit-variance values

    def width(rho: float) -> float:
        return boundary(variance, planned_n, alpha, rho)

    tuned = width(mixture_rho(alpha, planned_n))
    assert tuned < width(mixture_rho(alpha, planned_n // 10))
    assert tuned < width(mixture_rho(alpha, planned_n * 10))
    best = optimize.minimize_scalar(
        lambda log_rho: width(math.exp(log_rho)), bounds=(-15.0, 5.0), method="bounded"
    )
    assert tuned <= best.fun * (1 + 1e-4)
    # Always-valid costs width: more than the fixed-horizon z interval at the planned size.
    assert tuned > stats.norm.ppf(1 - alpha / 2) * math.sqrt(variance)


def test_sequence_detects_a_doubled_error_rate() -> None:
    rng = np.random.default_rng(11)
    baseline = Sample.of_counts(int((rng.random(2000) < 0.05).sum()), 2000)
    candidate = Sample.of_counts(int((rng.random(2000) < 0.10).sum()), 2000)
    interval = difference_sequence(baseline, candidate, alpha=ALPHA, planned_n=4000)
    assert interval.excludes_zero()
    assert interval.low > 0
    assert interval.estimate == pytest.approx(candidate.mean - baseline.mean)


def test_too_little_data_is_never_a_decision() -> None:
    one = Sample.of([5.0])
    many = Sample.of([0.0] * 100)
    for interval in (
        difference_sequence(one, many, alpha=ALPHA, planned_n=100),
        difference_sequence(many, one, alpha=ALPHA, planned_n=100),
        lift_sequence(Sample.of([1.0, 2.0]), one, alpha=ALPHA, planned_n=100),
        fixed_horizon_interval(one, many, alpha=ALPHA),
    ):
        assert (interval.low, interval.high) == (-math.inf, math.inf)
        assert not interval.excludes_zero()


def test_constant_arms() -> None:
    no_errors = Sample.of_counts(0, 500)
    same = difference_sequence(no_errors, Sample.of_counts(0, 50), alpha=ALPHA, planned_n=100)
    assert (same.estimate, same.low, same.high) == (0.0, 0.0, 0.0)
    assert not same.excludes_zero()
    # Equal constants summarised with different rounding are still no difference.
    rounded = difference_sequence(
        Sample(3, 0.1, 0.0), Sample(7, 0.1 + 2e-17, 0.0), alpha=ALPHA, planned_n=100
    )
    assert not rounded.excludes_zero()
    # Complete separation: centred on the difference, with the pooled variance's width.
    apart = difference_sequence(
        Sample.of_counts(0, 20), Sample.of_counts(2, 2), alpha=ALPHA, planned_n=100
    )
    assert apart.estimate == 1.0
    pooled = 2 / 22 * (20 / 22) * 22 / 21 * (1 / 2 + 1 / 20)
    half = boundary(pooled, 22, ALPHA, mixture_rho(ALPHA, 100))
    assert [apart.low, apart.high] == pytest.approx([1 - half, 1 + half])
    assert 0 < apart.low < 1
    assert apart.excludes_zero()


def test_lift_is_the_relative_difference_with_the_delta_method_width() -> None:
    baseline, candidate = Sample(400, 2.0, 1.0), Sample(100, 2.5, 4.0)
    interval = lift_sequence(baseline, candidate, alpha=ALPHA, planned_n=500)
    assert interval.estimate == pytest.approx(0.25)
    variance = (4.0 / 100 + 1.25**2 * 1.0 / 400) / 2.0**2  # larger than the pooled one here
    half = boundary(variance, 500, ALPHA, mixture_rho(ALPHA, 500))
    assert interval.low == pytest.approx(0.25 - half)
    assert interval.high == pytest.approx(0.25 + half)
    unbounded = lift_sequence(Sample(10, 0.0, 0.0), candidate, alpha=ALPHA, planned_n=500)
    assert (unbounded.low, unbounded.high) == (-math.inf, math.inf)


def test_lift_uses_the_pooled_variance_when_the_small_arm_looks_steadier() -> None:
    baseline, candidate = Sample(900, 2.0, 4.0), Sample(100, 2.5, 1.0)
    interval = lift_sequence(baseline, candidate, alpha=ALPHA, planned_n=1000)
    pooled = (899 * 4.0 + 99 * 1.0 + 900 * 100 / 1000 * 0.5**2) / 999
    variance = pooled * (1 / 100 + 1.25**2 / 900) / 2.0**2
    assert variance > (1.0 / 100 + 1.25**2 * 4.0 / 900) / 2.0**2
    half = boundary(variance, 1000, ALPHA, mixture_rho(ALPHA, 1000))
    assert interval.high - interval.low == pytest.approx(2 * half)


def test_lift_covers_the_true_lift_of_skewed_data() -> None:
    rng = np.random.default_rng(5)
    misses = 0
    for _ in range(200):
        baseline = Sample.of(rng.exponential(2.0, 1500).tolist())
        candidate = Sample.of(rng.exponential(2.2, 500).tolist())
        interval = lift_sequence(baseline, candidate, alpha=ALPHA, planned_n=2000)
        misses += not interval.low <= 0.1 <= interval.high
    assert misses / 200 <= ALPHA


def test_fixed_horizon_interval_is_the_z_interval() -> None:
    baseline, candidate = Sample(100, 1.0, 4.0), Sample(50, 1.5, 2.0)
    interval = fixed_horizon_interval(baseline, candidate, alpha=ALPHA)
    half = stats.norm.ppf(0.975) * math.sqrt(4.0 / 100 + 2.0 / 50)
    assert [interval.low, interval.high] == pytest.approx([0.5 - half, 0.5 + half])


def test_sample_ratio_matches_scipys_chisquare() -> None:
    even = sample_ratio_mismatch([500, 500], [1.0, 1.0])
    assert (even.statistic, even.p_value, even.mismatch) == (0.0, 1.0, False)
    skewed = sample_ratio_mismatch([600, 400], [50.0, 50.0])
    assert skewed.mismatch
    assert skewed.expected_shares == (0.5, 0.5)
    expected = stats.chisquare([600, 400], [500.0, 500.0])
    assert skewed.statistic == pytest.approx(expected.statistic)
    assert skewed.p_value == pytest.approx(expected.pvalue)
    canary = sample_ratio_mismatch([905, 52, 43], [90.0, 5.0, 5.0])
    reference = stats.chisquare([905, 52, 43], [900.0, 50.0, 50.0])
    assert canary.p_value == pytest.approx(reference.pvalue)
    assert not canary.mismatch
    # An idle arm of weight 0 drops out of the test.
    retired = sample_ratio_mismatch([905, 52, 43, 0], [90.0, 5.0, 5.0, 0.0])
    assert retired.p_value == pytest.approx(reference.pvalue)
    assert retired.expected_shares[3] == 0.0


def test_sample_ratio_edge_cases() -> None:
    stray = sample_ratio_mismatch([990, 10], [1.0, 0.0])
    assert (stray.p_value, stray.mismatch) == (0.0, True)
    assert not sample_ratio_mismatch([1000, 0], [1.0, 0.0]).mismatch
    idle = sample_ratio_mismatch([0, 0], [1.0, 1.0])
    assert (idle.p_value, idle.mismatch) == (1.0, False)
    with pytest.raises(ValueError, match="weights"):
        sample_ratio_mismatch([1, 2], [1.0, -1.0])
    with pytest.raises(ValueError, match="2 counts but 3 weights"):
        sample_ratio_mismatch([1, 2], [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="positive"):
        sample_ratio_mismatch([1, 2], [0.0, 0.0])


def test_exceedance_compares_tails() -> None:
    rng = np.random.default_rng(3)
    baseline = rng.lognormal(5.0, 0.5, 4000)
    same = rng.lognormal(5.0, 0.5, 4000)
    base, cand, threshold = exceedance(baseline.tolist(), same.tolist())
    assert threshold == pytest.approx(np.quantile(np.concatenate([baseline, same]), 0.95))
    assert base.mean == pytest.approx(0.05, abs=0.015)
    assert cand.mean == pytest.approx(0.05, abs=0.015)
    assert not difference_sequence(base, cand, alpha=ALPHA, planned_n=8000).excludes_zero()

    slower = 1.5 * rng.lognormal(5.0, 0.5, 4000)
    base, cand, _ = exceedance(baseline.tolist(), slower.tolist())
    assert cand.mean > base.mean
    assert difference_sequence(base, cand, alpha=ALPHA, planned_n=8000).low > 0


def test_exceedance_and_percentile_of_empty_arms() -> None:
    base, cand, threshold = exceedance([], [1.0, 2.0, 3.0])
    assert base == Sample(0, 0.0, 0.0)
    assert cand.n == 3
    assert threshold == pytest.approx(np.quantile([1.0, 2.0, 3.0], 0.95))
    assert math.isnan(exceedance([], [])[2])
    assert percentile([], 0.95) is None
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == pytest.approx(2.5)
    with pytest.raises(ValueError, match="q must be"):
        percentile([1.0], 95)
    with pytest.raises(ValueError, match="quantile"):
        exceedance([1.0], [2.0], quantile=1.0)


def test_sample_ratio_bayes_factor_is_the_beta_binomial_ratio() -> None:
    # With two arms the Dirichlet-multinomial mixture is the beta-binomial: an independent
    # closed form of the factor.
    result = sample_ratio_mismatch([1560, 440], [80.0, 20.0])
    a = SRM_CONCENTRATION * np.array([0.2, 0.8])
    reference = stats.betabinom.pmf(440, 2000, a[0], a[1]) / stats.binom.pmf(440, 2000, 0.2)
    assert result.bayes_factor == pytest.approx(reference, rel=1e-9)
    broken = sample_ratio_mismatch([300, 200], [50.0, 50.0])
    assert broken.mismatch and broken.bayes_factor >= 1000


def test_sample_ratio_check_stays_valid_when_looked_at_every_interval() -> None:
    # 100 cumulative looks at a correct 90/5/5 split: the sequential decision raises a false
    # alarm at most `threshold` of the time, where chi-square at the same level does not.
    rng = np.random.default_rng(2022)
    runs, looks, per_look, threshold = 400, 100, 40, 0.05
    shares = [0.9, 0.05, 0.05]
    sequential = chi_square = 0
    for _ in range(runs):
        counts = np.cumsum(rng.multinomial(per_look, shares, size=looks), axis=0)
        results = [
            sample_ratio_mismatch(c.tolist(), [90.0, 5.0, 5.0], threshold=threshold) for c in counts
        ]
        sequential += any(r.mismatch for r in results)
        chi_square += any(r.p_value < threshold for r in results)
    print(
        f"SRM false alarms over {looks} looks: sequential {sequential}/{runs}, "
        f"chi-square {chi_square}/{runs}"
    )
    assert stats.binomtest(sequential, runs, threshold, alternative="greater").pvalue > 0.01
    assert chi_square > 3 * runs * threshold  # what a fixed-sample test does when looked at
