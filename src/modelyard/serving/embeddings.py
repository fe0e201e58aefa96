"""``POST /v1/embeddings`` in OpenAI's shape, served by engines of ``embedding`` models."""

from __future__ import annotations

import asyncio
import base64
import struct
from collections.abc import Sequence

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response

from modelyard.engines import Embeddings, Engine
from modelyard.errors import ModelyardError, error_responses
from modelyard.guard.auth import requires
from modelyard.guard.gate import RequestShape
from modelyard.guard.roles import Access
from modelyard.routing import Target
from modelyard.services import services_of
from modelyard.serving.disconnect import ClientDisconnected, unless_disconnected
from modelyard.serving.errors import APIError
from modelyard.serving.exchange import CLIENT_CLOSED_REQUEST, Exchange
from modelyard.serving.protocol import Embedding, EmbeddingList, EmbeddingRequest, EmbeddingUsage

router = APIRouter(prefix="/v1", tags=["openai"], responses=error_responses(401, 403))
INFER = requires(Access.infer)
EMBEDDING_TASK = "embedding"


@router.post(
    "/embeddings",
    response_model=EmbeddingList,
    dependencies=[INFER],
    responses=error_responses(404, 429, 502, 503, 504),
)
async def create_embeddings(body: EmbeddingRequest, request: Request) -> Response:
    services = services_of(request)
    exchange = Exchange.begin(request, "embeddings", body.model, body.user)
    try:
        admission = await exchange.admit(body.texts(), RequestShape(None, 0))
        target = exchange.resolve()
        _check_task(target, body.model)
        exchange.engine_starts()
        engine = await services.engines.get(target.spec)
        _check_dimensions(body.dimensions, _dimensions_of(engine))
        result = await unless_disconnected(request, engine.embed(admission.texts))
        exchange.engine_answered()
        exchange.work(float(result.prompt_tokens))
        if result.vectors:
            _check_dimensions(body.dimensions, len(result.vectors[0]))
    except ClientDisconnected:
        exchange.finish(CLIENT_CLOSED_REQUEST, "client_disconnected")
        return Response(status_code=CLIENT_CLOSED_REQUEST)
    except ModelyardError as error:
        exchange.failed(error)
        raise
    # Rendering thousands of vectors as JSON is CPU work: keep it off the event loop.
    content = await asyncio.to_thread(render, result, body.model, body.encoding_format)
    exchange.finish(200, content={"input": admission.texts}, prompt_tokens=result.prompt_tokens)
    return Response(content, media_type="application/json", headers=exchange.headers())


def _check_task(target: Target, model: str) -> None:
    if target.task != EMBEDDING_TASK:
        raise APIError(
            400,
            f"The model '{model}' is a {target.task} model; it cannot embed text. "
            "Use an embedding model (GET /v1/models shows each model's task).",
            param="model",
            code="wrong_task",
        )


def _dimensions_of(engine: Engine) -> int | None:
    dimensions = engine.info().details.get("dimensions")
    return dimensions if isinstance(dimensions, int) else None


def _check_dimensions(requested: int | None, actual: int | None) -> None:
    if requested is not None and actual is not None and requested != actual:
        raise APIError(
            400,
            f"This model's embeddings have {actual} dimensions and cannot be shortened to "
            f"{requested}; leave 'dimensions' out or set it to {actual}.",
            param="dimensions",
            code="invalid_dimensions",
        )


def render(result: Embeddings, model: str, encoding_format: str) -> bytes:
    encode = as_base64 if encoding_format == "base64" else list
    body = EmbeddingList(
        data=[
            Embedding(index=index, embedding=encode(vector))
            for index, vector in enumerate(result.vectors)
        ],
        model=model,
        usage=EmbeddingUsage(prompt_tokens=result.prompt_tokens, total_tokens=result.prompt_tokens),
    )
    return body.model_dump_json().encode()


def as_base64(vector: Sequence[float]) -> str:
    """OpenAI's ``base64`` encoding: the vector's little-endian float32 bytes."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def attach(app: FastAPI) -> None:
    app.include_router(router)
