"""Canary analysis: one measurement compares candidate and baseline on every metric over the
same period; a run of measurements ends Successful, Failed or Inconclusive.

Each metric is compared on a scale that suits it (``release.estimators``: error and feedback
rates and tail shares by the exact conditional test, latency and TTFT on the log scale with
CUPED on the prompt's length, means) and decided by one of two tests (``Analysis.test``):

**group_sequential** (the default; a rollout's analysis has a planned size). Two one-sided
tests per metric, each spending its own alpha over the looks (``release.sequential``,
Lan-DeMets spending on the information ``n_b·n_c/(n_b + n_c)`` up to the planned maximum
``planned_samples·w·(1 - w)``, ``w`` the candidate's share):

- fewer than ``min_samples`` observations in either variant: **Inconclusive**, and not a look
  (it spends nothing);
- "the candidate is not worse" rejected (``z_worse >= bound``, alpha ``alpha / metrics``):
  **Failed**;
- "the candidate is worse by the margin or more" rejected (``z_within >= bound``, alpha
  ``promote_alpha / metrics``): **Successful**;
- otherwise **Inconclusive**. The last look (``count`` measurements, or the planned
  maximum reached) spends what is left; after it the run ends.

**always_valid** (analyses without a planned size). ``[lo, hi]``, the always-valid interval
of ``d`` (how much worse the candidate is) at ``alpha / metrics``: ``lo > 0`` Failed,
``hi <= margin`` Successful, else Inconclusive (``stats.py``).

A measurement is Failed if any metric is, Successful if all are, Inconclusive otherwise, and
Failed with ``srm`` set when the variants' traffic does not match their weights (the
sequential Bayes factor of ``stats.sample_ratio_mismatch`` reaches 1000, valid however often
it is looked at): a broken split invalidates every comparison.

The run (like Argo Rollouts' AnalysisRun): Failed once Failed measurements exceed
``failure_limit``; Inconclusive once Inconclusive ones exceed ``inconclusive_limit``,
``count`` measurements pass, or the group-sequential test has spent its alpha without
success; Successful at the first Successful measurement. Stopping at the first success is
sound because both tests control their error rates over every look.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from modelyard.release.estimators import (
    Comparison,
    compare_log_means,
    compare_means,
    compare_rates,
    log_prompt_length,
)
from modelyard.release.observations import Observations, VariantData
from modelyard.release.protocol import (
    COST_RELATIVE_MARGIN,
    DEFAULT_MARGINS,
    LOG_SCALE,
    LOWER_IS_BETTER,
    Analysis,
    AnalysisMetric,
    Outcome,
    SpendingName,
)
from modelyard.release.sequential import Look, next_look
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
TAIL_METRICS = ("latency_p95", "ttft_p95")
LIFT_METRICS = (
    "error_rate",
    "positive_feedback_rate",
    "judge_score",
    "cost_per_request",
    "online_quality",
)


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
    test: str = "always_valid"
    information: float | None = None  # a group-sequential look's; None when not a look
    worse_z: float | None = None  # z for "the candidate is not worse"
    # its look: information, fraction, bound (None: this look spends nothing), spent
    worse_look: dict[str, float | None] | None = None
    within_z: float | None = None  # z for "the candidate is worse by the margin or more"
    within_look: dict[str, float | None] | None = None
    variance_reduction: float = 0.0  # CUPED's share of the variance removed

    def as_json(self) -> dict[str, Any]:
        return json_safe(asdict(self))


@dataclass(frozen=True)
class Measurement:
    outcome: Outcome
    metrics: list[MetricResult]
    srm: dict[str, Any]
    final: bool = False  # a group-sequential test spent all its alpha at this look

    def as_json(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "metrics": [m.as_json() for m in self.metrics],
            "srm": self.srm,
            "final": self.final,
        }


@dataclass(frozen=True)
class Sequential:
    """What one metric's group-sequential look needs beyond the data: the design, and the
    looks this metric took before (in this analysis)."""

    spending: SpendingName
    promote_alpha: float  # per metric
    max_information: float
    worse_before: tuple[Look, ...] = ()
    within_before: tuple[Look, ...] = ()
    final: bool = False  # the analysis's last measurement: spend what is left

    def looks(self, information: float, alpha: float) -> tuple[Look, Look]:
        """This look of the "worse" test (at ``alpha``) and of the promotion test."""
        worse = next_look(
            self.worse_before,
            information,
            max_information=self.max_information,
            alpha=alpha,
            spending=self.spending,
            final=self.final,
        )
        within = next_look(
            self.within_before,
            information,
            max_information=self.max_information,
            alpha=self.promote_alpha,
            spending=self.spending,
            final=self.final,
        )
        return worse, within


def compare_metric(
    metric: AnalysisMetric,
    baseline: VariantData,
    candidate: VariantData,
    *,
    alpha: float,
    min_samples: int,
    planned_samples: int,
    sequential: Sequential | None = None,
) -> MetricResult:
    """One metric's outcome: by the group-sequential tests when ``sequential`` is given,
    else by the always-valid interval (``alpha`` is this metric's share)."""
    if sequential is not None:
        return _grouped(metric, baseline, candidate, alpha, min_samples, sequential)
    name = metric.name
    b, c, shown, compared = _samples(metric, baseline, candidate)
    margin = _margin(metric, b)
    interval = difference_sequence(b, c, alpha=alpha, planned_n=planned_samples)
    lift = (
        lift_sequence(b, c, alpha=alpha, planned_n=planned_samples)
        if name in LIFT_METRICS
        else None
    )
    outcome, reason = _verdict(name in LOWER_IS_BETTER, b, c, interval, margin, min_samples)
    return MetricResult(
        name=shown_name(metric),
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


def _grouped(
    metric: AnalysisMetric,
    baseline: VariantData,
    candidate: VariantData,
    alpha: float,
    min_samples: int,
    design: Sequential,
) -> MetricResult:
    """One metric's group-sequential look (module docstring)."""
    name = metric.name
    comparison, shown, compared, reference = _comparison(metric, baseline, candidate)
    margin = _margin(metric, reference)
    on_scale = math.log1p(margin) if name in LOG_SCALE else margin
    lower = name in LOWER_IS_BETTER
    worse_z = comparison.worse_z(lower)
    within_z = comparison.within_margin_z(on_scale, lower)
    b_n, c_n = comparison.baseline_n, comparison.candidate_n
    worse_look = within_look = None
    if b_n < min_samples or c_n < min_samples:
        outcome: Outcome = "Inconclusive"
        reason = f"too little data: {b_n} baseline and {c_n} candidate samples (need {min_samples})"
    else:
        worse_look, within_look = design.looks(comparison.information, alpha)
        outcome, reason = _sequential_verdict(
            worse_z, worse_look.bound, within_z, within_look.bound, margin, name in LOG_SCALE
        )
    half = comparison.standard_error * (
        worse_look.bound if worse_look and math.isfinite(worse_look.bound) else math.inf
    )
    estimate = comparison.estimate
    return MetricResult(
        name=shown_name(metric),
        outcome=outcome,
        reason=reason,
        baseline=shown[0],
        candidate=shown[1],
        baseline_n=b_n,
        candidate_n=c_n,
        estimate=estimate,
        low=estimate - half if math.isfinite(half) else -math.inf,
        high=estimate + half if math.isfinite(half) else math.inf,
        lift=_lift(name, shown) if name in LIFT_METRICS or name in LOG_SCALE else None,
        lift_low=None,
        lift_high=None,
        margin=margin,
        compared=compared,
        test="group_sequential",
        information=None if worse_look is None else worse_look.information,
        worse_z=worse_z,
        worse_look=_look_json(worse_look),
        within_z=within_z,
        within_look=_look_json(within_look),
        variance_reduction=comparison.variance_reduction,
    )


def _sequential_verdict(
    worse_z: float,
    worse_bound: float,
    within_z: float,
    within_bound: float,
    margin: float,
    relative: bool,
) -> tuple[Outcome, str]:
    shown_margin = f"{margin:.0%} slower" if relative else f"{margin:.4g}"
    if worse_z >= worse_bound:
        return (
            "Failed",
            f"the candidate is worse: z {worse_z:.2f} >= bound {worse_bound:.2f}",
        )
    if within_z >= within_bound:
        return (
            "Successful",
            f"the candidate is within the margin ({shown_margin}): z {within_z:.2f} >= bound "
            f"{within_bound:.2f}",
        )
    return (
        "Inconclusive",
        f"not decided: worse z {worse_z:.2f} (bound {_bound(worse_bound)}), within-margin "
        f"({shown_margin}) z {within_z:.2f} (bound {_bound(within_bound)})",
    )


def _look_json(look: Look | None) -> dict[str, float | None] | None:
    """A look as JSON keeps it (no infinities: a bound that spends nothing is null)."""
    if look is None:
        return None
    data: dict[str, float | None] = asdict(look)
    if not math.isfinite(look.bound):
        data["bound"] = None
    return data


def _look_of(data: Mapping[str, Any]) -> Look:
    bound = data.get("bound")
    return Look(
        information=float(data["information"]),
        fraction=float(data["fraction"]),
        bound=math.inf if bound is None else float(bound),
        spent=float(data["spent"]),
    )


def _bound(bound: float) -> str:
    return f"{bound:.2f}" if math.isfinite(bound) else "none at this look"


def _comparison(
    metric: AnalysisMetric, baseline: VariantData, candidate: VariantData
) -> tuple[Comparison, tuple[float | None, float | None], str, Sample]:
    """The metric's comparison, the metric itself as shown, what is compared, and the
    baseline's sample (for a relative default margin)."""
    name = metric.name
    if name in LOG_SCALE:
        b_values, c_values = _values(name, baseline), _values(name, candidate)
        b_cov, c_cov = _covariate(name, baseline), _covariate(name, candidate)
        covariates = (
            (log_prompt_length(b_cov), log_prompt_length(c_cov))
            if len(b_cov) == len(b_values) and len(c_cov) == len(c_values)
            else (None, None)
        )
        comparison = compare_log_means(b_values, c_values, *covariates)
        shown = (_geometric_mean(b_values), _geometric_mean(c_values))
        return comparison, shown, comparison.scale, Sample.of(b_values)
    b, c, shown, compared = _samples(metric, baseline, candidate)
    if name in ("error_rate", "positive_feedback_rate") or name in TAIL_METRICS:
        comparison = compare_rates(round(b.mean * b.n), b.n, round(c.mean * c.n), c.n)
    else:
        comparison = compare_means(
            _values(name, baseline, metric.feedback), _values(name, candidate, metric.feedback)
        )
    return comparison, shown, compared, b


def _margin(metric: AnalysisMetric, baseline: Sample) -> float:
    if metric.margin is not None:
        return metric.margin
    return DEFAULT_MARGINS.get(metric.name, COST_RELATIVE_MARGIN * abs(baseline.mean))


def shown_name(metric: AnalysisMetric) -> str:
    """A metric as results name it: feedback metrics with their feedback's name."""
    if metric.name in ("judge_score", "positive_feedback_rate"):
        return f"{metric.name}[{metric.feedback}]"
    return metric.name


def _lift(name: str, shown: tuple[float | None, float | None]) -> float | None:
    b, c = shown
    if b is None or c is None or b == 0:
        return None
    return c / b - 1


def _geometric_mean(values: Sequence[float]) -> float | None:
    if not values:
        return None
    return math.exp(math.fsum(math.log(max(v, 1.0)) for v in values) / len(values))


def _samples(
    metric: AnalysisMetric, baseline: VariantData, candidate: VariantData
) -> tuple[Sample, Sample, tuple[float | None, float | None], str]:
    """What is compared per variant, the metric itself as shown, and what the comparison is
    on: latencies compare their shares above the pooled p95 (a tail is not a mean)."""
    name = metric.name
    if name in TAIL_METRICS:
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
    earlier: Sequence[Mapping[str, Any]] = (),
) -> Measurement:
    """Compare ``candidate`` with ``baseline`` (variant names) on every metric of ``spec``;
    ``weights`` are their traffic shares, for the sample-ratio check and the planned
    information; ``earlier`` are this analysis's earlier measurements (``as_json``), whose
    looks the group-sequential tests continue."""
    b, c = observations.of(baseline), observations.of(candidate)
    srm = ratio_check([b, c], weights)
    per_metric_alpha = spec.alpha / len(spec.metrics)
    final = len(earlier) + 1 >= spec.count
    results = [
        compare_metric(
            metric,
            b,
            c,
            alpha=per_metric_alpha,
            min_samples=spec.min_samples,
            planned_samples=spec.planned_samples,
            sequential=_design(spec, metric, weights, earlier, final)
            if spec.test == "group_sequential"
            else None,
        )
        for metric in spec.metrics
    ]
    spent = spec.test == "group_sequential" and all(
        r.worse_look is not None and r.worse_look["fraction"] == 1.0 for r in results
    )
    return Measurement(
        combine([r.outcome for r in results], srm["mismatch"]), results, srm, final=spent
    )


def _design(
    spec: Analysis,
    metric: AnalysisMetric,
    weights: tuple[float, float],
    earlier: Sequence[Mapping[str, Any]],
    final: bool,
) -> Sequential:
    """The metric's group-sequential design and its earlier looks in this analysis."""
    share = weights[1] / (weights[0] + weights[1])
    name = shown_name(metric)
    promote_alpha = spec.alpha if spec.promote_alpha is None else spec.promote_alpha
    return sequential_design(
        [r for m in earlier for r in m.get("metrics", ()) if r.get("name") == name],
        spending=spec.spending,
        promote_alpha=promote_alpha / len(spec.metrics),
        max_information=spec.planned_samples * share * (1 - share),
        final=final,
    )


def sequential_design(
    earlier: Sequence[Mapping[str, Any]],
    *,
    spending: SpendingName,
    promote_alpha: float,
    max_information: float,
    final: bool,
) -> Sequential:
    """A group-sequential design that continues the looks of ``earlier`` (one metric's
    results, ``MetricResult.as_json``, oldest first; those that were no look are skipped)."""
    looked = [r for r in earlier if r.get("worse_look") is not None]
    return Sequential(
        spending=spending,
        promote_alpha=promote_alpha,
        max_information=max(max_information, 1e-9),
        worse_before=tuple(_look_of(r["worse_look"]) for r in looked),
        within_before=tuple(_look_of(r["within_look"]) for r in looked),
        final=final,
    )


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
        "bayes_factor": result.bayes_factor,
        "mismatch": result.mismatch,
    }


def combine(outcomes: Sequence[Outcome], mismatch: bool = False) -> Outcome:
    if mismatch or "Failed" in outcomes:
        return "Failed"
    if all(o == "Successful" for o in outcomes):
        return "Successful"
    return "Inconclusive"


def run_state(outcomes: Sequence[Outcome], spec: Analysis, *, spent: bool = False) -> RunState:
    """Where a run of measurements stands (see the module docstring); ``spent``: the last
    measurement was the group-sequential test's final look."""
    failed = sum(o == "Failed" for o in outcomes)
    inconclusive = sum(o == "Inconclusive" for o in outcomes)
    if failed > spec.failure_limit:
        return "failed"
    if outcomes and outcomes[-1] == "Successful":
        return "successful"
    limit = spec.count if spec.inconclusive_limit is None else spec.inconclusive_limit
    if inconclusive > limit or len(outcomes) >= spec.count or spent:
        return "inconclusive"
    return "running"


def _values(name: str, data: VariantData, feedback: str = "") -> list[float]:
    if name == "error_rate":
        return data.errors
    if name in ("latency", "latency_p95"):
        return data.latency_ms
    if name in ("ttft", "ttft_p95"):
        return data.ttft_ms
    if name == "cost_per_request":
        return data.cost
    if name == "online_quality":
        return data.quality
    return data.feedback.get(feedback, [])


def _covariate(name: str, data: VariantData) -> list[float]:
    """The prompt lengths aligned with a latency metric's values (CUPED's covariate)."""
    return data.prompt_tokens if name == "latency" else data.ttft_prompt_tokens


def _span(interval: Interval) -> str:
    return f"[{interval.low:.4g}, {interval.high:.4g}]"


def json_safe(data: dict[str, Any]) -> dict[str, Any]:
    """JSON has no infinities: an unbounded end is null."""
    return {
        k: (None if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))) else v)
        for k, v in data.items()
    }
