"""Group-sequential experiments (a planned size, ``stop.max_samples``), simulated through
the experiment's own decision code (``experiments.decide`` and its stop rules) on traffic
split at random between the variants: equal variants are rarely declared different, a
treatment with a higher error rate is found nearly as often as by one test at the planned
size, and far more often than by the always-valid sequence (printed beside it)."""

from __future__ import annotations

import math
from collections import Counter
from datetime import timedelta
from typing import Any

import numpy as np
from scipy import stats

from modelyard.release.experiments import _stop_reason, decide
from modelyard.release.observations import VariantData
from modelyard.release.protocol import ExperimentCreate
from modelyard.store.tables import utcnow

PER_INTERVAL = 200
PLANNED = 1500  # requests per variant: the experiment's planned size


def spec(test: str) -> ExperimentCreate:
    return ExperimentCreate.model_validate(
        {
            "name": "sim",
            "model": "chat",
            "variants": [
                {"name": "control", "version": 1, "weight": 50},
                {"name": "treatment", "version": 2, "weight": 50},
            ],
            "primary": {"name": "error_rate"},
            "guardrails": [{"name": "latency"}],
            "min_samples": 100,
            "planned_samples": 2 * PLANNED,
            "stop": {"max_samples": PLANNED},
            "test": test,
        }
    )


def one_experiment(
    rng: np.random.Generator, experiment: ExperimentCreate, rates: tuple[float, float]
) -> tuple[str, int]:
    """Run one experiment to its stop; returns how it ended and after how many looks."""
    data = [VariantData(), VariantData()]
    earlier: list[dict[str, Any]] = []
    now = utcnow()
    for interval in range(1, 1000):
        for _ in range(PER_INTERVAL):
            arm = int(rng.random() < 0.5)
            variant = data[arm]
            variant.assigned += 1
            failed = rng.random() < rates[arm]
            variant.errors.append(1.0 if failed else 0.0)
            if not failed:
                variant.latency_ms.append(float(rng.lognormal(6.0, 0.8)))
        ran = timedelta(seconds=60 * interval)
        result = decide(experiment, data, earlier, ran, now + ran)
        if result is None:
            continue
        earlier.append(result)
        reason = _stop_reason(experiment, result, ran)
        if reason is None:
            continue
        if result["guardrail_failed"]:
            return "guardrail", len(earlier)
        if result["srm"]["mismatch"]:
            return "srm", len(earlier)
        return result["comparisons"][0]["verdict"], len(earlier)
    raise AssertionError("the experiment never stopped")


def test_equal_variants_are_rarely_declared_different() -> None:
    rng = np.random.default_rng(1717)
    runs = 300
    ends = Counter(
        one_experiment(rng, spec("group_sequential"), (0.03, 0.03))[0] for _ in range(runs)
    )
    false = runs - ends["undecided"]
    print(f"A/A group-sequential experiments: {dict(ends)}")
    # alpha 0.05 is spent on the primary (half on each side) and as much on the guardrail.
    for found, alpha in (
        (false, 0.1),
        (ends["better"] + ends["worse"], 0.05),
        (ends["guardrail"], 0.05),
    ):
        assert stats.binomtest(found, runs, alpha, alternative="greater").pvalue > 0.01, ends


def test_a_worse_treatment_is_found_nearly_as_often_as_by_one_test_at_the_end() -> None:
    rng = np.random.default_rng(1718)
    runs = 150
    rates = (0.04, 0.065)
    found = {
        test: Counter(one_experiment(rng, spec(test), rates)[0] for _ in range(runs))
        for test in ("group_sequential", "always_valid")
    }
    # One two-sided test of the difference at the planned size (per arm), by simulation.
    b = rng.binomial(PLANNED, rates[0], 20_000) / PLANNED
    c = rng.binomial(PLANNED, rates[1], 20_000) / PLANNED
    se = np.sqrt(b * (1 - b) / PLANNED + c * (1 - c) / PLANNED)
    fixed = float(np.mean((c - b) / se >= stats.norm.isf(0.025)))
    shares = {test: counts["worse"] / runs for test, counts in found.items()}
    print(
        f"treatment errors {rates[1]:.1%} against {rates[0]:.1%}, {PLANNED} requests per arm: "
        f"group-sequential {shares['group_sequential']:.2f}, fixed horizon {fixed:.2f}, "
        f"always-valid {shares['always_valid']:.2f}"
    )
    assert fixed >= 0.5 and not math.isnan(fixed)
    assert shares["group_sequential"] >= 0.8 * fixed
    assert found["group_sequential"]["better"] == 0
