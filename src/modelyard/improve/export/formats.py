"""One dataset item as one training conversation: OpenAI's chat fine-tuning format (the
request's own messages, then the answer: a correction before the output), checked as OpenAI
documents it; and the same conversation in ShareGPT's form. An item that cannot be
converted raises ``Unconvertible`` with a reason and a detail that repeats none of its
text."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from modelyard.improve.sources import INPUT_FIELDS, OUTPUT_FIELDS

Item = dict[str, Any]
Message = dict[str, Any]
ROLES = ("system", "user", "assistant", "tool")
ROLE_ALIASES = {"developer": "system"}  # OpenAI's newer name for the system turn
ANSWER_FIELDS = ("corrected", *OUTPUT_FIELDS)  # a reviewer's correction wins
SHAREGPT_FROM = {"system": "system", "user": "human", "assistant": "gpt", "tool": "observation"}


class Unconvertible(Exception):
    """The item cannot become a training conversation: ``reason`` is a short code to count
    by, ``detail`` says where (never the item's text)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Conversation:
    messages: list[Message]
    tools: list[Any] | None
    corrected: bool  # the answer is the item's correction


def conversation(item: Item) -> Conversation:
    """The item's turns ending with the assistant's answer, checked (else Unconvertible)."""
    turns = _turns(item)
    if turns[-1]["role"] == "assistant" and not _given(item.get("corrected")):
        from_correction = False  # the conversation holds its own answer
    else:
        if turns[-1]["role"] == "assistant":
            turns = turns[:-1]  # the correction stands in for the last answer
        answer, from_correction = _answer(item)
        turns.append(answer)
    tools = _tools(item.get("tools"))
    _check(turns)
    return Conversation(turns, tools, from_correction)


def openai_line(conv: Conversation) -> dict[str, Any]:
    """A line of OpenAI's chat fine-tuning JSONL."""
    line: dict[str, Any] = {"messages": conv.messages}
    if conv.tools:
        line["tools"] = conv.tools
    return line


def sharegpt_line(conv: Conversation) -> dict[str, Any]:
    """The conversation as ShareGPT: system/human/gpt turns; a tool call is a
    ``function_call`` turn and a tool's result an ``observation`` (LLaMA-Factory's names),
    the tools a JSON string."""
    turns = []
    for index, message in enumerate(conv.messages):
        calls = message.get("tool_calls")
        if not calls:
            turns.append({"from": SHAREGPT_FROM[message["role"]], "value": message["content"]})
            continue
        if message.get("content"):
            raise Unconvertible(
                "mixed_tool_call",
                f"message {index} has text and tool calls: ShareGPT has no such turn",
            )
        named = [_named_call(call) for call in calls]
        turns.append(
            {"from": "function_call", "value": dumps(named[0] if len(named) == 1 else named)}
        )
    line: dict[str, Any] = {"conversations": turns}
    if conv.tools:
        line["tools"] = dumps(conv.tools)
    return line


def dumps(value: Any) -> str:
    """Compact JSON, UTF-8 text kept as is: the same value always gives the same text."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def encoded(line: dict[str, Any]) -> bytes:
    try:
        return dumps(line).encode("utf-8")
    except UnicodeEncodeError:
        raise Unconvertible("invalid_text", "a text holds a lone UTF-16 surrogate") from None


def _given(value: object) -> bool:
    if isinstance(value, str):
        return bool(value.strip())
    return value is not None and value != [] and value != {}


def _turns(item: Item) -> list[Message]:
    messages = item.get("messages")
    if messages is not None:
        if not isinstance(messages, list) or not messages:
            raise Unconvertible("invalid_message", "messages is not a list of messages")
        return [_message(raw, f"message {index}") for index, raw in enumerate(messages)]
    question = next((item[name] for name in INPUT_FIELDS if _is_text(item.get(name))), None)
    if question is None:
        raise Unconvertible(
            "no_question", f"no messages, and none of {', '.join(INPUT_FIELDS)} has text"
        )
    system = item.get("system")
    turns = [{"role": "system", "content": system}] if _is_text(system) else []
    return [*turns, {"role": "user", "content": question}]


def _is_text(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _message(raw: object, where: str) -> Message:
    """A message as OpenAI's format has it: role, content, name, tool calls, tool call id."""
    if not isinstance(raw, dict):
        raise Unconvertible("invalid_message", f"{where} is not an object")
    given = raw.get("role")
    role = ROLE_ALIASES.get(given, given) if isinstance(given, str) else given
    if role not in ROLES:
        raise Unconvertible("unknown_role", f"{where} has role {given!r}")
    content = _text(raw.get("content"), f"{where} ({role})")
    calls = raw.get("tool_calls") if role == "assistant" else None
    out: Message = {"role": role}
    if content is not None and content.strip():
        out["content"] = content
    elif not calls:
        raise Unconvertible("empty_content", f"{where} ({role}) has no text")
    if isinstance(raw.get("name"), str) and raw["name"] and role != "tool":
        out["name"] = raw["name"]
    if calls:
        if not isinstance(calls, list):
            raise Unconvertible("invalid_tool_call", f"{where}: tool_calls is not a list")
        out["tool_calls"] = [_tool_call(call, where) for call in calls]
    if role == "tool":
        call_id = raw.get("tool_call_id")
        if not isinstance(call_id, str) or not call_id:
            raise Unconvertible("invalid_tool_message", f"{where} (tool) has no tool_call_id")
        out["tool_call_id"] = call_id
    return out


def _text(value: object, where: str) -> str | None:
    """A message's text: a string, or text parts joined by newlines (None when absent)."""
    if value is None or isinstance(value, str):
        return value
    if not isinstance(value, list):
        raise Unconvertible("invalid_message", f"{where}: content is a {type(value).__name__}")
    texts = []
    for part in value:
        text = part.get("text") if isinstance(part, dict) and part.get("type") == "text" else None
        if not isinstance(text, str):
            kind = part.get("type") if isinstance(part, dict) else type(part).__name__
            raise Unconvertible(
                "non_text_content", f"{where} has a {kind!r} part: only text is exported"
            )
        texts.append(text)
    return "\n".join(texts)


def _tool_call(call: object, where: str) -> dict[str, Any]:
    function = call.get("function") if isinstance(call, dict) else None
    if (
        not isinstance(call, dict)
        or call.get("type", "function") != "function"
        or not isinstance(function, dict)
        or not isinstance(function.get("name"), str)
        or not function["name"]
    ):
        raise Unconvertible("invalid_tool_call", f"{where}: a tool call names no function")
    call_id = call.get("id")
    if not isinstance(call_id, str) or not call_id:
        raise Unconvertible("invalid_tool_call", f"{where}: a tool call has no id")
    arguments = function.get("arguments", "{}")
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments, ensure_ascii=False, sort_keys=True)
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": function["name"], "arguments": arguments},
    }


def _answer(item: Item) -> tuple[Message, bool]:
    """The assistant's turn: the first of the answer fields given (the correction first),
    and whether it was the correction."""
    for field in ANSWER_FIELDS:
        value = item.get(field)
        if not _given(value):
            continue
        if isinstance(value, dict):
            role = value.get("role", "assistant")
            if role != "assistant":
                raise Unconvertible("invalid_answer", f"{field} has role {role!r}")
            return _message({**value, "role": "assistant"}, field), field == "corrected"
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise Unconvertible("invalid_answer", f"{field} is a {type(value).__name__}")
        return {"role": "assistant", "content": str(value)}, field == "corrected"
    raise Unconvertible("no_answer", f"no answer: {', '.join(ANSWER_FIELDS)} are all empty")


def _tools(value: object) -> list[Any] | None:
    if value is None or value == []:
        return None
    if not isinstance(value, list) or not all(isinstance(tool, dict) for tool in value):
        raise Unconvertible("invalid_tools", "tools is not a list of tool definitions")
    return value


def _check(turns: list[Message]) -> None:
    """OpenAI's rules for a training conversation: a user turn, the assistant last, and
    every tool result answering a call made before it."""
    if not any(turn["role"] == "user" for turn in turns):
        raise Unconvertible("no_user_turn", "no user message")
    if turns[-1]["role"] != "assistant":
        raise Unconvertible("no_answer", "the last message is not the assistant's")
    called: set[str] = set()
    for index, turn in enumerate(turns):
        called.update(call["id"] for call in turn.get("tool_calls", ()))
        if turn["role"] == "tool" and turn["tool_call_id"] not in called:
            raise Unconvertible(
                "invalid_tool_message", f"message {index} answers a tool call no turn made"
            )


def _named_call(call: dict[str, Any]) -> dict[str, Any]:
    arguments = call["function"]["arguments"]
    try:
        parsed: Any = json.loads(arguments)
    except json.JSONDecodeError:
        parsed = arguments
    return {"name": call["function"]["name"], "arguments": parsed}
