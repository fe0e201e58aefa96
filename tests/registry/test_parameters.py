"""Registering a version checks its parameters against its engine kind, through each face:
the service, the API (400) and ``modelyard models add`` (one readable line)."""

from __future__ import annotations

import httpx
import pytest
from click.testing import CliRunner

from modelyard.cli import main
from modelyard.registry import InvalidRegistration, ModelNotFound, Registry
from modelyard.registry.protocol import VersionCreate

pytestmark = pytest.mark.anyio


def test_a_misspelt_parameter_is_refused_and_nothing_is_stored(registry: Registry) -> None:
    spec = VersionCreate(
        engine_kind="scripted", artifact_uri="scripted:", parameters={"replys": []}
    )
    with pytest.raises(InvalidRegistration, match="unknown parameter 'replys'") as refused:
        registry.add_version("alpha", spec, actor="ann")
    assert "It accepts: " in str(refused.value) and "replies" in str(refused.value)
    assert registry.list_models() == []


def test_each_kind_checks_its_own_parameters(registry: Registry) -> None:
    given = {"temperature": 0.2, "top_p": 0.95, "repeat_penalty": 1.1}
    spec = VersionCreate(engine_kind="upstream", artifact_uri="http://h/v1", parameters={})
    with pytest.raises(InvalidRegistration, match="parameter 'model' is required"):
        registry.add_version("alpha", spec, actor="ann")
    spec = VersionCreate(engine_kind="scripted", artifact_uri="scripted:", parameters={"seed": 1})
    assert registry.add_version("alpha", spec, actor="ann").parameters == {"seed": 1}
    with pytest.raises(InvalidRegistration, match="unknown parameter 'temperature'"):
        registry.add_version(
            "alpha",
            VersionCreate(engine_kind="scripted", artifact_uri="scripted:", parameters=given),
            actor="ann",
        )


async def test_the_api_refuses_a_mistyped_parameter_with_400(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/api/models/alpha/versions",
        json={
            "engine_kind": "scripted",
            "artifact_uri": "scripted:",
            "parameters": {"context_length": "long"},
        },
    )
    assert response.status_code == 400, response.text
    message = response.json()["error"]["message"]
    assert "engine kind 'scripted': parameter 'context_length'" in message
    assert (await api.get("/api/models/alpha")).status_code == 404


def test_models_add_says_which_parameter_in_one_line(home_registry: Registry) -> None:
    args = ["models", "add", "m", "--engine", "scripted", "--artifact", "scripted:"]
    result = CliRunner().invoke(main, [*args, "--param", "fail_rat=0.5"])
    assert result.exit_code == 1
    assert "Error: engine kind 'scripted': unknown parameter 'fail_rat'." in result.output
    assert len(result.output.strip().splitlines()) == 1
    with pytest.raises(ModelNotFound):
        home_registry.model("m")
    result = CliRunner().invoke(main, [*args, "--param", "fail_rate=0.5"])
    assert result.exit_code == 0, result.output
