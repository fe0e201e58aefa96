"""Turning OpenAI requests into engine requests, and a generation's chunks into OpenAI's
server-sent events."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel
from pydantic_core import to_json

from modelyard.engines import Chunk, EngineError, GenerationRequest, Need, Usage
from modelyard.engines.base import NOTHING
from modelyard.routing.generation import Generation
from modelyard.serving.messages import InvalidRequest, chat_messages, given
from modelyard.serving.protocol import (
    ChatCompletionRequest,
    CompletionRequest,
    UsageOut,
)

# The capability an OpenAI field needs of an engine when it is given. Any other field
# beyond the modelled ones is an extra field, which an engine kind must take by name.
CAPABILITY_OF = MappingProxyType(
    {
        "tools": "tools",
        "tool_choice": "tools",
        "parallel_tool_calls": "tools",
        "functions": "tools",
        "function_call": "tools",
        "response_format": "structured_output",
        "logprobs": "logprobs",
        "top_logprobs": "logprobs",
        "logit_bias": "logit_bias",
    }
)
RESPONSE_FORMATS = frozenset({"text", "json_object", "json_schema"})
TOOL_CHOICES = frozenset({"none", "auto", "required"})


def generation_request(body: ChatCompletionRequest | CompletionRequest) -> GenerationRequest:
    """The engine's request; what it needs of an engine (``needs``) comes with it. Fields
    beyond the modelled ones travel as sent in ``openai``, ``response_format`` apart."""
    needs: list[Need] = []
    extras = body.model_extra
    if isinstance(body, ChatCompletionRequest):
        messages = chat_messages(body.messages, needs)
        prompt = None
        if extras:
            _check_tools(extras)
    else:
        messages, prompt = None, body.prompt
    response_format, openai = None, NOTHING  # a plain request's: the hot path stops here
    if extras or body.n != 1 or body.user or _stream_extras(body):
        response_format = _response_format((extras or {}).get("response_format"))
        openai = _forwarded(body, extras or {}, needs)
    return GenerationRequest(
        messages=messages,
        prompt=prompt,
        max_tokens=body.token_limit(),
        temperature=body.temperature,
        top_p=body.top_p,
        stop=tuple(body.stop_list()),
        seed=body.seed,
        presence_penalty=body.presence_penalty,
        frequency_penalty=body.frequency_penalty,
        stream=bool(body.stream),
        response_format=response_format,
        openai=openai,
        needs=tuple(dict.fromkeys(needs)) if needs else (),
    )


def _forwarded(
    body: ChatCompletionRequest | CompletionRequest, extras: Mapping[str, Any], needs: list[Need]
) -> dict[str, Any]:
    """The fields an engine that forwards OpenAI requests sends on, as sent; adds to
    ``needs`` the capability or extra field each given one needs."""
    openai: dict[str, Any] = {}
    for name, value in extras.items():
        if name == "response_format" and _response_format(value) is not None:
            needs.append(Need(name, "structured_output"))
            continue  # travels as ``response_format``
        if given(value) and name != "response_format":
            needs.append(Need(name, CAPABILITY_OF.get(name)))
        openai[name] = value
    stream_extras = _stream_extras(body)
    if stream_extras:
        for name, value in stream_extras.items():
            if given(value):
                needs.append(Need(f"stream_options.{name}", None))
        openai["stream_options"] = dict(stream_extras)
    if body.n != 1:
        needs.append(Need("n", "multiple_choices"))
        openai["n"] = body.n
    if body.user is not None:
        openai["user"] = body.user
    return openai


def _stream_extras(body: ChatCompletionRequest | CompletionRequest) -> dict[str, Any] | None:
    """``stream_options`` beyond ``include_usage``, as sent."""
    options = body.stream_options
    return options.model_extra if options is not None else None


def _response_format(value: object) -> Mapping[str, Any] | None:
    """A JSON ``response_format`` (an engine needs ``structured_output`` for it); None for
    none or ``{"type": "text"}``, the default."""
    if value is None:
        return None
    if isinstance(value, dict) and value.get("type") in RESPONSE_FORMATS:
        if value["type"] == "text":
            return None
        if value["type"] == "json_object" or _schema_given(value):
            return value
    raise InvalidRequest(
        '\'response_format\' must be {"type": "text"}, {"type": "json_object"} '
        'or {"type": "json_schema", "json_schema": {"name": ..., "schema": {...}}}.',
        param="response_format",
    )


def _schema_given(value: Mapping[str, Any]) -> bool:
    schema = value.get("json_schema")
    return isinstance(schema, dict) and isinstance(schema.get("name"), str)


def _check_tools(extras: Mapping[str, Any]) -> None:
    """``tools`` are functions with names; a ``tool_choice`` names one of them."""
    tools = extras.get("tools")
    names: set[str | None] = set()
    if tools is not None:
        if isinstance(tools, list):
            names = {_tool_name(tool) for tool in tools}  # each tool's name, read once
        if not isinstance(tools, list) or None in names:
            raise InvalidRequest(
                "'tools' must be a list of "
                '{"type": "function", "function": {"name": ..., "parameters": {...}}}.',
                param="tools",
            )
    choice = extras.get("tool_choice")
    if choice is None or (isinstance(choice, str) and choice in TOOL_CHOICES):
        if choice == "required" and not names:
            raise InvalidRequest(
                "tool_choice is 'required' but no tools are given.", param="tool_choice"
            )
        return
    name = _tool_name(choice)
    if name is None or name not in names:
        raise InvalidRequest(
            f"tool_choice names the function '{name}', which is not among the request's "
            f"tools ({', '.join(sorted(str(n) for n in names)) or 'none given'}); use 'auto', "
            '\'none\', \'required\' or {"type": "function", "function": {"name": ...}}.',
            param="tool_choice",
        )


def _tool_name(tool: object) -> str | None:
    """The function name of a tool (or of a tool choice), if it is well-formed."""
    if not isinstance(tool, dict) or tool.get("type", "function") != "function":
        return None
    function = tool.get("function")
    name = function.get("name") if isinstance(function, dict) else None
    return name if isinstance(name, str) and name else None


def usage_out(usage: Usage) -> UsageOut:
    return UsageOut(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
    )


def compact_json(payload: Mapping[str, Any]) -> bytes:
    """A relayed answer or chunk as JSON: compact and in UTF-8, as pydantic writes models
    (pydantic-core's writer, about 2.5x ``json.dumps``'s speed; small floats come out as
    ``0.00001`` rather than ``1e-05``, the same number)."""
    return to_json(payload)


def sse(payload: BaseModel | dict[str, object] | str) -> bytes:
    if isinstance(payload, BaseModel):
        return b"data: " + payload.__pydantic_serializer__.to_json(payload) + b"\n\n"
    if isinstance(payload, dict):
        return b"data: " + to_json(payload) + b"\n\n"
    return f"data: {payload}\n\n".encode()


async def event_stream(
    generation: Generation,
    render: Callable[[Chunk], BaseModel | dict[str, Any] | None],
    render_usage: Callable[[Usage], BaseModel | dict[str, Any]] | None,
) -> AsyncIterator[bytes]:
    """Server-sent events for a generation; errors after the first byte become an error event."""
    usage: Usage | None = None
    try:
        async for chunk in generation.chunks():
            event = render(chunk)
            if event is not None:
                yield sse(event)
            usage = chunk.usage or usage
    except EngineError as error:
        generation.error = error
        yield sse(error.body())
        return
    if render_usage is not None and usage is not None:
        yield sse(render_usage(usage))
    yield sse("[DONE]")
