from __future__ import annotations

import asyncio
import json

import pytest

from tests.conftest import AppClient, register_scripted

pytestmark = pytest.mark.anyio
USER = [{"role": "user", "content": "hi"}]


@pytest.fixture(autouse=True)
def quiet_controller(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYARD_RELEASE_TICK_S", "3600")


async def test_scratch(api: AppClient) -> None:
    register_scripted(api.services.registry, "chat")
    register_scripted(api.services.registry, "chat", alias="canary")
    await api.reload_routes()
    r = await api.post("/api/rollouts", json={"model": "chat", "candidate": 2, "steps": [{"set_weight": 50}, {"analysis": {"interval_s": 0.05, "min_samples": 5, "count": 3}}]})
    print(r.status_code, json.dumps(r.json(), indent=1))
    for i in range(30):
        x = await api.post("/v1/chat/completions", json={"model": "chat", "messages": USER, "user": f"u{i}"})
        assert x.status_code == 200
    await api.logged()
    for _ in range(2):
        await asyncio.sleep(0.06)
        api.services.rollouts.advance(1)
    print(json.dumps((await api.get("/api/rollouts/1")).json(), indent=1))
    print(json.dumps((await api.get("/api/rollouts/1/measurements")).json(), indent=1))
    print(json.dumps((await api.get("/api/rollouts/1/events")).json(), indent=1))
    print(json.dumps((await api.get("/api/routes")).json(), indent=1))
    print(json.dumps((await api.get("/api/routes/chat")).json(), indent=1))
    print(json.dumps((await api.get("/api/routes/chat/history")).json(), indent=1))
