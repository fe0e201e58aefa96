from __future__ import annotations

import httpx
import pytest

from modelyard.registry import Registry
from tests.conftest import register_scripted

pytestmark = pytest.mark.anyio


async def test_register_move_roll_back_over_the_api(api: httpx.AsyncClient) -> None:
    created = await api.post("/api/models", json={"name": "alpha", "task": "chat"})
    assert created.status_code == 201
    for reply in ("first", "second"):
        added = await api.post(
            "/api/models/alpha/versions",
            json={
                "engine_kind": "scripted",
                "artifact_uri": "scripted:",
                "parameters": {"replies": [reply]},
                "created_by": "ann",
            },
        )
        assert added.status_code == 201
    moved = await api.put(
        "/api/models/alpha/aliases/production", json={"version": 1, "reason": "launch"}
    )
    assert moved.json()["to_version"] == 1
    await api.put("/api/models/alpha/aliases/production", json={"version": 2, "actor": "bob"})

    async def served() -> str:
        response = await api.post(
            "/v1/chat/completions",
            json={"model": "alpha", "messages": [{"role": "user", "content": "x"}]},
        )
        return str(response.json()["choices"][0]["message"]["content"])

    assert await served() == "second"
    back = await api.post("/api/models/alpha/aliases/production/rollback", json={})
    assert (back.json()["from_version"], back.json()["to_version"]) == (2, 1)
    assert await served() == "first"  # the routing table was refreshed at once

    detail = (await api.get("/api/models/alpha")).json()
    assert [v["number"] for v in detail["versions"]] == [1, 2]
    moves = [(h["to_version"], h["actor"]) for h in detail["history"]][1:]
    assert [version for version, _ in moves] == [2, 1]
    # The calling key is the actor; a name given in the body is kept beside it.
    assert moves[0][1].startswith("key:") and moves[0][1].endswith("(admin) as bob")
    assert moves[1][1] == back.json()["actor"] and back.json()["actor"].endswith("(admin)")
    history = (await api.get("/api/models/alpha/history", params={"alias": "production"})).json()
    assert len(history["data"]) == 3
    now = (await api.get("/api/models/alpha/aliases/production")).json()
    assert now["version"] == 1
    then = await api.get(
        "/api/models/alpha/aliases/production", params={"at": "2000-01-01T00:00:00Z"}
    )
    assert then.json()["version"] is None


async def test_registry_errors_use_the_openai_shape(
    api: httpx.AsyncClient, home_registry: Registry
) -> None:
    register_scripted(home_registry, "alpha")
    cases = [
        (await api.get("/api/models/ghost"), 404),
        (await api.put("/api/models/alpha/aliases/production", json={"version": 9}), 404),
        (await api.post("/api/models", json={"name": "bad name"}), 400),
        (await api.post("/api/models", json={"name": "alpha"}), 400),
        (await api.post("/api/models/alpha/aliases/production/rollback", json={}), 400),
        (await api.put("/api/models/alpha/aliases/production", json={"version": "x"}), 400),
        (
            await api.post(
                "/api/models/alpha/versions",
                json={"engine_kind": "llamacpp", "artifact_uri": "/no/such/file.gguf"},
            ),
            400,
        ),
    ]
    for response, status in cases:
        assert response.status_code == status, response.text
        assert response.json()["error"]["message"]


async def test_openapi_documents_the_api(api: httpx.AsyncClient) -> None:
    paths = (await api.get("/openapi.json")).json()["paths"]
    for path in ("/v1/chat/completions", "/v1/completions", "/v1/models", "/api/models"):
        assert path in paths
