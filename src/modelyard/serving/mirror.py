"""One shadow request: the primary's (guarded, redacted) request sent to a shadow version,
its answer logged under variant ``shadow`` with the primary's id and a suffix."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from modelyard.engines import EngineError, GenerationRequest
from modelyard.observe.cost import cost_of
from modelyard.observe.requestlog import RequestRecord
from modelyard.routing import Target
from modelyard.services import Services
from modelyard.serving.generation import Generation, collect, start_generation


@dataclass(frozen=True)
class Mirror:
    parent_id: str
    index: int
    key_id: str
    endpoint: str
    route: str
    user: str | None
    target: Target
    request: GenerationRequest
    content: dict[str, Any] | None


async def mirrored(services: Services, mirror: Mirror) -> None:
    """Run the mirror to its end and log it; any engine failure is logged, not raised."""
    at = datetime.now(UTC)
    started = time.perf_counter()
    status, code = 200, None
    generation: Generation | None = None
    try:
        async with asyncio.timeout(services.settings.request_timeout_s):
            generation = await start_generation(
                services.engines, mirror.target, mirror.request, "shadow"
            )
            await collect(generation)
    except EngineError as error:
        status, code = error.status, error.code
    except TimeoutError:
        status, code = 504, "request_timeout"
    latency = time.perf_counter() - started
    usage = generation.usage if generation is not None else None
    prompt = usage.prompt_tokens if usage else 0
    completion = usage.completion_tokens if usage else 0
    ttft = (generation.first_token_at - started) if generation is not None else None
    content = mirror.content
    if content is not None and generation is not None:
        content = {**content, "response": "".join(generation.produced)}
    services.request_log.submit(
        RequestRecord(
            id=f"{mirror.parent_id}.shadow{mirror.index}",
            at=at,
            key_id=mirror.key_id,
            endpoint=mirror.endpoint,
            route=mirror.route,
            version=mirror.target.name,
            status=status,
            error_code=code,
            latency_ms=latency * 1000,
            ttft_ms=ttft * 1000 if ttft is not None else None,
            prompt_tokens=prompt,
            completion_tokens=completion,
            cost=cost_of(mirror.target.version.parameters, prompt, completion, 0.0),
            content=content,
            user=mirror.user,
            variant="shadow",
        )
    )
