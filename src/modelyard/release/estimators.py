"""Per-metric comparisons of candidate and baseline, as the z statistics a sequential test reads.

Pure computation (no I/O). Each comparison gives an estimate of ``candidate - baseline`` on a
scale that suits the metric, its standard error, the information of the look (the effective
sample size ``n_b·n_c/(n_b + n_c)``) and one-sided z statistics: :meth:`Comparison.worse_z`
for "the candidate is not worse" (large = evidence it is worse) and
:meth:`Comparison.within_margin_z` for "the candidate is worse by the margin or more" (large =
evidence it is within the margin: non-inferiority). Under each null the z is (at least
approximately) standard normal at its boundary, which is what group-sequential boundaries on
z assume.

Rates (error rate): the exact conditional test
---------------------------------------------
Given the ``k`` events of both arms together, under equal rates the candidate's events are
hypergeometric: ``k`` draws without replacement from ``n_b + n_c`` requests of which ``n_c``
are the candidate's. That is the binomial arms conditioned on their total (the distribution
of Fisher's exact test); for rare events it is the exact test of two Poisson rates, where the
candidate's events are ``Binomial(k, n_c/(n_b + n_c))``. It is exact at any rate and any
allocation, which the normal approximation is not: with 1 % errors in both arms and 50 or
100 canary requests against 950 or 1900, the Wald z of the difference claims "worse" in
0.2-0.5 % of the runs at ``alpha = 0.05`` and "better" in 37-60 % (its variance vanishes
with the small arm's errors), the exact z in 4.1-4.3 % and 0 % (the tests' simulation).

The p-value is the *mid-p* ``P(X > x) + P(X = x)/2``, turned into ``z = Φ⁻¹(1 - p)``. The
conservative ``P(X >= x)`` keeps the size below ``alpha`` always but, with few events, far
below it: over rates 0.1-5 %, 50-2000 requests and 5/10/50/95 % to the candidate, its exact
size at ``alpha = 0.05`` averages 1.1 % against the mid-p's 2.4 %, whose largest size is
5.5 % (50 baseline requests against 950 candidate ones at 5 %; at most 5 % in every canary
allocation of that grid, and at most ``alpha`` on it at ``alpha`` 0.01 and 0.001). The mid-p
also makes the two directions mirror images (``z_better = -z_worse``), and no events at all
give ``p = 1/2``, ``z = 0``: never evidence.

Non-inferiority of a rate is the score test of Farrington & Manning ("Test statistics and
sample size formulae for comparative binomial trials with null hypothesis of non-zero risk
difference or non-unity relative risk", Statistics in Medicine 9, 1990): the difference's
variance is evaluated at the maximum-likelihood rates restricted to the null boundary
(difference = margin), in the closed form of its Appendix (after Miettinen & Nurminen 1985,
whose variance is this one times ``N/(N - 1)``). Unlike the Wald variance it does not vanish
when an arm has no events, which would make "0 errors in 50 requests" look certain. At the
null's edge (1 % errors against 1 % + a 2 % margin) its exact size is 4.2-4.8 % with 100 of
1000 or of 2000 requests on the candidate, or 1000 of 2000 (Wald's: 16-19 % with 100); with
1900 of 2000 on the candidate it reaches 6.9 %.

Latency and TTFT: log scale
---------------------------
Latencies are heavy-tailed (near log-normal): a few slow requests swamp a difference of
means, and its Welch z is slow to become normal. They are compared as the difference of the
means of ``log(latency)``, the log of the ratio of the geometric means
(``exp(estimate) = 1.25``: the candidate is 25 % slower, typically). On the log scale a
log-normal is normal, so the z is well calibrated early, and more powerful: a candidate 1.4
times slower (log-normal, ``sigma = 1``), 50 requests against 1000, is found in 75 % of the
runs, against 47 % for the means of the raw values, whose z is skewed (1.8 % false alarms at
a nominal 5 %) besides less efficient: at critical values that give each exactly 5 %, 78 %
against 67 % (the tests' simulation). A margin on this scale is ``log(1 + relative
margin)``. Values below ``LOG_FLOOR_MS`` (1 ms) count as 1 ms: a cache hit or a rounded 0 ms
is "instant", not ``-inf``, and one such value cannot dominate the variance. A change
confined to the tail (same median, slower p99) is what ``stats.exceedance`` is for; the log
scale compares typical requests.

Means (feedback scores, cost)
-----------------------------
``z = estimate / sqrt(V)`` with the same ``V`` as the confidence sequences
(``stats.py``, "The small arm's variance"): the larger of Welch's unpooled variance and the
pooled one. A small arm that happens to show none of a skewed metric's rare large values
looks less variable exactly when its mean looks better, so Welch's variance alone overstates
the evidence that a candidate is within its margin: for a log-normal cost 10 % (the margin)
higher on 50 requests against 950 it says "within" in 12.6 % of the runs, ``V`` in 4.4 %.
Binary metrics (thumbs up) are rates: :func:`compare_rates`. Fewer than 2 values in an arm give
``standard_error = inf`` and z 0. The standard error is floored at ``RELATIVE_ROUNDING``
times the means' magnitude, as the intervals' half-widths are.

CUPED
-----
With a covariate measured before treatment, ``Y_adj = Y - theta·(X - mean X)`` has the same
difference of arm means in expectation and a smaller variance (A. Deng, Y. Xu, R. Kohavi and
T. Walker, "Improving the sensitivity of online controlled experiments by utilizing
pre-experiment data", WSDM 2013). ``theta`` is the within-arm covariance over the within-arm
variance of ``X``, pooled over both arms (each arm centred on its own means, so a treatment
effect on ``Y`` does not enter ``theta``), and ``mean X`` the mean of both arms together; the
same ``theta`` for both arms keeps the estimate unbiased. For a request the covariate is
``log(1 + prompt_tokens)`` (:func:`log_prompt_length`): the client chooses the prompt before
the model runs. Not the completion's tokens: the candidate changes those, and adjusting for a
consequence of the treatment biases the comparison.

A covariate is only pre-treatment if the candidate cannot change it, and prompt *tokens* are
counted by the version that served the request: a candidate with another tokenizer, or an
upstream that reports no usage, shifts them. Randomisation balances a true covariate, so when
the arms' covariate means differ beyond chance (two-sided ``p < 0.001``, the SRM check's
threshold) the comparison is made without adjustment and its ``scale`` says so. A shift too
small to detect still biases the estimate by ``theta`` times the shift.

Every z is clipped to ``±Z_LIMIT``: a p-value of ``1e-300``, past any boundary, and finite
for JSON.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelyard.lazy import lazy_module
from modelyard.release.stats import RELATIVE_ROUNDING, Sample, difference_variance, finite_array

if TYPE_CHECKING:
    from typing import TypeAlias

    import numpy as np

    Values: TypeAlias = Sequence[float] | np.ndarray
else:  # imported on first use, as in stats.py (issue 8)
    np = lazy_module("numpy")
stats = lazy_module("scipy.stats")

Z_LIMIT = 37.0  # Φ⁻¹(1 - 1e-300)
LOG_FLOOR_MS = 1.0
BALANCE_Z = 3.29  # two-sided p = 0.001: the covariate differs by treatment, not by chance
MEAN = "mean"
LOG_SCALE = "log latency (ratio of geometric means)"
RATE = "rate"


@dataclass(frozen=True, kw_only=True)
class Comparison:
    """``candidate - baseline`` on the compared scale, with what a sequential test needs."""

    estimate: float  # signed as the metric's own (not oriented); NaN when an arm is empty
    standard_error: float  # of the estimate; inf when it cannot be estimated
    z: float  # the estimate's own test statistic: positive = candidate higher
    information: float  # effective sample size n_b·n_c/(n_b + n_c)
    baseline_n: int
    candidate_n: int
    scale: str  # what the estimate is on: "rate", "mean", "log latency (...)"
    variance_reduction: float = 0.0  # share of the estimate's variance CUPED removed

    def worse_z(self, lower_is_better: bool) -> float:
        """z for the null "the candidate is not worse"; large = evidence it is worse."""
        return self.z if lower_is_better else -self.z

    def within_margin_z(self, margin: float, lower_is_better: bool) -> float:
        """z for the null "the candidate is worse by ``margin`` or more" (non-inferiority);
        large = evidence it is within the margin."""
        _check_margin(margin)
        if not math.isfinite(self.standard_error):
            return 0.0
        worse_by = self.estimate if lower_is_better else -self.estimate
        return _clip_z(margin - worse_by, self.standard_error)


@dataclass(frozen=True, kw_only=True)
class RateComparison(Comparison):
    """A comparison of event counts; non-inferiority is the Farrington-Manning score test."""

    baseline_events: int
    candidate_events: int

    def within_margin_z(self, margin: float, lower_is_better: bool) -> float:
        _check_margin(margin)
        if not 0 <= margin < 1:
            raise ValueError(f"a rate's margin must be at least 0 and below 1, got {margin}")
        if self.baseline_n == 0 or self.candidate_n == 0:
            return 0.0
        sign = 1.0 if lower_is_better else -1.0
        boundary = sign * margin  # the null's edge: candidate - baseline = boundary
        candidate, baseline = _restricted_rates(
            self.candidate_events, self.candidate_n, self.baseline_events, self.baseline_n, boundary
        )
        variance = (
            candidate * (1 - candidate) / self.candidate_n
            + baseline * (1 - baseline) / self.baseline_n
        )
        return _clip_z(sign * (boundary - self.estimate), math.sqrt(max(variance, 0.0)))


def compare_rates(
    baseline_events: int, baseline_n: int, candidate_events: int, candidate_n: int
) -> RateComparison:
    """Event rates (errors per request) by the exact conditional test (module docstring)."""
    for events, n in ((baseline_events, baseline_n), (candidate_events, candidate_n)):
        if not 0 <= events <= n:
            raise ValueError(f"events must be between 0 and n={n}, got {events}")
    estimate, standard_error, z = math.nan, math.inf, 0.0  # an empty arm: no evidence
    if baseline_n > 0 and candidate_n > 0:
        rate_b, rate_c = baseline_events / baseline_n, candidate_events / candidate_n
        total, events = baseline_n + candidate_n, baseline_events + candidate_events
        pooled = events / total
        variance = max(
            rate_b * (1 - rate_b) / baseline_n + rate_c * (1 - rate_c) / candidate_n,
            pooled * (1 - pooled) * (1 / baseline_n + 1 / candidate_n),
        )
        estimate, standard_error = rate_c - rate_b, math.sqrt(variance)
        z = _mid_p_z(candidate_events, total, events, candidate_n)
    return RateComparison(
        estimate=estimate,
        standard_error=standard_error,
        z=z,
        information=_information(baseline_n, candidate_n),
        baseline_n=baseline_n,
        candidate_n=candidate_n,
        scale=RATE,
        baseline_events=baseline_events,
        candidate_events=candidate_events,
    )


def compare_log_means(
    baseline_values: Values,
    candidate_values: Values,
    baseline_covariate: Values | None = None,
    candidate_covariate: Values | None = None,
    *,
    floor: float = LOG_FLOOR_MS,
) -> Comparison:
    """Latencies (ms) as the difference of mean ``log(max(value, floor))``: the log of the
    ratio of geometric means; CUPED when both covariates are given."""
    if not floor > 0:
        raise ValueError(f"floor must be positive, got {floor}")
    logs = [_log(values, floor) for values in (baseline_values, candidate_values)]
    return _compare(logs[0], logs[1], baseline_covariate, candidate_covariate, LOG_SCALE)


def compare_means(
    baseline_values: Values,
    candidate_values: Values,
    baseline_covariate: Values | None = None,
    candidate_covariate: Values | None = None,
) -> Comparison:
    """Means (feedback scores, cost); CUPED when both covariates are given."""
    return _compare(
        finite_array(baseline_values),
        finite_array(candidate_values),
        baseline_covariate,
        candidate_covariate,
        MEAN,
    )


def cuped(values: Sequence[Values], covariates: Sequence[Values]) -> tuple[list[np.ndarray], float]:
    """Each arm's values adjusted by one ``theta`` for all arms (module docstring), and the
    share of the within-arm variance removed (the pooled within-arm ``r²``)."""
    if len(values) != len(covariates):
        raise ValueError(f"{len(values)} arms of values but {len(covariates)} of covariates")
    ys = [finite_array(arm) for arm in values]
    xs = [finite_array(arm) for arm in covariates]
    for y, x in zip(ys, xs, strict=True):
        if y.size != x.size:
            raise ValueError(f"{y.size} values but {x.size} covariate values in an arm")
    ys_centred = [y - y.mean() for y in ys if y.size]
    xs_centred = [x - x.mean() for x in xs if x.size]
    spread_x = math.fsum(float(x @ x) for x in xs_centred)
    spread_y = math.fsum(float(y @ y) for y in ys_centred)
    if spread_x <= 0 or spread_y <= 0:
        return ys, 0.0
    moment = math.fsum(float(y @ x) for y, x in zip(ys_centred, xs_centred, strict=True))
    theta = moment / spread_x
    centre = float(np.concatenate(xs).mean())
    adjusted = [y - theta * (x - centre) for y, x in zip(ys, xs, strict=True)]
    return adjusted, min(max(moment * theta / spread_y, 0.0), 1.0)


def log_prompt_length(prompt_tokens: Values) -> np.ndarray:
    """A request's covariate for CUPED: ``log(1 + prompt_tokens)``."""
    logs: np.ndarray = np.log1p(np.maximum(finite_array(prompt_tokens), 0.0))
    return logs


def _compare(
    baseline: np.ndarray,
    candidate: np.ndarray,
    baseline_covariate: Values | None,
    candidate_covariate: Values | None,
    scale: str,
) -> Comparison:
    if (baseline_covariate is None) != (candidate_covariate is None):
        raise ValueError("give a covariate for both arms or for neither")
    b, c = _sample(baseline), _sample(candidate)
    raw = _difference(b, c)
    if baseline_covariate is None or candidate_covariate is None or raw is None:
        return _comparison(b, c, raw, scale)
    covariates = (finite_array(baseline_covariate), finite_array(candidate_covariate))
    (adjusted_b, adjusted_c), _ = cuped([baseline, candidate], covariates)
    balance = _difference(_sample(covariates[0]), _sample(covariates[1]))
    if balance is not None and abs(balance[0]) > BALANCE_Z * math.sqrt(balance[1]):
        return _comparison(b, c, raw, f"{scale}, not adjusted: the covariate differs by arm")
    b, c = _sample(adjusted_b), _sample(adjusted_c)
    adjusted = _difference(b, c)
    reduction = 0.0
    if adjusted is not None and raw[1] > 0:
        reduction = 1 - adjusted[1] / raw[1]
    return _comparison(b, c, adjusted, scale, reduction)


def _comparison(
    b: Sample,
    c: Sample,
    difference: tuple[float, float] | None,
    scale: str,
    variance_reduction: float = 0.0,
) -> Comparison:
    estimate, variance = difference if difference is not None else (math.nan, math.inf)
    if b.n and c.n:
        estimate = c.mean - b.mean
    error = math.sqrt(variance)
    if math.isfinite(error):
        error = max(error, RELATIVE_ROUNDING * max(abs(b.mean), abs(c.mean)))
    return Comparison(
        estimate=estimate,
        standard_error=error,
        z=_clip_z(estimate, error) if math.isfinite(error) else 0.0,
        information=_information(b.n, c.n),
        baseline_n=b.n,
        candidate_n=c.n,
        scale=scale,
        variance_reduction=variance_reduction,
    )


def _difference(b: Sample, c: Sample) -> tuple[float, float] | None:
    """``candidate - baseline`` and its variance; None when an arm has fewer than 2 values."""
    if b.n < 2 or c.n < 2:
        return None
    return c.mean - b.mean, difference_variance(b, c)


def _mid_p_z(candidate_events: int, total: int, events: int, candidate_n: int) -> float:
    """z of the mid-p that the candidate has this many events or more, given the total."""
    above = float(stats.hypergeom.sf(candidate_events, total, events, candidate_n))
    at = float(stats.hypergeom.pmf(candidate_events, total, events, candidate_n))
    p_value = min(max(above + at / 2, 1e-300), 1.0)
    return max(min(float(stats.norm.isf(p_value)), Z_LIMIT), -Z_LIMIT)


def _restricted_rates(x1: int, n1: int, x2: int, n2: int, difference: float) -> tuple[float, float]:
    """The maximum-likelihood rates of two binomial arms under ``p1 - p2 = difference``
    (Farrington & Manning 1990, Appendix: the root of a cubic, in closed form)."""
    p1, p2 = x1 / n1, x2 / n2
    ratio = n2 / n1
    a = 1 + ratio
    b = -(1 + ratio + p1 + ratio * p2 + difference * (ratio + 2))
    c = difference * difference + difference * (2 * p1 + ratio + 1) + p1 + ratio * p2
    d = -p1 * difference * (1 + difference)
    v = b**3 / (27 * a**3) - b * c / (6 * a * a) + d / (2 * a)
    u = math.copysign(math.sqrt(max(b * b / (9 * a * a) - c / (3 * a), 0.0)), v)
    if u == 0:  # a triple root
        rate1 = -b / (3 * a)
    else:
        w = (math.pi + math.acos(max(min(v / u**3, 1.0), -1.0))) / 3
        rate1 = 2 * u * math.cos(w) - b / (3 * a)
    rate1 = min(max(rate1, max(difference, 0.0)), min(1.0, 1.0 + difference))
    return rate1, rate1 - difference


def _information(baseline_n: int, candidate_n: int) -> float:
    total = baseline_n + candidate_n
    return baseline_n * candidate_n / total if total else 0.0


def _clip_z(numerator: float, error: float) -> float:
    if error > 0:
        z = numerator / error
    elif numerator == 0 or math.isnan(numerator):
        return 0.0
    else:
        z = math.copysign(math.inf, numerator)
    return max(min(z, Z_LIMIT), -Z_LIMIT)


def _check_margin(margin: float) -> None:
    if not (margin >= 0 and math.isfinite(margin)):
        raise ValueError(f"a margin must be finite and >= 0, got {margin}")


def _sample(values: np.ndarray) -> Sample:
    return Sample.of(values.tolist())


def _log(values: Values, floor: float) -> np.ndarray:
    array = finite_array(values)
    if np.any(array < 0):
        raise ValueError("latencies cannot be negative")
    logs: np.ndarray = np.log(np.maximum(array, floor))
    return logs
