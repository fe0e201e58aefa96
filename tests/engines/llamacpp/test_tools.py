"""Tool calling in the embedded engine: the calls' arguments validate against their
function's schema, streamed or not; the prompt renders tools and earlier calls."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import jsonschema_rs
import pytest

from modelyard.bootstrap import smollm2_path
from modelyard.config import Settings
from modelyard.engines import Chunk, EngineSpec, GenerationRequest, Message, Usage
from modelyard.engines.llamacpp import LlamaCppEngine
from modelyard.engines.llamacpp.tool_output import ArgumentsScanner, ToolOutput
from modelyard.engines.llamacpp.tools import ToolPlan, ToolsRefused, chat_messages

WEATHER = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "maxLength": 30},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    },
    "required": ["city", "unit"],
    "additionalProperties": False,
}
BOOKING = {
    "type": "object",
    "properties": {
        "guest": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "maxLength": 30},
                "age": {"type": "integer", "minimum": 0, "maximum": 120},
            },
            "required": ["name", "age"],
        },
        "nights": {"type": "integer", "minimum": 1, "maximum": 30},
    },
    "required": ["guest", "nights"],
}
TAGS = {
    "type": "object",
    "properties": {
        "tags": {
            "type": "array",
            "items": {"type": "string", "maxLength": 12},
            "minItems": 1,
            "maxItems": 3,
        }
    },
    "required": ["tags"],
}
SCHEMAS = {
    "get_weather": (WEATHER, "What is the weather in Paris, in celsius?"),
    "book_room": (BOOKING, "Book a room for Ann, 34, for two nights."),
    "tag_post": (TAGS, "Tag my post about sailing and the sea."),
}
MAX_TOKENS = 128


def tool(name: str, parameters: Any = None) -> dict[str, Any]:
    function: dict[str, Any] = {"name": name, "description": f"The {name} function"}
    if parameters is not None:
        function["parameters"] = parameters
    return {"type": "function", "function": function}


TOOLS = [tool(name, schema) for name, (schema, _) in SCHEMAS.items()]


def ask(question: str, stream: bool = False, **openai: Any) -> GenerationRequest:
    return GenerationRequest(
        messages=[Message("user", question)],
        max_tokens=MAX_TOKENS,
        temperature=0.0,
        seed=7,
        stream=stream,
        openai={"tools": TOOLS, **openai},
    )


@pytest.fixture
async def engine() -> AsyncIterator[LlamaCppEngine]:
    # No prefix cache: a prompt read again from the cache may turn a near tie at
    # temperature 0, and the streamed and non-streamed calls are compared.
    parameters = {"n_ctx": 2048, "prefix_cache": False}
    spec = EngineSpec("default", 1, "llamacpp", str(smollm2_path()), parameters)
    loaded = LlamaCppEngine(spec, Settings())
    await loaded.start()
    yield loaded
    await loaded.aclose()


async def run(engine: LlamaCppEngine, request: GenerationRequest) -> list[Chunk]:
    return [chunk async for chunk in engine.generate(request)]


def whole_calls(chunks: list[Chunk]) -> list[dict[str, Any]]:
    """A non-streamed answer's tool calls (one chunk holding the chat.completion)."""
    (answer,) = chunks
    assert answer.finish_reason == "tool_calls" and answer.openai is not None
    (choice,) = answer.openai["choices"]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    calls: list[dict[str, Any]] = choice["message"]["tool_calls"]
    return calls


def streamed_calls(chunks: list[Chunk]) -> list[dict[str, Any]]:
    """Streamed deltas accumulated as the openai SDK does."""
    *deltas, last = chunks
    assert last.openai is None and last.finish_reason == "tool_calls" and last.usage
    calls: list[dict[str, Any]] = []
    for chunk in deltas:
        assert chunk.openai is not None and chunk.text == ""
        (choice,) = chunk.openai["choices"]
        for part in choice["delta"].get("tool_calls", ()):
            if part["index"] == len(calls):
                assert part["id"].startswith("call_") and part["type"] == "function"
                assert part["function"]["arguments"] == ""
                calls.append({"id": part["id"], "function": dict(part["function"])})
            else:
                calls[part["index"]]["function"]["arguments"] += part["function"]["arguments"]
    assert deltas[0].openai is not None
    assert deltas[0].openai["choices"][0]["delta"]["role"] == "assistant"
    assert deltas[-1].openai is not None
    assert deltas[-1].openai["choices"][0]["finish_reason"] == "tool_calls"
    return calls


def check(call: dict[str, Any], name: str) -> Any:
    assert call["function"]["name"] == name
    arguments = json.loads(call["function"]["arguments"])
    assert jsonschema_rs.validator_for(SCHEMAS[name][0]).is_valid(arguments), arguments
    return arguments


@pytest.mark.anyio
@pytest.mark.model
@pytest.mark.parametrize("name", sorted(SCHEMAS))
async def test_forced_calls_validate_streamed_or_not(engine: LlamaCppEngine, name: str) -> None:
    question = SCHEMAS[name][1]
    named = {"type": "function", "function": {"name": name}}
    # One after the other: a batch of others may turn a near tie at temperature 0.
    whole = await run(engine, ask(question, tool_choice="required", parallel_tool_calls=False))
    streamed = await run(
        engine, ask(question, True, tool_choice="required", parallel_tool_calls=False)
    )
    forced = await run(engine, ask(question, True, tool_choice=named))
    (call,) = whole_calls(whole)
    assert call["id"].startswith("call_") and call["type"] == "function"
    check(call, call["function"]["name"])
    # The same seeded request at temperature 0, streamed: the same call.
    (streamed_call,) = streamed_calls(streamed)
    assert streamed_call["function"] == call["function"]
    (forced_call,) = streamed_calls(forced)  # a named function: one call of it
    check(forced_call, name)


@pytest.mark.anyio
@pytest.mark.model
async def test_a_named_function_not_streamed(engine: LlamaCppEngine) -> None:
    named = {"type": "function", "function": {"name": "get_weather"}}
    chunks = await run(engine, ask("Weather in Oslo?", tool_choice=named))
    (call,) = whole_calls(chunks)
    arguments = check(call, "get_weather")
    assert arguments["unit"] in ("celsius", "fahrenheit")
    assert chunks[0].usage is not None and chunks[0].usage.completion_tokens > 0


@pytest.mark.anyio
@pytest.mark.model
async def test_none_answers_with_text(engine: LlamaCppEngine) -> None:
    request = GenerationRequest(
        messages=[Message("user", "Say hello.")],
        max_tokens=8,
        temperature=0.0,
        openai={"tools": TOOLS, "tool_choice": "none"},
    )
    chunks = await run(engine, request)
    assert all(chunk.openai is None for chunk in chunks)
    assert "".join(c.text for c in chunks).strip()
    assert chunks[-1].finish_reason in ("stop", "length")


@pytest.mark.anyio
@pytest.mark.model
async def test_a_conversation_with_a_tool_result_goes_on(engine: LlamaCppEngine) -> None:
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris", "unit": "celsius"}'},
    }
    messages = [
        Message("user", "Weather in Paris?"),
        Message("assistant", "", {"role": "assistant", "content": None, "tool_calls": [call]}),
        Message("tool", "18 degrees, sunny", {"role": "tool", "tool_call_id": "call_1"}),
    ]
    request = GenerationRequest(
        messages=messages, max_tokens=16, temperature=0.0, openai={"tools": TOOLS}
    )
    prompt = engine._model.detokenize(engine.tokenize_prompt(request)).decode()
    assert '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"' in prompt
    assert "<tool_response>\n18 degrees, sunny\n</tool_response>" in prompt
    chunks = await run(engine, request)
    assert chunks[-1].finish_reason in ("stop", "length", "tool_calls")


@pytest.mark.anyio
@pytest.mark.model
async def test_a_schema_without_a_grammar_is_a_400_naming_it(engine: LlamaCppEngine) -> None:
    bad = tool(
        "unique", {"type": "object", "properties": {"x": {"type": "array", "uniqueItems": True}}}
    )
    request = GenerationRequest(messages=[Message("user", "hi")], openai={"tools": [TOOLS[0], bad]})
    with pytest.raises(ToolsRefused) as caught:
        await run(engine, request)
    assert caught.value.status == 400
    assert caught.value.param == "tools[1].function.parameters"
    assert "tools[1].function.parameters/properties/x/uniqueItems" in str(caught.value)


@pytest.mark.parametrize(
    ("openai", "param"),
    [
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"top_logprobs": 2}, "top_logprobs"),
        ({"functions": [{"name": "f"}]}, "functions"),
        ({"tools": [tool("f", {"type": "array"})]}, "tools[0].function.parameters"),
    ],
)
def test_unsupported_combinations_are_refused(openai: dict[str, Any], param: str) -> None:
    request = GenerationRequest(messages=[Message("user", "hi")], openai={"tools": TOOLS, **openai})
    with pytest.raises(ToolsRefused) as caught:
        ToolPlan.of(request)
    assert (caught.value.status, caught.value.param) == (400, param)


def test_no_plan_without_tools_or_with_none() -> None:
    plain = GenerationRequest(messages=[Message("user", "hi")])
    assert ToolPlan.of(plain) is None
    none = GenerationRequest(
        messages=[Message("user", "hi")], openai={"tools": TOOLS, "tool_choice": "none"}
    )
    assert ToolPlan.of(none) is None


def test_the_preamble_lists_the_functions_in_the_system_prompt() -> None:
    request = GenerationRequest(
        messages=[Message("system", "Be brief."), Message("user", "hi")],
        openai={"tools": [tool("ping")]},
    )
    plan = ToolPlan.of(request)
    assert plan is not None and plan.choice == "auto" and plan.parallel
    messages, extra = chat_messages(request.messages or (), plan, native=False)
    assert extra == {} and [m["role"] for m in messages] == ["system", "user"]
    assert messages[0]["content"].startswith("Be brief.\n\n")
    assert '"name": "ping"' in messages[0]["content"]
    assert "<tool_call>" in messages[0]["content"]


def test_a_template_that_knows_tools_gets_them() -> None:
    call = {"id": "c", "type": "function", "function": {"name": "ping", "arguments": '{"a": 1}'}}
    messages = [
        Message("user", "hi"),
        Message("assistant", "", {"role": "assistant", "tool_calls": [call]}),
        Message("tool", "pong", {"role": "tool", "tool_call_id": "c"}),
    ]
    request = GenerationRequest(messages=messages, openai={"tools": [tool("ping")]})
    rendered, extra = chat_messages(messages, ToolPlan.of(request), native=True)
    assert extra["tools"][0]["function"]["name"] == "ping"
    assert rendered[1]["tool_calls"][0]["function"]["arguments"] == {"a": 1}
    assert rendered[2] == {"role": "tool", "tool_call_id": "c", "content": "pong"}


def test_consecutive_tool_results_become_one_user_turn() -> None:
    calls = [
        {"id": i, "type": "function", "function": {"name": "ping", "arguments": "{}"}}
        for i in ("a", "b")
    ]
    messages = [
        Message("user", "hi"),
        Message("assistant", "Calling.", {"role": "assistant", "tool_calls": calls}),
        Message("tool", "1", {"role": "tool", "tool_call_id": "a"}),
        Message("tool", "2", {"role": "tool", "tool_call_id": "b"}),
    ]
    rendered, _ = chat_messages(messages, None, native=False)
    assert [m["role"] for m in rendered] == ["user", "assistant", "user"]
    assert rendered[1]["content"].count("<tool_call>") == 2
    assert rendered[1]["content"].startswith("Calling.\n<tool_call>\n")
    assert rendered[2]["content"] == (
        "<tool_response>\n1\n</tool_response>\n<tool_response>\n2\n</tool_response>"
    )


def test_the_scanner_finds_the_end_of_arguments_split_anywhere() -> None:
    text = ' {"a": "x}\\"{", "b": [1, {"c": 2}]} }\n</tool_call>'
    for cut in range(len(text)):
        scanner = ArgumentsScanner()
        first, used, done = scanner.scan(text[:cut])
        if done:
            assert first.endswith("}]}") and text[used:] == " }\n</tool_call>"
            continue
        assert used == cut
        second, more, done = scanner.scan(text[cut:])
        assert done and first + second == '{"a": "x}\\"{", "b": [1, {"c": 2}]}'
        assert text[cut + more :] == " }\n</tool_call>"


def fed(choice: str, stream: bool, pieces: list[str], finish: Any = "stop") -> list[Chunk]:
    """What ``ToolOutput`` emits for a reply arriving in ``pieces``."""
    request = GenerationRequest(
        messages=[Message("user", "hi")], openai={"tools": TOOLS, "tool_choice": choice}
    )
    plan = ToolPlan.of(request)
    assert plan is not None
    out: list[Chunk | BaseException] = []
    output = ToolOutput(plan, stream, out.append)
    for piece in pieces:
        output(Chunk(text=piece))
    output(Chunk(text="", finish_reason=finish, usage=Usage(5, len(pieces))))
    assert all(isinstance(item, Chunk) for item in out)
    return [item for item in out if isinstance(item, Chunk)]


REPLY = '<tool_call>\n{"name": "tag_post", "arguments": {"tags": ["a}"]} }\n</tool_call>'


def test_auto_turns_a_call_into_tool_calls_and_leaves_text_alone() -> None:
    pieces = [REPLY[i : i + 3] for i in range(0, len(REPLY), 3)]
    (whole,) = fed("auto", False, pieces)
    assert whole.openai is not None
    (call,) = whole_calls([whole])
    assert call["function"] == {"name": "tag_post", "arguments": '{"tags": ["a}"]}'}
    assert whole.openai["usage"] == {
        "prompt_tokens": 5,
        "completion_tokens": 26,
        "total_tokens": 31,
    }
    streamed = fed("auto", True, pieces)
    assert streamed_calls(streamed)[0]["function"] == call["function"]
    text = fed("auto", True, ["Hello", " <tool_call>"])
    assert [c.text for c in text] == ["Hello", " <tool_call>", ""]
    assert all(c.openai is None for c in text)


def test_a_reply_cut_inside_a_call_ends_with_length() -> None:
    cut = REPLY[:60]
    (whole,) = fed("required", False, [cut], finish="length")
    assert whole.finish_reason == "length" and whole.openai is not None
    assert whole.openai["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
    early = fed("required", True, ["<tool_call>\n{"], finish="length")
    assert [(c.text, c.finish_reason, c.openai) for c in early] == [
        ("<tool_call>\n{", "length", None)
    ]
