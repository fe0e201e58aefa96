"""The plain-ASGI fast path answers the inference endpoints exactly as the FastAPI routes
it stands in front of would: same statuses, bodies, error shapes and headers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from modelyard.app import build_app
from modelyard.config import Settings
from modelyard.registry import Registry
from modelyard.serving import routes
from modelyard.serving.fastpath import OpenAIFastPath
from tests.conftest import AppClient, admin_key, bearer, new_key, register_scripted

pytestmark = pytest.mark.anyio
USER = [{"role": "user", "content": "hello there"}]
VOLATILE = {"id", "created"}  # differ between any two responses


@pytest.fixture(autouse=True)
def models(home_registry: Registry) -> None:
    register_scripted(home_registry, "echo")
    register_scripted(home_registry, "broken", start_fails=True)


@asynccontextmanager
async def client(*, fast: bool) -> AsyncIterator[AppClient]:
    settings = Settings()
    app = build_app(settings)
    if not fast:
        app.user_middleware = [m for m in app.user_middleware if m.cls is not OpenAIFastPath]
    async with (
        app.router.lifespan_context(app),
        AppClient(app, base_url="http://modelyard", headers=bearer(admin_key(settings.home))) as c,
    ):
        yield c


def _stable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


async def exchanges(api: AppClient) -> list[tuple[str, int, Any, dict[str, str]]]:
    """The same requests, good and bad, and what came back (ids and times left out)."""
    viewer = await new_key(api, "viewer")
    chat, text = "/v1/chat/completions", "/v1/completions"
    sent: list[tuple[str, str, str, dict[str, Any] | bytes | None, dict[str, str] | None]] = [
        ("chat", "POST", chat, {"model": "echo", "messages": USER, "max_tokens": 4}, None),
        ("stream", "POST", chat, {"model": "echo", "messages": USER, "stream": True}, None),
        ("text", "POST", text, {"model": "echo", "prompt": "hello", "max_tokens": 3}, None),
        ("malformed", "POST", chat, b"{not json", {"content-type": "application/json"}),
        ("missing", "POST", chat, {"model": "echo"}, None),
        ("wrong type", "POST", text, {"model": "echo", "prompt": 3}, None),
        ("no key", "POST", chat, {"model": "echo", "messages": USER}, {"authorization": ""}),
        ("viewer", "POST", chat, {"model": "echo", "messages": USER}, bearer(viewer)),
        ("unknown", "POST", chat, {"model": "nope", "messages": USER}, None),
        ("broken", "POST", chat, {"model": "broken", "messages": USER}, None),
        ("get", "GET", chat, None, None),
    ]
    seen = []
    for name, method, path, body, headers in sent:
        content = body if isinstance(body, bytes) else None
        payload = body if isinstance(body, dict) else None
        response = await api.request(method, path, json=payload, content=content, headers=headers)
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            events = [line.removeprefix("data: ") for line in response.text.split("\n\n") if line]
            parsed: Any = [e if e == "[DONE]" else _stable(json.loads(e)) for e in events]
        else:
            parsed = _stable(response.json())
        kept = {
            k: v
            for k, v in response.headers.items()
            if k.startswith("x-modelyard-version") or k in ("www-authenticate", "allow")
        }
        seen.append((name, response.status_code, parsed, kept))
    return seen


async def test_fast_path_answers_as_the_fastapi_routes_do() -> None:
    async with client(fast=True) as api:
        fast = await exchanges(api)
    async with client(fast=False) as api:
        routed = await exchanges(api)
    assert [(n, s) for n, s, _, _ in fast] == [
        ("chat", 200),
        ("stream", 200),
        ("text", 200),
        ("malformed", 400),
        ("missing", 400),
        ("wrong type", 400),
        ("no key", 401),
        ("viewer", 403),
        ("unknown", 404),
        ("broken", 503),
        ("get", 405),
    ]
    for mine, theirs in zip(fast, routed, strict=True):
        assert mine == theirs
    assert fast[0][2]["choices"][0]["message"]["content"]  # a real answer was compared


async def test_the_fast_path_does_not_fall_through_to_fastapi(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the FastAPI route's handler broken, the fast path still answers (and logs)."""

    async def broken(*_args: object) -> None:
        raise AssertionError("FastAPI's route was called")

    monkeypatch.setattr(routes, "serve_chat", broken)
    async with client(fast=True) as api:
        response = await api.post("/v1/chat/completions", json={"model": "echo", "messages": USER})
        assert response.status_code == 200, response.text
        assert response.json()["object"] == "chat.completion"
        await api.logged()
        rows = await api.get("/api/requests", params={"limit": 5})
        assert rows.json()["data"][0]["status"] == 200
    async with client(fast=False) as api:  # the control: the broken route is reached
        with pytest.raises(AssertionError, match="FastAPI's route was called"):
            await api.post("/v1/chat/completions", json={"model": "echo", "messages": USER})
