"""Deterministic engine for tests: scripted replies, latency and failures.

Parameters (all optional):
- ``replies``: list of replies used in turn; default echoes the last user message / prompt.
- ``first_token_delay_ms``, ``token_delay_ms``: latency before the first and each next token.
- ``fail_when_prompt_contains``: a substring that makes the request fail.
- ``fail_status``, ``fail_code``: the error raised then (default 502, ``upstream_error``).
- ``fail_after_tokens``: fail mid-stream after this many tokens.
- ``fail_rate``: the share of requests (0-1) that fail at random, drawn from ``seed``.
- ``first_token_jitter_ms``: extra first-token latency drawn uniformly from [0, jitter].
- ``start_fails``: the engine refuses to start (to test not-ready handling).
- ``context_length``: tokens (whitespace-separated words) the prompt and reply may use.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import AsyncGenerator, Sequence
from typing import Any

from modelyard.config import Settings
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


def _words(text: str) -> list[str]:
    return text.split()


class ScriptedEngine(Engine):
    kind = "scripted"

    def __init__(self, spec: EngineSpec, settings: Settings) -> None:
        super().__init__(spec, settings)
        params: dict[str, Any] = spec.parameters
        replies = params.get("replies")
        self._replies = itertools.cycle(replies) if replies else None
        self._first_delay = float(params.get("first_token_delay_ms", 0)) / 1000
        self._token_delay = float(params.get("token_delay_ms", 0)) / 1000
        self._fail_marker: str | None = params.get("fail_when_prompt_contains")
        self._fail_status = int(params.get("fail_status", 502))
        self._fail_code = str(params.get("fail_code", "upstream_error"))
        self._fail_after: int | None = params.get("fail_after_tokens")
        self._context_length = int(params.get("context_length", 4096))
        self._fail_rate = float(params.get("fail_rate", 0.0))
        self._jitter = float(params.get("first_token_jitter_ms", 0)) / 1000
        self._random = random.Random(params.get("seed"))

    async def start(self) -> None:
        if self.spec.parameters.get("start_fails"):
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
        reply = next(self._replies) if self._replies else _echo(request)
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


def _chat_text(request: GenerationRequest) -> str:
    return "\n".join(f"{m.role}: {m.content}" for m in request.messages or ())


def _echo(request: GenerationRequest) -> str:
    if request.prompt is not None:
        return f"echo: {request.prompt}"
    users = [m.content for m in request.messages or () if m.role == "user"]
    return f"echo: {users[-1] if users else ''}"


def _cut_at_stop(reply: str, stops: Sequence[str]) -> tuple[str, bool]:
    cuts = [reply.index(stop) for stop in stops if stop and stop in reply]
    return (reply[: min(cuts)], True) if cuts else (reply, False)
