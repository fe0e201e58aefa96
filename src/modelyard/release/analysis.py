"""Canary analysis: one measurement compares candidate and baseline on every metric over the
same period; a run of measurements ends Successful, Failed or Inconclusive.

Per metric (``d`` = how much worse the candidate is: candidate - baseline for metrics where
lower is better, baseline - candidate otherwise; ``[lo, hi]`` its always-valid interval at
``alpha / number of metrics``, so the run's overall false-alarm rate stays within ``alpha``):

- fewer than ``min_samples`` observations in either variant: **Inconclusive** (too little
  data is never a failure);
- ``lo > 0`` (the candidate is worse, whatever the amount): **Failed**;
- ``hi <= margin`` (it is at most ``margin`` worse): **Successful**;
- otherwise **Inconclusive**.

A measurement is Failed if any metric is, Successful if all are, Inconclusive otherwise, and
Failed with ``srm`` set when the variants' traffic does not match their weights (chi-square,
p < 0.001): a broken split invalidates every comparison.

The run (like Argo Rollouts' AnalysisRun): Failed once Failed measurements exceed
``failure_limit``; Inconclusive once Inconclusive ones exceed ``inconclusive_limit`` or
``count`` measurements pass without success; Successful at the first Successful
measurement. Stopping at the first success is sound here because the intervals are valid at
every look (a fixed-horizon test would need the sample size fixed in advance).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from modelyard.release.observations import Observations, VariantData
from modelyard.release.protocol import (
    COST_RELATIVE_MARGIN,
    DEFAULT_MARGINS,
    LOWER_IS_BETTER,
    Analysis,
    AnalysisMetric,
    Outcome,
)
from modelyard.release.stats import (
    Interval,
    Sample,
    difference_sequence,
    exceedance,
    lift_sequence,
    percentile,
    sample_ratio_mismatch,
)

RunState = Literal["running", "successful", "failed", "inconclusive"]
TAIL = 0.95


@dataclass(frozen=True)
class MetricResult:
    name: str
    outcome: Outcome
    reason: str
    baseline: float | None  # the metric itself (a rate, a p95 in ms, a mean)
    candidate: float | None
    baseline_n: int
    candidate_n: int
    estimate: float  # candidate - baseline of the compared quantity
    low: float
    high: float
    lift: float | None
    lift_low: float | None
    lift_high: float | None
    margin: float
    compared: str  # what the interval is on: "mean", "share above pooled p95 (x ms)"

    def as_json(self) -> dict[str, Any]:
        return json_safe(asdict(self))


@dataclass(frozen=True)
class Measurement:
    outcome: Outcome
    metrics: list[MetricResult]
    srm: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "metrics": [m.as_json() for m in self.metrics],
            "srm": self.srm,
        }


def compare_metric(
    metric: AnalysisMetric,
    baseline: VariantData,
    candidate: VariantData,
    *,
    alpha: float,
    min_samples: int,
    planned_samples: int,
) -> MetricResult:
    name = metric.name
    b, c, shown, compared = _samples(metric, baseline, candidate)
    margin = metric.margin
    if margin is None:
        margin = DEFAULT_MARGINS.get(name, COST_RELATIVE_MARGIN * abs(b.mean))
    interval = difference_sequence(b, c, alpha=alpha, planned_n=planned_samples)
    lift = (
        lift_sequence(b, c, alpha=alpha, planned_n=planned_samples)
        if name in ("error_rate", "positive_feedback_rate", "judge_score", "cost_per_request")
        else None
    )
    outcome, reason = _verdict(name in LOWER_IS_BETTER, b, c, interval, margin, min_samples)
    return MetricResult(
        name=name
        if name != "judge_score" and name != "positive_feedback_rate"
        else f"{name}[{metric.feedback}]",
        outcome=outcome,
        reason=reason,
        baseline=shown[0],
        candidate=shown[1],
        baseline_n=b.n,
        candidate_n=c.n,
        estimate=interval.estimate,
        low=interval.low,
        high=interval.high,
        lift=None if lift is None else lift.estimate,
        lift_low=None if lift is None else lift.low,
        lift_high=None if lift is None else lift.high,
        margin=margin,
        compared=compared,
    )


def _samples(
    metric: AnalysisMetric, baseline: VariantData, candidate: VariantData
) -> tuple[Sample, Sample, tuple[float | None, float | None], str]:
    """What is compared per variant, the metric itself as shown, and what the comparison is
    on: latencies compare their shares above the pooled p95 (a tail is not a mean)."""
    name = metric.name
    if name in ("latency_p95", "ttft_p95"):
        b_values, c_values = _values(name, baseline), _values(name, candidate)
        b, c, threshold = exceedance(b_values, c_values, quantile=TAIL)
        shown = (percentile(b_values, TAIL), percentile(c_values, TAIL))
        compared = f"share above the pooled p95 ({threshold:.1f} ms)" if b.n and c.n else "mean"
        return b, c, shown, compared
    b = Sample.of(_values(name, baseline, metric.feedback))
    c = Sample.of(_values(name, candidate, metric.feedback))
    return b, c, (b.mean if b.n else None, c.mean if c.n else None), "mean"


def _verdict(
    lower_better: bool, b: Sample, c: Sample, interval: Interval, margin: float, min_samples: int
) -> tuple[Outcome, str]:
    """The outcome of one metric and why (see the module docstring)."""
    worse_low, worse_high = (
        (interval.low, interval.high) if lower_better else (-interval.high, -interval.low)
    )
    if b.n < min_samples or c.n < min_samples:
        return (
            "Inconclusive",
            f"too little data: {b.n} baseline and {c.n} candidate samples (need {min_samples})",
        )
    if worse_low > 0:
        return (
            "Failed",
            f"the candidate is worse: by at least {worse_low:.4g} (interval {_span(interval)})",
        )
    if worse_high <= margin:
        return (
            "Successful",
            f"the candidate is at most {max(worse_high, 0):.4g} worse (margin {margin:.4g})",
        )
    return (
        "Inconclusive",
        f"it may be up to {worse_high:.4g} worse, more than the margin {margin:.4g}",
    )


def measure(
    spec: Analysis,
    observations: Observations,
    *,
    baseline: str,
    candidate: str,
    weights: tuple[float, float],
) -> Measurement:
    """Compare ``candidate`` with ``baseline`` (variant names) on every metric of ``spec``;
    ``weights`` are their traffic shares, for the sample-ratio check."""
    b, c = observations.of(baseline), observations.of(candidate)
    srm = ratio_check([b, c], weights)
    per_metric_alpha = spec.alpha / len(spec.metrics)
    results = [
        compare_metric(
            metric,
            b,
            c,
            alpha=per_metric_alpha,
            min_samples=spec.min_samples,
            planned_samples=spec.planned_samples,
        )
        for metric in spec.metrics
    ]
    return Measurement(combine([r.outcome for r in results], srm["mismatch"]), results, srm)


def ratio_check(variants: Sequence[VariantData], weights: Sequence[float]) -> dict[str, Any]:
    """Sample-ratio mismatch on distinct users when requests name them (sticky assignment
    makes a user's requests one unit), else on requests."""
    by_users = all(v.users for v in variants if v.assigned) and any(v.users for v in variants)
    counts = [len(v.users) if by_users else v.assigned for v in variants]
    result = sample_ratio_mismatch(counts, list(weights))
    return {
        "unit": "users" if by_users else "requests",
        "counts": counts,
        "expected_shares": list(result.expected_shares),
        "p_value": result.p_value,
        "mismatch": result.mismatch,
    }


def combine(outcomes: Sequence[Outcome], mismatch: bool = False) -> Outcome:
    if mismatch or "Failed" in outcomes:
        return "Failed"
    if all(o == "Successful" for o in outcomes):
        return "Successful"
    return "Inconclusive"


def run_state(outcomes: Sequence[Outcome], spec: Analysis) -> RunState:
    """Where a run of measurements stands (see the module docstring)."""
    failed = sum(o == "Failed" for o in outcomes)
    inconclusive = sum(o == "Inconclusive" for o in outcomes)
    if failed > spec.failure_limit:
        return "failed"
    if outcomes and outcomes[-1] == "Successful":
        return "successful"
    limit = spec.count if spec.inconclusive_limit is None else spec.inconclusive_limit
    if inconclusive > limit or len(outcomes) >= spec.count:
        return "inconclusive"
    return "running"


def _values(name: str, data: VariantData, feedback: str = "") -> list[float]:
    if name == "error_rate":
        return data.errors
    if name == "latency_p95":
        return data.latency_ms
    if name == "ttft_p95":
        return data.ttft_ms
    if name == "cost_per_request":
        return data.cost
    return data.feedback.get(feedback, [])


def _span(interval: Interval) -> str:
    return f"[{interval.low:.4g}, {interval.high:.4g}]"


def json_safe(data: dict[str, Any]) -> dict[str, Any]:
    """JSON has no infinities: an unbounded end is null."""
    return {
        k: (None if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))) else v)
        for k, v in data.items()
    }
