"""A generation started on a target: the engine's stream, primed with its first chunk.

Starting waits for the first chunk, so that an engine's early error keeps its own status
(and can fail over) instead of surfacing inside a response that has already begun.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, Protocol

from modelyard.engines import Chunk, Engine, EngineError, GenerationRequest, Usage
from modelyard.engines.pool import EnginePool
from modelyard.errors import ModelyardError
from modelyard.routing.deadline import Deadline
from modelyard.routing.table import Target

GENERATING_TASKS = frozenset({"chat", "completion"})


class Restorer(Protocol):
    """Puts redacted values back into streamed text (chunks may split a placeholder)."""

    def feed(self, text: str) -> str: ...

    def flush(self) -> str: ...


class CallTracer(Protocol):
    """Follows a request's engine calls when tracing is on (``serving.traced``): its
    ``generate`` stands in for the engine's, with the call's span and trace context."""

    def generate(
        self, engine: Engine, target: Target, request: GenerationRequest
    ) -> AsyncGenerator[Chunk, None]: ...


class GenerationTimeout(EngineError):
    status = 504
    code = "request_timeout"
    error_type = "timeout"


class Unhonoured(ModelyardError):
    """A request field the target's engine kind cannot honour (the plan's other targets,
    if any, could not either)."""

    status = 400
    code = "invalid_request"


class WrongTask(ModelyardError):
    """A request for text to a model of another task (an embedding model, say)."""

    status = 400
    code = "wrong_task"
    param = "model"


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
    # The ``tool_calls`` lists of choice 0's relayed deltas (or of its whole message), as
    # received: the request-log writer assembles the calls, off the request path.
    tool_calls: list[Any] = field(default_factory=list)
    first_out: Chunk | None = None  # the first chunk as yielded (restored), for renderers
    error: EngineError | None = None

    async def chunks(self) -> AsyncIterator[Chunk]:
        """All chunks; closing this iterator closes the engine's stream (frees the engine)."""
        deadline = Deadline(self.deadline) if self.deadline is not None else None
        try:
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
                        chunk = await (deadline.next_of(rest) if deadline else anext(rest))
                    except StopAsyncIteration:
                        return
                    except TimeoutError:
                        if deadline is None or not deadline.expired:
                            raise
                        raise GenerationTimeout(
                            "The generation took longer than this server's request timeout "
                            "and was stopped; ask for fewer tokens or retry."
                        ) from None
        finally:
            if deadline is not None:
                deadline.close()

    def _seen(self, chunk: Chunk) -> Chunk:
        self.produced.append(chunk.text)
        if self.worked is not None:
            self.worked(1.0)
        if chunk.usage is not None:
            self.usage = chunk.usage
        if chunk.finish_reason is not None:
            self.finish_reason = chunk.finish_reason
        openai = chunk.openai
        if openai is not None:
            _keep_tool_calls(openai, self.tool_calls)
        if self.restorer is None:
            return chunk
        text = self.restorer.feed(chunk.text)
        if chunk.finish_reason is not None:
            text += self.restorer.flush()
        if openai is not None and text != chunk.text:
            openai = _with_first_text(openai, text)
        return Chunk(text, chunk.finish_reason, chunk.usage, openai)

    @property
    def came_whole(self) -> bool:
        """Whether the answer came in one piece (an upstream asked non-streamed): there is
        no first token to time then."""
        return self.first.finish_reason is not None


def _keep_tool_calls(openai: Mapping[str, Any], kept: list[Any]) -> None:
    """Keep choice 0's ``tool_calls`` of a relayed chunk or completion (a few lookups: this
    runs on every relayed chunk)."""
    choices = openai.get("choices")
    if not choices:
        return
    choice = choices[0]
    if choice.get("index", 0) != 0:
        return
    said = choice.get("delta") or choice.get("message")
    if said:
        calls = said.get("tool_calls")
        if calls:
            kept.append(calls)


def _with_first_text(openai: Mapping[str, Any], text: str) -> dict[str, Any]:
    """An OpenAI chunk or completion with choice 0's text replaced (restored). Other
    choices of ``n`` keep theirs: the restorer follows one text."""
    choices = []
    for choice in openai.get("choices") or ():
        if choice.get("index", 0) == 0:
            if "delta" in choice:
                choice = {**choice, "delta": {**choice["delta"], "content": text}}
            elif "message" in choice:
                choice = {**choice, "message": {**choice["message"], "content": text}}
            else:
                choice = {**choice, "text": text}
        choices.append(choice)
    return {**openai, "choices": choices}


@dataclass(slots=True)  # not frozen: one per request, and a frozen init costs 2x
class Launch:
    """How to start generations for one request (the same for each target tried)."""

    engines: EnginePool
    request: GenerationRequest
    prefix: str  # the id's prefix: chatcmpl, cmpl, shadow
    deadline: float | None = None
    restorer: Restorer | None = None
    worked: Callable[[float], None] | None = None
    tracer: CallTracer | None = None  # None when tracing is off


def refusal(launch: Launch, target: Target) -> Unhonoured | None:
    """Why the target's engine kind cannot honour the request (a field it needs), if so.
    Decided by the kind's declared capabilities and extra fields alone."""
    needs = launch.request.needs
    if not needs:
        return None
    version = target.version
    unable = launch.engines.kind_of(version.engine_kind).unable(needs, version.parameters)
    if unable is None:
        return None
    need, reason = unable
    return Unhonoured(
        f"'{need.field}' cannot be honoured by '{target.public_name}' ({target.name}): "
        f"{reason}. Leave it out, or ask a model whose engine supports it.",
        param=need.field,
    )


async def start_generation(launch: Launch, target: Target) -> Generation:
    """Get the target's engine and wait for its first chunk (within the deadline)."""
    if target.task not in GENERATING_TASKS:
        raise WrongTask(
            f"The model '{target.public_name}' is a {target.task} model; it cannot generate text."
        )
    refused = refusal(launch, target)
    if refused is not None:
        raise refused
    try:
        async with asyncio.timeout_at(launch.deadline):
            engine = await launch.engines.get(target.spec)
            tracer = launch.tracer
            if tracer is None:
                stream = engine.generate(launch.request)
            else:
                stream = tracer.generate(engine, target, launch.request)
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
        id=f"{launch.prefix}-{random.getrandbits(96):024x}",  # a name, not a secret
        created=int(time.time()),
        target=target,
        first=first,
        rest=stream,
        first_token_at=time.perf_counter(),
        deadline=launch.deadline,
        restorer=launch.restorer,
        worked=launch.worked,
    )


@dataclass
class Collected:
    text: str
    finish_reason: str
    usage: Usage
    openai: Mapping[str, Any] | None = None  # a relayed OpenAI completion, as received


async def collect(generation: Generation) -> Collected:
    """The whole answer of a generation."""
    parts: list[str] = []
    finish: str = "stop"
    usage = Usage(0, 0)
    openai = None
    async for chunk in generation.chunks():
        parts.append(chunk.text)
        if chunk.finish_reason is not None:
            finish = chunk.finish_reason
        if chunk.usage is not None:
            usage = chunk.usage
        openai = chunk.openai or openai
    return Collected("".join(parts), finish, usage, openai)
