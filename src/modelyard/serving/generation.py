"""Turning OpenAI requests into engine generations, and engine chunks into OpenAI responses."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from pydantic import BaseModel

from modelyard.engines import Chunk, EngineError, GenerationRequest, Message, Usage
from modelyard.engines.pool import EnginePool
from modelyard.routing import Target
from modelyard.serving.errors import APIError, engine_api_error
from modelyard.serving.protocol import (
    ChatCompletionRequest,
    CompletionRequest,
    ErrorBody,
    UsageOut,
)

T = TypeVar("T")
SERVED_TASKS = frozenset({"chat", "completion"})


class Restorer(Protocol):
    """Puts redacted values back into streamed text (chunks may split a placeholder)."""

    def feed(self, text: str) -> str: ...

    def flush(self) -> str: ...


class GenerationTimeout(EngineError):
    status = 504
    code = "request_timeout"
    error_type = "timeout"


@dataclass
class Generation:
    """A started generation: its target and its stream, primed with the first chunk.

    Iterating ``chunks()`` also records what the model produced (before any restore),
    when the first token came and the usage, for the request log.
    """

    id: str
    created: int
    target: Target
    first: Chunk
    rest: AsyncGenerator[Chunk, None]
    first_token_at: float = 0.0
    deadline: float | None = None  # event-loop time after which the generation is cut off
    restorer: Restorer | None = None
    worked: Callable[[float], None] | None = None  # reports work units (tokens) for energy
    produced: list[str] = field(default_factory=list)
    usage: Usage | None = None
    finish_reason: str | None = None
    first_out: Chunk | None = None
    error: EngineError | None = None

    @property
    def version_header(self) -> dict[str, str]:
        v = self.target.version
        return {"x-modelyard-version": f"{v.model}@{v.number}"}

    @property
    def version_name(self) -> str:
        return f"{self.target.version.model}@{self.target.version.number}"

    async def chunks(self) -> AsyncIterator[Chunk]:
        """All chunks; closing this iterator closes the engine's stream (frees the engine)."""
        async with aclosing(self.rest) as rest:
            chunk = self.first
            while True:
                out = self._seen(chunk)
                if self.first_out is None:
                    self.first_out = out
                yield out
                if chunk.finish_reason is not None:
                    return
                try:
                    chunk = await self._next(rest)
                except StopAsyncIteration:
                    return

    async def _next(self, rest: AsyncGenerator[Chunk, None]) -> Chunk:
        if self.deadline is None:
            return await anext(rest)
        try:
            async with asyncio.timeout_at(self.deadline):
                return await anext(rest)
        except TimeoutError:
            raise GenerationTimeout(
                "The generation took longer than this server's request timeout and was "
                "stopped; ask for fewer tokens or retry."
            ) from None

    def _seen(self, chunk: Chunk) -> Chunk:
        self.produced.append(chunk.text)
        if self.worked is not None:
            self.worked(1.0)
        if chunk.usage is not None:
            self.usage = chunk.usage
        if chunk.finish_reason is not None:
            self.finish_reason = chunk.finish_reason
        if self.restorer is None:
            return chunk
        text = self.restorer.feed(chunk.text)
        if chunk.finish_reason is not None:
            text += self.restorer.flush()
        return Chunk(text, chunk.finish_reason, chunk.usage)


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


async def start_generation(
    pool: EnginePool,
    target: Target,
    request: GenerationRequest,
    prefix: str,
    *,
    deadline: float | None = None,
    restorer: Restorer | None = None,
    worked: Callable[[float], None] | None = None,
) -> Generation:
    """Get the engine and wait for the first chunk, so that early errors keep their HTTP
    status instead of surfacing inside a 200 stream."""
    if target.task not in SERVED_TASKS:
        raise APIError(
            400,
            f"The model '{target.public_name}' is a {target.task} model; it cannot generate text.",
            param="model",
            code="wrong_task",
        )
    try:
        async with asyncio.timeout_at(deadline):
            engine = await pool.get(target.spec)
            stream = engine.generate(request)
            try:
                first = await anext(stream)
            except StopAsyncIteration:
                raise EngineError("the engine ended without a result") from None
            except BaseException:
                await stream.aclose()
                raise
    except TimeoutError:
        raise GenerationTimeout(
            "No first token within this server's request timeout; the request was stopped."
        ) from None
    return Generation(
        id=f"{prefix}-{random.getrandbits(96):024x}",  # a name, not a secret
        created=int(time.time()),
        target=target,
        first=first,
        rest=stream,
        first_token_at=time.perf_counter(),
        deadline=deadline,
        restorer=restorer,
        worked=worked,
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
        generation.error = error
        api = engine_api_error(error)
        yield sse(ErrorBody.of(api.message, api.error_type, api.param, api.code))
        return
    if render_usage is not None and usage is not None:
        yield sse(render_usage(usage))
    yield sse("[DONE]")
