"""The power planner: before a rollout starts, the smallest effect each analysis step can
detect with 80 % power, the chance that a candidate equal to the baseline is promoted, and
warnings when the plan cannot detect the margins it was given.

Pure computation (no I/O): the steps, the expected traffic (:class:`Traffic`) and what the
baseline's metrics look like (:class:`Baselines`, read from the request log by
``release.baselines``) in, a :class:`~modelyard.release.protocol.RolloutPlan` out.

An analysis step runs at the candidate's share ``w`` in force (the last ``set_weight``
before it). Its measurements come at ``t = interval_s·k``, ``k = 1..count``; with ``r``
requests per second and a metric observed on a share ``c`` of them (answered requests for
latency, streams for TTFT, requests with feedback), a measurement expects ``N = r·t·c``
values, ``N·w`` of the candidate's. It is a look of the group-sequential tests
(``release.analysis``) once both variants have ``min_samples``; its information is the
effective sample size ``I = N·w·(1 - w)``, and the planned maximum is
``I_max = planned_samples·w·(1 - w)``. The first look at or past it is the last
(over-run: it spends what is left with its actual information, and later measurements spend
nothing); when the ``count``-th measurement comes before it, that one is the last
(under-run). ``release.sequential.boundaries`` gives each test's bounds on those looks.

Detectable effect. A candidate worse by ``d`` moves the z statistics by
``drift·sqrt(I_k/I_ref)``, ``I_ref`` the planned maximum (the last look's information
when every look is past it), with ``drift = d·sqrt(I_ref)/sd``; the smallest ``d`` the
"worse" test rejects with probability 80 % is ::

    MDE = detectable_drift(looks)·sd/sqrt(I_ref)

For rates the variance depends on the rates: the test's z divides by the variance under
"no difference" (the pooled rate, as the exact conditional test does) or by the restricted
rates of Farrington & Manning (promotion), while the estimate varies with the rates as they
are. The planner then works with ``W = z·SE_z/SE`` (unit variance, drift
``d·sqrt(I_ref/v(d))``, bounds scaled by ``SE_z/SE``) and finds ``d`` by root-finding, the
group-sequential form of the classical sample size formula for two proportions. Latency and
TTFT are planned on the log scale, with the baseline's standard deviation of log latency
after CUPED on the prompt's length (as the analysis adjusts); their effect is a ratio.

The fixed-horizon MDE is that of one test of ``alpha / metrics`` at the last look's
information: what the same data would detect if looked at once. The promotion chance is the
non-inferiority test's power when the candidate equals the baseline. An always-valid
analysis has no planned maximum: its MDE is that of the confidence sequence
(``stats.boundary`` with ``mixture_rho``) at the last measurement, where it fails a
candidate when ``estimate - half-width > 0`` (earlier looks only add to that chance).

Several metrics are promoted together when every one is within its margin; the step's
chance and its expected duration take them as independent (an approximation).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Literal

from modelyard.lazy import lazy_module
from modelyard.release.analysis import TAIL, TAIL_METRICS, shown_name
from modelyard.release.protocol import (
    COST_RELATIVE_MARGIN,
    DEFAULT_MARGINS,
    LOG_SCALE,
    LOWER_IS_BETTER,
    Analysis,
    AnalysisMetric,
    MetricPlan,
    PlannedLook,
    PlanQuantity,
    RolloutPlan,
    Step,
    StepPlan,
)
from modelyard.release.sequential import Look, boundaries, crossing_probability
from modelyard.release.stats import boundary, mixture_rho

optimize = lazy_module("scipy.optimize")

POWER = 0.8
MIN_LOGGED = 100  # fewer values in the log: the documented default stands in
DURATION_POINTS = 12  # looks at which the promotion chance is computed for the duration
# compare_rates: the conditional test, and Farrington-Manning for promotion
RATES = frozenset({"error_rate", "positive_feedback_rate", *TAIL_METRICS})
Source = Literal["log", "default", "given"]
_NORMAL = NormalDist()


@dataclass(frozen=True)
class Traffic:
    """The route's expected requests per second (both variants together)."""

    requests_per_s: float
    source: Literal["given", "request log"] = "given"
    window_s: float | None = None  # the request log's window it was read from
    requests: int = 0  # requests logged in that window


@dataclass(frozen=True)
class Quantity:
    """One per-request value of the baseline, as a metric compares it."""

    mean: float  # a rate, a mean, or the mean of log milliseconds
    sd: float  # per request, on the compared scale (log latency: after CUPED)
    coverage: float  # the share of requests that have a value
    n: int = 0  # values it was estimated from
    source: Source = "default"
    variance_reduction: float = 0.0  # CUPED's share of the log latency's variance


@dataclass(frozen=True)
class Baselines:
    """The quantities read or given, by :func:`quantity_key`; missing ones default."""

    quantities: Mapping[str, Quantity] = field(default_factory=dict)

    def of(self, metric: AnalysisMetric) -> Quantity:
        found = self.quantities.get(quantity_key(metric))
        return found if found is not None else default_quantity(metric)


def quantity_key(metric: AnalysisMetric) -> str:
    """The per-request value a metric compares: ``errors``, ``latency``, ``ttft``, ``cost``,
    ``quality`` (live judging) or ``feedback:<name>``."""
    name = metric.name
    if name == "error_rate":
        return "errors"
    if name in ("latency", "latency_p95"):
        return "latency"
    if name in ("ttft", "ttft_p95"):
        return "ttft"
    if name == "cost_per_request":
        return "cost"
    if name == "online_quality":
        return "quality"
    return f"feedback:{metric.feedback}"


# The documented defaults (docs/release.md, "Power planner"), used when the log has fewer
# than MIN_LOGGED values; the plan flags every metric that uses one.
DEFAULT_ERROR_RATE = 0.01
DEFAULT_LOG_SD = 0.7  # of log latency and log TTFT (a p95 about 3x the median)
DEFAULT_LOG_MEAN = math.log(1000.0)  # shown only: 1 s
DEFAULT_FEEDBACK_RATE = 0.5  # the rate with the largest variance
DEFAULT_FEEDBACK_COVERAGE = 0.1
DEFAULT_JUDGE_SD = 1.0
DEFAULT_QUALITY_MEAN = 0.5  # a live judge's 0-1 score: mid-scale,
DEFAULT_QUALITY_SD = 0.3  # and about a third of the scale apart
DEFAULT_COST = 1.0  # cost is planned relative to its mean: a coefficient of variation of 1


def default_quantity(metric: AnalysisMetric) -> Quantity:
    key = quantity_key(metric)
    if key == "errors":
        return Quantity(DEFAULT_ERROR_RATE, _rate_sd(DEFAULT_ERROR_RATE), 1.0)
    if key in ("latency", "ttft"):
        return Quantity(DEFAULT_LOG_MEAN, DEFAULT_LOG_SD, 1.0)
    if key == "cost":
        return Quantity(DEFAULT_COST, DEFAULT_COST, 1.0)
    if key == "quality":
        return Quantity(DEFAULT_QUALITY_MEAN, DEFAULT_QUALITY_SD, DEFAULT_FEEDBACK_COVERAGE)
    if metric.name == "positive_feedback_rate":
        rate = DEFAULT_FEEDBACK_RATE
        return Quantity(rate, _rate_sd(rate), DEFAULT_FEEDBACK_COVERAGE)
    return Quantity(0.0, DEFAULT_JUDGE_SD, DEFAULT_FEEDBACK_COVERAGE)


def plan(
    steps: Sequence[Step],
    traffic: Traffic,
    baselines: Baselines,
    *,
    model: str,
    rollout: int | None = None,
) -> RolloutPlan:
    """The plan of every analysis step of ``steps`` (module docstring)."""
    weight = 0.0
    planned: list[StepPlan] = []
    for index, step in enumerate(steps):
        if step.set_weight is not None:
            weight = step.set_weight
        if step.analysis is not None:
            planned.append(_step(index, step.analysis, weight, traffic, baselines))
    warnings = [f"step {s.step + 1}: {w}" for s in planned for w in s.warnings]
    warnings += [
        f"step {s.step + 1}, {m.name}: {w}" for s in planned for m in s.metrics for w in m.warnings
    ]
    if traffic.requests_per_s <= 0:
        warnings.insert(0, "no traffic on the route: give the expected requests per second")
    if not planned:
        warnings.append("no analysis step: only gates and people decide this rollout")
    used = {
        quantity_key(m): baselines.of(m)
        for step in steps
        if step.analysis is not None
        for m in step.analysis.metrics
    }
    return RolloutPlan(
        model=model,
        rollout=rollout,
        power=POWER,
        requests_per_s=traffic.requests_per_s,
        traffic_source=traffic.source,
        window_s=traffic.window_s,
        logged_requests=traffic.requests,
        quantities=[_quantity_out(key, q) for key, q in sorted(used.items())],
        steps=planned,
        warnings=warnings,
    )


def _quantity_out(key: str, quantity: Quantity) -> PlanQuantity:
    return PlanQuantity(
        name=key,
        mean=quantity.mean,
        sd=quantity.sd,
        coverage=quantity.coverage,
        n=quantity.n,
        source=quantity.source,
        variance_reduction=quantity.variance_reduction,
    )


# -- one analysis step ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Schedule:
    """A metric's expected looks: those with ``min_samples`` per variant, up to the first
    at or past the planned maximum (group-sequential) or the last measurement."""

    times: list[float]
    informations: list[float]
    totals: list[float]  # values of both variants
    max_information: float
    skipped: int  # measurements before min_samples
    after: int  # measurements after the planned maximum (they spend nothing)
    last_candidate: float  # the candidate's values at the last measurement


def _schedule(spec: Analysis, share: float, values_per_s: float) -> _Schedule:
    times: list[float] = []
    informations: list[float] = []
    totals: list[float] = []
    skipped = after = 0
    grouped = spec.test == "group_sequential"
    for k in range(1, spec.count + 1):
        total = values_per_s * spec.interval_s * k
        if min(total * share, total * (1 - share)) < spec.min_samples:
            skipped += 1
            continue
        times.append(spec.interval_s * k)
        informations.append(total * share * (1 - share))
        totals.append(total)
        if grouped and total >= spec.planned_samples:
            after = spec.count - k
            break
    return _Schedule(
        times=times,
        informations=informations,
        totals=totals,
        max_information=spec.planned_samples * share * (1 - share),
        skipped=skipped,
        after=after,
        last_candidate=values_per_s * spec.interval_s * spec.count * share,
    )


def _step(
    index: int, spec: Analysis, weight: float, traffic: Traffic, baselines: Baselines
) -> StepPlan:
    share = weight / 100
    promote_alpha = spec.alpha if spec.promote_alpha is None else spec.promote_alpha
    warnings: list[str] = []
    metrics: list[MetricPlan] = []
    curves: list[list[tuple[float, float]]] = []
    if 0 < share < 1:
        for metric in spec.metrics:
            planned, curve = _metric(metric, spec, share, traffic, baselines)
            metrics.append(planned)
            curves.append(curve)
    else:
        warnings.append(
            f"the candidate's weight is {weight:g}% here: an analysis needs both variants "
            "to get traffic, so the rollout pauses at this step"
        )
    most = spec.interval_s * spec.count
    ends = [m.final_look_s for m in metrics]
    duration = most if not ends or None in ends else max(e for e in ends if e is not None)
    chances = [m.promote_if_equal for m in metrics]
    promote = (
        math.prod(c for c in chances if c is not None) if metrics and None not in chances else None
    )
    expected = None
    if spec.test == "group_sequential" and metrics:
        expected = _expected_duration(curves, duration)
    alone = all(c is not None and c >= POWER for c in chances)
    if promote is not None and promote < POWER and alone and len(metrics) > 1:
        warnings.append(
            f"an equal candidate passes every metric at once about {promote:.0%} of the time"
        )
    return StepPlan(
        step=index,
        weight=weight,
        test=spec.test,
        spending=spec.spending if spec.test == "group_sequential" else None,
        alpha=spec.alpha,
        promote_alpha=promote_alpha,
        interval_s=spec.interval_s,
        count=spec.count,
        min_samples=spec.min_samples,
        planned_samples=spec.planned_samples,
        max_information=spec.planned_samples * share * (1 - share),
        duration_s=duration,
        expected_duration_s=expected,
        promote_if_equal=promote,
        metrics=metrics,
        warnings=warnings,
    )


def _expected_duration(curves: Sequence[Sequence[tuple[float, float]]], end: float) -> float:
    """The mean time until every metric is promoted, or ``end``, for an equal candidate."""
    times = sorted({t for curve in curves for t, _ in curve})
    expected = reached = 0.0
    for t in times:
        now = math.prod(max((p for s, p in curve if s <= t), default=0.0) for curve in curves)
        now = max(now, reached)
        expected += t * (now - reached)
        reached = now
    return expected + end * (1 - reached)


# -- one metric ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Effect:
    """How a metric's estimate varies when the candidate is worse by ``d`` (on the compared
    scale): per-request variances ``v`` with ``SE² = v / I``."""

    kind: Literal["rate", "mean"]
    base: float  # the baseline's rate (rates)
    sd: float  # per request (means)
    worse_up: bool  # worse is a higher value
    share: float

    def limit(self) -> float:
        """The largest effect there can be (a rate stays within 0 and 1)."""
        if self.kind == "mean":
            return math.inf
        return (1 - self.base if self.worse_up else self.base) * (1 - 1e-9)

    def true(self, d: float) -> float:
        """How the estimate varies (both arms' variances, weighted by the other's share)."""
        if self.kind == "mean":
            return self.sd * self.sd
        b, c = self._rates(d)
        return b * (1 - b) * self.share + c * (1 - c) * (1 - self.share)

    def tested(self, d: float) -> float:
        """What the "worse" test's z divides by."""
        if self.kind == "mean":
            return self.true(d)
        b, c = self._rates(d)
        pooled = (1 - self.share) * b + self.share * c
        return pooled * (1 - pooled)

    def within_tested(self, margin: float) -> float:
        """What the promotion test's z divides by when the candidate equals the baseline:
        for rates the rates restricted to the margin (Farrington & Manning), to first
        order the pooled rate split by the margin."""
        if self.kind == "mean":
            return self.true(0.0)
        sign = 1 if self.worse_up else -1
        b = _clip(self.base - sign * self.share * margin)
        c = _clip(self.base + sign * (1 - self.share) * margin)
        return b * (1 - b) * self.share + c * (1 - c) * (1 - self.share)

    def interval(self, d: float) -> float:
        """What an always-valid interval's variance is (the larger of pooled and unpooled)."""
        if self.kind == "mean":
            return self.true(d)
        b, c = self._rates(d)
        pooled = (1 - self.share) * b + self.share * c
        return max(pooled * (1 - pooled), self.true(d))

    def _rates(self, d: float) -> tuple[float, float]:
        return self.base, _clip(self.base + (d if self.worse_up else -d))


def _metric(
    metric: AnalysisMetric,
    spec: Analysis,
    share: float,
    traffic: Traffic,
    baselines: Baselines,
) -> tuple[MetricPlan, list[tuple[float, float]]]:
    """One metric's plan, and its promotion chance by look time (for the duration)."""
    quantity = baselines.of(metric)
    name = metric.name
    log = name in LOG_SCALE
    margin = metric.margin
    if margin is None:  # as the analysis defaults it
        margin = DEFAULT_MARGINS.get(name, COST_RELATIVE_MARGIN * abs(quantity.mean))
    on_scale = math.log1p(margin) if log else margin
    effect = _effect(metric, quantity, share)
    schedule = _schedule(spec, share, traffic.requests_per_s * quantity.coverage)
    alpha, promote_alpha = _alphas(spec)
    notes = _notes(schedule, spec)
    warnings: list[str] = []
    result = _Result()
    curve: list[tuple[float, float]] = []
    problem = _unplannable(schedule, effect, spec, metric)
    if problem is not None:
        warnings.append(problem)
    elif spec.test == "group_sequential":
        result, curve = _grouped(effect, on_scale, schedule, spec, alpha, promote_alpha)
    else:
        result = _always_valid(effect, on_scale, schedule, spec, alpha)
        notes.append(
            "always-valid: the detectable effect is the confidence sequence's at the last "
            "measurement; earlier looks only add to the chances"
        )
    shown = _Shown(name, log, effect.worse_up, quantity.mean)
    warnings += _result_warnings(result, on_scale)
    planned = MetricPlan(
        name=shown_name(metric),
        scale="log" if log else "rate" if effect.kind != "mean" else "mean",
        lower_is_better=name in LOWER_IS_BETTER,
        margin=margin,
        margin_text=shown.text(on_scale),
        baseline=shown.baseline(effect),
        sd=math.sqrt(effect.true(0.0)),
        assumed=quantity.source == "default",
        looks=_planned_looks(schedule, result),
        skipped=schedule.skipped,
        final_look_s=schedule.times[-1] if schedule.times else None,
        drift=result.drift,
        detectable=shown.value(result.detectable),
        detectable_ratio=shown.ratio(result.detectable),
        detectable_text=shown.text(result.detectable),
        fixed_horizon=shown.value(result.fixed),
        fixed_horizon_ratio=shown.ratio(result.fixed),
        fixed_horizon_text=shown.text(result.fixed),
        power_at_margin=result.at_margin if result.looked else None,
        promote_if_equal=result.promote,
        warnings=warnings,
        notes=notes,
    )
    return planned, curve


def _alphas(spec: Analysis) -> tuple[float, float]:
    """Each metric's alpha of the "worse" test and of the promotion test."""
    promote_alpha = spec.alpha if spec.promote_alpha is None else spec.promote_alpha
    return spec.alpha / len(spec.metrics), promote_alpha / len(spec.metrics)


def _unplannable(
    schedule: _Schedule, effect: _Effect, spec: Analysis, metric: AnalysisMetric
) -> str | None:
    """Why there is nothing to plan on, if so."""
    if not schedule.informations:
        return (
            f"too little traffic: about {schedule.last_candidate:.0f} values of the candidate in "
            f"{duration_text(spec.interval_s * spec.count)} (min_samples {spec.min_samples})"
        )
    if effect.true(0.0) <= 0:
        return (
            f"the baseline's {quantity_key(metric)} values do not vary: nothing to plan on "
            "(give a standard deviation)"
        )
    return None


def _result_warnings(result: _Result, margin: float) -> list[str]:
    if not result.looked:
        return []
    warnings = []
    if result.detectable is None:
        warnings.append(f"no effect is detected with {POWER:.0%} power at this traffic")
    elif result.detectable > margin:
        warnings.append(f"cannot detect the margin (caught {result.at_margin:.0%} of the time)")
    if result.promote is not None and result.promote < POWER:
        warnings.append(f"an equal candidate is promoted only {result.promote:.0%} of the time")
    return warnings


def _planned_looks(schedule: _Schedule, result: _Result) -> list[PlannedLook]:
    """The looks with their bounds (none when there was nothing to plan on)."""
    bounds = result.bounds or [(math.inf, math.inf)] * len(schedule.informations)
    return [
        PlannedLook(at_s=t, samples=n, information=i, bound=_finite(b), promote_bound=_finite(c))
        for t, n, i, (b, c) in zip(
            schedule.times, schedule.totals, schedule.informations, bounds, strict=True
        )
    ]


@dataclass(frozen=True)
class _Result:
    looked: bool = False
    detectable: float | None = None  # on the compared scale
    fixed: float | None = None
    drift: float | None = None
    at_margin: float = 0.0
    promote: float | None = None
    bounds: list[tuple[float, float]] = field(default_factory=list)  # worse, promote


def _grouped(
    effect: _Effect,
    margin: float,
    schedule: _Schedule,
    spec: Analysis,
    alpha: float,
    promote_alpha: float,
) -> tuple[_Result, list[tuple[float, float]]]:
    infos = schedule.informations
    worse = boundaries(
        infos, max_information=schedule.max_information, alpha=alpha, spending=spec.spending
    )
    within = boundaries(
        infos,
        max_information=schedule.max_information,
        alpha=promote_alpha,
        spending=spec.spending,
    )
    reference = schedule.max_information if any(look.fraction < 1 for look in worse) else infos[-1]

    def power(d: float) -> float:
        return _power(worse, effect, d, reference)

    detectable = _smallest(power, effect, infos[-1], alpha)
    last = [Look(infos[-1], 1.0, -_NORMAL.inv_cdf(alpha), alpha)]
    fixed = _smallest(lambda d: _power(last, effect, d, infos[-1]), effect, infos[-1], alpha)
    equal = effect.true(0.0)
    ratio = math.sqrt(effect.within_tested(margin) / equal)
    drift = margin * math.sqrt(reference / equal)

    def promoted(looks: Sequence[Look]) -> float:
        return crossing_probability(_scaled(looks, ratio), drift)

    points = min(len(within), DURATION_POINTS)  # evenly over the looks, the last one included
    ends = sorted({round(1 + i * (len(within) - 1) / max(points - 1, 1)) for i in range(points)})
    curve = [(schedule.times[e - 1], promoted(within[:e])) for e in ends]
    result = _Result(
        looked=True,
        detectable=detectable,
        fixed=fixed,
        drift=None
        if detectable is None
        else detectable * math.sqrt(reference / effect.true(detectable)),
        at_margin=power(min(margin, effect.limit())),
        promote=curve[-1][1],
        bounds=[(w.bound, p.bound) for w, p in zip(worse, within, strict=True)],
    )
    return result, curve


def _always_valid(
    effect: _Effect, margin: float, schedule: _Schedule, spec: Analysis, alpha: float
) -> _Result:
    n = max(round(schedule.totals[-1]), 1)
    information = schedule.informations[-1]
    rho = mixture_rho(alpha, spec.planned_samples)

    def power(d: float) -> float:
        half = boundary(effect.interval(d) / information, n, alpha, rho)
        return _NORMAL.cdf((d - half) / math.sqrt(effect.true(d) / information))

    last = [Look(information, 1.0, -_NORMAL.inv_cdf(alpha), alpha)]
    equal = effect.true(0.0)
    half = boundary(effect.interval(0.0) / information, n, alpha, rho)
    return _Result(
        looked=True,
        detectable=_smallest(power, effect, information, alpha),
        fixed=_smallest(lambda d: _power(last, effect, d, information), effect, information, alpha),
        at_margin=power(min(margin, effect.limit())),
        promote=_NORMAL.cdf((margin - half) / math.sqrt(equal / information)),
        bounds=[(math.inf, math.inf)] * len(schedule.informations),
    )


def _power(looks: Sequence[Look], effect: _Effect, d: float, reference: float) -> float:
    """The chance the "worse" test rejects a candidate worse by ``d``."""
    variance = effect.true(d)
    scaled = _scaled(looks, math.sqrt(effect.tested(d) / variance))
    return crossing_probability(scaled, d * math.sqrt(reference / variance))


def _scaled(looks: Sequence[Look], ratio: float) -> list[Look]:
    """The bounds on ``z`` as bounds on the unit-variance statistic ``z·SE_z/SE``."""
    if ratio == 1:
        return list(looks)
    return [Look(k.information, k.fraction, k.bound * ratio, k.spent) for k in looks]


def _smallest(
    power: Callable[[float], float], effect: _Effect, information: float, alpha: float
) -> float | None:
    """The smallest effect ``power`` reaches POWER at; None when none within the limit."""
    limit = effect.limit()
    guess = (_NORMAL.inv_cdf(POWER) - _NORMAL.inv_cdf(alpha)) * math.sqrt(
        effect.true(0.0) / information
    )
    high = min(max(guess, 1e-12), limit)
    while power(high) < POWER:
        if high >= limit:
            return None
        high = min(high * 2, limit)
    return float(optimize.brentq(lambda d: power(d) - POWER, 0.0, high, xtol=1e-12, rtol=1e-8))


def _effect(metric: AnalysisMetric, quantity: Quantity, share: float) -> _Effect:
    worse_up = metric.name in LOWER_IS_BETTER
    if metric.name in TAIL_METRICS:
        return _Effect("rate", 1 - TAIL, 0.0, worse_up, share)
    if metric.name in RATES:
        return _Effect("rate", _clip(quantity.mean), 0.0, worse_up, share)
    return _Effect("mean", quantity.mean, quantity.sd, worse_up, share)


def _notes(schedule: _Schedule, spec: Analysis) -> list[str]:
    notes: list[str] = []
    if spec.test != "group_sequential" or not schedule.informations:
        return notes
    fraction = schedule.informations[-1] / schedule.max_information
    if fraction < 1:
        notes.append(
            f"under-run: the last measurement reaches {fraction:.0%} of planned_samples and "
            "spends the rest of alpha"
        )
    elif fraction > 1.05:
        notes.append(
            f"over-run: the look that reaches planned_samples has {fraction:.2g}x its "
            f"information; {schedule.after} later measurements spend nothing"
        )
    return notes


@dataclass(frozen=True)
class _Shown:
    """An effect on the compared scale as people read it."""

    name: str
    log: bool
    worse_up: bool
    mean: float

    def value(self, d: float | None) -> float | None:
        """In the metric's unit: a difference, or for latency the relative slow-down."""
        if d is None:
            return None
        return math.expm1(d) if self.log else d

    def ratio(self, d: float | None) -> float | None:
        """Candidate over baseline at that effect, where a ratio means something."""
        if d is None:
            return None
        if self.log:
            return math.exp(d)
        base = 1 - TAIL if self.name in TAIL_METRICS else self.mean
        if self.name == "judge_score" or base <= 0:
            return None
        return (base + (d if self.worse_up else -d)) / base

    def text(self, d: float | None) -> str:
        if d is None:
            return "—"
        if self.log:
            return f"{math.exp(d):.3g}x slower"
        sign = "+" if self.worse_up else "-"
        ratio = self.ratio(d)
        times = f" ({ratio:.3g}x)" if ratio is not None else ""
        if self.name in RATES:
            return f"{sign}{100 * d:.3g} pts{times}"
        return f"{sign}{d:.3g}{times}"

    def baseline(self, effect: _Effect) -> float | None:
        """The baseline's rate, geometric mean (ms) or mean."""
        if self.log:
            return math.exp(self.mean)
        if effect.kind != "mean":
            return effect.base
        return self.mean


def duration_text(seconds: float) -> str:
    """A duration as people read it: 45 s, 6.5 min, 2.1 h."""
    if seconds < 120:
        return f"{seconds:.3g} s"
    if seconds < 7200:
        return f"{seconds / 60:.3g} min"
    return f"{seconds / 3600:.3g} h"


def _finite(bound: float) -> float | None:
    return bound if math.isfinite(bound) else None


def _rate_sd(rate: float) -> float:
    return math.sqrt(rate * (1 - rate))


def _clip(rate: float) -> float:
    return min(max(rate, 1e-9), 1 - 1e-9)
