"""One item, one training conversation: OpenAI's chat fine-tuning format and ShareGPT."""

from __future__ import annotations

import json

import pytest

from modelyard.improve.export.formats import (
    Unconvertible,
    conversation,
    encoded,
    openai_line,
    sharegpt_line,
)
from tests.improve.export.data import CALL, CONVERTIBLE, SKIPPED, WEATHER_TOOL, items
from tests.improve.export.openai_format import problems


def line(index: int) -> dict[str, object]:
    return openai_line(conversation(items()[index]))


def test_every_convertible_item_is_a_valid_openai_line() -> None:
    for index in sorted(CONVERTIBLE):
        parsed = json.loads(encoded(line(index)))
        assert problems(parsed) == [], (index, parsed)


def test_the_requests_own_messages_are_kept_and_the_answer_is_last() -> None:
    assert line(0) == {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is 2+2?"},
            {"role": "assistant", "content": "4"},
        ]
    }


def test_a_correction_beats_the_output() -> None:
    converted = conversation(items()[1])
    assert converted.messages[-1] == {"role": "assistant", "content": "Paris"}
    assert converted.corrected
    assert not conversation(items()[0]).corrected


def test_a_correction_replaces_an_answer_the_messages_hold() -> None:
    item = {
        "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "bad"}],
        "corrected": "good",
    }
    assert conversation(item).messages[-1]["content"] == "good"
    del item["corrected"]
    assert conversation(item).messages[-1]["content"] == "bad"  # its own answer


def test_tool_calls_and_results_keep_openais_shape() -> None:
    converted = line(3)
    assert converted["tools"] == [WEATHER_TOOL]
    assert converted["messages"] == [
        {"role": "system", "content": "Use the tools."},  # developer is a system turn
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "tool_calls": [CALL]},
        {"role": "tool", "content": "sunny, 21 C", "tool_call_id": "call_1"},
        {"role": "assistant", "content": "Sunny and 21 °C in Paris."},
    ]
    answer = line(9)["messages"][-1]  # type: ignore[index]
    arguments = answer["tool_calls"][0]["function"]["arguments"]
    assert answer["role"] == "assistant" and json.loads(arguments) == {"city": "Oslo"}


def test_items_without_messages_become_a_user_turn() -> None:
    assert line(2)["messages"] == [
        {"role": "user", "content": "Say hi"},
        {"role": "assistant", "content": "hi"},
    ]
    assert line(8)["messages"][-1] == {"role": "assistant", "content": "6"}  # type: ignore[index]


@pytest.mark.parametrize(("index", "reason"), sorted(SKIPPED.items()))
def test_items_that_cannot_be_converted_say_why(index: int, reason: str) -> None:
    with pytest.raises(Unconvertible) as raised:
        conversation(items()[index])
    assert raised.value.reason == reason
    text = json.dumps(items()[index]["messages"])
    assert raised.value.detail not in text  # the detail says where, not what


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        ({"output": "a"}, "no_question"),
        ({"messages": [{"role": "system", "content": "s"}], "output": "a"}, "no_user_turn"),
        ({"messages": "hi", "output": "a"}, "invalid_message"),
        ({"messages": [{"role": "user", "content": "q"}], "output": ["a"]}, "invalid_answer"),
        (
            {"messages": [{"role": "user", "content": "q"}], "output": {"role": "user"}},
            "invalid_answer",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "q"},
                    {"role": "tool", "tool_call_id": "nope", "content": "r"},
                ],
                "output": "a",
            },
            "invalid_tool_message",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "q"},
                    {"role": "assistant", "tool_calls": [{"type": "function", "function": {}}]},
                ],
                "corrected": "a",
            },
            "invalid_tool_call",
        ),
        ({"input": "q", "output": "a", "tools": "all"}, "invalid_tools"),
    ],
)
def test_more_reasons(item: dict[str, object], reason: str) -> None:
    with pytest.raises(Unconvertible) as raised:
        conversation(item)
    assert raised.value.reason == reason


def test_text_parts_are_joined() -> None:
    parts = [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]
    item = {"messages": [{"role": "user", "content": parts}], "output": "a"}
    assert conversation(item).messages[0] == {"role": "user", "content": "one\ntwo"}


def test_sharegpt_maps_roles_to_system_human_gpt() -> None:
    assert sharegpt_line(conversation(items()[0])) == {
        "conversations": [
            {"from": "system", "value": "Be brief."},
            {"from": "human", "value": "What is 2+2?"},
            {"from": "gpt", "value": "4"},
        ]
    }


def test_sharegpt_writes_tool_calls_as_llama_factory_does() -> None:
    converted = sharegpt_line(conversation(items()[3]))
    assert [turn["from"] for turn in converted["conversations"]] == [
        "system",
        "human",
        "function_call",
        "observation",
        "gpt",
    ]
    call = json.loads(converted["conversations"][2]["value"])
    assert call == {"name": "get_weather", "arguments": {"city": "Paris"}}
    assert json.loads(converted["tools"]) == [WEATHER_TOOL]


def test_sharegpt_refuses_a_turn_with_text_and_tool_calls() -> None:
    item = {
        "messages": [{"role": "user", "content": "q"}],
        "output": {"content": "let me look", "tool_calls": [CALL]},
    }
    assert openai_line(conversation(item))["messages"][-1]["content"] == "let me look"
    with pytest.raises(Unconvertible) as raised:
        sharegpt_line(conversation(item))
    assert raised.value.reason == "mixed_tool_call"


def test_a_lone_surrogate_cannot_be_written() -> None:
    converted = conversation({"input": "q \ud800", "output": "a"})
    with pytest.raises(Unconvertible) as raised:
        encoded(openai_line(converted))
    assert raised.value.reason == "invalid_text"


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ({"messages": [{"role": "user", "content": "q"}]}, "example_not_ending_with_assistant"),
        ({"messages": [{"role": "assistant", "content": "a"}]}, "example_missing_user_message"),
        (
            {"messages": [{"role": "user", "content": ""}, {"role": "assistant", "content": "a"}]},
            "missing_content",
        ),
        ({"messages": [{"role": "function", "name": "f", "content": "x"}]}, "unrecognized_role"),
        (
            {"messages": [{"role": "user", "content": 3}, {"role": "assistant", "content": "a"}]},
            "sdk:",
        ),
        ({"prompt": "q", "completion": "a"}, "missing_messages_list"),
    ],
)
def test_the_validator_catches_what_openai_refuses(line: dict[str, object], problem: str) -> None:
    """The check the exports pass is not vacuous."""
    assert any(found.startswith(problem) for found in problems(line)), problems(line)
