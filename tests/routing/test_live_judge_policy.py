"""A route's ``live_judge`` setting through the policy API: set, kept by a later change of
another field, and refused with a message that says what is wrong."""

from __future__ import annotations

from typing import Any

import pytest

from modelyard.registry import Registry
from modelyard.registry.protocol import VersionCreate
from tests.conftest import AppClient, register_scripted

pytestmark = pytest.mark.anyio


async def put(api: AppClient, live: dict[str, Any]) -> Any:
    return await api.put("/api/routes/chat", json={"policy": {"live_judge": live}})


async def test_a_live_judge_is_set_and_shown(api: AppClient, home_registry: Registry) -> None:
    register_scripted(home_registry, "chat")
    register_scripted(home_registry, "judge")
    await api.reload_routes()
    response = await put(api, {"judge": "judge", "share": 0.25, "rubric": "Is it polite?"})
    assert response.status_code == 200, response.text
    shown = (await api.get("/api/routes/chat")).json()["policy"]["live_judge"]
    assert shown == {
        "judge": "judge",
        "share": 0.25,
        "rubric": "Is it polite?",
        "scale": [1, 5],
        "max_per_minute": 60,
        "max_cost_per_day": None,
    }


@pytest.mark.parametrize(
    ("live", "status", "message"),
    [
        ({"judge": "judge", "share": 0}, 400, "greater than 0"),
        ({"judge": "judge", "share": 1.5}, 400, "less than or equal to 1"),
        ({"judge": "judge", "share": 0.5, "scale": [5, 1]}, 400, "must be below the highest"),
        ({"judge": "judge", "share": 0.5, "max_per_minute": None}, 400, "needs a budget"),
        ({"judge": "judge", "share": 0.5, "max_per_minute": 0}, 400, "greater than or equal to 1"),
        ({"judge": "nobody", "share": 0.5}, 400, "live_judge.judge 'nobody'"),
        ({"judge": "judge@7", "share": 0.5}, 400, "live_judge.judge 'judge@7'"),
        ({"judge": "embedder", "share": 0.5}, 400, "must be a chat model"),
        ({"judge": "judge", "share": 0.5, "temperature": 1}, 400, "temperature"),
    ],
)
async def test_a_wrong_live_judge_is_refused_with_what_to_change(
    api: AppClient, home_registry: Registry, live: dict[str, Any], status: int, message: str
) -> None:
    register_scripted(home_registry, "chat")
    register_scripted(home_registry, "judge")
    version = home_registry.add_version(
        "embedder",
        VersionCreate(engine_kind="scripted", artifact_uri="scripted:", task="embedding"),
        actor="tests",
    )
    home_registry.set_alias("embedder", "production", version.number, actor="tests")
    await api.reload_routes()
    response = await put(api, live)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]["message"]
    assert (await api.get("/api/routes/chat")).json()["policy"] is None  # nothing stored
