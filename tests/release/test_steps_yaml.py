"""A rollout's steps as YAML or JSON text (``steps_yaml``, what the console's form sends):
parsed by the API into ``steps``, refused with a 400 naming the field when they do not parse,
never together with ``steps``."""

from __future__ import annotations

import json
from typing import Any

import pytest

from modelyard.release.protocol import RolloutCreate, Step
from modelyard.store.tables import RolloutRow
from tests.conftest import AppClient, register_scripted

pytestmark = pytest.mark.anyio

STEPS_YAML = """\
# comments are fine
- set_weight: 20
- analysis:
    interval_s: 30
    metrics: [{name: error_rate, margin: 0.05}]
- pause: {duration_s: 60}
- gate:
    task: qa
    rules:
      - {metric: exact_match, min_value: 0.5}
"""
PARSED = [
    {"set_weight": 20},
    {"analysis": {"interval_s": 30, "metrics": [{"name": "error_rate", "margin": 0.05}]}},
    {"pause": {"duration_s": 60}},
    {"gate": {"task": "qa", "rules": [{"metric": "exact_match", "min_value": 0.5}]}},
]


async def two_versions(api: AppClient) -> None:
    register_scripted(api.services.registry, "chat")
    register_scripted(api.services.registry, "chat", alias="canary")
    await api.reload_routes()


def as_steps(raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [Step.model_validate(s).model_dump(mode="json") for s in raw]


async def refusal(api: AppClient, url: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = await api.post(url, json=body)
    assert answer.status_code == 400, answer.text
    error: dict[str, Any] = answer.json()["error"]
    assert error["type"] == "invalid_request_error"
    return error


async def test_steps_given_as_yaml_start_the_rollout_they_say(api: AppClient) -> None:
    await two_versions(api)
    body = {"model": "chat", "candidate": 2, "steps_yaml": STEPS_YAML, "notify": []}
    started = await api.post("/api/rollouts", json=body)
    assert started.status_code == 201, started.text
    rollout = started.json()
    assert rollout["steps"] == as_steps(PARSED) and "steps_yaml" not in rollout
    assert rollout["status"] == "running" and rollout["weight"] == 20
    with api.services.store.session() as session:
        stored = session.get(RolloutRow, rollout["id"])
        assert stored is not None
        assert "steps_yaml" not in stored.spec  # kept as steps, as the API returns them
    read = (await api.get(f"/api/rollouts/{rollout['id']}")).json()
    assert read["steps"] == rollout["steps"]


async def test_json_text_is_taken_too_and_plans_alike(api: AppClient) -> None:
    await two_versions(api)
    fields = {"model": "chat", "candidate": 2, "requests_per_s": 5}
    by_text = await api.post("/api/rollouts/plan", json={**fields, "steps_yaml": STEPS_YAML})
    as_json = await api.post(
        "/api/rollouts/plan", json={**fields, "steps_yaml": json.dumps(PARSED)}
    )
    by_list = await api.post("/api/rollouts/plan", json={**fields, "steps": PARSED})
    for answer in (by_text, as_json, by_list):
        assert answer.status_code == 200, answer.text
    assert by_text.json() == as_json.json() == by_list.json()
    (step,) = by_text.json()["steps"]
    assert step["weight"] == 20 and [m["name"] for m in step["metrics"]] == ["error_rate"]


@pytest.mark.parametrize(
    ("text", "param", "says"),
    [
        ("- set_weight: [10\n", "steps_yaml", "not valid YAML or JSON"),
        ("- set_weight: 10\n  - pause: {}\n", "steps_yaml", "line 2"),
        ("set_weight: 10\n", "steps_yaml", "expected a list of steps"),
        ("", "steps_yaml", "expected a list of steps"),
        ("- &w {set_weight: 10}\n- *w\n", "steps_yaml", "aliases (*name) are not taken"),
        ("- set_weight: 150\n", "steps_yaml.0.set_weight", "less than or equal to 100"),
        ("- pause: {}\n- wait: 10\n", "steps_yaml.1.wait", "Extra inputs"),
        ("[" * 30_000 + "]" * 30_000, "steps_yaml", "nested too deeply"),
    ],
)
async def test_steps_that_do_not_parse_are_a_400_naming_the_field(
    api: AppClient, text: str, param: str, says: str
) -> None:
    await two_versions(api)
    for url in ("/api/rollouts", "/api/rollouts/plan"):
        error = await refusal(api, url, {"model": "chat", "candidate": 2, "steps_yaml": text})
        assert error["param"] == param and error["code"] == "invalid_request"
        assert says in error["message"], error["message"]
    assert (await api.get("/api/rollouts")).json()["data"] == []


async def test_steps_and_steps_yaml_are_one_or_the_other(api: AppClient) -> None:
    await two_versions(api)
    body = {"model": "chat", "candidate": 2, "steps": PARSED, "steps_yaml": STEPS_YAML}
    error = await refusal(api, "/api/rollouts", body)
    assert "as steps or as steps_yaml, not both" in error["message"]
    long = {"model": "chat", "candidate": 2, "steps_yaml": "#" * 100_001}
    assert (await refusal(api, "/api/rollouts", long))["param"] == "steps_yaml"


async def test_the_document_says_steps_yaml_is_text_instead_of_steps(api: AppClient) -> None:
    schema = (await api.get("/openapi.json")).json()["components"]["schemas"]
    for name in ("RolloutCreate", "RolloutPlanCreate"):
        field = schema[name]["properties"]["steps_yaml"]
        assert {"type": "string", "minLength": 1, "maxLength": 100_000} in field["anyOf"], name
        assert schema[name]["not"] == {"required": ["steps", "steps_yaml"]}, name


def test_a_spec_read_back_keeps_its_steps() -> None:
    spec = RolloutCreate.model_validate({"model": "m", "candidate": 2, "steps_yaml": STEPS_YAML})
    again = RolloutCreate.model_validate(spec.model_dump(mode="json"))
    assert again.steps == spec.steps and again.steps_yaml is None
