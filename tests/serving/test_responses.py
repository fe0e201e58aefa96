"""OpenAI's Responses API (``POST /v1/responses``), stateless, served as a chat completion:
its answers parse as the official SDK's types, its stream is the SDK's typed events, and
whatever it cannot carry is a 400 naming the field."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from modelyard.registry import Registry
from tests.conftest import AppClient, register_scripted
from tests.fake_vllm import ARGUMENTS, fake_vllm
from tests.serving.test_capabilities import register_upstream

pytestmark = pytest.mark.anyio
EVENTS: TypeAdapter[ResponseStreamEvent] = TypeAdapter(ResponseStreamEvent)
WEATHER = {"type": "function", "name": "get_weather", "parameters": {"type": "object"}}


@pytest.fixture(autouse=True)
def models(home_registry: Registry) -> None:
    register_scripted(home_registry, "echo")
    register_scripted(home_registry, "poet", replies=["roses are red violets are blue"])
    register_scripted(home_registry, "flaky", replies=["one two three four"], fail_after_tokens=2)


@pytest.fixture
def upstream() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    with fake_vllm() as running:
        yield running


def stream_events(body: str) -> list[dict[str, Any]]:
    """The events of a Responses stream; each block's ``event:`` line names its type."""
    out = []
    for block in body.strip().split("\n\n"):
        event_line, data_line = block.split("\n")
        data = json.loads(data_line.removeprefix("data: "))
        assert event_line == f"event: {data['type']}"
        EVENTS.validate_python(data)  # as the SDK parses it
        out.append(data)
    return out


def refused(response: Any, param: str) -> str:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["param"], error["type"], error["code"]) == (
        param,
        "invalid_request_error",
        "invalid_request",
    ), error
    return str(error["message"])


async def test_a_response_has_the_sdk_shape(api: AppClient) -> None:
    answer = await api.post(
        "/v1/responses",
        json={"model": "echo", "input": "hi there", "metadata": {"ticket": "7"}, "user": "u1"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-modelyard-version"] == "echo@1"
    body = answer.json()
    parsed = Response.model_validate(body)
    assert parsed.output_text == "echo: hi there"
    assert body["id"].startswith("resp_") and body["object"] == "response"
    assert (body["status"], body["store"], body["metadata"]) == (
        "completed",
        False,
        {"ticket": "7"},
    )
    (message,) = body["output"]
    assert (message["type"], message["role"], message["status"]) == (
        "message",
        "assistant",
        "completed",
    )
    assert message["content"][0]["type"] == "output_text"
    assert body["usage"]["input_tokens"] == 3 and body["usage"]["output_tokens"] == 3
    assert body["usage"]["total_tokens"] == 6
    assert (body["tool_choice"], body["tools"], body["parallel_tool_calls"]) == ("auto", [], True)
    assert body["text"] == {"format": {"type": "text"}}


async def test_input_items_and_instructions_become_chat_messages(
    api: AppClient, home_registry: Registry, upstream: tuple[str, list[dict[str, Any]]]
) -> None:
    register_upstream(home_registry, "remote", upstream[0])
    await api.reload_routes()
    answer = await api.post(
        "/v1/responses",
        json={
            "model": "remote",
            "instructions": "Be terse.",
            "input": [
                {"role": "developer", "content": "Use metric units."},
                {
                    "type": "message",
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "Weather "},
                        {"type": "input_text", "text": "in Paris?"},
                    ],
                },
                {
                    "type": "function_call",
                    "call_id": "c1",
                    "name": "get_weather",
                    "arguments": '{"city": "Paris"}',
                },
                {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
            ],
            "max_output_tokens": 50,
            "temperature": 0.5,
        },
    )
    assert answer.status_code == 200, answer.text
    sent = upstream[1][-1]
    assert sent["messages"] == [
        {"role": "system", "content": "Be terse."},
        {"role": "system", "content": "Use metric units."},  # developer, as chat sends it
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather "},
                {"type": "text", "text": "in Paris?"},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
    ]
    assert (sent["max_tokens"], sent["temperature"]) == (50, 0.5)


async def test_function_tools_and_calls(
    api: AppClient, home_registry: Registry, upstream: tuple[str, list[dict[str, Any]]]
) -> None:
    register_upstream(home_registry, "remote", upstream[0])
    await api.reload_routes()
    request = {
        "model": "remote",
        "input": "Weather in Paris?",
        "tools": [WEATHER],
        "tool_choice": {"type": "function", "name": "get_weather"},
    }
    answer = await api.post("/v1/responses", json=request)
    assert answer.status_code == 200, answer.text
    sent = upstream[1][-1]
    assert sent["tools"] == [
        {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
    ]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    parsed = Response.model_validate(answer.json())
    (call,) = parsed.output
    assert call.type == "function_call"
    assert (call.name, call.call_id, call.arguments) == (
        "get_weather",
        "chatcmpl-tool-7f",
        "".join(ARGUMENTS),
    )
    assert parsed.usage is not None and parsed.usage.input_tokens_details.cached_tokens == 16
    streamed = stream_events(
        (await api.post("/v1/responses", json={**request, "stream": True})).text
    )
    done = [e["item"] for e in streamed if e["type"] == "response.output_item.done"]
    assert [(item["type"], item["arguments"]) for item in done] == [
        ("function_call", "".join(ARGUMENTS))
    ]
    assert streamed[-1]["response"]["output"] == done


async def test_a_stream_has_the_sdk_events(api: AppClient) -> None:
    answer = await api.post(
        "/v1/responses", json={"model": "poet", "input": "a poem", "stream": True}
    )
    assert answer.headers["content-type"].startswith("text/event-stream")
    events = stream_events(answer.text)
    types = [e["type"] for e in events]
    assert types[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert types[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    deltas = [e["delta"] for e in events if e["type"] == "response.output_text.delta"]
    assert len(deltas) == 6 and "".join(deltas) == "roses are red violets are blue"
    final = Response.model_validate(events[-1]["response"])
    assert final.status == "completed" and final.output_text == "".join(deltas)
    assert final.usage is not None and final.usage.output_tokens == 6
    assert len({e["response"]["id"] for e in events if "response" in e}) == 1


async def test_max_output_tokens_makes_it_incomplete(api: AppClient) -> None:
    request = {"model": "poet", "input": "a poem", "max_output_tokens": 2}
    body = (await api.post("/v1/responses", json=request)).json()
    assert body["status"] == "incomplete"
    assert body["incomplete_details"] == {"reason": "max_output_tokens"}
    assert body["output"][0]["status"] == "incomplete"
    assert Response.model_validate(body).output_text == "roses are"
    streamed = stream_events(
        (await api.post("/v1/responses", json={**request, "stream": True})).text
    )
    assert streamed[-1]["type"] == "response.incomplete"
    assert streamed[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


async def test_an_engine_error_mid_stream_is_a_failed_response(api: AppClient) -> None:
    answer = await api.post("/v1/responses", json={"model": "flaky", "input": "x", "stream": True})
    events = stream_events(answer.text)
    assert events[-1]["type"] == "response.failed"
    failed = events[-1]["response"]
    assert failed["status"] == "failed" and failed["error"]["code"] == "server_error"
    assert failed["error"]["message"] == "scripted mid-stream failure (engine_error)"
    assert failed["output"][0]["content"][0]["text"] == "one two"
    await api.logged()
    (row,) = (await api.get("/api/requests")).json()["data"]
    assert (row["endpoint"], row["status"], row["error_code"]) == ("responses", 500, "engine_error")


async def test_text_format_is_sent_as_response_format(
    api: AppClient, home_registry: Registry, upstream: tuple[str, list[dict[str, Any]]]
) -> None:
    register_upstream(home_registry, "remote", upstream[0])
    await api.reload_routes()
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    text = {"format": {"type": "json_schema", "name": "place", "schema": schema, "strict": True}}
    answer = await api.post("/v1/responses", json={"model": "remote", "input": "x", "text": text})
    assert answer.status_code == 200, answer.text
    assert upstream[1][-1]["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "place", "schema": schema, "strict": True},
    }
    assert answer.json()["text"]["format"]["schema"] == schema  # echoed as sent
    # An engine that cannot honour it: the 400 names the field as the client sent it.
    message = refused(
        await api.post("/v1/responses", json={"model": "echo", "input": "x", "text": text}),
        "text.format",
    )
    assert message.startswith("'text.format' cannot be honoured by 'echo'")


@pytest.mark.parametrize(
    ("extra", "param", "says"),
    [
        ({"previous_response_id": "resp_1"}, "previous_response_id", "stateless"),
        ({"conversation": "conv_1"}, "conversation", "stateless"),
        ({"store": True}, "store", "stateless"),
        ({"reasoning": {"effort": "low"}}, "reasoning", "not supported"),
        ({"frobnicate": 1}, "frobnicate", "not supported"),
        ({"tools": [{"type": "web_search"}]}, "tools.0.type", "'function'"),
        ({"input": [{"type": "input_image", "image_url": "x"}]}, "input", "item 0: "),
        (
            {"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
            "input",
            "item 0.content.0.type: Input should be 'input_text' or 'output_text'",
        ),
        ({"input": []}, "input", "empty"),
        ({"tool_choice": "required"}, "tool_choice", "no tools"),
    ],
)
async def test_what_it_cannot_carry_is_a_400_naming_it(
    api: AppClient, extra: dict[str, Any], param: str, says: str
) -> None:
    answer = await api.post("/v1/responses", json={"model": "echo", "input": "hi", **extra})
    assert says in refused(answer, param)


async def test_fields_that_ask_for_nothing_are_accepted(api: AppClient) -> None:
    answer = await api.post(
        "/v1/responses",
        json={
            "model": "echo",
            "input": "hi",
            "store": False,
            "previous_response_id": None,
            "include": [],
            "tool_choice": "auto",
            "text": {"format": {"type": "text"}},
        },
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["store"] is False


async def test_each_request_is_logged_once_as_responses(api: AppClient) -> None:
    served = await api.post("/v1/responses", json={"model": "echo", "input": "hi", "stream": True})
    refused_ = await api.post("/v1/responses", json={"model": "echo", "input": "hi", "x": 1})
    invalid = await api.post("/v1/responses", json={"model": "echo", "input": ""})
    await api.logged()
    rows = (await api.get("/api/requests")).json()["data"]
    ids = {a.headers["x-modelyard-request-id"] for a in (served, refused_, invalid)}
    assert sorted(r["id"] for r in rows) == sorted(ids)
    by_id = {r["id"]: r for r in rows}
    served_row = by_id[served.headers["x-modelyard-request-id"]]
    assert (served_row["endpoint"], served_row["status"], served_row["streamed"]) == (
        "responses",
        200,
        True,
    )
    assert served_row["completion_tokens"] == 2
    for answer in (refused_, invalid):
        row = by_id[answer.headers["x-modelyard-request-id"]]
        assert (row["endpoint"], row["status"], row["route"]) == ("responses", 400, "echo")


async def test_the_route_is_in_the_openapi_document(api: AppClient) -> None:
    document = (await api.get("/openapi.json")).json()
    operation = document["paths"]["/v1/responses"]["post"]
    assert operation["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ResponsesRequest"
    }
    assert set(operation["responses"]) >= {"200", "400", "401"}
    assert "text/event-stream" in operation["responses"]["200"]["content"]
    assert document["components"]["schemas"]["ResponsesRequest"]["additionalProperties"] is False


async def test_an_earlier_output_can_be_sent_back_as_input(api: AppClient) -> None:
    first = (await api.post("/v1/responses", json={"model": "echo", "input": "one"})).json()
    again = await api.post(
        "/v1/responses",
        json={
            "model": "echo",
            "input": [
                {"role": "user", "content": "one"},
                *first["output"],
                {"role": "user", "content": "two"},
            ],
        },
    )
    assert again.status_code == 200, again.text
    assert Response.model_validate(again.json()).output_text == "echo: two"
