"""The drift tests of numeric and categorical columns, computed as Evidently 0.7 does.

Each follows its ``evidently/legacy/calculations/stattests`` counterpart (same name, default
threshold and comparison): p-value tests flag drift below 0.05 (the Kolmogorov-Smirnov test
at or below, as Evidently's does), distances at or above 0.1. Categorical tests take the
counts of each distinct value in each window, aligned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from modelyard.lazy import lazy_module
from modelyard.observe.drift.columns import CountArray, FloatArray

special = lazy_module("scipy.special")
stats = lazy_module("scipy.stats")

P_VALUE_THRESHOLD = 0.05
DISTANCE_THRESHOLD = 0.1
MIN_REFERENCE_STD = 0.001  # Evidently's floor for the Wasserstein normaliser


@dataclass(frozen=True)
class StatResult:
    test: str
    statistic: float
    threshold: float
    p_value: float | None
    drifted: bool


def kolmogorov_smirnov(reference: FloatArray, current: FloatArray) -> StatResult:
    """Two-sample two-sided Kolmogorov-Smirnov test (statistic: the largest CDF gap)."""
    result = stats.ks_2samp(reference, current)
    p_value = float(result.pvalue)
    drifted = p_value <= P_VALUE_THRESHOLD
    return StatResult("ks", float(result.statistic), P_VALUE_THRESHOLD, p_value, drifted)


def wasserstein(reference: FloatArray, current: FloatArray) -> StatResult:
    """Earth mover's distance divided by the reference's (population) standard deviation."""
    scale = max(float(np.std(reference)), MIN_REFERENCE_STD)
    distance = float(stats.wasserstein_distance(reference, current)) / scale
    drifted = distance >= DISTANCE_THRESHOLD
    return StatResult("wasserstein", distance, DISTANCE_THRESHOLD, None, drifted)


def chi_square(reference: CountArray, current: CountArray) -> StatResult:
    """Pearson's goodness of fit of the current counts to the reference's proportions."""
    expected = reference * (current.sum() / reference.sum())
    # A value the reference never had makes the statistic infinite and the p-value 0.
    with np.errstate(divide="ignore"):
        statistic = float(np.sum((current - expected) ** 2 / expected))
    p_value = float(stats.chi2.sf(statistic, len(reference) - 1))
    drifted = p_value < P_VALUE_THRESHOLD
    return StatResult("chisquare", statistic, P_VALUE_THRESHOLD, p_value, drifted)


def z_test(reference: CountArray, current: CountArray) -> StatResult:
    """Two-proportion z-test of the share of the second value (at most two values)."""
    if len(reference) < 2:
        return StatResult("z", 0.0, P_VALUE_THRESHOLD, 1.0, False)
    n1, n2 = float(reference.sum()), float(current.sum())
    p1, p2 = reference[1] / n1, current[1] / n2
    pooled = (reference[1] + current[1]) / (n1 + n2)
    z = float((p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2)))
    p_value = float(2 * stats.norm.sf(abs(z)))
    return StatResult("z", z, P_VALUE_THRESHOLD, p_value, p_value < P_VALUE_THRESHOLD)


def jensen_shannon(reference: CountArray, current: CountArray) -> StatResult:
    """Jensen-Shannon distance (natural log, so at most sqrt(ln 2)) of the two frequencies."""
    p = reference / reference.sum()
    q = current / current.sum()
    mixture = (p + q) / 2
    divergence = (special.rel_entr(p, mixture).sum() + special.rel_entr(q, mixture).sum()) / 2
    distance = math.sqrt(max(float(divergence), 0.0))
    drifted = distance >= DISTANCE_THRESHOLD
    return StatResult("jensenshannon", distance, DISTANCE_THRESHOLD, None, drifted)
