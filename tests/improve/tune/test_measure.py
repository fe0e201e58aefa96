"""What a trial measures of its run: the objective, latency and cost per item against the
bounds; and which trial is best."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from modelyard.evaluate.protocol import EvalItemOut, EvalRunOut
from modelyard.improve.tune.measure import measure
from modelyard.improve.tune.protocol import Constraints
from modelyard.improve.tune.ranking import best_of, history_of
from modelyard.improve.tune.space import Objective
from tests.improve.tune.trials import trial

OBJECTIVE = Objective("exact_match", True)
PRICED = {"m@1": {"price": {"input_per_million": 2_000_000, "output_per_million": 1_000_000}}}


def run(value: float | None) -> EvalRunOut:
    metrics = {} if value is None else {"exact_match": {"value": value}}
    return EvalRunOut(
        id=1,
        task="t",
        dataset_sha256="0" * 64,
        model="m",
        versions=["m@1"],
        item_count=2,
        done=2,
        status="done",
        metrics=metrics,
        created_at=datetime.now(UTC),
        finished_at=None,
        created_by="tests",
    )


def item(index: int, latency_ms: float, error: str | None = None, **tokens: int) -> EvalItemOut:
    return EvalItemOut(
        item_index=index,
        request_id=None,
        version="m@1",
        question="q",
        prediction="p",
        extracted="p",
        reference="p",
        error=error,
        latency_ms=latency_ms,
        prompt_tokens=tokens.get("prompt", 0),
        completion_tokens=tokens.get("completion", 0),
    )


def prices(version: str) -> dict[str, Any]:
    return PRICED.get(version, {})


def test_latency_and_cost_per_item_against_the_bounds() -> None:
    answers = [item(0, 100.0, prompt=3, completion=1), item(1, 300.0, prompt=1, completion=1)]
    within = measure(run(0.5), answers, OBJECTIVE, Constraints(), prices)
    assert (within.value, within.latency_ms, within.cost) == (0.5, 200.0, 5.0)
    assert within.feasible and within.constraints == {}
    bounded = Constraints(max_latency_ms=150, max_cost=6)
    over = measure(run(0.5), answers, OBJECTIVE, bounded, prices)
    assert over.constraints == {"latency_ms": 50.0, "cost": -1.0} and over.feasible is False
    failed_item = [*answers, item(2, 5000.0, error="502: down")]  # unanswered: not timed
    assert measure(run(0.5), failed_item, OBJECTIVE, bounded, prices).errors == 1
    assert measure(run(0.5), failed_item, OBJECTIVE, bounded, prices).latency_ms == 200.0


def test_a_run_with_no_answer_or_no_value_is_a_failed_trial() -> None:
    nothing = measure(
        run(0.0), [item(0, 1.0, error="404: no model")], OBJECTIVE, Constraints(), prices
    )
    assert nothing.state == "failed" and "404: no model" in (nothing.message or "")
    unscored = measure(run(None), [item(0, 1.0)], OBJECTIVE, Constraints(), prices)
    assert unscored.state == "failed" and unscored.value is None


def test_the_best_is_the_best_feasible_complete_trial_the_earliest_of_equals() -> None:
    trials = [
        trial(0, 0.2),
        trial(1, 0.9, feasible=False),
        trial(2, None, state="failed", feasible=None),
        trial(3, 0.6),
        trial(4, 0.6),
    ]
    assert best_of(trials, higher_is_better=True) == trials[3]
    assert best_of(trials, higher_is_better=False) == trials[0]
    assert [p.best for p in history_of(trials, True)] == [0.2, 0.2, 0.2, 0.6, 0.6]
    assert best_of([trials[1], trials[2]], True) is None
