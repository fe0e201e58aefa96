from __future__ import annotations

import json

import httpx
import pytest

from modelyard.registry import Registry
from tests.conftest import register_scripted

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def models(home_registry: Registry) -> None:
    register_scripted(home_registry, "echo")
    register_scripted(home_registry, "poet", replies=["roses are red"])


def events(body: str) -> list[dict[str, object] | str]:
    out: list[dict[str, object] | str] = []
    for block in body.split("\n\n"):
        if block.startswith("data: "):
            data = block[6:]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


async def test_models_lists_public_names(api: httpx.AsyncClient) -> None:
    body = (await api.get("/v1/models")).json()
    assert body["object"] == "list"
    assert [(m["id"], m["version"]) for m in body["data"]] == [("echo", 1), ("poet", 1)]


async def test_chat_completion(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/v1/chat/completions",
        json={"model": "echo", "messages": [{"role": "user", "content": "hi there"}]},
    )
    assert response.status_code == 200
    assert response.headers["x-modelyard-version"] == "echo@1"
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "echo: hi there"}
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}


async def test_chat_stream_with_usage(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/v1/chat/completions",
        json={
            "model": "poet",
            "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "a poem"}],
        },
    )
    assert response.headers["content-type"].startswith("text/event-stream")
    got = events(response.text)
    assert got[-1] == "[DONE]"
    chunks = [e for e in got if isinstance(e, dict)]
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]  # type: ignore[index]
    assert deltas[0]["role"] == "assistant"
    assert "".join(d.get("content") or "" for d in deltas) == "roses are red"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"  # type: ignore[index]
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == 3  # type: ignore[index]
    assert len({c["id"] for c in chunks}) == 1


async def test_text_completion_stream_and_not(api: httpx.AsyncClient) -> None:
    plain = await api.post("/v1/completions", json={"model": "echo", "prompt": "one two"})
    assert plain.json()["choices"][0]["text"] == "echo: one two"
    assert plain.json()["object"] == "text_completion"
    streamed = await api.post(
        "/v1/completions", json={"model": "echo", "prompt": "one two", "stream": True}
    )
    texts = [e["choices"][0]["text"] for e in events(streamed.text) if isinstance(e, dict)]  # type: ignore[index]
    assert "".join(texts) == "echo: one two"


async def test_alias_and_pinned_version_names(
    api: httpx.AsyncClient, home_registry: Registry
) -> None:
    register_scripted(home_registry, "echo", alias="staging", replies=["from staging"])
    await api.put("/api/models/echo/aliases/staging", json={"version": 2})
    response = await api.post(
        "/v1/chat/completions",
        json={"model": "echo:staging", "messages": [{"role": "user", "content": "x"}]},
    )
    assert response.json()["choices"][0]["message"]["content"] == "from staging"
    assert response.headers["x-modelyard-version"] == "echo@2"
