"""The power planner: the effect it reports is the one a simulation of the analysis detects
80 % of the time, its promotion chance is the simulated one, and it warns when a plan cannot
detect its margins."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from modelyard.release.estimators import RateComparison
from modelyard.release.planner import Baselines, Quantity, Traffic, plan
from modelyard.release.protocol import Analysis, MetricPlan, RolloutPlan, Step

RUNS = 20_000


def planned(
    weight: float,
    requests_per_s: float,
    *,
    error_rate: float = 0.02,
    log_sd: float = 0.6,
    **analysis: Any,
) -> RolloutPlan:
    spec = {"interval_s": 15, "count": 40, "min_samples": 60, "planned_samples": 2000, **analysis}
    baselines = Baselines(
        {
            "errors": Quantity(
                error_rate, math.sqrt(error_rate * (1 - error_rate)), 1.0, 500, "given"
            ),
            "latency": Quantity(math.log(800), log_sd, 1.0, 500, "given"),
        }
    )
    steps = [Step(set_weight=weight), Step(analysis=Analysis.model_validate(spec))]
    return plan(steps, Traffic(requests_per_s), baselines, model="chat")


def metric(result: RolloutPlan, name: str) -> MetricPlan:
    return next(m for m in result.steps[0].metrics if m.name == name)


def arms(found: MetricPlan, share: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The looks' expected sizes per arm (whole requests) and the "worse" bounds."""
    totals = np.array([look.samples for look in found.looks])
    baseline = np.round(totals * (1 - share)).astype(int)
    candidate = np.round(totals * share).astype(int)
    bounds = np.array([math.inf if k.bound is None else k.bound for k in found.looks])
    return baseline, candidate, bounds


def simulated_rates(
    found: MetricPlan, share: float, rate: float, worse_by: float, seed: int
) -> float:
    """How often the pooled z of Bernoulli arms crosses the plan's bounds at some look."""
    n_b, n_c, bounds = arms(found, share)
    rng = np.random.default_rng(seed)
    steps_b, steps_c = np.diff(n_b, prepend=0), np.diff(n_c, prepend=0)
    x_b = np.cumsum(rng.binomial(steps_b, rate, size=(RUNS, n_b.size)), axis=1)
    x_c = np.cumsum(rng.binomial(steps_c, rate + worse_by, size=(RUNS, n_c.size)), axis=1)
    pooled = (x_b + x_c) / (n_b + n_c)
    error = np.sqrt(np.maximum(pooled * (1 - pooled), 1e-12) * (1 / n_b + 1 / n_c))
    z = (x_c / n_c - x_b / n_b) / error
    return float(np.mean(np.any(z >= bounds, axis=1)))


def simulated_means(
    found: MetricPlan, share: float, sd: float, worse_by: float, seed: int
) -> float:
    """The same for the mean of log latency (normal, known standard deviation)."""
    n_b, n_c, bounds = arms(found, share)
    rng = np.random.default_rng(seed)
    steps_b, steps_c = np.diff(n_b, prepend=0), np.diff(n_c, prepend=0)
    sum_b = np.cumsum(rng.normal(0, sd * np.sqrt(steps_b), size=(RUNS, n_b.size)), axis=1)
    sum_c = np.cumsum(
        rng.normal(worse_by * steps_c, sd * np.sqrt(steps_c), size=(RUNS, n_c.size)), axis=1
    )
    z = (sum_c / n_c - sum_b / n_b) / (sd * np.sqrt(1 / n_b + 1 / n_c))
    return float(np.mean(np.any(z >= bounds, axis=1)))


@pytest.mark.parametrize(
    ("share", "requests_per_s", "rate"), [(0.1, 5.0, 0.02), (0.5, 5.0, 0.02), (0.1, 20.0, 0.05)]
)
def test_the_detectable_error_rate_is_found_80_percent_of_the_time(
    share: float, requests_per_s: float, rate: float
) -> None:
    found = metric(planned(share * 100, requests_per_s, error_rate=rate), "error_rate")
    assert found.detectable is not None and found.looks
    detected = simulated_rates(found, share, rate, found.detectable, seed=1)
    assert detected == pytest.approx(0.8, abs=0.03)
    # The false alarms stay near alpha / metrics (the pooled z is not exact at 10 %).
    assert simulated_rates(found, share, rate, 0.0, seed=2) < 0.025 + 0.02


@pytest.mark.parametrize(("share", "requests_per_s"), [(0.1, 2.0), (0.5, 1.0), (0.2, 10.0)])
def test_the_detectable_slow_down_is_found_80_percent_of_the_time(
    share: float, requests_per_s: float
) -> None:
    found = metric(planned(share * 100, requests_per_s, log_sd=0.6), "latency")
    assert found.detectable is not None and found.detectable_ratio is not None
    assert found.detectable_ratio == pytest.approx(1 + found.detectable)
    worse_by = math.log(found.detectable_ratio)
    assert simulated_means(found, share, 0.6, worse_by, seed=3) == pytest.approx(0.8, abs=0.015)
    assert found.drift is not None
    assert worse_by == pytest.approx(found.drift * 0.6 / math.sqrt(2000 * share * (1 - share)))


@pytest.mark.parametrize(
    ("share", "requests_per_s", "count"),
    [(0.2, 3.0, 40), (0.5, 20.0, 5)],  # many looks; fewer looks than the duration's points
)
def test_the_promotion_chance_is_the_non_inferiority_tests_power(
    share: float, requests_per_s: float, count: int
) -> None:
    """Farrington-Manning's z (the analysis's) on simulated equal arms, at the plan's bounds."""
    rate, margin = 0.05, 0.03
    found = metric(
        planned(
            share * 100,
            requests_per_s,
            error_rate=rate,
            count=count,
            metrics=[{"name": "error_rate", "margin": margin}],
        ),
        "error_rate",
    )
    assert 0 < len(found.looks) <= count
    n_b, n_c, _ = arms(found, share)
    bounds = [look.promote_bound for look in found.looks]
    rng = np.random.default_rng(4)
    runs = 2000
    x_b = np.cumsum(rng.binomial(np.diff(n_b, prepend=0), rate, size=(runs, n_b.size)), axis=1)
    x_c = np.cumsum(rng.binomial(np.diff(n_c, prepend=0), rate, size=(runs, n_c.size)), axis=1)
    promoted = 0
    for run in range(runs):
        for k, bound in enumerate(bounds):
            compared = RateComparison(
                estimate=x_c[run, k] / n_c[k] - x_b[run, k] / n_b[k],
                standard_error=1.0,
                z=0.0,
                information=0.0,
                baseline_n=int(n_b[k]),
                candidate_n=int(n_c[k]),
                scale="rate",
                baseline_events=int(x_b[run, k]),
                candidate_events=int(x_c[run, k]),
            )
            if bound is not None and compared.within_margin_z(margin, True) >= bound:
                promoted += 1
                break
    assert found.promote_if_equal == pytest.approx(promoted / runs, abs=0.035)


def test_a_margin_too_small_for_the_traffic_is_flagged() -> None:
    tight = planned(10, 2.0, metrics=[{"name": "error_rate", "margin": 0.005}])
    found = metric(tight, "error_rate")
    assert found.detectable is not None and found.detectable > 0.005
    assert found.power_at_margin is not None and found.power_at_margin < 0.8
    assert any(w.startswith("cannot detect the margin") for w in found.warnings)
    assert found.promote_if_equal is not None and found.promote_if_equal < 0.8
    assert any("promoted only" in w for w in found.warnings)
    assert any(w.startswith("step 2, error_rate: cannot detect") for w in tight.warnings)
    wide = metric(planned(50, 20.0, metrics=[{"name": "error_rate", "margin": 0.05}]), "error_rate")
    assert wide.warnings == [] and wide.power_at_margin is not None and wide.power_at_margin > 0.8


def test_more_traffic_detects_smaller_effects() -> None:
    effects = [
        metric(planned(20, rate, planned_samples=100_000), "latency").detectable
        for rate in (1.0, 4.0, 16.0)
    ]
    assert all(e is not None for e in effects)
    assert effects[0] > effects[1] > effects[2]  # type: ignore[operator]
    # Under-run at every rate here: the information, and with it 1/MDE², grows with traffic.
    assert effects[0] / effects[2] == pytest.approx(4, rel=0.1)  # type: ignore[operator]


def test_under_run_over_run_and_too_little_traffic() -> None:
    under = metric(planned(50, 1.0, planned_samples=10_000), "latency")
    assert any(n.startswith("under-run") for n in under.notes)
    assert under.final_look_s == 15 * 40 and under.looks[-1].bound is not None
    over = metric(planned(50, 10.0, interval_s=60, planned_samples=1000), "latency")
    assert any(n.startswith("over-run") for n in over.notes)
    assert len(over.looks) == 2 and over.looks[-1].samples == 1200  # at 60 s and 120 s
    assert over.final_look_s == 120 and over.skipped == 0
    starved = planned(5, 0.1)
    for found in starved.steps[0].metrics:
        assert found.looks == [] and found.detectable is None
        assert found.warnings[0].startswith("too little traffic")
    assert starved.steps[0].duration_s == 15 * 40


def test_a_step_without_a_split_and_defaults_are_flagged() -> None:
    steps = [Step(analysis=Analysis()), Step(set_weight=30), Step(analysis=Analysis())]
    result = plan(steps, Traffic(10.0), Baselines(), model="chat")
    first, second = result.steps
    assert first.metrics == [] and "weight is 0%" in first.warnings[0]
    assert [m.name for m in second.metrics] == ["error_rate", "latency"]
    assert all(m.assumed for m in second.metrics)
    assert {q.name: q.source for q in result.quantities} == {
        "errors": "default",
        "latency": "default",
    }
    assert second.expected_duration_s is not None
    assert second.expected_duration_s <= second.duration_s


def test_an_always_valid_analysis_needs_more_data() -> None:
    grouped = metric(planned(20, 5.0), "latency")
    valid = metric(planned(20, 5.0, test="always_valid"), "latency")
    assert any(n.startswith("always-valid") for n in valid.notes)
    assert grouped.detectable is not None and valid.detectable is not None
    # The always-valid run reads all 40 looks, past the planned 2000 requests, and still
    # needs a larger effect than one fixed-horizon test at its last look.
    assert valid.fixed_horizon is not None and valid.detectable > valid.fixed_horizon
    assert valid.looks[-1].samples > grouped.looks[-1].samples


def test_a_baseline_that_does_not_vary_is_flagged_not_planned() -> None:
    # Every logged latency the same (a scripted engine): nothing to plan a slow-down on.
    steps = [Step(set_weight=50), Step(analysis=Analysis())]
    flat = Baselines({"latency": Quantity(math.log(10.0), 0.0, 1.0, 500, "log")})
    result = plan(steps, Traffic(10.0), flat, model="chat")
    latency = metric(result, "latency")
    assert latency.looks and all(look.bound is None for look in latency.looks)
    assert latency.detectable is None and latency.promote_if_equal is None
    assert any("do not vary" in w for w in latency.warnings)
