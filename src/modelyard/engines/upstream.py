"""Any OpenAI-compatible server (vLLM, TGI, llama.cpp server, another modelyard) as an engine.

The version's ``artifact_uri`` is the server's base URL (ending in ``/v1``); its parameters
are ``UpstreamParameters``, the kind's settings ``UpstreamSettings``.
A request is forwarded streamed or not, as its client asked: streamed answers are relayed
chunk by chunk (time to first token is the upstream's), a non-streamed answer arrives as
one chunk (parsing one JSON body instead of an event per token was 10 % of the request
path's CPU at 50 clients; issue 8).

The client is aiohttp's, one pooled session per version: on these machines an httpx
pass-through peaked at 814 requests/s and slowed as concurrency rose, an aiohttp one at
2,094 (issue 8's measurements); the gateway's throughput is bounded by this client.
The request body is written by pydantic-core's JSON serialiser (the same JSON as
``json.dumps``'s, compact and in UTF-8, four times faster): a request with tools sends
their definitions on, which ``json.dumps`` took about 5 us a request longer to write.
Answers and streamed events are read by its parser too (2.3 times ``json.loads``'s speed:
about 2 us less per chunk).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

import aiohttp
from pydantic import Field, field_validator
from pydantic_core import from_json, to_json
from pydantic_settings import SettingsConfigDict

from modelyard import config
from modelyard.config import secret_from_env
from modelyard.engines.base import (
    Chunk,
    Engine,
    EngineError,
    EngineInfo,
    EngineNotReady,
    EngineSpec,
    FinishReason,
    GenerationRequest,
    Message,
    Usage,
)
from modelyard.engines.capabilities import Capabilities, Need
from modelyard.engines.parameters import EngineParameters

log = logging.getLogger(__name__)


class UpstreamParameters(EngineParameters):
    model: str = Field(min_length=1, description="The upstream's model name (required).")
    api_key_env: str | None = Field(
        default=None, description="Environment variable holding the upstream's API key."
    )
    context_length: int | None = Field(
        default=None, ge=1, description="The model's context window, as `info()` reports it."
    )
    extra_fields: dict[Literal["allow", "deny"], list[str]] | None = Field(
        default=None,
        description="Request fields beyond OpenAI's modelled ones (`top_k`, ...) the "
        'upstream gets: `{"allow": [...]}` only those, `{"deny": [...]}` all but those; '
        "empty: all. Others are refused with a 400 naming them.",
    )

    @field_validator("extra_fields")
    @classmethod
    def _one_rule(
        cls, value: dict[Literal["allow", "deny"], list[str]] | None
    ) -> dict[Literal["allow", "deny"], list[str]] | None:
        if value is not None and len(value) != 1:
            raise ValueError('give one of {"allow": [...]} or {"deny": [...]}')
        return value


class UpstreamSettings(config.EngineSettings):
    model_config = SettingsConfigDict(env_prefix="MODELYARD_UPSTREAM_", extra="ignore")

    timeout_s: float = Field(
        default=600.0, description="Read timeout for upstream OpenAI-compatible servers."
    )
    max_connections: int = Field(
        default=100, description="Pooled HTTP connections per upstream version."
    )


@dataclass(frozen=True)
class UpstreamInfo(EngineInfo):
    base_url: str | None = None
    model: str | None = None  # the upstream's name for it


# Everything OpenAI's API has: the request is forwarded as the client sent it.
FORWARDS = Capabilities(
    chat=True,
    completion=True,
    streaming=True,
    tools=True,
    structured_output=True,
    logprobs=True,
    multiple_choices=True,
    image_input=True,
    audio_input=True,
    logit_bias=True,
    seed=True,
)
FINISH_REASONS = frozenset(get_args(FinishReason))


class UpstreamEngine(Engine):
    kind = "upstream"
    capabilities = FORWARDS
    remote = True
    Parameters = UpstreamParameters
    Settings = UpstreamSettings

    @classmethod
    def unable(
        cls, needs: Sequence[Need], parameters: Mapping[str, Any]
    ) -> tuple[Need, str] | None:
        """Every capability; an extra field as the version's ``extra_fields`` say (fields
        of a message always go through)."""
        rule = parameters.get("extra_fields") or {}
        for need in needs:
            if need.capability is not None or need.field.startswith("messages."):
                continue
            if need.field in rule.get("deny", ()) or need.field not in rule.get(
                "allow", (need.field,)
            ):
                return need, "this upstream version's extra_fields do not let it through"
        return super().unable([n for n in needs if n.capability is not None], parameters)

    def __init__(self, spec: EngineSpec, settings: config.Settings) -> None:
        super().__init__(spec, settings)
        self.parameters = self.read_parameters(UpstreamParameters)
        self.tuning = UpstreamSettings()
        self._model = self.parameters.model
        self._client: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        headers = {}
        key_env = self.parameters.api_key_env
        if key_env:
            key = secret_from_env(key_env)
            if not key:
                raise EngineError(f"environment variable {key_env} (api_key_env) is not set")
            headers["Authorization"] = f"Bearer {key}"
        self._base = self.spec.artifact_uri.rstrip("/")
        self._client = aiohttp.ClientSession(
            headers=headers,
            timeout=aiohttp.ClientTimeout(
                total=None, sock_connect=10.0, sock_read=self.tuning.timeout_s
            ),
            connector=aiohttp.TCPConnector(limit=self.tuning.max_connections),
            raise_for_status=False,
        )

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()

    def info(self) -> UpstreamInfo:
        return UpstreamInfo(
            kind=self.kind,
            context_length=self.parameters.context_length,
            base_url=self.spec.artifact_uri,
            model=self._model,
        )

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[Chunk, None]:
        if self._client is None:
            raise EngineNotReady("upstream engine was not started")
        path, body = self._request_body(request)
        data = aiohttp.BytesPayload(to_json(body), content_type="application/json")
        try:
            headers = request.trace_context  # when tracing is on (None: no header added)
            async with self._client.post(self._base + path, data=data, headers=headers) as response:
                if response.status >= 400:
                    raise _status_error(response.status, await response.text())
                chat = request.messages is not None
                if not request.stream:
                    yield _parse_answer(await response.read(), chat=chat)
                    return
                async for chunk in _parse_stream(response, chat=chat):
                    yield chunk
        except (TimeoutError, asyncio.TimeoutError) as error:  # noqa: UP041 (aiohttp raises both)
            raise EngineError(
                f"upstream {self.spec.artifact_uri} timed out ({type(error).__name__})",
                status=504,
                code="upstream_timeout",
            ) from error
        except aiohttp.ClientError as error:
            raise EngineError(
                f"upstream {self.spec.artifact_uri} is unreachable: {error}",
                status=502,
                code="upstream_unreachable",
            ) from error

    def _request_body(self, request: GenerationRequest) -> tuple[str, dict[str, Any]]:
        body: dict[str, Any] = {"model": self._model, "stream": request.stream}
        if request.stream:
            body["stream_options"] = {"include_usage": True}
        optional = {
            "temperature": request.temperature,
            "top_p": request.top_p,
            "max_tokens": request.max_tokens,
            "seed": request.seed,
            "stop": list(request.stop) or None,
            "presence_penalty": request.presence_penalty or None,
            "frequency_penalty": request.frequency_penalty or None,
        }
        body.update({key: value for key, value in optional.items() if value is not None})
        body.update(request.openai)  # the client's other fields, as sent
        if request.stream:  # the client's other stream options, and always the usage
            body["stream_options"] = {**body.get("stream_options", {}), "include_usage": True}
        if request.response_format is not None:
            body["response_format"] = request.response_format
        if request.messages is not None:
            body["messages"] = [_message(m) for m in request.messages]
            return "/chat/completions", body
        body["prompt"] = request.prompt
        return "/completions", body


def _message(message: Message) -> Mapping[str, Any]:
    if message.openai is None:
        return {"role": message.role, "content": message.content}
    return {**message.openai, "role": message.role}


def _finish(reason: object) -> FinishReason:
    """OpenAI's finish reason as the engine contract has it (anything else: ``stop``)."""
    return cast(FinishReason, reason) if reason in FINISH_REASONS else "stop"


def _status_error(status: int, text: str) -> EngineError:
    message = text[:500]
    with contextlib.suppress(ValueError, KeyError, TypeError):
        message = str(json.loads(text)["error"]["message"])
    if status < 500:
        return EngineError(
            f"upstream refused the request: {message}",
            status=status,
            code="upstream_rejected",
            error_type="invalid_request_error",
        )
    return EngineError(f"upstream failed ({status}): {message}", status=502, code="upstream_error")


def _parse_answer(raw: bytes, *, chat: bool) -> Chunk:
    """A non-streamed answer as one chunk: choice 0's text, how it finished, the usage, and
    the answer itself, relayed as received."""
    try:
        answer = from_json(raw)
        choice = answer["choices"][0]
        text = (choice.get("message") or {}).get("content") if chat else choice.get("text")
        finish = choice.get("finish_reason")
        usage = answer.get("usage") or {}
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as error:
        raise EngineError(
            f"upstream sent an answer that is not an OpenAI completion: {raw[:200]!r}",
            status=502,
            code="upstream_error",
        ) from error
    if not usage:
        log.warning("upstream sent no usage; counting the answer as one completion token")
    return Chunk(
        text=text or "",
        finish_reason=_finish(finish),
        usage=Usage(
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 1 if text else 0)),
            openai=usage or None,
        ),
        openai=answer,
    )


async def _parse_stream(response: aiohttp.ClientResponse, *, chat: bool) -> AsyncIterator[Chunk]:
    """The upstream's chunks, each relayed as received (``Chunk.openai``, with choice 0's
    text), then a last chunk with choice 0's finish reason and the usage. The usage event
    is not relayed: serving sends it if its client asked."""
    finish: str | None = None
    usage: Usage | None = None
    content_chunks = 0
    async with aclosing(_data_lines(response.content)) as lines:
        async for raw in lines:
            if raw == b"[DONE]":
                break
            event = _event(raw)
            if event.get("usage"):
                usage = _usage(event.pop("usage"))
            choices = event.get("choices")
            if not choices and usage is not None:
                continue  # the usage event
            text = ""
            for choice in choices or ():
                if choice.get("index", 0) == 0:
                    delta = choice.get("delta") or {}
                    text = (delta.get("content") if chat else choice.get("text")) or ""
                    finish = choice.get("finish_reason") or finish
            content_chunks += bool(text)
            yield Chunk(text=text, openai=event)
    if usage is None:
        log.warning("upstream sent no usage; counting content chunks as completion tokens")
        usage = Usage(prompt_tokens=0, completion_tokens=content_chunks)
    yield Chunk(text="", finish_reason=_finish(finish), usage=usage)


def _event(raw: bytes) -> dict[str, Any]:
    try:
        event = from_json(raw)
    except ValueError as error:  # invalid JSON or invalid UTF-8 (a lone surrogate too)
        raise EngineError(f"upstream sent invalid JSON: {raw[:200]!r}", status=502) from error
    if not isinstance(event, dict):
        raise EngineError(
            f"upstream sent an event that is not an object: {raw[:200]!r}", status=502
        )
    if "error" in event:
        raise EngineError(f"upstream error: {event['error']}", status=502, code="upstream_error")
    return event


def _usage(usage: Mapping[str, Any]) -> Usage:
    return Usage(
        prompt_tokens=int(usage.get("prompt_tokens", 0)),
        completion_tokens=int(usage.get("completion_tokens", 0)),
        openai=usage,
    )


async def _data_lines(content: aiohttp.StreamReader) -> AsyncGenerator[bytes, None]:
    """The payloads of a server-sent event stream's ``data:`` lines, stripped. Reads what
    has arrived at once and splits it here: one await per network read, not one per line
    (an answer of a few short events usually arrives in one read)."""
    pending = b""
    async for received in content.iter_any():
        lines = (pending + received).split(b"\n")
        pending = lines.pop()  # an unfinished line waits for the next read
        for line in lines:
            if line.startswith(b"data:"):
                yield line[5:].strip()
    if pending.startswith(b"data:"):
        yield pending[5:].strip()
