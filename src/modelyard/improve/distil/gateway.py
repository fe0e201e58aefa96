"""Talking to the serving path as any client does, with a caller's key: the teacher's
answers (``/v1/chat/completions``) and the training texts' vectors (``/v1/embeddings``).
Keys, limits, the guard, the request log, cost and energy apply to every request, as for
an eval run (``evaluate/runner.py`` sends its items the same way); the client is
``modelyard.jobs.gateway_client``.

httpx and numpy are imported where a request is sent: a server that never labels or
distils does not load them."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from modelyard.improve.distil.errors import GatewayFailed
from modelyard.improve.distil.label_runs import LabelAnswer
from modelyard.improve.distil.prompts import map_answer
from modelyard.jobs import ask_chat, error_message

if TYPE_CHECKING:
    import httpx
    import numpy as np
    from numpy.typing import NDArray

EMBED_BATCH = 64  # texts per /v1/embeddings request
EMBED_CONCURRENCY = 2


async def ask_teacher(
    client: httpx.AsyncClient,
    teacher: str,
    index: int,
    messages: list[dict[str, str]],
    generation: Mapping[str, Any],
    labels: Sequence[str],
) -> LabelAnswer:
    """The teacher's answer to one item, mapped to a label (None outside the label set);
    a failure is recorded with the answer, never raised."""
    body = {**generation, "model": teacher, "messages": messages, "stream": False}
    reply = await ask_chat(client, body)
    return LabelAnswer(
        item_index=index,
        request_id=reply.request_id,
        version=reply.version,
        answer=reply.text,
        label=None if reply.error is not None else map_answer(reply.text, labels),
        error=reply.error,
        latency_ms=reply.latency_ms,
        prompt_tokens=reply.prompt_tokens,
        completion_tokens=reply.completion_tokens,
    )


async def embed_texts(
    client: httpx.AsyncClient, model: str, texts: Sequence[str]
) -> tuple[NDArray[np.float32], str]:
    """One vector per text through ``model``'s ``/v1/embeddings``, and the version that
    embedded them. Texts of similar length go together (less padding: about a third
    faster on banking77); GatewayFailed when a request fails or versions differ."""
    import numpy as np

    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    batches = [order[start : start + EMBED_BATCH] for start in range(0, len(order), EMBED_BATCH)]
    gate = asyncio.Semaphore(EMBED_CONCURRENCY)

    async def one(batch: list[int]) -> tuple[list[int], NDArray[np.float32], str]:
        async with gate:
            vectors, version = await _embed(client, model, [texts[i] for i in batch])
        return batch, vectors, version

    done = await asyncio.gather(*(one(batch) for batch in batches))
    versions = {version for _, _, version in done}
    if len(versions) != 1:
        raise GatewayFailed(
            f"'{model}' embedded the texts with several versions ({', '.join(sorted(versions))}); "
            "train when its traffic goes to one version"
        )
    dimensions = done[0][1].shape[1]
    matrix = np.zeros((len(texts), dimensions), dtype=np.float32)
    for batch, vectors, _ in done:
        matrix[batch] = vectors
    return matrix, versions.pop()


async def _embed(
    client: httpx.AsyncClient, model: str, texts: list[str]
) -> tuple[NDArray[np.float32], str]:
    import numpy as np

    body = {"model": model, "input": texts, "encoding_format": "base64"}
    response = await client.post("/v1/embeddings", json=body)
    data = response.json()
    if response.status_code != 200:
        raise GatewayFailed(
            f"embedding through '{model}' failed: {response.status_code}: {error_message(data)}",
            param="embedding_model",
        )
    rows = [
        np.frombuffer(base64.b64decode(item["embedding"]), dtype="<f4")
        for item in sorted(data["data"], key=lambda item: item["index"])
    ]
    return np.vstack(rows), str(response.headers.get("x-modelyard-version", model))
