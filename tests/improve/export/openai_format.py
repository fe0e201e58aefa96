"""An independent check of OpenAI's chat fine-tuning format, written from OpenAI's
documentation (the supervised fine-tuning guide and its tool-calling example) and the
checks of OpenAI's cookbook script "Data preparation and analysis for chat model
fine-tuning" (data type, messages list, keys, roles, content, an assistant message),
extended for tool calls. No installed package validates training files (the ``openai`` SDK
has no validator for them), so each line's messages and tools are also validated against
the SDK's typed request params (``ChatCompletionMessageParam``, ``ChatCompletionToolParam``)
with pydantic."""

from __future__ import annotations

import json
from typing import Any

from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam
from pydantic import TypeAdapter, ValidationError

MESSAGE_KEYS = {"role", "content", "name", "weight", "tool_calls", "tool_call_id"}
ROLES = {"system", "user", "assistant", "tool"}
LINE_KEYS = {"messages", "tools", "parallel_tool_calls"}
SDK_MESSAGES = TypeAdapter(list[ChatCompletionMessageParam])
SDK_TOOLS = TypeAdapter(list[ChatCompletionToolParam])


def problems(line: object) -> list[str]:
    """What is wrong with one line, parsed (nothing for a valid one)."""
    if not isinstance(line, dict):
        return ["data_type"]
    found = [f"unrecognized_line_key:{key}" for key in line if key not in LINE_KEYS]
    messages = line.get("messages")
    if not isinstance(messages, list) or not messages:
        return [*found, "missing_messages_list"]
    for message in messages:
        found += _message_problems(message)
    if not any(isinstance(m, dict) and m.get("role") == "user" for m in messages):
        found.append("example_missing_user_message")
    if not isinstance(messages[-1], dict) or messages[-1].get("role") != "assistant":
        found.append("example_not_ending_with_assistant_message")
    tools = line.get("tools")
    if tools is not None and not (
        isinstance(tools, list)
        and all(isinstance(t, dict) and t.get("type") == "function" for t in tools)
    ):
        found.append("invalid_tools")
    return found + _sdk_problems(SDK_MESSAGES, messages) + _sdk_problems(SDK_TOOLS, tools or [])


def _message_problems(message: object) -> list[str]:
    if not isinstance(message, dict):
        return ["message_not_object"]
    found = [f"message_unrecognized_key:{key}" for key in message if key not in MESSAGE_KEYS]
    if message.get("role") not in ROLES:
        found.append("unrecognized_role")
    content, calls = message.get("content"), message.get("tool_calls")
    if calls is not None:
        if message.get("role") != "assistant" or not isinstance(calls, list) or not calls:
            found.append("invalid_tool_calls")
        else:
            found += [p for call in calls for p in _call_problems(call)]
    if calls is None and (not isinstance(content, str) or not content.strip()):
        found.append("missing_content")
    if content is not None and not isinstance(content, str):
        found.append("content_not_string")
    if message.get("role") == "tool" and not isinstance(message.get("tool_call_id"), str):
        found.append("tool_message_without_call_id")
    return found


def _call_problems(call: object) -> list[str]:
    if not isinstance(call, dict) or call.get("type") != "function":
        return ["tool_call_not_function"]
    function = call.get("function")
    if not isinstance(call.get("id"), str) or not isinstance(function, dict):
        return ["tool_call_shape"]
    if not isinstance(function.get("name"), str) or not isinstance(function.get("arguments"), str):
        return ["tool_call_function_shape"]
    try:
        json.loads(function["arguments"])
    except json.JSONDecodeError:
        return ["tool_call_arguments_not_json"]
    return []


def _sdk_problems(adapter: TypeAdapter[Any], value: object) -> list[str]:
    """``value`` against the openai SDK's typed params."""
    try:
        adapter.validate_python(value)
    except ValidationError as error:
        return [f"sdk:{error.errors()[0]['loc']}"]
    return []
