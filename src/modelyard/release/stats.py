"""Statistics of canary analysis and A/B experiments: always-valid intervals and SRM.

Pure computation (no I/O). A rollout looks at its metrics every interval and stops as soon as
the candidate is clearly worse (or better). An ordinary fixed-horizon confidence interval
checked at every look raises false alarms far more often than its ``alpha`` (8 times as
often with 60 looks in the tests' simulation), because it is valid at one sample size fixed
in advance. The intervals here form a *confidence sequence*: with probability at least
``1 - alpha`` they cover the true value at every sample size simultaneously, so they may be
checked after every observation and the analysis may stop whenever one excludes zero.

The boundary
------------
Asymptotic confidence sequence with the Gaussian-mixture boundary: I. Waudby-Smith,
D. Arbour, R. Sinha, E. H. Kennedy and A. Ramdas, "Time-uniform central limit theory and
asymptotic confidence sequences", Annals of Statistics 52(6), 2024, arXiv:2103.06476,
Theorem 2.2 and eq. (8). For i.i.d. observations with sample mean ``m_t`` and sample
standard deviation ``s_t`` after ``t`` observations, ::

    m_t ± s_t · sqrt( 2(t·rho² + 1) / (t²·rho²) · log( sqrt(t·rho² + 1) / alpha ) )

is a ``(1 - alpha)`` asymptotic confidence sequence for the mean: its coverage holds
uniformly over all ``t`` (in the asymptotic sense of the paper; it needs a finite variance,
no sub-Gaussian or boundedness assumption). ``rho > 0`` only moves the sample size at which
the sequence is tightest. Writing ``x = t·rho²``, the half-width is
``s_t / sqrt(t) · sqrt(2(x + 1)/x · (log(x + 1)/2 - log alpha))``; its minimum over ``x``
solves ``x = -2 log alpha + log(x + 1)``, and one fixed-point step from
``x = -2 log alpha`` gives the recommendation of the paper (after Howard, Ramdas, McAuliffe
& Sekhon, "Time-uniform, nonparametric, nonasymptotic confidence sequences", Annals of
Statistics 49(2), 2021)::

    rho² = (-2 log alpha + log(-2 log alpha + 1)) / t*

which makes the sequence (near-)tightest at the planned sample size ``t*``
(:func:`mixture_rho`; within 0.003 % of the exact minimum at ``alpha = 0.05``, which the
tests check numerically). At ``alpha = 0.05`` the width at ``t*`` is 1.55 times the
fixed-horizon ``z`` interval's (1.39 at ``alpha = 0.01``): the price of looking as often as
one likes.

Two arms
--------
For the difference ``candidate - baseline`` of two independent arms with sizes ``n_c``,
``n_b`` (``N = n_c + n_b``) and sample variances ``s_c²``, ``s_b²``, the variance of the
estimated difference is ``V = s_c²/n_c + s_b²/n_b``, and the one-sample formula is used with
``sigma_hat² = N·V`` and ``t = N``, that is ::

    half-width = sqrt( V · 2(N·rho² + 1)/(N·rho²) · log( sqrt(N·rho² + 1) / alpha ) )

Why: under a fixed allocation (each unit goes to the candidate with probability ``pi``), the
difference of the two sample means is asymptotically the mean of ``N`` i.i.d. terms
``psi = A(Y - mu_c)/pi - (1 - A)(Y - mu_b)/(1 - pi)`` (``A`` = 1 for the candidate), whose
variance is ``sigma_c²/pi + sigma_b²/(1 - pi)``. With ``pi ≈ n_c/N`` that is ``N·V``: one
"unit" of the experiment is one allocated request, and the one-sample sequence applies to
the mean of ``psi`` with ``t = N``. (The paper's causal examples likewise apply the boundary
to a per-unit influence-function score of the effect; ``psi`` is that score for a
difference of means.) ``planned_n`` is therefore the planned *total* of both arms.

The small arm's variance (our addition, not the paper's). A canary is a small arm, and its
metrics are often rare events. Until its first errors show up, its sample variance is far
below the true one (0 errors in 50 requests give ``s_c² = 0``), exactly when its mean is
too low, and the plug-in sequence then "finds" a difference that is not there: in the
tests' simulation (error rate 5 % in both arms, 10 % of traffic to the candidate, a look
every 50 requests up to 3000) it missed the true difference 0 in 21 % of the runs instead
of at most 5 %. So ``V`` is the larger of the unpooled variance above and the pooled one,
``s²·(1/n_c + 1/n_b)`` with ``s²`` the sample variance of both arms' values together (the
two-sample z-test's variance under "no difference"). Both are consistent when the arms do
not differ and the unpooled one always is, so the sequence is never narrower than the
paper's and keeps its asymptotic guarantee; under no difference it is asymptotically the
same sequence. It costs width only when the small arm looks less variable than the pool
(for error rates, a candidate with fewer errors than the baseline), so claims of
improvement can need more data than claims of regression. With that, the same simulation
misses in 0-1 % of the runs.

Edge cases
----------
- An arm with fewer than 2 observations gives the infinite interval: too little data is
  never a decision.
- Both arms constant with the same value (no errors at all in either): ``V = 0`` and the
  interval is ``[0, 0]``, which does not exclude zero. Different constants (every request
  failing in one arm, none in the other) have a positive pooled variance, so the interval
  is centred on the difference with an honest width instead of the point ``[d, d]`` the
  unpooled variance would give (0 of 20 baseline requests failing vs 2 of 2 canary ones:
  ``[0.28, 1.72]``).
- The half-width is floored at ``1e-9`` times the larger mean's magnitude, so that
  summaries rounded differently (sums of squares, counters) never turn a rounding error
  into a "significant" difference.
- The guarantee is asymptotic. With rare events in a small arm, coverage of a *non-zero*
  difference can still fall below ``1 - alpha`` (7-9 % misses for 5 % vs 10 % errors at
  10 % allocation in the simulation above), while false alarms under no difference stay
  below ``alpha``.

Sample-ratio mismatch: a mismatch means the assignment is broken and no comparison of the
arms can be trusted. It is checked at every measurement, so a fixed-sample test would raise
false alarms at a rate that grows with the number of looks (a chi-square test at
p < 0.001 on 30 cumulative looks: about 1.2 % of A/A runs; with the longer group-sequential
analyses it pushed the A/A false-abort rate past ``alpha``). The decision is therefore
sequential: the Dirichlet-multinomial Bayes factor of M. Lindon and A. Malek, "Anytime-valid
inference for multinomial count data", NeurIPS 2022. With counts ``x_i`` (total ``n``),
expected shares ``p_i`` and the prior ``Dirichlet(a_i)``, ``a_i = SRM_CONCENTRATION·p_i``::

    BF = Γ(Σa) / Γ(Σa + n) · Π Γ(a_i + x_i) / Γ(a_i) / Π p_i^x_i

is a nonnegative martingale with mean 1 under the configured shares, so by Ville's
inequality ``P(BF ever >= 1/threshold) <= threshold`` however often it is looked at.
Pearson's chi-square (``scipy.stats.chisquare``) is still reported as the familiar p-value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelyard.lazy import lazy_module

if TYPE_CHECKING:
    import numpy as np
else:  # imported on first use: the server imports this module at start-up (issue 8)
    np = lazy_module("numpy")
stats = lazy_module("scipy.stats")
special = lazy_module("scipy.special")

# The Dirichlet prior's total weight in the SRM Bayes factor: small enough that a broken split
# (300 against 200 where 250 each were due) is found after a few hundred requests.
SRM_CONCENTRATION = 100.0
_MAX_LOG_FACTOR = 700.0  # exp() of more overflows; shown as a huge factor

# Half-widths never go below this fraction of the means' magnitude: rounding, not signal.
RELATIVE_ROUNDING = 1e-9


@dataclass(frozen=True)
class Sample:
    """Summary of one arm's observations: count, mean and unbiased (ddof=1) variance."""

    n: int
    mean: float
    variance: float  # 0.0 when n < 2

    def __post_init__(self) -> None:
        if self.n < 0:
            raise ValueError(f"a sample size cannot be negative, got {self.n}")
        if not math.isfinite(self.mean):
            raise ValueError(f"a sample mean must be finite, got {self.mean}")
        if not (self.variance >= 0 and math.isfinite(self.variance)):
            raise ValueError(f"a sample variance must be finite and >= 0, got {self.variance}")

    @classmethod
    def of(cls, values: Sequence[float]) -> Sample:
        """Summary of raw values; the empty sequence gives ``n=0, mean=0, variance=0``."""
        array = finite_array(values)
        if array.size == 0:
            return cls(0, 0.0, 0.0)
        if np.all(array == array[0]):
            # Exact for constants: a rounded mean would make equal constants differ.
            return cls(int(array.size), float(array[0]), 0.0)
        variance = float(np.var(array, ddof=1)) if array.size > 1 else 0.0
        return cls(int(array.size), float(np.mean(array)), variance)

    @classmethod
    def of_counts(cls, successes: int, n: int) -> Sample:
        """Summary of ``n`` Bernoulli observations of which ``successes`` are 1."""
        if not 0 <= successes <= n:
            raise ValueError(f"successes must be between 0 and n={n}, got {successes}")
        if n == 0:
            return cls(0, 0.0, 0.0)
        p = successes / n
        variance = n / (n - 1) * p * (1 - p) if n > 1 else 0.0
        return cls(n, p, variance)


@dataclass(frozen=True)
class Interval:
    """An interval for ``candidate - baseline`` (or the relative lift) at level ``1 - alpha``."""

    estimate: float
    low: float
    high: float
    alpha: float

    def excludes_zero(self) -> bool:
        """Whether the data already decide the sign of the difference."""
        return self.low > 0 or self.high < 0


@dataclass(frozen=True)
class SampleRatio:
    """Observed arm sizes against the configured traffic shares: the sequential Bayes factor
    decides (module docstring), the chi-square test is shown."""

    counts: tuple[int, ...]
    expected_shares: tuple[float, ...]
    statistic: float  # Pearson's chi-square
    p_value: float  # its p-value at this look alone
    mismatch: bool  # bayes_factor >= 1 / threshold
    bayes_factor: float = 1.0  # of "the shares are off" against "as configured"


def mixture_rho(alpha: float, planned_n: int) -> float:
    """The mixture parameter that makes the boundary near-tightest at ``planned_n``."""
    _check_alpha(alpha)
    if planned_n < 1:
        raise ValueError(f"planned_n must be at least 1, got {planned_n}")
    log_alpha = -2 * math.log(alpha)
    return math.sqrt((log_alpha + math.log(log_alpha + 1)) / planned_n)


def boundary(variance_of_estimate: float, n: int, alpha: float, rho: float) -> float:
    """Half-width of the Gaussian-mixture asymptotic confidence sequence after ``n`` units.

    ``variance_of_estimate`` is the estimated variance of the mean (``sigma_hat²/n``, or ``V``
    for a difference of two arms); the result is
    ``sqrt(variance_of_estimate · 2(n·rho² + 1)/(n·rho²) · log(sqrt(n·rho² + 1)/alpha))``.
    """
    _check_alpha(alpha)
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if not (rho > 0 and math.isfinite(rho)):
        raise ValueError(f"rho must be positive and finite, got {rho}")
    if not variance_of_estimate >= 0:
        raise ValueError(f"variance_of_estimate must be >= 0, got {variance_of_estimate}")
    x = n * rho * rho
    log_term = 0.5 * math.log1p(x) - math.log(alpha)
    return math.sqrt(variance_of_estimate * 2 * (x + 1) / x * log_term)


def difference_sequence(
    baseline: Sample, candidate: Sample, *, alpha: float, planned_n: int
) -> Interval:
    """Always-valid ``1 - alpha`` interval for ``candidate.mean - baseline.mean``.

    ``planned_n`` is the total of both arms at which the interval should be tightest.
    """
    rho = mixture_rho(alpha, planned_n)
    estimate = candidate.mean - baseline.mean
    if baseline.n < 2 or candidate.n < 2:
        return _unbounded(estimate, alpha)
    half = boundary(difference_variance(baseline, candidate), baseline.n + candidate.n, alpha, rho)
    return _around(estimate, half, _rounding(baseline, candidate), alpha)


def lift_sequence(baseline: Sample, candidate: Sample, *, alpha: float, planned_n: int) -> Interval:
    """Always-valid ``1 - alpha`` interval for the relative lift ``(c - b) / b``.

    Delta method: ``Var ≈ (V_c + (mu_c/mu_b)² V_b) / mu_b²`` with ``V = s²/n`` per arm (or, when
    larger, the same with the pooled variance of both arms in place of each arm's, as in
    :func:`difference_sequence`), under the same boundary. Infinite when the baseline mean is
    0 or an arm has fewer than 2 observations.
    """
    rho = mixture_rho(alpha, planned_n)
    if baseline.mean == 0:
        return _unbounded(
            0.0 if candidate.mean == 0 else math.copysign(math.inf, candidate.mean), alpha
        )
    ratio = candidate.mean / baseline.mean
    estimate = ratio - 1
    if baseline.n < 2 or candidate.n < 2:
        return _unbounded(estimate, alpha)
    unpooled = candidate.variance / candidate.n + ratio * ratio * baseline.variance / baseline.n
    pooled = _pooled_variance(baseline, candidate) * (1 / candidate.n + ratio * ratio / baseline.n)
    variance = max(unpooled, pooled) / (baseline.mean * baseline.mean)
    half = boundary(variance, baseline.n + candidate.n, alpha, rho)
    return _around(estimate, half, _rounding(baseline, candidate) / abs(baseline.mean), alpha)


def fixed_horizon_interval(baseline: Sample, candidate: Sample, *, alpha: float) -> Interval:
    """The ordinary Welch/z interval ``difference ± z_{1-alpha/2}·sqrt(s_c²/n_c + s_b²/n_b)``.

    Valid at one sample size fixed in advance; checked at every look, it raises false alarms
    far more often than ``alpha``. Kept to show (tests, docs) what the sequence fixes.
    """
    _check_alpha(alpha)
    estimate = candidate.mean - baseline.mean
    if baseline.n < 2 or candidate.n < 2:
        return _unbounded(estimate, alpha)
    z = float(stats.norm.ppf(1 - alpha / 2))
    half = z * math.sqrt(_welch_variance(baseline, candidate))
    return _around(estimate, half, _rounding(baseline, candidate), alpha)


def sample_ratio_mismatch(
    counts: Sequence[int], weights: Sequence[float], *, threshold: float = 0.001
) -> SampleRatio:
    """Arm sizes against shares proportional to ``weights``: a mismatch when the sequential
    Bayes factor reaches ``1 / threshold`` (valid at every look; module docstring), with
    Pearson's chi-square and its p-value beside it.

    An arm of weight 0 must receive nothing: any count there is a mismatch (``p_value`` 0).
    No traffic at all, or a single arm with positive weight, cannot mismatch (``p_value`` 1).
    """
    if len(counts) != len(weights):
        raise ValueError(f"{len(counts)} counts but {len(weights)} weights")
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be between 0 and 1 (exclusive), got {threshold}")
    if any(count < 0 for count in counts):
        raise ValueError(f"counts cannot be negative, got {list(counts)}")
    if any(not (weight >= 0 and math.isfinite(weight)) for weight in weights):
        raise ValueError(f"weights must be finite and >= 0, got {list(weights)}")
    total_weight = math.fsum(weights)
    if total_weight <= 0:
        raise ValueError("at least one weight must be positive")
    observed = tuple(int(count) for count in counts)
    shares = tuple(float(weight) / total_weight for weight in weights)
    total = sum(observed)
    if any(count > 0 and share == 0 for count, share in zip(observed, shares, strict=True)):
        return SampleRatio(observed, shares, math.inf, 0.0, True, math.inf)
    active = [i for i, share in enumerate(shares) if share > 0]
    if total == 0 or len(active) < 2:
        return SampleRatio(observed, shares, 0.0, 1.0, False)
    counted = [observed[i] for i in active]
    expected = [shares[i] for i in active]
    result = stats.chisquare(counted, [total * share for share in expected])
    log_factor = _log_bayes_factor(counted, expected)
    return SampleRatio(
        observed,
        shares,
        float(result.statistic),
        float(result.pvalue),
        log_factor >= -math.log(threshold),
        math.exp(min(log_factor, _MAX_LOG_FACTOR)),
    )


def _log_bayes_factor(counts: Sequence[int], shares: Sequence[float]) -> float:
    """log of Lindon & Malek's Dirichlet-multinomial Bayes factor (module docstring)."""
    prior = [SRM_CONCENTRATION * share for share in shares]
    total = sum(counts)
    log_factor = special.gammaln(sum(prior)) - special.gammaln(sum(prior) + total)
    for count, a, share in zip(counts, prior, shares, strict=True):
        log_factor += special.gammaln(a + count) - special.gammaln(a) - count * math.log(share)
    return float(log_factor)


def exceedance(
    baseline: Sequence[float], candidate: Sequence[float], *, quantile: float = 0.95
) -> tuple[Sample, Sample, float]:
    """A tail quantile (latency p95) compared as a proportion above a pooled threshold.

    The threshold is the pooled ``quantile`` of both arms' values; each arm becomes a Bernoulli
    sample of "value > threshold". Under equal distributions both proportions are about
    ``1 - quantile`` (less when values tie at the threshold), so :func:`difference_sequence`
    on the two samples tests whether the candidate's tail is heavier. Empty arms give
    ``n = 0`` samples; with no values at all the threshold is NaN.
    """
    if not 0 < quantile < 1:
        raise ValueError(f"quantile must be between 0 and 1 (exclusive), got {quantile}")
    base = finite_array(baseline)
    cand = finite_array(candidate)
    pooled = np.concatenate([base, cand])
    if pooled.size == 0:
        return Sample(0, 0.0, 0.0), Sample(0, 0.0, 0.0), math.nan
    threshold = float(np.quantile(pooled, quantile))
    return (
        Sample.of_counts(int(np.count_nonzero(base > threshold)), int(base.size)),
        Sample.of_counts(int(np.count_nonzero(cand > threshold)), int(cand.size)),
        threshold,
    )


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (``0 <= q <= 1``, numpy's linear interpolation); None when empty."""
    if not 0 <= q <= 1:
        raise ValueError(f"q must be between 0 and 1, got {q}")
    array = finite_array(values)
    return float(np.quantile(array, q)) if array.size else None


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1 (exclusive), got {alpha}")


def _welch_variance(baseline: Sample, candidate: Sample) -> float:
    """The unpooled variance of the estimated difference of the two means."""
    return candidate.variance / candidate.n + baseline.variance / baseline.n


def _pooled_variance(baseline: Sample, candidate: Sample) -> float:
    """The sample variance (ddof=1) of both arms' values together."""
    total = baseline.n + candidate.n
    gap = candidate.mean - baseline.mean
    within = (baseline.n - 1) * baseline.variance + (candidate.n - 1) * candidate.variance
    return (within + baseline.n * candidate.n / total * gap * gap) / (total - 1)


def difference_variance(baseline: Sample, candidate: Sample) -> float:
    """``V``: the larger of the unpooled and pooled variances of the difference."""
    pooled = _pooled_variance(baseline, candidate) * (1 / candidate.n + 1 / baseline.n)
    return max(_welch_variance(baseline, candidate), pooled)


def _rounding(baseline: Sample, candidate: Sample) -> float:
    return RELATIVE_ROUNDING * max(abs(baseline.mean), abs(candidate.mean))


def _around(estimate: float, half: float, floor: float, alpha: float) -> Interval:
    half = max(half, floor)
    return Interval(estimate, estimate - half, estimate + half, alpha)


def _unbounded(estimate: float, alpha: float) -> Interval:
    return Interval(estimate, -math.inf, math.inf, alpha)


def finite_array(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """``values`` as a flat float array; anything else (NaN, inf, nesting) is an error."""
    array = np.asarray(values, dtype=float)
    if array.ndim != 1:
        raise ValueError("values must be a flat sequence of numbers")
    if not np.all(np.isfinite(array)):
        raise ValueError("values must be finite numbers")
    return array
