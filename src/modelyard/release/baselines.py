"""What a power plan assumes, read from the request log: the route's traffic and the
baseline's metrics over a recent window (background work, never the request path).

The traffic is every served request of the route in the window, both variants, shadows
left out. The baseline is the requests of the stable variant and those no policy assigned
(before a rollout, all of them), the newest ``BASELINE_ROWS``, counted as an analysis
counts them (``observations.observe``). A quantity with fewer than ``planner.MIN_LOGGED``
values keeps the planner's documented default, which the plan flags.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, select

from modelyard.lazy import lazy_module
from modelyard.release.estimators import LOG_FLOOR_MS, cuped, log_prompt_length
from modelyard.release.observations import SERVED_ENDPOINTS, VariantData, observe
from modelyard.release.planner import (
    DEFAULT_JUDGE_SD,
    MIN_LOGGED,
    Baselines,
    Quantity,
    Traffic,
    default_quantity,
    plan,
    quantity_key,
)
from modelyard.release.protocol import AnalysisMetric, PlanBaselines, RolloutPlan, Step
from modelyard.release.rollouts import BASELINE
from modelyard.store import Store
from modelyard.store.tables import RequestLogRow, utcnow

np = lazy_module("numpy")

WINDOW_S = 24 * 3600.0
BASELINE_ROWS = 20_000  # plenty for a rate and a standard deviation


def plan_from_log(
    store: Store,
    model: str,
    steps: Sequence[Step],
    *,
    requests_per_s: float | None = None,
    given: PlanBaselines | None = None,
    window_s: float = WINDOW_S,
    now: datetime | None = None,
    rollout: int | None = None,
) -> RolloutPlan:
    """The plan of ``steps`` on route ``model``, with what the log (or the caller) says."""
    until = now or utcnow()
    since = until - timedelta(seconds=window_s)
    requests = count_requests(store, model, since, until)
    traffic = Traffic(
        requests_per_s if requests_per_s is not None else requests / window_s,
        "given" if requests_per_s is not None else "request log",
        window_s,
        requests,
    )
    metrics = [m for step in steps if step.analysis is not None for m in step.analysis.metrics]
    baselines = read_baselines(store, model, since, until, metrics)
    if given is not None:
        baselines = with_given(baselines, given, metrics)
    return plan(steps, traffic, baselines, model=model, rollout=rollout)


def count_requests(store: Store, route: str, since: datetime, until: datetime) -> int:
    t = RequestLogRow
    query = (
        select(func.count())
        .select_from(t)
        .where(
            t.route == route,
            t.at >= since,
            t.at <= until,
            t.endpoint.in_(SERVED_ENDPOINTS),
            t.variant.is_distinct_from("shadow"),
        )
    )
    with store.session() as session:
        return int(session.scalar(query) or 0)


def read_baselines(
    store: Store,
    route: str,
    since: datetime,
    until: datetime,
    metrics: Sequence[AnalysisMetric],
) -> Baselines:
    feedback = sorted({m.feedback for m in metrics if quantity_key(m).startswith("feedback:")})
    data = observe(
        store, route, [BASELINE], since, until, feedback, unassigned=BASELINE, limit=BASELINE_ROWS
    ).of(BASELINE)
    return Baselines({quantity_key(m): _quantity(m, data) for m in metrics})


def _quantity(metric: AnalysisMetric, data: VariantData) -> Quantity:
    key = quantity_key(metric)
    default = default_quantity(metric)
    if data.assigned < MIN_LOGGED:
        return default
    if key == "errors":
        events, n = sum(data.errors), len(data.errors)
        rate = (events + 0.5) / (n + 1)  # half an event: no errors yet is not a rate of 0
        return _measured(default, n, data.assigned, rate, math.sqrt(rate * (1 - rate)))
    if key in ("latency", "ttft"):
        values, prompts = (
            (data.latency_ms, data.prompt_tokens)
            if key == "latency"
            else (data.ttft_ms, data.ttft_prompt_tokens)
        )
        if len(values) < MIN_LOGGED:
            return _measured(default, len(values), data.assigned)
        logs = np.log(np.maximum(np.asarray(values, dtype=float), LOG_FLOOR_MS))
        reduction = 0.0
        adjusted = logs
        if len(prompts) == len(values):  # CUPED on the prompt's length, as the analysis
            (adjusted,), reduction = cuped([logs], [log_prompt_length(prompts)])
        sd = float(np.std(adjusted, ddof=1))
        return _measured(default, len(values), data.assigned, float(np.mean(logs)), sd, reduction)
    values = (
        data.cost
        if key == "cost"
        else data.quality
        if key == "quality"
        else data.feedback.get(metric.feedback, [])
    )
    if len(values) < MIN_LOGGED:
        return _measured(default, len(values), data.assigned)
    array = np.asarray(values, dtype=float)
    return _measured(
        default, len(values), data.assigned, float(np.mean(array)), float(np.std(array, ddof=1))
    )


def _measured(
    default: Quantity,
    n: int,
    requests: int,
    mean: float | None = None,
    sd: float | None = None,
    reduction: float = 0.0,
) -> Quantity:
    """The log's coverage, and its mean and sd when there were enough values."""
    coverage = n / requests
    if mean is None or sd is None:
        return Quantity(default.mean, default.sd, coverage, n, "default")
    return Quantity(mean, sd, coverage, n, "log", reduction)


def with_given(
    baselines: Baselines, given: PlanBaselines, metrics: Sequence[AnalysisMetric]
) -> Baselines:
    """``baselines`` with the values the caller gave in place of the log's."""
    found = {quantity_key(m): baselines.of(m) for m in metrics}
    if given.error_rate is not None:
        rate = given.error_rate
        _set(found, "errors", rate, math.sqrt(rate * (1 - rate)))
    if given.latency_log_sd is not None:
        _set(found, "latency", None, given.latency_log_sd)
    if given.ttft_log_sd is not None:
        _set(found, "ttft", None, given.ttft_log_sd)
    if given.cost_mean is not None or given.cost_sd is not None:
        _set(found, "cost", given.cost_mean, given.cost_sd)
    for name, feedback in given.feedback.items():
        sd = feedback.sd
        if sd is None:
            rate = feedback.mean
            sd = math.sqrt(rate * (1 - rate)) if 0 < rate < 1 else DEFAULT_JUDGE_SD
        _set(found, f"feedback:{name}", feedback.mean, sd, feedback.coverage)
    return Baselines(found)


def _set(
    found: dict[str, Quantity],
    key: str,
    mean: float | None,
    sd: float | None,
    coverage: float | None = None,
) -> None:
    """Replace what was given of one quantity (when a metric uses it)."""
    before = found.get(key)
    if before is None:
        return
    found[key] = Quantity(
        before.mean if mean is None else mean,
        before.sd if sd is None else sd,
        before.coverage if coverage is None else coverage,
        before.n,
        "given",
        before.variance_reduction if sd is None else 0.0,
    )
