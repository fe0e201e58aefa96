"""The analysis's rules, one metric and one run at a time, and what it reads from the log."""

from __future__ import annotations

import numpy as np
import pytest

from modelyard.release.analysis import combine, compare_metric, run_state
from modelyard.release.observations import VariantData, observe
from modelyard.release.protocol import Analysis, AnalysisMetric, Outcome
from modelyard.store import Store
from modelyard.store.tables import FeedbackRow, utcnow
from tests.release.logrows import served


def variant(
    rng: np.random.Generator,
    n: int,
    *,
    error: float = 0.0,
    latency: float = 100.0,
    cost: float = 0.01,
    feedback: float | None = None,
) -> VariantData:
    data = VariantData(assigned=n)
    data.errors = [float(rng.random() < error) for _ in range(n)]
    data.latency_ms = list(rng.lognormal(np.log(latency), 0.3, n))
    data.ttft_ms = list(rng.lognormal(np.log(latency / 4), 0.3, n))
    data.cost = list(rng.normal(cost, cost / 10, n))
    if feedback is not None:
        data.feedback["thumbs"] = [float(rng.random() < feedback) for _ in range(n)]
        data.feedback["judge:quality"] = list(rng.normal(3 + 2 * feedback, 0.5, n))
    return data


def outcome(name: str, base: VariantData, cand: VariantData, **metric: object) -> str:
    spec = AnalysisMetric.model_validate({"name": name, **metric})
    return compare_metric(
        spec, base, cand, alpha=0.05, min_samples=50, planned_samples=4000
    ).outcome


@pytest.mark.parametrize(
    ("name", "worse", "better"),
    [
        ("error_rate", {"error": 0.15}, {"error": 0.0}),
        ("latency_p95", {"latency": 200.0}, {"latency": 50.0}),
        ("ttft_p95", {"latency": 200.0}, {"latency": 50.0}),
        ("cost_per_request", {"cost": 0.02}, {"cost": 0.005}),
        ("positive_feedback_rate", {"feedback": 0.3}, {"feedback": 0.9}),
    ],
)
def test_each_metric_fails_a_worse_candidate_and_passes_a_better_one(
    name: str, worse: dict[str, float], better: dict[str, float]
) -> None:
    rng = np.random.default_rng(1)
    base_fields = {"error": 0.05, "latency": 100.0, "cost": 0.01, "feedback": 0.6}
    base = variant(rng, 2000, **base_fields)
    assert outcome(name, base, variant(rng, 2000, **{**base_fields, **worse})) == "Failed"
    assert outcome(name, base, variant(rng, 2000, **{**base_fields, **better})) == "Successful"
    assert outcome(name, base, variant(rng, 20, **{**base_fields, **worse})) == "Inconclusive"


def test_judge_scores_are_read_from_the_named_feedback() -> None:
    rng = np.random.default_rng(2)
    base = variant(rng, 1000, feedback=0.6)
    worse = variant(rng, 1000, feedback=0.1)
    assert outcome("judge_score", base, worse, feedback="judge:quality") == "Failed"
    assert outcome("judge_score", base, worse, feedback="judge:other") == "Inconclusive"


def test_runs_end_by_the_limits() -> None:
    spec = Analysis(count=4, failure_limit=1, inconclusive_limit=2)
    states: dict[tuple[Outcome, ...], str] = {
        (): "running",
        ("Inconclusive",): "running",
        ("Failed",): "running",
        ("Failed", "Failed"): "failed",
        ("Inconclusive", "Successful"): "successful",
        ("Inconclusive", "Inconclusive", "Inconclusive"): "inconclusive",
        ("Failed", "Inconclusive", "Inconclusive", "Inconclusive"): "inconclusive",
    }
    for outcomes, state in states.items():
        assert run_state(list(outcomes), spec) == state, outcomes
    assert run_state(["Inconclusive"] * 4, Analysis(count=4)) == "inconclusive"
    assert combine(["Successful", "Successful"]) == "Successful"
    assert combine(["Successful", "Inconclusive"]) == "Inconclusive"
    assert combine(["Successful", "Failed"]) == "Failed"
    assert combine(["Successful"], mismatch=True) == "Failed"


def test_observations_come_from_the_log_and_feedback(store: Store) -> None:
    now = utcnow()
    rows = [
        ("a", "stable", 200, None, "u1"),
        ("b", "stable", 502, None, "u2"),
        ("c", "candidate", 200, "chat@2", "u3"),  # a fallback answered: an error
        ("d", "candidate", 429, None, "u3"),  # refused: counted for SRM, not the metrics
        ("e", "shadow", 200, None, None),
        ("f", None, 404, None, None),
    ]
    with store.session() as session:
        for request_id, name, status, fallback_from, user in rows:
            session.add(
                served(
                    request_id,
                    now,
                    status=status,
                    ttft_ms=2.0,
                    cost=0.5,
                    variant=name,
                    fallback_from=fallback_from,
                    user=user,
                )
            )
        for request_id, value in (("a", 1.0), ("a", 0.0), ("c", 1.0)):
            session.add(
                FeedbackRow(
                    request_id=request_id,
                    key_id="k",
                    name="thumbs",
                    kind="boolean",
                    number=value,
                    source="human",
                    at=now,
                )
            )
    seen = observe(store, "chat", ["stable", "candidate"], now, now, ["thumbs"])
    stable, candidate = seen.of("stable"), seen.of("candidate")
    assert (stable.assigned, sorted(stable.errors), stable.latency_ms) == (2, [0.0, 1.0], [10.0])
    assert (candidate.assigned, candidate.errors, candidate.users) == (2, [1.0], {"u3"})
    assert stable.feedback == {"thumbs": [0.0]}  # the latest feedback on a request counts
    assert candidate.feedback == {"thumbs": [1.0]}
