"""What the request log and the metrics see of an answer beyond its text: how it ended, the
format asked, the tool calls the model made, and whether a JSON answer is the JSON asked."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from modelyard.observe.answers import format_error, merge_tool_calls, tool_names
from modelyard.registry import Registry
from modelyard.registry.protocol import VersionCreate
from tests.conftest import AppClient, register_scripted
from tests.fake_vllm import ARGUMENTS, MODEL, fake_vllm

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
PERSON = {
    "type": "json_schema",
    "json_schema": {
        "name": "person",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
            "required": ["name", "age"],
            "additionalProperties": False,
        },
    },
}


def test_streamed_deltas_make_whole_calls() -> None:
    parts = [
        [{"index": 0, "id": "c1", "type": "function", "function": {"name": "get_weather"}}],
        *([{"index": 0, "function": {"arguments": piece}}] for piece in ARGUMENTS),
        [{"index": 1, "id": "c2", "function": {"name": "get_time", "arguments": "{}"}}],
    ]
    calls = merge_tool_calls(parts)
    assert calls == [
        {
            "id": "c1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
        },
        {"id": "c2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
    ]
    assert tool_names(calls) == ["get_weather", "get_time"]


def test_a_whole_message_s_calls_have_no_index() -> None:
    message_calls = [
        {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
        {"id": "b", "type": "function", "function": {"name": "g", "arguments": "{}"}},
    ]
    assert tool_names(merge_tool_calls([message_calls])) == ["f", "g"]


@pytest.mark.parametrize(
    ("asked", "text", "error"),
    [
        (None, "not json", None),
        ({"type": "text"}, "not json", None),
        ({"type": "json_object"}, '{"a": 1}', None),
        ({"type": "json_object"}, "Sure! {", "invalid_json"),
        ({"type": "json_object"}, "[1, 2]", "invalid_json"),  # an object was asked
        (PERSON, '{"name": "Ada", "age": 36}', None),
        (PERSON, '{"name": "Ada"}', "schema_mismatch"),
        (PERSON, '{"name": "Ada", "age": "old"}', "schema_mismatch"),
        (PERSON, '{"name": "Ada", "age": 3', "invalid_json"),
        ({"type": "json_object"}, "[" * 100_000 + "]" * 100_000, "invalid_json"),  # too deep
        ({"type": "json_schema", "json_schema": {"name": "x"}}, "{}", None),  # no schema
        (  # not a schema: nothing to hold the answer to
            {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": 5}}},
            "{}",
            None,
        ),
        (  # a remote $ref is not fetched: the schema cannot be used
            {"type": "json_schema", "json_schema": {"name": "x", "schema": {"$ref": "http://a/b"}}},
            "{}",
            None,
        ),
    ],
)
def test_format_errors(asked: dict[str, Any] | None, text: str, error: str | None) -> None:
    assert format_error(asked, text) == error


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
    register_scripted(home_registry, "plain", replies=["just words"])
    await api.reload_routes()
    return api


async def _rows(client: AppClient, route: str) -> list[dict[str, Any]]:
    await client.logged()
    response = await client.get("/api/requests", params={"route": route})
    rows: list[dict[str, Any]] = response.json()["data"]
    return rows


def _sample(client: AppClient, name: str, **labels: str) -> float:
    value = client.services.metrics.registry.get_sample_value(name, labels)
    return value or 0.0


async def _chat(client: AppClient, **body: Any) -> str:
    response = await client.post("/v1/chat/completions", json={"model": "remote", **body})
    assert response.status_code == 200, response.text
    return response.text


@pytest.mark.anyio
@pytest.mark.parametrize("stream", [False, True])
async def test_tool_calls_are_logged_and_counted(remote: AppClient, stream: bool) -> None:
    ask = [{"role": "user", "content": "Weather in Paris?"}]
    await _chat(remote, messages=ask, tools=[WEATHER], tool_choice="auto", stream=stream)
    (row,) = await _rows(remote, "remote")
    assert row["finish_reason"] == "tool_calls"
    assert (row["tool_calls"], row["tool_names"]) == (1, ["get_weather"])
    assert row["response_format"] is None and row["format_error"] is None
    assert "arguments" not in json.dumps(row)  # the arguments are content, sealed
    detail = (await remote.get(f"/api/requests/{row['id']}")).json()
    (call,) = detail["content"]["tool_calls"]
    assert call["id"] == "chatcmpl-tool-7f"
    assert call["function"] == {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    assert _sample(remote, "modelyard_tool_calls_total", route="remote") == 1.0
    assert _sample(remote, "modelyard_structured_output_failures_total", route="remote") == 0


@pytest.mark.anyio
@pytest.mark.parametrize("stream", [False, True])
async def test_a_reply_that_is_not_json_counts_one_failure(remote: AppClient, stream: bool) -> None:
    ask = [{"role": "user", "content": "say: Sure! Here it is: {"}]
    await _chat(remote, messages=ask, response_format={"type": "json_object"}, stream=stream)
    (row,) = await _rows(remote, "remote")
    assert (row["finish_reason"], row["response_format"]) == ("stop", "json_object")
    assert row["format_error"] == "invalid_json" and row["tool_calls"] == 0
    labels = {"route": "remote", "reason": "invalid_json"}
    assert _sample(remote, "modelyard_structured_output_failures_total", **labels) == 1.0
    assert _sample(remote, "modelyard_tool_calls_total", route="remote") == 0.0


@pytest.mark.anyio
async def test_json_schema_answers_are_validated(remote: AppClient) -> None:
    for said in ('{"name": "Ada", "age": 36}', '{"name": "Ada"}', '{"name": "Bo", "age": 7}'):
        await _chat(remote, messages=[{"role": "user", "content": f"say: {said}"}],
                    response_format=PERSON)  # fmt: skip
    rows = await _rows(remote, "remote")
    assert {(r["response_format"], r["schema_name"]) for r in rows} == {("json_schema", "person")}
    assert sorted(str(r["format_error"]) for r in rows) == ["None", "None", "schema_mismatch"]
    failures = "modelyard_structured_output_failures_total"
    assert _sample(remote, failures, route="remote", reason="schema_mismatch") == 1.0
    assert _sample(remote, failures, route="remote", reason="invalid_json") == 0.0


@pytest.mark.anyio
async def test_a_plain_answer_has_its_finish_reason_and_nothing_else(remote: AppClient) -> None:
    response = await remote.post(
        "/v1/chat/completions",
        json={"model": "plain", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1},
    )
    assert response.status_code == 200, response.text
    (row,) = await _rows(remote, "plain")
    assert (row["finish_reason"], row["response_format"], row["schema_name"]) == (
        "length",
        None,
        None,
    )
    assert (row["tool_calls"], row["tool_names"], row["format_error"]) == (0, [], None)


@pytest.mark.anyio
async def test_an_explicit_text_format_is_logged_and_not_checked(remote: AppClient) -> None:
    ask = [{"role": "user", "content": "say: not json at all"}]
    await _chat(remote, messages=ask, response_format={"type": "text"})
    (row,) = await _rows(remote, "remote")
    assert (row["response_format"], row["format_error"]) == ("text", None)
