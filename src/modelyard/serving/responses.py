"""OpenAI's Responses API (``POST /v1/responses``) over the chat-completions path.

A request becomes a ``ChatCompletionRequest`` and is served exactly as a chat completion
is (guard, routing, fallbacks, request log, metrics: ``routes``); its generation becomes
a ``response`` object, or the Responses API's typed server-sent events. modelyard is
stateless: nothing is stored, so ``store: true``, ``previous_response_id`` and
``conversation`` are refused with a 400 naming them, as is every field it does not take.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from modelyard.engines import Chunk, EngineError, Usage
from modelyard.errors import ModelyardError
from modelyard.routing.generation import Collected, Generation
from modelyard.serving.messages import InvalidRequest, given
from modelyard.serving.protocol import (
    ChatCompletionRequest,
    FunctionChoice,
    IncompleteDetails,
    InputFunctionCall,
    InputItem,
    InputMessage,
    InputTokensDetails,
    JsonSchemaFormat,
    OutputFunctionCall,
    OutputMessage,
    OutputText,
    OutputTokensDetails,
    ResponseError,
    ResponseObject,
    ResponsesRequest,
    ResponseUsage,
    TextConfig,
)

STATELESS = (
    "modelyard is stateless and keeps no responses or conversations; send the whole "
    "conversation in 'input'"
)
# OpenAI fields modelyard does not take, and why; any other unknown field is refused too.
REFUSED = MappingProxyType(
    {
        "previous_response_id": STATELESS,
        "conversation": STATELESS,
        "background": "responses are answered while the request is open, none in the background",
        "prompt": "stored prompt templates are not kept; send 'instructions' and 'input'",
        "include": "no extra output (reasoning, logprobs, hosted-tool results) is available",
        "reasoning": "reasoning settings are not supported",
        "top_logprobs": "log probabilities are not rendered in responses",
        "max_tool_calls": "the model's tool calls are returned, never run, so none to limit",
        "truncation": "the input is never truncated; it must fit the model's context",
        "stream_options": "stream options are not supported",
    }
)
# The chat request's fields, named as the Responses API names them (in a 400's param).
PARAMS = MappingProxyType(
    {
        "max_tokens": "max_output_tokens",
        "response_format": "text.format",
        "messages": "input",
    }
)
FORWARDED = ("parallel_tool_calls", "service_tier", "prompt_cache_key", "safety_identifier")
Status = Literal["completed", "incomplete"]


def chat_request(body: ResponsesRequest) -> ChatCompletionRequest:
    """The chat completion a Responses request asks for; a field it cannot carry is a 400
    naming it."""
    for name, value in (body.model_extra or {}).items():
        if given(value):
            reason = REFUSED.get(name, "modelyard's Responses API does not take it")
            raise InvalidRequest(f"'{name}' is not supported: {reason}.", param=name)
    messages: list[dict[str, Any]] = []
    if body.instructions:
        messages.append({"role": "system", "content": body.instructions})
    messages.extend(_messages(body.input))
    chat: dict[str, Any] = {"model": body.model, "messages": messages, "stream": body.stream}
    sampling = {
        "max_tokens": body.max_output_tokens,
        "temperature": body.temperature,
        "top_p": body.top_p,
        "user": body.user,
        **{name: getattr(body, name) for name in FORWARDED},
        "response_format": _response_format(body.text),
        **_tooling(body),
    }
    chat.update((name, value) for name, value in sampling.items() if value is not None)
    try:
        return ChatCompletionRequest.model_validate(chat)
    except ValidationError as error:  # not reached: the Responses request was validated
        raise InvalidRequest(f"The request cannot be served as a chat: {error}") from None


def renamed(error: ModelyardError) -> None:
    """Name the field a chat-path error names as the client named it, in its ``param``
    and its message (``response_format`` is ``text.format`` here)."""
    old = error.param
    new = responses_param(old)
    if old is None or new is None or new == old:
        return
    error.param = new
    error.message = str(error).replace(f"'{old}'", f"'{new}'")
    error.args = (error.message,)


def responses_param(param: str | None) -> str | None:
    """A chat request's field as the Responses API names it (messages: ``input``)."""
    if param is None:
        return None
    if param == "messages" or param.startswith("messages."):
        return "input"  # the indexes differ: instructions, calls merged into one message
    return PARAMS.get(param, param)


def _messages(given_input: str | list[InputItem]) -> list[dict[str, Any]]:
    """Chat messages of the input; consecutive function calls (and the assistant message
    before them) make one assistant message with its tool calls."""
    if isinstance(given_input, str):
        return [{"role": "user", "content": given_input}]
    out: list[dict[str, Any]] = []
    for item in given_input:
        if isinstance(item, InputMessage):
            out.append({"role": item.role, "content": _content(item)})
        elif isinstance(item, InputFunctionCall):
            call = {
                "id": item.call_id,
                "type": "function",
                "function": {"name": item.name, "arguments": item.arguments},
            }
            if not out or out[-1]["role"] != "assistant":
                out.append({"role": "assistant", "content": None})
            out[-1].setdefault("tool_calls", []).append(call)
        else:
            out.append({"role": "tool", "tool_call_id": item.call_id, "content": item.output})
    return out


def _content(message: InputMessage) -> str | list[dict[str, str]]:
    content = message.content
    if isinstance(content, str):
        return content
    if len(content) == 1:
        return content[0].text
    return [{"type": "text", "text": part.text} for part in content]


def _response_format(text: TextConfig | None) -> dict[str, Any] | None:
    if text is None or text.format.type == "text":
        return None
    format_ = text.format
    if not isinstance(format_, JsonSchemaFormat):
        return {"type": "json_object"}
    schema: dict[str, Any] = {"name": format_.name, "schema": format_.schema_}
    if format_.description is not None:
        schema["description"] = format_.description
    if format_.strict is not None:
        schema["strict"] = format_.strict
    return {"type": "json_schema", "json_schema": schema}


def _tooling(body: ResponsesRequest) -> dict[str, Any]:
    """Chat's ``tools`` and ``tool_choice``; a choice among no tools that asks for nothing
    (``auto``, ``none``) is left out."""
    out: dict[str, Any] = {}
    if body.tools:
        out["tools"] = [
            {"type": "function", "function": tool.model_dump(exclude={"type"}, exclude_none=True)}
            for tool in body.tools
        ]
    choice = body.tool_choice
    if isinstance(choice, FunctionChoice):
        out["tool_choice"] = {"type": "function", "function": {"name": choice.name}}
    elif choice is not None and (body.tools or choice == "required"):
        out["tool_choice"] = choice
    return out


def _suffix(generation: Generation) -> str:
    return generation.id.partition("-")[2]


def _status(finish_reason: str | None) -> tuple[Status, IncompleteDetails | None]:
    if finish_reason == "length":
        return "incomplete", IncompleteDetails(reason="max_output_tokens")
    if finish_reason == "content_filter":
        return "incomplete", IncompleteDetails(reason="content_filter")
    return "completed", None


def _usage(usage: Usage | None) -> ResponseUsage | None:
    if usage is None:
        return None
    reported = usage.openai or {}
    cached = (reported.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    reasoning = (reported.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    return ResponseUsage(
        input_tokens=usage.prompt_tokens,
        input_tokens_details=InputTokensDetails(cached_tokens=int(cached)),
        output_tokens=usage.completion_tokens,
        output_tokens_details=OutputTokensDetails(reasoning_tokens=int(reasoning)),
        total_tokens=usage.total_tokens,
    )


def _response(
    body: ResponsesRequest,
    generation: Generation,
    status: Literal["in_progress", "completed", "incomplete", "failed"],
    output: list[OutputMessage | OutputFunctionCall],
    **fields: Any,
) -> ResponseObject:
    """The response object, echoing the request's settings."""
    return ResponseObject(
        id=f"resp_{_suffix(generation)}",
        created_at=generation.created,
        status=status,
        instructions=body.instructions,
        max_output_tokens=body.max_output_tokens,
        model=body.model,
        output=output,
        parallel_tool_calls=body.parallel_tool_calls is not False,
        temperature=body.temperature,
        top_p=body.top_p,
        text=body.text or TextConfig(),
        tool_choice=body.tool_choice or "auto",
        tools=body.tools or [],
        user=body.user,
        metadata=body.metadata or {},
        **fields,
    )


def _error(error: EngineError) -> ResponseError:
    """OpenAI's error of a failed response: one of its codes, modelyard's in the message."""
    code = "rate_limit_exceeded" if error.status == 429 else "server_error"
    return ResponseError(code=code, message=f"{error} ({error.code or code})")


def _message(generation: Generation, text: str, status: str) -> OutputMessage:
    return OutputMessage.model_validate(
        {"id": f"msg_{_suffix(generation)}", "status": status, "content": [OutputText(text=text)]}
    )


def _function_calls(
    generation: Generation, calls: Mapping[int, Mapping[str, str]], status: str
) -> list[OutputFunctionCall]:
    return [
        OutputFunctionCall.model_validate(
            {
                "id": f"fc_{_suffix(generation)}_{index}",
                "call_id": call["id"] or f"call_{_suffix(generation)}_{index}",
                "name": call["name"],
                "arguments": call["arguments"],
                "status": status,
            }
        )
        for index, call in enumerate(calls[key] for key in sorted(calls))
    ]


def _add_calls(calls: dict[int, dict[str, str]], openai: Mapping[str, Any] | None) -> None:
    """Gather choice 0's tool calls from a relayed chat chunk (deltas, by their index) or
    a relayed whole completion (its message's calls)."""
    for choice in (openai or {}).get("choices") or ():
        if choice.get("index", 0) != 0:
            continue
        said = choice.get("delta") or choice.get("message") or {}
        for position, call in enumerate(said.get("tool_calls") or ()):
            slot = calls.setdefault(
                call.get("index", position), {"id": "", "name": "", "arguments": ""}
            )
            function = call.get("function") or {}
            slot["id"] = call.get("id") or slot["id"]
            slot["name"] = function.get("name") or slot["name"]
            slot["arguments"] += function.get("arguments") or ""


def response_of(
    body: ResponsesRequest, generation: Generation, result: Collected
) -> ResponseObject:
    """The whole answer as a response: a message with the text (unless the model only
    called functions), then its function calls."""
    status, incomplete = _status(result.finish_reason)
    calls: dict[int, dict[str, str]] = {}
    _add_calls(calls, result.openai)
    output: list[OutputMessage | OutputFunctionCall] = []
    if result.text or not calls:
        output.append(_message(generation, result.text, status))
    output.extend(_function_calls(generation, calls, status))
    return _response(
        body,
        generation,
        status,
        output,
        incomplete_details=incomplete,
        usage=_usage(result.usage),
    )


def response_events(body: ResponsesRequest, generation: Generation) -> AsyncIterator[bytes]:
    """The Responses API's server-sent events of a generation."""
    return _Stream(body, generation).events()


@dataclass
class _Stream:
    """One response's events: each ``event: <type>`` with ``data`` holding its ``type``
    and ``sequence_number``; an engine error after the start ends it with
    ``response.failed``."""

    body: ResponsesRequest
    generation: Generation
    sequence: int = 0
    texts: list[str] = field(default_factory=list)
    calls: dict[int, dict[str, str]] = field(default_factory=dict)
    opened: bool = False  # the message item and its text part were announced
    finish_reason: str | None = None
    usage: Usage | None = None

    def event(self, type_: str, **fields: Any) -> bytes:
        payload = {"type": type_, "sequence_number": self.sequence}
        payload.update(
            (k, v.model_dump(mode="json") if isinstance(v, BaseModel) else v)
            for k, v in fields.items()
        )
        self.sequence += 1
        data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        return f"event: {type_}\ndata: {data}\n\n".encode()

    async def events(self) -> AsyncIterator[bytes]:
        started = _response(self.body, self.generation, "in_progress", [])
        yield self.event("response.created", response=started)
        yield self.event("response.in_progress", response=started)
        try:
            async for chunk in self.generation.chunks():
                for event in self.seen(chunk):
                    yield event
        except EngineError as error:
            self.generation.error = error  # how the request ended, for its log row
            output: list[OutputMessage | OutputFunctionCall] = []
            if self.opened:  # the text so far
                output.append(_message(self.generation, "".join(self.texts), "incomplete"))
            failed = _response(
                self.body,
                self.generation,
                "failed",
                output,
                error=_error(error),
                usage=_usage(self.usage),
            )
            yield self.event("response.failed", response=failed)
            return
        for event in self.closing():
            yield event

    def seen(self, chunk: Chunk) -> list[bytes]:
        self.usage = chunk.usage or self.usage
        self.finish_reason = chunk.finish_reason or self.finish_reason
        _add_calls(self.calls, chunk.openai)
        if not chunk.text:
            return []
        out = [] if self.opened else self.opening()
        self.texts.append(chunk.text)
        out.append(
            self.event(
                "response.output_text.delta",
                **self.place(),
                content_index=0,
                delta=chunk.text,
                logprobs=[],
            )
        )
        return out

    def place(self) -> dict[str, Any]:
        return {"item_id": f"msg_{_suffix(self.generation)}", "output_index": 0}

    def opening(self) -> list[bytes]:
        self.opened = True
        return [
            self.event(
                "response.output_item.added",
                output_index=0,
                item=OutputMessage(id=self.place()["item_id"], status="in_progress", content=[]),
            ),
            self.event(
                "response.content_part.added",
                **self.place(),
                content_index=0,
                part=OutputText(text=""),
            ),
        ]

    def closing(self) -> list[bytes]:
        status, incomplete = _status(self.finish_reason)
        out: list[bytes] = []
        output: list[OutputMessage | OutputFunctionCall] = []
        if self.opened or not self.calls:
            out.extend(self.message_done(status))
            output.append(_message(self.generation, "".join(self.texts), status))
        for call in _function_calls(self.generation, self.calls, status):
            out.extend(self.call_done(call, len(output)))
            output.append(call)
        final = _response(
            self.body,
            self.generation,
            status,
            output,
            incomplete_details=incomplete,
            usage=_usage(self.usage),
        )
        out.append(self.event(f"response.{status}", response=final))
        return out

    def message_done(self, status: Status) -> list[bytes]:
        out = [] if self.opened else self.opening()
        text = "".join(self.texts)
        place = self.place()
        return [
            *out,
            self.event(
                "response.output_text.done", **place, content_index=0, text=text, logprobs=[]
            ),
            self.event(
                "response.content_part.done", **place, content_index=0, part=OutputText(text=text)
            ),
            self.event(
                "response.output_item.done",
                output_index=0,
                item=_message(self.generation, text, status),
            ),
        ]

    def call_done(self, call: OutputFunctionCall, index: int) -> list[bytes]:
        started = call.model_copy(update={"arguments": "", "status": "in_progress"})
        place = {"item_id": call.id, "output_index": index}
        return [
            self.event("response.output_item.added", output_index=index, item=started),
            self.event("response.function_call_arguments.delta", **place, delta=call.arguments),
            self.event("response.function_call_arguments.done", **place, arguments=call.arguments),
            self.event("response.output_item.done", output_index=index, item=call),
        ]
