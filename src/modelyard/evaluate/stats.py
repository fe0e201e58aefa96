"""Paired comparisons of two evaluation runs scored on the same items.

Pure computation (no I/O), CPU-bound: callers run it on a worker thread. Item ``i`` of the
baseline and item ``i`` of the candidate are the same prompt, so the tests keep the pairs
together: the bootstrap resamples item indices, McNemar's test counts the discordant pairs.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelyard.lazy import lazy_module

if TYPE_CHECKING:
    import numpy as np
else:  # imported on first use: the server imports this module at start-up (issue 8)
    np = lazy_module("numpy")
stats = lazy_module("scipy.stats")

# Elements of one batch of resampled items (per run): bounds the memory of a bootstrap.
RESAMPLE_BATCH_ELEMENTS = 1 << 20

Aggregate = Callable[["np.ndarray"], float]


@dataclass(frozen=True)
class PairedDifference:
    """``candidate - baseline`` of an aggregate, with its bootstrap confidence interval."""

    metric: str
    baseline: float
    candidate: float
    difference: float
    ci_low: float
    ci_high: float
    confidence: float
    resamples: int
    significant: bool  # the interval excludes 0


@dataclass(frozen=True)
class McNemar:
    """The 2x2 table of per-item correctness and McNemar's exact test of its discordant cells."""

    both_correct: int
    baseline_only: int
    candidate_only: int
    both_wrong: int
    statistic: float  # the smaller discordant count, as statsmodels reports it
    p_value: float
    significant: bool


def paired_bootstrap(
    baseline: Sequence[float],
    candidate: Sequence[float],
    *,
    metric: str,
    aggregate: Aggregate | None = None,
    confidence: float = 0.95,
    resamples: int = 10_000,
    seed: int = 0,
) -> PairedDifference:
    """Percentile bootstrap interval of ``aggregate(candidate) - aggregate(baseline)``.

    Each resample draws item indices with replacement and uses the same indices for both runs;
    the interval is the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles (linear
    interpolation) of the resampled differences. It is the interval of
    ``scipy.stats.bootstrap(..., paired=True, method="percentile")`` with the same generator.

    ``aggregate`` reduces a 1-D array of per-item scores (default ``np.mean``); when it takes
    an ``axis`` argument (``np.mean``, ``np.median``, ...) it is called once per batch of
    resamples with ``axis=-1``, otherwise once per resample. The result depends only on the
    inputs and ``seed``.
    """
    if aggregate is None:
        aggregate = np.mean
    base, cand = _paired_scores(baseline, candidate)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1 (exclusive), got {confidence}")
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    observed_base, observed_cand = float(aggregate(base)), float(aggregate(cand))
    differences = _resampled_differences(base, cand, aggregate, resamples, seed)
    alpha = (1 - confidence) / 2
    ci_low, ci_high = (float(q) for q in np.quantile(differences, [alpha, 1 - alpha]))
    return PairedDifference(
        metric=metric,
        baseline=observed_base,
        candidate=observed_cand,
        difference=observed_cand - observed_base,
        ci_low=ci_low,
        ci_high=ci_high,
        confidence=confidence,
        resamples=resamples,
        significant=ci_low > 0 or ci_high < 0,
    )


def mcnemar_exact(
    baseline_correct: Sequence[bool], candidate_correct: Sequence[bool], alpha: float = 0.05
) -> McNemar:
    """McNemar's exact test: two-sided binomial test (p = 0.5) of the discordant pairs.

    Matches ``statsmodels.stats.contingency_tables.mcnemar(table, exact=True)``; with no
    discordant pair there is no evidence of a difference and the p-value is 1.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1 (exclusive), got {alpha}")
    base, cand = _paired(baseline_correct, candidate_correct)
    base, cand = base.astype(bool), cand.astype(bool)
    baseline_only = int(np.sum(base & ~cand))
    candidate_only = int(np.sum(~base & cand))
    discordant = baseline_only + candidate_only
    statistic = min(baseline_only, candidate_only)
    p_value = 1.0
    if discordant:
        p_value = float(stats.binomtest(statistic, discordant, 0.5).pvalue)
    return McNemar(
        both_correct=int(np.sum(base & cand)),
        baseline_only=baseline_only,
        candidate_only=candidate_only,
        both_wrong=int(np.sum(~base & ~cand)),
        statistic=float(statistic),
        p_value=p_value,
        significant=p_value < alpha,
    )


def _resampled_differences(
    base: np.ndarray, cand: np.ndarray, aggregate: Aggregate, resamples: int, seed: int
) -> np.ndarray:
    n = len(base)
    rng = np.random.default_rng(seed)
    batch = max(1, RESAMPLE_BATCH_ELEMENTS // n)
    parts = []
    for start in range(0, resamples, batch):
        indices = rng.integers(0, n, (min(batch, resamples - start), n))
        parts.append(
            _aggregate_rows(aggregate, cand[indices]) - _aggregate_rows(aggregate, base[indices])
        )
    return np.concatenate(parts)


def _aggregate_rows(aggregate: Aggregate, rows: np.ndarray) -> np.ndarray:
    if _takes_axis(aggregate):
        return np.asarray(aggregate(rows, axis=-1), dtype=float)  # type: ignore[call-arg]
    return np.array([aggregate(row) for row in rows], dtype=float)


def _takes_axis(aggregate: Aggregate) -> bool:
    # The test scipy.stats.bootstrap uses to decide whether a statistic is vectorised.
    try:
        return "axis" in inspect.signature(aggregate).parameters
    except (TypeError, ValueError):  # builtins without a signature
        return False


def _paired_scores(baseline: Sequence[float], candidate: Sequence[float]) -> tuple[np.ndarray, ...]:
    base, cand = (values.astype(float) for values in _paired(baseline, candidate))
    if not (np.all(np.isfinite(base)) and np.all(np.isfinite(cand))):
        raise ValueError("scores must be finite numbers; drop or impute NaN and infinities first")
    return base, cand


def _paired(baseline: Sequence[object], candidate: Sequence[object]) -> tuple[np.ndarray, ...]:
    base, cand = np.asarray(baseline), np.asarray(candidate)
    if base.ndim != 1 or cand.ndim != 1:
        raise ValueError("baseline and candidate must be flat sequences, one value per item")
    if len(base) != len(cand):
        raise ValueError(
            f"baseline and candidate must score the same items: got {len(base)} and "
            f"{len(cand)} values"
        )
    if len(base) == 0:
        raise ValueError("baseline and candidate are empty: there is nothing to compare")
    return base, cand
