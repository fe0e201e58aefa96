"""Bad input gets OpenAI's error shape with the right status, and never a 422 or a 500."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import Request
from fastapi.responses import PlainTextResponse

from modelyard.app import build_app
from modelyard.config import Settings
from modelyard.guard.auth import Forbidden
from modelyard.registry import Registry
from modelyard.serving.fastpath import OpenAIFastPath
from tests.conftest import AppClient, admin_key, bearer, new_key, register_scripted

pytestmark = pytest.mark.anyio
USER = [{"role": "user", "content": "hi"}]


@pytest.fixture(autouse=True)
def models(home_registry: Registry) -> None:
    register_scripted(home_registry, "echo", context_length=50)
    register_scripted(home_registry, "flaky", fail_when_prompt_contains="boom")
    register_scripted(home_registry, "broken", start_fails=True)
    register_scripted(home_registry, "midway", fail_after_tokens=1)


def assert_error(response: httpx.Response, status: int, param: str | None = None) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    if param is not None:
        assert error["param"] == param
    return str(error["message"])


async def test_malformed_json(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert "not valid JSON" in assert_error(response, 400)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "echo"}, "messages"),
        ({"model": "echo", "messages": []}, "messages"),
        ({"model": "echo", "messages": "hi"}, "messages"),
        ({"model": 42, "messages": USER}, "model"),
        ({"model": "echo", "messages": [{"role": "wizard", "content": "x"}]}, None),
        ({"model": "echo", "messages": USER, "max_tokens": 0}, "max_tokens"),
        ({"model": "echo", "messages": USER, "max_tokens": -5}, "max_tokens"),
        ({"model": "echo", "messages": USER, "max_tokens": "many"}, "max_tokens"),
        ({"model": "echo", "messages": USER, "temperature": 3}, "temperature"),
        ({"model": "echo", "messages": USER, "temperature": -0.1}, "temperature"),
        ({"model": "echo", "messages": USER, "top_p": 0}, "top_p"),
        ({"model": "echo", "messages": USER, "n": 2}, "n"),
        ({"model": "echo", "messages": USER, "stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"model": "echo", "messages": USER, "tools": [{"type": "function"}]}, None),
    ],
)
async def test_invalid_chat_requests_are_400(
    api: httpx.AsyncClient, body: dict[str, object], param: str | None
) -> None:
    response = await api.post("/v1/chat/completions", json=body)
    assert_error(response, 400, param)
    assert response.json()["error"]["type"] == "invalid_request_error"


async def test_max_tokens_beyond_the_context_window(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/v1/chat/completions", json={"model": "echo", "messages": USER, "max_tokens": 1000}
    )
    assert "maximum context length is 50" in assert_error(response, 400)
    assert response.json()["error"]["code"] == "context_length_exceeded"


async def test_unknown_model_is_404(api: httpx.AsyncClient) -> None:
    response = await api.post("/v1/chat/completions", json={"model": "gpt-9", "messages": USER})
    assert_error(response, 404, "model")
    assert response.json()["error"]["code"] == "model_not_found"
    streamed = await api.post(
        "/v1/chat/completions", json={"model": "gpt-9", "messages": USER, "stream": True}
    )
    assert_error(streamed, 404, "model")


async def test_ten_megabyte_body_is_413(api: httpx.AsyncClient) -> None:
    huge = "x" * (10 * 1024 * 1024)
    response = await api.post(
        "/v1/chat/completions",
        json={"model": "echo", "messages": [{"role": "user", "content": huge}]},
    )
    assert "too large" in assert_error(response, 413)


async def test_chunked_body_over_the_limit_is_413(api: httpx.AsyncClient) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(10):
            yield b"x" * (1024 * 1024)

    response = await api.post(
        "/v1/chat/completions", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_error(response, 413)


async def test_engine_failures_keep_their_status(api: httpx.AsyncClient) -> None:
    failing = {"model": "flaky", "messages": [{"role": "user", "content": "boom"}]}
    assert_error(await api.post("/v1/chat/completions", json=failing), 502)
    response = await api.post("/v1/chat/completions", json={**failing, "stream": True})
    assert_error(response, 502)


async def test_engine_that_cannot_start_is_503(api: httpx.AsyncClient) -> None:
    response = await api.post("/v1/chat/completions", json={"model": "broken", "messages": USER})
    assert_error(response, 503)
    assert response.json()["error"]["code"] == "engine_not_ready"
    assert (await api.get("/readyz")).status_code == 503


async def test_failure_mid_stream_becomes_an_error_event(api: httpx.AsyncClient) -> None:
    body = {"model": "midway", "stream": True, "messages": [{"role": "user", "content": "a b c"}]}
    response = await api.post("/v1/chat/completions", json=body)
    assert response.status_code == 200
    assert '"error"' in response.text.split("\n\n")[-2]
    assert "[DONE]" not in response.text


async def test_unknown_path_and_method(api: httpx.AsyncClient) -> None:
    assert_error(await api.get("/v1/nothing"), 404)
    assert_error(await api.get("/v1/chat/completions"), 405)


async def test_health_is_always_up(api: httpx.AsyncClient) -> None:
    assert (await api.get("/healthz")).json()["status"] == "ok"


async def test_405_allows_every_method_of_the_path(api: httpx.AsyncClient) -> None:
    response = await api.request("OPTIONS", "/api/keys/some-key")
    assert_error(response, 405)
    assert response.headers["allow"] == "GET, PATCH"


async def test_the_fast_path_renders_errors_as_the_route_does(
    modelyard_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sync handler the app adds answers on both paths (the fast path looks handlers up
    as Starlette does for a route, and runs sync ones on a thread)."""

    def refused(_request: Request, error: Exception) -> PlainTextResponse:
        return PlainTextResponse(f"refused: {error}", status_code=418)

    seen = []
    for fast in (True, False):
        app = build_app(Settings())
        app.exception_handler(Forbidden)(refused)
        if not fast:
            app.user_middleware = [m for m in app.user_middleware if m.cls is not OpenAIFastPath]
        async with (
            app.router.lifespan_context(app),
            AppClient(
                app, base_url="http://modelyard", headers=bearer(admin_key(modelyard_home))
            ) as c,
        ):
            viewer = await new_key(c, "viewer")
            response = await c.post(
                "/v1/chat/completions",
                json={"model": "echo", "messages": USER},
                headers=bearer(viewer),
            )
            seen.append((response.status_code, response.text.split(" (")[0]))
    assert seen[0] == seen[1] and seen[0][0] == 418
