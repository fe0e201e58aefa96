"""The sampler's side: the space as Optuna's distributions, the task's own settings first,
seeded asks that do not depend on an interruption, constraints replayed, importances."""

from __future__ import annotations

from typing import Any

from modelyard.improve.tune.protocol import StudyRequest
from modelyard.improve.tune.ranking import best_of
from modelyard.improve.tune.search import (
    MIN_IMPORTANCE_TRIALS,
    ask,
    defaults,
    distributions,
    importances,
    replayed,
)
from modelyard.improve.tune.space import Objective
from tests.improve.tune.trials import trial
from tests.improve.tune.words import study_body

HIGHER = Objective("exact_match", True)


def request(**changes: Any) -> StudyRequest:
    return StudyRequest.model_validate(study_body(**changes))


def test_the_first_trial_is_the_task_s_own_settings_where_the_space_holds_them() -> None:
    study = request()
    assert defaults(study, distributions(study)) == {
        "temperature": 0.9,
        "template": 0,
        "few_shot": 0,
    }
    params, default = ask(study, HIGHER, [], 0)
    assert params == {"temperature": 0.9, "template": 0, "few_shot": 0} and default
    narrow = request(space={**study_body()["space"], "temperature": {"low": 0, "high": 0.5}})
    assert "temperature" not in defaults(narrow, distributions(narrow))  # 0.9 is outside
    params, default = ask(narrow, HIGHER, [], 0)
    assert params["template"] == 0 and not default  # sampled where the task's is outside
    stepped = request(space={"few_shot": {"low": 1, "high": 5, "step": 2}})
    assert distributions(stepped)["few_shot"].step == 2  # type: ignore[attr-defined]
    assert defaults(stepped, distributions(stepped)) == {}  # 0 is off the grid


def test_asks_are_seeded_by_study_and_trial_so_a_resumed_study_asks_the_same() -> None:
    study = request()
    history = [trial(0, 0.0, {"temperature": 0.9, "template": 0, "few_shot": 0})]
    first = ask(study, HIGHER, history, 1)
    assert ask(study, HIGHER, history, 1) == first  # a fresh sampler, the same question
    assert ask(request(seed=1), HIGHER, history, 1) != first
    space = distributions(study)
    for number in range(1, 6):
        params, _ = ask(study, HIGHER, history, number)
        assert set(params) == set(space)
        assert 0 <= params["temperature"] <= 1 and params["template"] in (0, 1, 2)


def test_replayed_trials_keep_their_constraints() -> None:
    study = request(space={"temperature": {"low": 0, "high": 1}})
    trials = [
        trial(0, 1.0, {"temperature": 0.2}, feasible=False, constraints={"cost": 0.5}),
        trial(1, 0.5, {"temperature": 0.4}, constraints={"cost": -0.1}),
        trial(2, None, {"temperature": 0.6}, state="failed", feasible=None),
    ]
    optuna_study = replayed(HIGHER, distributions(study), trials)
    assert len(optuna_study.trials) == 3
    assert optuna_study.best_trial.number == 1  # Optuna, too, passes over the infeasible
    assert best_of(trials, True) == trials[1]


def test_importances_say_why_when_there_are_none() -> None:
    study = request(space={"temperature": {"low": 0, "high": 1}, "templates": ["{{ word }}"]})
    few = [trial(n, float(n % 2), {"temperature": 0.1 * n, "template": 0}) for n in range(3)]
    found = importances(study, HIGHER, few)
    assert found.values is None and f"at least {MIN_IMPORTANCE_TRIALS}" in (found.reason or "")
    alike = [trial(n, 1.0, {"temperature": 0.1 * n, "template": n % 2}) for n in range(6)]
    found = importances(study, HIGHER, alike)
    assert found.values is None and "every complete trial scored 1" in (found.reason or "")


def test_importances_find_the_parameter_that_decides() -> None:
    study = request(space={"temperature": {"low": 0, "high": 1}, "templates": ["{{ word }}"]})
    trials = [
        trial(n, 1.0 if temperature < 0.3 else 0.0, {"temperature": temperature, "template": n % 2})
        for n, temperature in enumerate([0.05, 0.9, 0.15, 0.7, 0.25, 0.5, 0.8, 0.1, 0.6, 0.95])
    ]
    found = importances(study, HIGHER, trials)
    assert found.values is not None and found.trials == 10
    assert abs(sum(found.values.values()) - 1.0) < 1e-9
    assert found.values["temperature"] > found.values["template"]
