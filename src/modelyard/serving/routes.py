"""OpenAI-compatible routes: thin handlers over ``generation``."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel

from modelyard.engines import Chunk, Usage
from modelyard.services import services_of
from modelyard.serving.generation import (
    ClientDisconnected,
    Collected,
    Generation,
    collect,
    event_stream,
    generation_request,
    start_generation,
    unless_disconnected,
    usage_out,
)
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
    TextChoice,
)

router = APIRouter(prefix="/v1", tags=["openai"])
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
# nginx's "client closed request": nobody reads it, the access log does.
CLIENT_CLOSED_REQUEST = 499


@router.get("/models", response_model=ModelCardList)
async def list_models(request: Request) -> ModelCardList:
    table = services_of(request).routing
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
        ]
    )


@router.post("/chat/completions", response_model=ChatCompletion)
async def chat_completions(body: ChatCompletionRequest, request: Request) -> Response:
    return await _serve(body, request, "chatcmpl", _chat_chunk, _chat_usage_chunk, _chat_final)


@router.post("/completions", response_model=Completion)
async def completions(body: CompletionRequest, request: Request) -> Response:
    return await _serve(body, request, "cmpl", _text_chunk, _text_usage_chunk, _text_final)


async def _serve(
    body: ChatCompletionRequest | CompletionRequest,
    request: Request,
    prefix: str,
    render_chunk: Callable[[Generation, str, Chunk], BaseModel | None],
    render_usage: Callable[[Generation, str, Usage], BaseModel],
    render_final: Callable[[Generation, str, Collected], BaseModel],
) -> Response:
    services = services_of(request)
    generation = await start_generation(
        services.routing, services.engines, body.model, generation_request(body), prefix
    )
    model = body.model
    if body.stream:
        usage_event = (
            (lambda u: render_usage(generation, model, u)) if body.include_usage() else None
        )
        return StreamingResponse(
            event_stream(generation, lambda c: render_chunk(generation, model, c), usage_event),
            media_type="text/event-stream",
            headers={**SSE_HEADERS, **generation.version_header},
        )
    try:
        result = await unless_disconnected(request, collect(generation))
    except ClientDisconnected:
        return Response(status_code=CLIENT_CLOSED_REQUEST)
    return Response(
        render_final(generation, model, result).model_dump_json(),
        media_type="application/json",
        headers=generation.version_header,
    )


def _chat_final(generation: Generation, model: str, result: Collected) -> ChatCompletion:
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


def _text_final(generation: Generation, model: str, result: Collected) -> Completion:
    return Completion(
        id=generation.id,
        created=generation.created,
        model=model,
        choices=[TextChoice(text=result.text, finish_reason=result.finish_reason)],
        usage=usage_out(result.usage),
    )


def _chat_chunk(generation: Generation, model: str, chunk: Chunk) -> ChatCompletionChunk | None:
    first = chunk is generation.first
    if not chunk.text and chunk.finish_reason is None and not first:
        return None
    delta = Delta(role="assistant" if first else None, content=chunk.text or None)
    return ChatCompletionChunk(
        id=generation.id,
        created=generation.created,
        model=model,
        choices=[ChatChunkChoice(delta=delta, finish_reason=chunk.finish_reason)],
    )


def _chat_usage_chunk(generation: Generation, model: str, usage: Usage) -> ChatCompletionChunk:
    return ChatCompletionChunk(
        id=generation.id,
        created=generation.created,
        model=model,
        choices=[],
        usage=usage_out(usage),
    )


def _text_chunk(generation: Generation, model: str, chunk: Chunk) -> Completion | None:
    if not chunk.text and chunk.finish_reason is None:
        return None
    return Completion(
        id=generation.id,
        created=generation.created,
        model=model,
        choices=[TextChoice(text=chunk.text, finish_reason=chunk.finish_reason)],
    )


def _text_usage_chunk(generation: Generation, model: str, usage: Usage) -> Completion:
    return Completion(
        id=generation.id,
        created=generation.created,
        model=model,
        choices=[],
        usage=usage_out(usage),
    )


def attach(app: FastAPI) -> None:
    app.include_router(router)
