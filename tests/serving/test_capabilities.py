"""Capabilities decide, per target: a field an engine kind cannot honour is refused with a
400 naming it (never silently dropped), a fallback that cannot honour a request is
skipped, and tool-related input that does not hold together is a 400 naming the problem
(issue 15)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from modelyard.registry import Registry
from modelyard.registry.protocol import VersionCreate
from tests.conftest import AppClient, register_scripted
from tests.fake_vllm import MODEL, fake_vllm

pytestmark = pytest.mark.anyio
USER = [{"role": "user", "content": "What is the weather in Paris?"}]
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {}}}
CALL = {
    "role": "assistant",
    "content": None,
    "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    ],
}
IMAGE = {
    "role": "user",
    "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ],
}
FILE = {
    "role": "user",
    "content": [{"type": "file", "file": {"file_id": "file-abc123", "filename": "notes.pdf"}}],
}


@pytest.fixture
def upstream() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    with fake_vllm() as running:
        yield running


def register_upstream(registry: Registry, model: str, url: str, **parameters: Any) -> int:
    version = registry.add_version(
        model,
        VersionCreate(
            engine_kind="upstream", artifact_uri=url, parameters={"model": MODEL, **parameters}
        ),
        actor="tests",
    )
    registry.set_alias(model, "production", version.number, actor="tests", reason="t")
    return version.number


async def chat(api: AppClient, model: str, **body: Any) -> Any:
    return await api.post("/v1/chat/completions", json={"model": model, "messages": USER, **body})


def refused(response: Any, param: str) -> str:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["param"], error["type"]) == (param, "invalid_request_error"), error
    assert error["code"] == "invalid_request"
    return str(error["message"])


@pytest.fixture
async def scripted(api: AppClient, home_registry: Registry) -> AppClient:
    register_scripted(home_registry, "echo")
    await api.reload_routes()
    return api


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"tools": [WEATHER]}, "tools"),
        ({"n": 2}, "n"),
        ({"logprobs": True, "top_logprobs": 2}, "logprobs"),
        ({"logit_bias": {"12": -100}}, "logit_bias"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"top_k": 20}, "top_k"),  # an extra field: silently dropped before issue 15
        ({"chat_template_kwargs": {"enable_thinking": False}}, "chat_template_kwargs"),
        ({"messages": [IMAGE]}, "messages"),
        ({"messages": [FILE]}, "messages.content.file"),
        (
            {"stream_options": {"continuous_usage_stats": True}},
            "stream_options.continuous_usage_stats",
        ),
        (
            {
                "messages": [
                    *USER,
                    CALL,
                    {"role": "tool", "tool_call_id": "call_1", "content": "{}"},
                ]
            },
            "messages",
        ),
    ],
)
async def test_an_engine_refuses_what_it_cannot_honour(
    scripted: AppClient, body: dict[str, Any], param: str
) -> None:
    for stream in (False, True):
        message = refused(await chat(scripted, "echo", stream=stream, **body), param)
        assert "echo@1" in message and "scripted" in message


@pytest.mark.parametrize(
    "body",
    [
        {"logprobs": False, "tools": [], "logit_bias": {}, "top_k": None},
        {"response_format": {"type": "text"}, "n": 1, "seed": 3},
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]},
    ],
)
async def test_fields_that_ask_for_nothing_are_fine(
    scripted: AppClient, body: dict[str, Any]
) -> None:
    response = await chat(scripted, "echo", **body)
    assert response.status_code == 200, response.text


async def test_a_fallback_that_cannot_honour_the_request_is_skipped(
    api: AppClient,
    home_registry: Registry,
    upstream: tuple[str, list[dict[str, Any]]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    register_scripted(home_registry, "chat")
    register_scripted(home_registry, "plain")
    register_upstream(home_registry, "remote", upstream[0])
    await api.reload_routes()
    policy = {"fallbacks": [{"model": "plain"}, {"model": "remote"}]}
    assert (await api.put("/api/routes/chat", json={"policy": policy})).status_code == 200
    with caplog.at_level(logging.INFO, logger="modelyard.serving.exchange"):
        response = await chat(api, "chat", tools=[WEATHER])
    assert response.status_code == 200, response.text
    assert response.headers["x-modelyard-version"] == "remote@1"
    assert response.headers["x-modelyard-fallback-from"] == "chat@1"
    assert response.json()["choices"][0]["finish_reason"] == "tool_calls"
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 2 and "chat@1" in skipped[0] and "plain@1" in skipped[1]
    assert "'tools'" in skipped[0]
    # A plain request stays on the primary.
    plain = await chat(api, "chat")
    assert plain.headers["x-modelyard-version"] == "chat@1"


async def test_an_incapable_fallback_is_not_tried_when_the_primary_fails(
    api: AppClient, home_registry: Registry, upstream: tuple[str, list[dict[str, Any]]]
) -> None:
    register_upstream(home_registry, "remote", upstream[0])
    register_scripted(home_registry, "plain")
    await api.reload_routes()
    policy = {"fallbacks": [{"model": "plain"}]}
    assert (await api.put("/api/routes/remote", json={"policy": policy})).status_code == 200
    failing = [{"role": "user", "content": "please fail"}]
    with_tools = await api.post(
        "/v1/chat/completions", json={"model": "remote", "messages": failing, "tools": [WEATHER]}
    )
    assert with_tools.status_code == 502  # the primary's own failure; plain could not help
    without = await api.post("/v1/chat/completions", json={"model": "remote", "messages": failing})
    assert without.status_code == 200 and without.headers["x-modelyard-version"] == "plain@1"


async def test_a_field_no_target_can_honour_is_a_400_naming_it(
    api: AppClient, home_registry: Registry
) -> None:
    register_scripted(home_registry, "chat")
    register_scripted(home_registry, "plain")
    await api.reload_routes()
    policy = {"fallbacks": [{"model": "plain"}]}
    assert (await api.put("/api/routes/chat", json={"policy": policy})).status_code == 200
    refused(await chat(api, "chat", response_format={"type": "json_object"}), "response_format")
    refused(await chat(api, "chat", top_k=5, stream=True), "top_k")


async def test_an_upstream_version_lets_extra_fields_through_as_its_parameters_say(
    api: AppClient, home_registry: Registry, upstream: tuple[str, list[dict[str, Any]]]
) -> None:
    register_upstream(home_registry, "open", upstream[0])
    register_upstream(home_registry, "strict", upstream[0], extra_fields={"allow": ["top_k"]})
    register_upstream(home_registry, "picky", upstream[0], extra_fields={"deny": ["top_k"]})
    await api.reload_routes()
    assert (await chat(api, "open", top_k=5, min_p=0.1)).status_code == 200
    assert (upstream[1][-1]["top_k"], upstream[1][-1]["min_p"]) == (5, 0.1)
    assert (await chat(api, "strict", top_k=5, tools=[WEATHER])).status_code == 200
    refused(await chat(api, "strict", top_k=5, min_p=0.1), "min_p")
    refused(await chat(api, "picky", top_k=5), "top_k")
    assert (await chat(api, "picky", min_p=0.1)).status_code == 200
    bad = await api.post(
        "/api/models/odd/versions",
        json={
            "engine_kind": "upstream",
            "artifact_uri": upstream[0],
            "parameters": {"model": MODEL, "extra_fields": {"allow": [], "deny": []}},
        },
    )
    assert bad.status_code == 400 and "extra_fields" in bad.text


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        (
            {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
            "tool_choice",
            "'nope'",
        ),
        ({"tool_choice": "required"}, "tool_choice", "no tools"),
        ({"tools": [{"type": "function"}]}, "tools", "name"),
        ({"tools": "get_weather"}, "tools", "list"),
        (
            {"messages": [*USER, {"role": "tool", "tool_call_id": "call_9", "content": "{}"}]},
            "messages.1.tool_call_id",
            "'call_9'",
        ),
        (
            {
                "messages": [
                    *USER,
                    {"role": "tool", "tool_call_id": "call_1", "content": "{}"},
                    CALL,
                ]
            },
            "messages.1.tool_call_id",
            "'call_1'",
        ),
        (
            {"messages": [*USER, {"role": "tool", "content": "{}"}]},
            "messages.1.tool_call_id",
            "no tool_call_id",
        ),
        ({"response_format": {"type": "json_schema"}}, "response_format", "json_schema"),
        ({"response_format": {"type": "yaml"}}, "response_format", "json_object"),
    ],
)
async def test_tool_input_that_does_not_hold_together_is_a_400(
    api: AppClient,
    home_registry: Registry,
    upstream: tuple[str, list[dict[str, Any]]],
    body: dict[str, Any],
    param: str,
    words: str,
) -> None:
    register_upstream(home_registry, "remote", upstream[0])  # it could honour tools
    await api.reload_routes()
    assert words in refused(await chat(api, "remote", **body), param)
    assert upstream[1] == []  # refused before it reached the upstream


async def test_tool_arguments_and_results_are_scanned_and_redacted(
    api: AppClient, home_registry: Registry, upstream: tuple[str, list[dict[str, Any]]]
) -> None:
    register_upstream(home_registry, "remote", upstream[0])
    await api.reload_routes()
    mobile, id_number = "13812345678", "11010519491231002X"
    call = {**CALL, "tool_calls": [{**CALL["tool_calls"][0]}]}  # type: ignore[dict-item]
    call["tool_calls"][0]["function"] = {"name": "lookup", "arguments": f'{{"phone": "{mobile}"}}'}
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "Look me up"}, IMAGE["content"][1]]},
        call,
        {"role": "tool", "tool_call_id": "call_1", "content": f"ID {id_number}"},
    ]
    response = await api.put("/api/policies/remote", json={"pii": "redact"})
    assert response.status_code == 200, response.text
    answer = await api.post("/v1/chat/completions", json={"model": "remote", "messages": messages})
    assert answer.status_code == 200, answer.text
    sent = json.dumps(upstream[1][-1])
    assert mobile not in sent and id_number not in sent
    forwarded = upstream[1][-1]["messages"]
    assert forwarded[0]["content"][1] == IMAGE["content"][1]  # the image is kept
    assert forwarded[1]["tool_calls"][0]["id"] == "call_1"
    assert forwarded[2]["tool_call_id"] == "call_1"
    block = await api.put("/api/policies/remote", json={"pii": "block"})
    assert block.status_code == 200
    blocked = await api.post("/v1/chat/completions", json={"model": "remote", "messages": messages})
    assert blocked.status_code == 400 and blocked.json()["error"]["code"] == "pii_detected"
