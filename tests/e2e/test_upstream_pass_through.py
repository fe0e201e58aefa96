"""Through an upstream, the OpenAI SDK receives what it would from the upstream itself:
tool-call deltas, reasoning content, logprobs, ``n`` choices, every finish reason and
usage with cached-token details, streamed and not (issue 15)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import openai
import pytest

from modelyard.registry import Registry
from modelyard.registry.protocol import VersionCreate
from tests.conftest import AppClient, admin_key
from tests.fake_vllm import MODEL, fake_vllm

pytestmark = pytest.mark.anyio
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
REQUEST: dict[str, Any] = {
    "messages": ASK,
    "tools": [WEATHER],
    "tool_choice": "auto",
    "n": 2,
    "logprobs": True,
    "top_logprobs": 1,
    "seed": 7,
}


@pytest.fixture
def upstream() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    with fake_vllm() as running:
        yield running


@pytest.fixture
async def remote(
    api: AppClient, home_registry: Registry, upstream: tuple[str, list[dict[str, Any]]]
) -> AppClient:
    version = home_registry.add_version(
        "remote",
        VersionCreate(
            engine_kind="upstream", artifact_uri=upstream[0], parameters={"model": MODEL}
        ),
        actor="tests",
    )
    home_registry.set_alias("remote", "production", version.number, actor="tests", reason="t")
    await api.reload_routes()
    return api


@pytest.fixture
async def sdks(
    remote: AppClient, upstream: tuple[str, list[dict[str, Any]]], modelyard_home: Any
) -> AsyncIterator[tuple[openai.AsyncOpenAI, openai.AsyncOpenAI]]:
    """A client of the fake upstream itself and one of modelyard in front of it."""
    through = openai.AsyncOpenAI(
        base_url="http://modelyard/v1",
        api_key=admin_key(modelyard_home),
        http_client=remote,
        max_retries=0,
    )
    direct = openai.AsyncOpenAI(base_url=upstream[0], api_key="none", max_retries=0)
    async with direct:
        yield direct, through


def comparable(dumped: dict[str, Any]) -> dict[str, Any]:
    """What must be equal: all but the id and the model name, which modelyard makes its own."""
    return {key: value for key, value in dumped.items() if key not in ("id", "model")}


async def test_a_non_streamed_answer_is_what_the_upstream_sent(
    sdks: tuple[openai.AsyncOpenAI, openai.AsyncOpenAI],
) -> None:
    direct, through = sdks
    expected = await direct.chat.completions.create(model=MODEL, **REQUEST)
    got = await through.chat.completions.create(model="remote", **REQUEST)
    assert comparable(got.model_dump()) == comparable(expected.model_dump())
    assert got.model == "remote" and got.id.startswith("chatcmpl-")
    (call,) = got.choices[0].message.tool_calls or []
    assert (call.function.name, json.loads(call.function.arguments)) == (
        "get_weather",
        {"city": "Paris"},
    )
    assert [c.finish_reason for c in got.choices] == ["tool_calls", "stop"]
    assert got.choices[0].message.model_extra == {
        "reasoning_content": "The user wants the weather."
    }
    assert got.usage is not None and got.usage.prompt_tokens_details is not None
    assert got.usage.prompt_tokens_details.cached_tokens == 16
    assert got.choices[1].logprobs is not None


@pytest.mark.parametrize("include_usage", [True, False])
async def test_a_stream_is_what_the_upstream_sent_chunk_by_chunk(
    sdks: tuple[openai.AsyncOpenAI, openai.AsyncOpenAI], include_usage: bool
) -> None:
    direct, through = sdks
    options = {"stream": True, "stream_options": {"include_usage": include_usage}}
    expected = [c.model_dump() async for c in await direct.chat.completions.create(
        model=MODEL, **REQUEST, **options
    )]  # fmt: skip
    got = [c.model_dump() async for c in await through.chat.completions.create(
        model="remote", **REQUEST, **options
    )]  # fmt: skip
    assert [comparable(c) for c in got] == [comparable(c) for c in expected]
    assert len({c["id"] for c in got}) == 1 and {c["model"] for c in got} == {"remote"}
    deltas = [c["choices"][0]["delta"] for c in got if c["choices"]]
    assert (
        "".join(
            call["function"]["arguments"] or ""
            for delta in deltas
            for call in delta.get("tool_calls") or ()
        )
        == '{"city": "Paris"}'
    )
    assert any(d.get("reasoning_content") for d in deltas)
    assert (got[-1]["usage"] is not None) == include_usage
    if include_usage:
        assert got[-1]["usage"]["prompt_tokens_details"]["cached_tokens"] == 16


async def test_the_request_reaches_the_upstream_as_sent(
    remote: AppClient, upstream: tuple[str, list[dict[str, Any]]]
) -> None:
    """Tool calls and results, image parts, extra fields: forwarded, the model renamed."""
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather where this photo was taken?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"sky": "clear"}'},
    ]
    body = {
        "model": "remote",
        "messages": messages,
        "tools": [WEATHER],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "parallel_tool_calls": False,
        "response_format": {"type": "json_object"},
        "logit_bias": {"1234": -100},
        "top_k": 20,
        "chat_template_kwargs": {"enable_thinking": False},
    }
    response = await remote.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    sent = upstream[1][-1]
    assert sent["model"] == MODEL
    assert sent["messages"] == messages
    for name in (
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
        "logit_bias",
        "top_k",
        "chat_template_kwargs",
    ):
        assert sent[name] == body[name], name
    await remote.logged()
    (row,) = (await remote.get("/api/requests", params={"route": "remote"})).json()["data"]
    detail = (await remote.get(f"/api/requests/{row['id']}")).json()["content"]
    assert detail["finish_reason"] == "tool_calls"
    assert detail["tools"] == [WEATHER] and detail["response_format"] == {"type": "json_object"}
    assert detail["messages"][1]["tool_calls"] == messages[1]["tool_calls"]
    assert detail["messages"][2]["tool_call_id"] == "call_1"


async def test_a_plain_stream_asks_the_upstream_for_usage(
    remote: AppClient, upstream: tuple[str, list[dict[str, Any]]]
) -> None:
    response = await remote.post(
        "/v1/chat/completions", json={"model": "remote", "messages": ASK, "stream": True}
    )
    assert response.status_code == 200
    assert response.text.endswith("data: [DONE]\n\n")
    assert upstream[1][-1]["stream_options"] == {"include_usage": True}


async def test_file_parts_and_other_stream_options_reach_the_upstream(
    remote: AppClient, upstream: tuple[str, list[dict[str, Any]]]
) -> None:
    """Nothing the client sent is dropped: a file part and a stream option modelyard does
    not model travel on, and the usage is still asked for."""
    file_part = {"type": "file", "file": {"file_id": "file-abc123", "filename": "notes.pdf"}}
    messages = [{"role": "user", "content": [{"type": "text", "text": "Summarise"}, file_part]}]
    response = await remote.post(
        "/v1/chat/completions",
        json={
            "model": "remote",
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": False, "continuous_usage_stats": True},
        },
    )
    assert response.status_code == 200, response.text
    sent = upstream[1][-1]
    assert sent["messages"] == messages
    assert sent["stream_options"] == {"include_usage": True, "continuous_usage_stats": True}
    assert '"usage"' not in response.text  # the client did not ask for it
