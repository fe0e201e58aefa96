"""Turning OpenAI requests into engine requests, and a generation's chunks into OpenAI's
server-sent events."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable

from pydantic import BaseModel

from modelyard.engines import Chunk, EngineError, GenerationRequest, Message, Usage
from modelyard.routing.generation import Generation
from modelyard.serving.protocol import (
    ChatCompletionRequest,
    CompletionRequest,
    UsageOut,
)


def generation_request(body: ChatCompletionRequest | CompletionRequest) -> GenerationRequest:
    if isinstance(body, ChatCompletionRequest):
        messages = [Message(role=_role(m.role), content=m.text()) for m in body.messages]
        prompt = None
    else:
        messages, prompt = None, body.prompt
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
    )


def _role(role: str) -> str:
    # OpenAI's "developer" role is the system prompt of models that predate it.
    return "system" if role == "developer" else role


def usage_out(usage: Usage) -> UsageOut:
    return UsageOut(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
    )


def sse(payload: BaseModel | dict[str, object] | str) -> bytes:
    if isinstance(payload, BaseModel):
        data = payload.model_dump_json()
    elif isinstance(payload, dict):
        data = json.dumps(payload)
    else:
        data = payload
    return f"data: {data}\n\n".encode()


async def event_stream(
    generation: Generation,
    render: Callable[[Chunk], BaseModel | None],
    render_usage: Callable[[Usage], BaseModel] | None,
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
