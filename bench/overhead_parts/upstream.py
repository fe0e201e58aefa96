"""A fake OpenAI-compatible upstream that answers at once with a fixed small response.

``POST /v1/chat/completions`` (non-streaming, or SSE: a role chunk, a handful of content
chunks, a finish chunk, a usage chunk when ``stream_options.include_usage`` asks for it,
then ``[DONE]``), ``GET /v1/models``, and ``GET /stats``: what it has received, including
how many prompts still held the benchmark's e-mail address (a redacting gateway forwards
none).

    python -m bench.overhead_parts.upstream --port 8901
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import Counter
from functools import lru_cache
from typing import Any

REPLY_PIECES = ("Hello", "! This is", " a fixed", " benchmark", " reply.")
REPLY = "".join(REPLY_PIECES)
PROMPT_TOKENS = 24
COMPLETION_TOKENS = len(REPLY_PIECES)
CREATED = 1_700_000_000
PII_MARKER = b"jane.doe@example.com"


def usage() -> dict[str, int]:
    return {
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": COMPLETION_TOKENS,
        "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
    }


def completion_body(model: str) -> dict[str, Any]:
    """The non-streaming answer."""
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": CREATED,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": REPLY},
                "finish_reason": "stop",
            }
        ],
        "usage": usage(),
    }


def _chunk(model: str, delta: dict[str, str], finish: str | None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def stream_events(model: str, *, include_usage: bool) -> list[bytes]:
    """The SSE events of a streamed answer, each a ``data: ...\\n\\n`` frame."""
    events: list[dict[str, Any]] = [_chunk(model, {"role": "assistant", "content": ""}, None)]
    events += [_chunk(model, {"content": piece}, None) for piece in REPLY_PIECES]
    events.append(_chunk(model, {}, "stop"))
    if include_usage:
        events.append({**_chunk(model, {}, None), "choices": [], "usage": usage()})
    frames = [f"data: {json.dumps(event, separators=(',', ':'))}\n\n".encode() for event in events]
    return [*frames, b"data: [DONE]\n\n"]


@lru_cache(maxsize=64)
def _completion_bytes(model: str) -> bytes:
    return json.dumps(completion_body(model), separators=(",", ":")).encode()


@lru_cache(maxsize=64)
def _stream_frames(model: str, include_usage: bool) -> tuple[bytes, ...]:
    return tuple(stream_events(model, include_usage=include_usage))


def models_body() -> dict[str, Any]:
    return {
        "object": "list",
        "data": [
            {"id": "bench-upstream", "object": "model", "created": CREATED, "owned_by": "fake"}
        ],
    }


def build_app() -> Any:
    from aiohttp import web

    stats: Counter[str] = Counter()

    async def chat(request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = json.loads(raw)
        model = str(body.get("model", "bench-upstream"))
        stats["requests"] += 1
        if PII_MARKER in raw:
            stats["prompts_with_pii"] += 1
        if not body.get("stream"):
            return web.Response(body=_completion_bytes(model), content_type="application/json")
        stats["streamed"] += 1
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        response = web.StreamResponse(
            headers={"content-type": "text/event-stream", "cache-control": "no-cache"}
        )
        await response.prepare(request)
        for frame in _stream_frames(model, include_usage):
            await response.write(frame)
        await response.write_eof()
        return response

    async def models(_: web.Request) -> web.Response:
        return web.json_response(models_body())

    async def read_stats(_: web.Request) -> web.Response:
        return web.json_response(dict(stats))

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/stats", read_stats)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="fake OpenAI-compatible upstream")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    from aiohttp import web

    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    web.run_app(build_app(), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
