"""Deterministic engine for tests: scripted replies, latency and failures (its parameters
are ``ScriptedParameters``, all optional)."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import AsyncGenerator, Sequence

from pydantic import Field

from modelyard import config
from modelyard.engines.base import (
    Chunk,
    ContextLengthExceeded,
    Engine,
    EngineError,
    EngineInfo,
    EngineSpec,
    GenerationRequest,
    Usage,
)
from modelyard.engines.capabilities import GENERATES
from modelyard.engines.parameters import EngineParameters


class ScriptedParameters(EngineParameters):
    replies: list[str] | None = Field(
        default=None,
        description="Replies used in turn; none echoes the last user message or the prompt.",
    )
    replies_by_message: dict[str, str] | None = Field(
        default=None,
        description="A reply for a last user message (or prompt) of exactly this text; "
        "other requests get `replies` or the echo.",
    )
    first_token_delay_ms: float = Field(default=0, ge=0, description="Latency of the first token.")
    token_delay_ms: float = Field(default=0, ge=0, description="Latency of each next token.")
    first_token_jitter_ms: float = Field(
        default=0, ge=0, description="Extra first-token latency, drawn from [0, jitter]."
    )
    fail_when_prompt_contains: str | None = Field(
        default=None, description="A substring that makes a request fail."
    )
    fail_status: int = Field(default=502, description="HTTP status of a scripted failure.")
    fail_code: str = Field(default="upstream_error", description="Error code of a failure.")
    fail_after_tokens: int | None = Field(
        default=None, ge=0, description="Fail mid-stream after this many tokens."
    )
    fail_rate: float = Field(
        default=0.0, ge=0, le=1, description="Share of requests that fail at random."
    )
    seed: int | None = Field(default=None, description="Seeds the random failures and jitter.")
    start_fails: bool = Field(default=False, description="The engine refuses to start.")
    context_length: int = Field(
        default=4096, ge=1, description="Words the prompt and the reply may use together."
    )
    reverse_above_temperature: float | None = Field(
        default=None,
        ge=0,
        description="Above this temperature (1 when the request sets none) the reply comes "
        "back reversed: a model that goes wrong when sampled hot, for tuning tests.",
    )


def _words(text: str) -> list[str]:
    return text.split()


class ScriptedEngine(Engine):
    kind = "scripted"
    capabilities = GENERATES
    Parameters = ScriptedParameters

    def __init__(self, spec: EngineSpec, settings: config.Settings) -> None:
        super().__init__(spec, settings)
        params = self.read_parameters(ScriptedParameters)
        self._replies = itertools.cycle(params.replies) if params.replies else None
        self._by_message = params.replies_by_message or {}
        self._first_delay = params.first_token_delay_ms / 1000
        self._token_delay = params.token_delay_ms / 1000
        self._fail_marker = params.fail_when_prompt_contains
        self._fail_status = params.fail_status
        self._fail_code = params.fail_code
        self._fail_after = params.fail_after_tokens
        self._context_length = params.context_length
        self._fail_rate = params.fail_rate
        self._jitter = params.first_token_jitter_ms / 1000
        self._random = random.Random(params.seed)
        self._start_fails = params.start_fails
        self._reverse_above = params.reverse_above_temperature

    async def start(self) -> None:
        if self._start_fails:
            raise EngineError("scripted start failure")

    def info(self) -> EngineInfo:
        return EngineInfo(kind=self.kind, context_length=self._context_length)

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[Chunk, None]:
        prompt = request.prompt if request.prompt is not None else _chat_text(request)
        if self._fail_marker and self._fail_marker in prompt:
            raise EngineError("scripted failure", status=self._fail_status, code=self._fail_code)
        if self._fail_rate and self._random.random() < self._fail_rate:
            raise EngineError(
                "scripted random failure", status=self._fail_status, code=self._fail_code
            )
        prompt_tokens = len(_words(prompt))
        budget = request.max_tokens or (self._context_length - prompt_tokens)
        if prompt_tokens + budget > self._context_length:
            raise ContextLengthExceeded(
                f"This model's maximum context length is {self._context_length} tokens; "
                f"the prompt has {prompt_tokens} and max_tokens asks for {budget} more."
            )
        reply = self._reply(request)
        if self._reverse_above is not None and _temperature(request) > self._reverse_above:
            reply = reply[::-1]
        reply, stopped = _cut_at_stop(reply, request.stop)
        words = _words(reply)
        await asyncio.sleep(self._first_delay + self._random.random() * self._jitter)
        produced = 0
        for index, word in enumerate(words[:budget]):
            if self._fail_after is not None and produced >= self._fail_after:
                raise EngineError("scripted mid-stream failure", code="engine_error")
            if index:
                await asyncio.sleep(self._token_delay)
            produced += 1
            yield Chunk(text=word if index == 0 else " " + word)
        usage = Usage(prompt_tokens=prompt_tokens, completion_tokens=produced)
        cut_short = len(words) > budget and not stopped
        yield Chunk(text="", finish_reason="length" if cut_short else "stop", usage=usage)

    def _reply(self, request: GenerationRequest) -> str:
        scripted = self._by_message.get(_last_text(request))
        if scripted is not None:
            return scripted
        return next(self._replies) if self._replies else _echo(request)


def _temperature(request: GenerationRequest) -> float:
    return 1.0 if request.temperature is None else request.temperature


def _last_text(request: GenerationRequest) -> str:
    """The prompt, or the last user message's text."""
    if request.prompt is not None:
        return request.prompt
    users = [m.content for m in request.messages or () if m.role == "user"]
    return users[-1] if users else ""


def _chat_text(request: GenerationRequest) -> str:
    return "\n".join(f"{m.role}: {m.content}" for m in request.messages or ())


def _echo(request: GenerationRequest) -> str:
    return f"echo: {_last_text(request)}"


def _cut_at_stop(reply: str, stops: Sequence[str]) -> tuple[str, bool]:
    cuts = [reply.index(stop) for stop in stops if stop and stop in reply]
    return (reply[: min(cuts)], True) if cuts else (reply, False)
