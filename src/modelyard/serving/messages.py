"""Chat messages between the wire and engines: what each needs of an engine (tool calls and
results, images, audio, fields beyond the modelled ones), the texts the guard scans in
them (text parts, tool-call arguments, tool results), put back as forwarded (redacted),
and what the request log keeps of them. A plain message (a role and a string) stays a
bare ``Message``: the hot path pays for none of this."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from types import MappingProxyType
from typing import Any

from modelyard.engines import GenerationRequest, Message, Need
from modelyard.errors import ModelyardError
from modelyard.serving.protocol import ChatMessage, MediaPart

PLAIN_FIELDS = frozenset({"role", "content"})
MEDIA_CAPABILITIES = MappingProxyType({"image_url": "image_input", "input_audio": "audio_input"})
TOOL_ROLES = frozenset({"tool", "function"})
ROLES = MappingProxyType({"developer": "system"})  # the system prompt of models predating it


class InvalidRequest(ModelyardError):
    """A request that is well-formed JSON but does not hold together (a tool result for a
    call nobody made, a tool choice naming no tool)."""

    status = 400
    code = "invalid_request"


def given(value: object) -> bool:
    """Whether a field's value asks for something (``null``, ``false``, ``[]``, ``{}`` do
    not; ``0`` does)."""
    return not (value is None or value is False or value == [] or value == {})


def chat_messages(messages: Sequence[ChatMessage], needs: list[Need]) -> list[Message]:
    """The engine's messages, adding to ``needs`` what they need of an engine. A tool
    result must answer a call an earlier assistant message made."""
    out: list[Message] = []
    calls: set[str] = set()
    for index, message in enumerate(messages):
        content = message.content
        plain = message.__pydantic_fields_set__ <= PLAIN_FIELDS
        if type(content) is str and plain and message.role not in TOOL_ROLES:
            out.append(Message(ROLES.get(message.role, message.role), content))  # the hot path
            continue
        if message.tool_calls:
            calls.update(call.id for call in message.tool_calls)
        if message.role == "tool" and message.tool_call_id not in calls:
            called = (
                "has no tool_call_id"
                if message.tool_call_id is None
                else f"answers the call '{message.tool_call_id}', which no earlier "
                "assistant message made"
            )
            raise InvalidRequest(
                f"messages[{index}] is a tool result that {called}; send the assistant "
                "message with its tool_calls before the results.",
                param=f"messages.{index}.tool_call_id",
            )
        out.append(_message(message, needs))
    return out


def _message(message: ChatMessage, needs: list[Need]) -> Message:
    role = ROLES.get(message.role, message.role)
    if message.role in TOOL_ROLES or message.tool_calls:
        needs.append(Need("messages", "tools"))
    if isinstance(message.content, list):
        for part in message.content:
            if isinstance(part, MediaPart):
                capability = MEDIA_CAPABILITIES.get(part.type)
                # A part with no capability of its own (a file) is an extra field.
                field = "messages" if capability else f"messages.content.{part.type}"
                needs.append(Need(field, capability))
    for name, value in (message.model_extra or {}).items():
        if given(value):
            needs.append(Need(f"messages.{name}", None))
    return Message(role, message.text(), message.model_dump(exclude_unset=True))


def texts_of(request: GenerationRequest) -> list[str]:
    """The texts the guard scans: every message's text parts and tool-call arguments (a
    tool result is its message's content), or the prompt."""
    if request.messages is None:
        return [request.prompt or ""]
    texts: list[str] = []
    for message in request.messages:
        texts.extend(_texts(message))
    return texts


def _texts(message: Message) -> list[str]:
    openai = message.openai
    if openai is None:
        return [message.content]
    content = openai.get("content")
    if isinstance(content, str):
        texts = [content]
    else:
        texts = [part["text"] for part in content or () if part.get("type") == "text"]
    texts.extend(call["function"]["arguments"] for call in openai.get("tool_calls") or ())
    return texts


def with_texts(request: GenerationRequest, texts: list[str]) -> GenerationRequest:
    """The request with its texts (``texts_of``'s, in that order) replaced by ``texts``
    (their redacted versions); images, audio and every other field stay."""
    if request.messages is None:
        return replace(request, prompt=texts[0])
    redone = iter(texts)
    messages = [_with(message, redone) for message in request.messages]
    if next(redone, None) is not None:
        raise ValueError("more texts than the request holds")
    return replace(request, messages=messages)


def _with(message: Message, texts: Iterator[str]) -> Message:
    openai = message.openai
    if openai is None:
        return Message(message.role, next(texts))
    redone = dict(openai)
    content = openai.get("content")
    text = ""
    if isinstance(content, str):
        text = redone["content"] = next(texts)
    elif content:
        parts = [_with_text(part, texts) for part in content]
        text = "".join(part["text"] for part in parts if part.get("type") == "text")
        redone["content"] = parts
    calls = openai.get("tool_calls")
    if calls:
        redone["tool_calls"] = [
            {**call, "function": {**call["function"], "arguments": next(texts)}} for call in calls
        ]
    return Message(message.role, text, redone)


def _with_text(part: Mapping[str, Any], texts: Iterator[str]) -> Mapping[str, Any]:
    return {**part, "text": next(texts)} if part.get("type") == "text" else part


def logged_content(request: GenerationRequest) -> dict[str, Any]:
    """What the request log keeps of a request (as forwarded: redacted when the route
    redacts): the messages with their texts (tool calls and ids kept, images and audio
    left out), the tools and response format asked for; the response is added when it
    ends."""
    if request.messages is None:
        return {"prompt": request.prompt}
    content: dict[str, Any] = {"messages": [_logged(m) for m in request.messages]}
    for name in ("tools", "tool_choice"):
        if name in request.openai:
            content[name] = request.openai[name]
    if request.response_format is not None:
        content["response_format"] = request.response_format
    return content


def _logged(message: Message) -> dict[str, Any]:
    if message.openai is None:
        return {"role": message.role, "content": message.content}
    return {**message.openai, "role": message.role, "content": message.content}
