"""OpenAI-compatible routes: thin handlers over ``generation``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel

from modelyard.engines import Chunk, EngineError, GenerationRequest, Usage
from modelyard.errors import ModelyardError, error_responses
from modelyard.guard.auth import principal_of, requires
from modelyard.guard.gate import RequestShape
from modelyard.guard.roles import Access
from modelyard.routing.dispatch import dispatch
from modelyard.routing.generation import Collected, Generation, Launch, collect
from modelyard.services import services_of
from modelyard.serving.disconnect import (
    ClientDisconnected,
    DisconnectWatch,
    EventStreamResponse,
)
from modelyard.serving.exchange import CLIENT_CLOSED_REQUEST, Exchange
from modelyard.serving.generation import (
    compact_json,
    event_stream,
    generation_request,
    usage_out,
)
from modelyard.serving.messages import logged_content, texts_of, with_texts
from modelyard.serving.protocol import (
    AssistantMessage,
    ChatChoice,
    ChatChunkChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Completion,
    CompletionRequest,
    Delta,
    ModelCard,
    ModelCardList,
    ResponseObject,
    ResponsesRequest,
    TextChoice,
)
from modelyard.serving.responses import (
    chat_request,
    renamed,
    response_events,
    response_of,
)


def _streamed_or(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The responses of a streaming endpoint: with ``stream: true`` the answer is
    server-sent events."""
    return {200: {"content": {"text/event-stream": {}}}, **error_responses(*statuses)}


router = APIRouter(prefix="/v1", tags=["openai"], responses=error_responses(401, 403))
SSE_HEADERS = MappingProxyType({"cache-control": "no-cache", "x-accel-buffering": "no"})
INFER = requires(Access.infer)
MODELS = requires(Access.infer, Access.read)


@router.get("/models", response_model=ModelCardList, dependencies=[MODELS])
async def list_models(request: Request) -> ModelCardList:
    table = services_of(request).routing
    principal = principal_of(request)
    return ModelCardList(
        data=[
            ModelCard(
                id=t.public_name,
                created=int(t.version.created_at.timestamp()),
                task=t.task,
                version=t.version.number,
                alias=t.alias,
            )
            for t in table.public_models()
            if principal.sees_all or principal.may_call(t.model)
        ]
    )


# Both are served by ``serving.fastpath`` in the running app; these declarations are their
# OpenAPI entries and the same handlers behind FastAPI's router.
@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    dependencies=[INFER],
    responses=_streamed_or(404, 429, 502, 503, 504),
)
async def chat_completions(body: ChatCompletionRequest, request: Request) -> Response:
    return await serve_chat(body, request)


@router.post(
    "/completions",
    response_model=Completion,
    dependencies=[INFER],
    responses=_streamed_or(404, 429, 502, 503, 504),
)
async def completions(body: CompletionRequest, request: Request) -> Response:
    return await serve_completion(body, request)


# Served through FastAPI's router only (not the fast path): its traffic is not the bulk.
@router.post(
    "/responses",
    response_model=ResponseObject,
    dependencies=[INFER],
    responses=_streamed_or(404, 429, 502, 503, 504),
)
async def create_response(body: ResponsesRequest, request: Request) -> Response:
    """OpenAI's Responses API, stateless: served as a chat completion."""
    exchange = Exchange.begin(request, "responses", body.model, body.user)
    try:
        try:
            chat = chat_request(body)
        except ModelyardError as error:
            exchange.failed(error)
            raise
        return await _serve_in(exchange, chat, request, _responses(body))
    except ModelyardError as error:
        renamed(error)  # the field as the client named it
        raise


async def serve_chat(body: ChatCompletionRequest, request: Request) -> Response:
    """A chat completion for an authorized request."""
    return await _serve(body, request, CHAT)


async def serve_completion(body: CompletionRequest, request: Request) -> Response:
    """A text completion for an authorized request."""
    return await _serve(body, request, TEXT)


# What an engine relaying an OpenAI-compatible server received is sent on as a dict
# (``Chunk.openai``), with this server's id and model; other engines' answers are modelled.
Rendered = BaseModel | dict[str, Any]


@dataclass(frozen=True)
class Rendering:
    """How one endpoint renders a generation: its id prefix, streamed chunks, the usage
    chunk and the whole answer."""

    endpoint: str
    prefix: str
    chunk: Callable[[Generation, str, Chunk], Rendered | None]
    usage: Callable[[Generation, str, Usage], Rendered]
    final: Callable[[Generation, str, Collected], Rendered]
    chunk_object: str  # OpenAI's ``object`` of a streamed chunk
    # The whole event stream, for an endpoint whose events are not one per chunk (the
    # Responses API's): ``chunk`` and ``usage`` are then not used.
    stream: Callable[[Generation, str], AsyncIterator[bytes]] | None = None


async def _serve(
    body: ChatCompletionRequest | CompletionRequest, request: Request, rendering: Rendering
) -> Response:
    exchange = Exchange.begin(request, rendering.endpoint, body.model, body.user)
    return await _serve_in(exchange, body, request, rendering)


async def _serve_in(
    exchange: Exchange,
    body: ChatCompletionRequest | CompletionRequest,
    request: Request,
    rendering: Rendering,
) -> Response:
    # One watcher from the start to the last byte: a client that leaves while its request
    # waits for the engine frees its place in the queue at once.
    watch = DisconnectWatch(request.receive)
    try:
        return await _answer(exchange, body, rendering, watch)
    finally:
        if not exchange.streaming:
            watch.close()  # a stream's response closes it when the stream ends


async def _answer(
    exchange: Exchange,
    body: ChatCompletionRequest | CompletionRequest,
    rendering: Rendering,
    watch: DisconnectWatch,
) -> Response:
    try:
        wanted = generation_request(body)
        generation, forwarded = await watch.run(_started(exchange, body, wanted, rendering.prefix))
    except ClientDisconnected:
        exchange.finish(CLIENT_CLOSED_REQUEST, "client_disconnected")
        return Response(status_code=CLIENT_CLOSED_REQUEST)
    except ModelyardError as error:
        exchange.failed(error)
        raise
    content = logged_content(forwarded)
    if body.stream:
        return _streamed(exchange, body, generation, content, rendering, watch)
    try:
        result = await watch.run(collect(generation))
    except ClientDisconnected:
        exchange.finish(
            CLIENT_CLOSED_REQUEST, "client_disconnected", generation=generation, content=content
        )
        return Response(status_code=CLIENT_CLOSED_REQUEST)
    except EngineError as error:
        exchange.finish(error.status, error.code, generation=generation, content=content)
        raise
    exchange.engine_answered()
    exchange.finish(200, generation=generation, content=content)
    final = rendering.final(generation, body.model, result)
    return Response(
        final.__pydantic_serializer__.to_json(final)
        if isinstance(final, BaseModel)
        else compact_json(final),
        media_type="application/json",
        headers=exchange.headers(),
    )


async def _started(
    exchange: Exchange,
    body: ChatCompletionRequest | CompletionRequest,
    wanted: GenerationRequest,
    prefix: str,
) -> tuple[Generation, GenerationRequest]:
    """Admit the request, plan it and start its generation on the plan's first target
    that starts; the request as forwarded (redacted) comes back with it."""
    services = exchange.services
    admission = await exchange.admit(
        texts_of(wanted),
        RequestShape(max_tokens=body.token_limit(), messages=len(wanted.messages or ())),
    )
    forwarded = exchange.forwarded = with_texts(wanted, admission.texts)
    plan = exchange.plan()
    launch = Launch(
        services.engines,
        forwarded,
        prefix,
        deadline=asyncio.get_running_loop().time() + services.settings.request_timeout_s,
        restorer=admission.stream_restorer(),
        worked=exchange.work,
        tracer=exchange.tracer,
    )
    replay = await exchange.cached(launch)
    if replay is not None:  # a hit: the guard has admitted it, no engine runs
        return replay, forwarded
    exchange.engine_starts()
    dispatched = await dispatch(plan, launch, services.breakers, exchange.call_made)
    exchange.served(
        dispatched.generation.target,
        dispatched.fallback_from,
        dispatched.skipped,
        dispatched.decision,
    )
    return dispatched.generation, forwarded


def _streamed(
    exchange: Exchange,
    body: ChatCompletionRequest | CompletionRequest,
    generation: Generation,
    content: dict[str, Any],
    rendering: Rendering,
    watch: DisconnectWatch,
) -> Response:
    model = body.model
    exchange.streaming = True
    exchange.engine_answered(until=generation.first_token_at)
    if rendering.stream is not None:
        events = rendering.stream(generation, model)
    else:
        usage_event = (
            (lambda u: rendering.usage(generation, model, u)) if body.include_usage() else None
        )
        chunk = rendering.chunk
        events = event_stream(generation, lambda c: chunk(generation, model, c), usage_event)
    return EventStreamResponse(
        exchange.logged(events, generation, content),
        media_type="text/event-stream",
        headers={**SSE_HEADERS, **exchange.headers()},
        watch=watch,
    )


def _relayed(openai: Mapping[str, Any], generation: Generation, model: str) -> dict[str, Any]:
    """A relayed OpenAI chunk or completion, as received but for its id and model."""
    return {**openai, "id": generation.id, "model": model}


def _relayed_rest(
    generation: Generation, model: str, chunk: Chunk, rendering: Rendering
) -> dict[str, Any] | None:
    """A relayed stream's chunk without an OpenAI chunk of its own (its end): nothing,
    unless restoring redacted values left text over for choice 0."""
    if not chunk.text:
        return None
    choice: dict[str, Any] = {"index": 0, "logprobs": None, "finish_reason": None}
    if rendering is CHAT:
        choice["delta"] = {"content": chunk.text}
    else:
        choice["text"] = chunk.text
    return _usage_or_rest(generation, model, rendering, choices=[choice])


def _usage_or_rest(
    generation: Generation, model: str, rendering: Rendering, **fields: Any
) -> dict[str, Any]:
    """A chunk of a relayed stream that modelyard makes (the usage, say), dated as the
    upstream dated its chunks."""
    first = generation.first.openai or {}
    return {
        "id": generation.id,
        "object": rendering.chunk_object,
        "created": first.get("created", generation.created),
        "model": model,
        **fields,
    }


def _chat_final(generation: Generation, model: str, result: Collected) -> Rendered:
    if result.openai is not None:
        return _relayed(result.openai, generation, model)
    return ChatCompletion(
        id=generation.id,
        created=generation.created,
        model=model,
        choices=[
            ChatChoice(
                message=AssistantMessage(content=result.text), finish_reason=result.finish_reason
            )
        ],
        usage=usage_out(result.usage),
    )


def _text_final(generation: Generation, model: str, result: Collected) -> Rendered:
    if result.openai is not None:
        return _relayed(result.openai, generation, model)
    return Completion(
        id=generation.id,
        created=generation.created,
        model=model,
        choices=[TextChoice(text=result.text, finish_reason=result.finish_reason)],
        usage=usage_out(result.usage),
    )


def _chat_chunk(generation: Generation, model: str, chunk: Chunk) -> Rendered | None:
    if chunk.openai is not None:
        return _relayed(chunk.openai, generation, model)
    if generation.first.openai is not None:
        return _relayed_rest(generation, model, chunk, CHAT)
    first = chunk is generation.first_out
    if not chunk.text and chunk.finish_reason is None and not first:
        return None
    delta = Delta(role="assistant" if first else None, content=chunk.text or None)
    return ChatCompletionChunk(
        id=generation.id,
        created=generation.created,
        model=model,
        choices=[ChatChunkChoice(delta=delta, finish_reason=chunk.finish_reason)],
    )


def _chat_usage_chunk(generation: Generation, model: str, usage: Usage) -> Rendered:
    if usage.openai is not None:
        return _usage_or_rest(generation, model, CHAT, choices=[], usage=usage.openai)
    return ChatCompletionChunk(
        id=generation.id,
        created=generation.created,
        model=model,
        choices=[],
        usage=usage_out(usage),
    )


def _text_chunk(generation: Generation, model: str, chunk: Chunk) -> Rendered | None:
    if chunk.openai is not None:
        return _relayed(chunk.openai, generation, model)
    if generation.first.openai is not None:
        return _relayed_rest(generation, model, chunk, TEXT)
    if not chunk.text and chunk.finish_reason is None:
        return None
    return Completion(
        id=generation.id,
        created=generation.created,
        model=model,
        choices=[TextChoice(text=chunk.text, finish_reason=chunk.finish_reason)],
    )


def _text_usage_chunk(generation: Generation, model: str, usage: Usage) -> Rendered:
    if usage.openai is not None:
        return _usage_or_rest(generation, model, TEXT, choices=[], usage=usage.openai)
    return Completion(
        id=generation.id,
        created=generation.created,
        model=model,
        choices=[],
        usage=usage_out(usage),
    )


CHAT = Rendering(
    "chat.completions",
    "chatcmpl",
    _chat_chunk,
    _chat_usage_chunk,
    _chat_final,
    "chat.completion.chunk",
)
TEXT = Rendering(
    "completions", "cmpl", _text_chunk, _text_usage_chunk, _text_final, "text_completion"
)


def _responses(body: ResponsesRequest) -> Rendering:
    """The Responses API's rendering of one request: its answer echoes the request."""
    return Rendering(
        "responses",
        "resp",
        chunk=lambda _generation, _model, _chunk: None,  # streamed whole (``stream``)
        usage=lambda _generation, _model, _usage: {},
        final=lambda generation, _model, result: response_of(body, generation, result),
        chunk_object="response",
        stream=lambda generation, _model: response_events(body, generation),
    )


def attach(app: FastAPI) -> None:
    app.include_router(router)
