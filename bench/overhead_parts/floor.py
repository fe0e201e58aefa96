"""The floor: a bare pass-through (Starlette, an aiohttp client, a bearer check), so the
benchmark shows what any Python gateway costs before it does anything.

    python -m bench.overhead_parts.floor --port P --upstream http://127.0.0.1:U/v1 --key K
    (--client httpx: the same with httpx.AsyncClient, the client modelyard's upstream engine
    uses; a diagnostic, not one of the issue's targets)
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

UPSTREAM = os.environ.get("FLOOR_UPSTREAM", "http://127.0.0.1:8901/v1")
KEY = os.environ.get("FLOOR_KEY", "floor-key")
CONNECTIONS = 100  # as modelyard's upstream_max_connections
state: dict[str, Any] = {}


async def chat(request: Request) -> Response:
    if request.headers.get("authorization") != f"Bearer {KEY}":
        return JSONResponse({"error": {"message": "bad key"}}, status_code=401)
    body = await request.body()
    headers = {"content-type": "application/json"}
    upstream = await state["session"].post(
        f"{UPSTREAM}/chat/completions", data=body, headers=headers
    )
    if not json.loads(body).get("stream"):
        data = await upstream.read()
        upstream.release()
        return Response(data, upstream.status, media_type="application/json")

    async def relay() -> AsyncIterator[bytes]:
        try:
            async for chunk in upstream.content.iter_any():
                yield chunk
        finally:
            upstream.release()

    return StreamingResponse(relay(), upstream.status, media_type="text/event-stream")


@asynccontextmanager
async def lifespan(_: Starlette) -> AsyncIterator[None]:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    async with aiohttp.ClientSession(connector=connector) as session:
        state["session"] = session
        yield


async def chat_httpx(request: Request) -> Response:
    if request.headers.get("authorization") != f"Bearer {KEY}":
        return JSONResponse({"error": {"message": "bad key"}}, status_code=401)
    body = await request.body()
    client = state["client"]
    upstream_request = client.build_request(
        "POST",
        f"{UPSTREAM}/chat/completions",
        content=body,
        headers={"content-type": "application/json"},
    )
    upstream = await client.send(upstream_request, stream=True)
    if not json.loads(body).get("stream"):
        data = await upstream.aread()
        await upstream.aclose()
        return Response(data, upstream.status_code, media_type="application/json")

    async def relay() -> AsyncIterator[bytes]:
        try:
            async for chunk in upstream.aiter_raw():
                yield chunk
        finally:
            await upstream.aclose()

    return StreamingResponse(relay(), upstream.status_code, media_type="text/event-stream")


@asynccontextmanager
async def lifespan_httpx(_: Starlette) -> AsyncIterator[None]:
    import httpx

    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    async with httpx.AsyncClient(limits=limits, timeout=600) as client:
        state["client"] = client
        yield


async def healthz(_: Request) -> Response:
    return JSONResponse({"status": "ok"})


app = Starlette(
    routes=[Route("/v1/chat/completions", chat, methods=["POST"]), Route("/healthz", healthz)],
    lifespan=lifespan,
)
app_httpx = Starlette(
    routes=[
        Route("/v1/chat/completions", chat_httpx, methods=["POST"]),
        Route("/healthz", healthz),
    ],
    lifespan=lifespan_httpx,
)


def main() -> None:
    global UPSTREAM, KEY
    parser = argparse.ArgumentParser(
        description="bare pass-through to an OpenAI-compatible upstream"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="base URL ending in /v1")
    parser.add_argument("--key", required=True)
    parser.add_argument("--client", choices=["aiohttp", "httpx"], default="aiohttp")
    args = parser.parse_args()
    UPSTREAM, KEY = args.upstream.rstrip("/"), args.key
    import uvicorn

    served = app if args.client == "aiohttp" else app_httpx
    uvicorn.run(served, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
