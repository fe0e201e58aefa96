"""A study's space read against its task: settings, objective, checks before any trial."""

from __future__ import annotations

from typing import Any

import pytest

from modelyard.improve.tune.errors import InvalidStudy
from modelyard.improve.tune.protocol import StudyRequest
from modelyard.improve.tune.space import (
    check_study,
    configured,
    objective_of,
    pinned,
    production_of,
    settings_for,
)
from tests.improve.tune.words import RIGHT_TEMPLATE, study_body, words


def request(**changes: Any) -> StudyRequest:
    return StudyRequest.model_validate(study_body(**changes))


def test_a_trial_s_parameters_stand_for_settings_and_the_rest_are_the_task_s_own() -> None:
    study = request(space={**study_body()["space"], "systems": ["Be brief.", ""]})
    own = settings_for(study, {}, "m:production")
    assert (own.template, own.system, own.few_shot) == ("Say {{ word }}", None, 0)
    assert own.generation == {"temperature": 0.9, "max_tokens": 16}
    chosen = settings_for(study, {"template": 1, "system": 1, "temperature": 0.2}, "m")
    assert (chosen.template, chosen.system) == (RIGHT_TEMPLATE, "Be brief.")
    assert chosen.generation == {"temperature": 0.2, "max_tokens": 16}
    assert settings_for(study, {"system": 2}, "m").system is None  # "" is no system prompt
    task = configured(study.task, chosen)
    assert task.prompt.template == RIGHT_TEMPLATE and task.name == study.task.name
    assert study.task.prompt.template == "Say {{ word }}"  # the request's task is untouched
    student = settings_for(study, {"student.c": 0.5, "template": 0}, "m").student
    assert student == {"c": 0.5}


def test_the_objective_and_its_direction() -> None:
    task = request().task
    assert objective_of(task, None).key == "exact_match"
    assert objective_of(task, None).direction == "maximize"
    lower = task.model_copy(
        update={"metrics": [task.metrics[0].model_copy(update={"higher_is_better": False})]}
    )
    assert objective_of(lower, "exact_match").direction == "minimize"
    for wrong in ("accuracy", "judge:nobody"):
        with pytest.raises(InvalidStudy) as refused:
            objective_of(task, wrong)
        assert refused.value.param == "objective"


def test_plain_route_names_mean_their_production_alias() -> None:
    assert pinned("chat") == "chat:production"
    assert pinned("chat:canary") == "chat:canary" and pinned("chat@3") == "chat@3"
    assert production_of("chat@3") == production_of("chat:canary") == "chat:production"


@pytest.mark.parametrize(
    ("space", "param"),
    [
        ({"templates": ["{{ wurd }}"]}, "space.templates.0"),
        ({"systems": ["ok", "{{ missing }}"]}, "space.systems.1"),
        ({"few_shot": {"low": 0, "high": 8}}, "space.few_shot.high"),
        (
            {
                "student": {
                    "trainer": "nobody",
                    "params": {"c": {"type": "float", "low": 0, "high": 1}},
                }
            },
            "space.student.trainer",
        ),
    ],
)
def test_what_a_trial_would_fail_on_is_refused_first(space: dict[str, Any], param: str) -> None:
    items = words()
    search, holdout = items[:12], items[12:]
    with pytest.raises(InvalidStudy) as refused:
        check_study(request(space=space), search, holdout, trainers=())
    assert refused.value.param == param and refused.value.status == 400
