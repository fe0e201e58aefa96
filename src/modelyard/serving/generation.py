"""Turning OpenAI requests into engine generations, and engine chunks into OpenAI responses."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import TypeVar

from pydantic import BaseModel
from starlette.requests import Request

from modelyard.engines import Chunk, EngineError, GenerationRequest, Message, Usage
from modelyard.engines.pool import EnginePool
from modelyard.routing import RoutingTable, Target
from modelyard.serving.errors import APIError, engine_api_error
from modelyard.serving.protocol import (
    ChatCompletionRequest,
    CompletionRequest,
    ErrorBody,
    UsageOut,
)

T = TypeVar("T")
SERVED_TASKS = {"chat", "completion"}


@dataclass
class Generation:
    """A started generation: its target and its stream, primed with the first chunk."""

    id: str
    created: int
    target: Target
    first: Chunk
    rest: AsyncGenerator[Chunk, None]

    @property
    def version_header(self) -> dict[str, str]:
        v = self.target.version
        return {"x-modelyard-version": f"{v.model}@{v.number}"}

    async def chunks(self) -> AsyncIterator[Chunk]:
        """All chunks; closing this iterator closes the engine's stream (frees the engine)."""
        async with aclosing(self.rest) as rest:
            yield self.first
            if self.first.finish_reason is not None:
                return
            async for chunk in rest:
                yield chunk
                if chunk.finish_reason is not None:
                    return


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
    )


def _role(role: str) -> str:
    # OpenAI's "developer" role is the system prompt of models that predate it.
    return "system" if role == "developer" else role


async def start_generation(
    table: RoutingTable, pool: EnginePool, model: str, request: GenerationRequest, prefix: str
) -> Generation:
    """Resolve, get the engine and wait for the first chunk, so that early errors keep
    their HTTP status instead of surfacing inside a 200 stream."""
    target = table.resolve(model)
    if target.task not in SERVED_TASKS:
        raise APIError(
            400,
            f"The model '{model}' is a {target.task} model; it cannot generate text.",
            param="model",
            code="wrong_task",
        )
    engine = await pool.get(target.spec)
    stream = engine.generate(request)
    try:
        first = await anext(stream)
    except StopAsyncIteration:
        raise EngineError("the engine ended without a result") from None
    except BaseException:
        await stream.aclose()
        raise
    return Generation(
        id=f"{prefix}-{secrets.token_hex(12)}",
        created=int(time.time()),
        target=target,
        first=first,
        rest=stream,
    )


@dataclass
class Collected:
    text: str
    finish_reason: str
    usage: Usage


async def collect(generation: Generation) -> Collected:
    parts: list[str] = []
    finish: str = "stop"
    usage = Usage(0, 0)
    async for chunk in generation.chunks():
        parts.append(chunk.text)
        if chunk.finish_reason is not None:
            finish = chunk.finish_reason
        if chunk.usage is not None:
            usage = chunk.usage
    return Collected("".join(parts), finish, usage)


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
        api = engine_api_error(error)
        yield sse(ErrorBody.of(api.message, api.error_type, api.param, api.code))
        return
    if render_usage is not None and usage is not None:
        yield sse(render_usage(usage))
    yield sse("[DONE]")


class ClientDisconnected(Exception):
    """The client went away before its non-streamed answer was ready."""


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """Run ``work``, cancelling it (and so freeing the engine) if the client disconnects."""
    task = asyncio.ensure_future(work)

    async def disconnect() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.ensure_future(disconnect())
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if task.cancelled():
        raise ClientDisconnected
    return task.result()
