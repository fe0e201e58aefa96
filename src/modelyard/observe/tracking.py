"""Pure-ASGI middleware around every HTTP request: its id, the time modelyard spent
outside the engine, requests in flight, and the request-log row of an inference request
that passed authentication but ended before a handler logged it (a 400 from validation,
a 403 for the key's role), so every such request is logged exactly once.

State shared with the handlers lives in the ASGI scope's ``state`` (``request.state``):
``request_id``, ``started`` (perf counter), ``engine_s`` (engine time so far, set by the
handler before it responds), ``principal`` (set by authentication), ``logged``.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelyard.observe.requestlog import RequestRecord

REQUEST_ID_HEADER = "x-modelyard-request-id"
OVERHEAD_HEADER = "x-modelyard-overhead-ms"
# Inference endpoints: path -> the endpoint name the request log uses.
LOGGED_PATHS = MappingProxyType(
    {
        "/v1/chat/completions": "chat.completions",
        "/v1/completions": "completions",
        "/v1/embeddings": "embeddings",
    }
)


def new_request_id() -> str:
    """96 random bits. Ids name requests, they are not secrets (feedback checks the key
    that made the request), so they come from the fast PRNG rather than the OS's CSPRNG,
    whose system call per id showed in the request path's profile."""
    return f"req_{random.getrandbits(96):024x}"


class RequestTracking:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id = new_request_id()
        state["started"] = started = time.perf_counter()
        state["engine_s"] = 0.0
        status = 500
        services = getattr(scope["app"].state, "services", None)
        metrics = services.metrics if services is not None else None

        async def tracked(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                overhead = (time.perf_counter() - started - state["engine_s"]) * 1000
                headers = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name not in (b"x-modelyard-request-id", b"x-modelyard-overhead-ms")
                ]
                present = {name for name, _ in headers}
                # Where the request was routed, on error responses too (set by serving).
                for name, value in state.get("routed_headers", {}).items():
                    if name.encode() not in present:
                        headers.append((name.encode(), value.encode()))
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                headers.append((OVERHEAD_HEADER.encode(), f"{max(overhead, 0.0):.2f}".encode()))
                message = {**message, "headers": headers}
            await send(message)

        if metrics is not None:
            metrics.in_flight.inc()
        try:
            await self.app(scope, receive, tracked)
        finally:
            if metrics is not None:
                metrics.in_flight.dec()
            if state.get("metered") and services is not None:
                services.meter.finish(request_id)  # a handler that failed unexpectedly
            endpoint = LOGGED_PATHS.get(scope["path"])
            if endpoint and services is not None and not state.get("logged"):
                principal = state.get("principal")
                if principal is not None:
                    state["logged"] = True
                    route = str(state.get("route") or "-")
                    services.metrics.unserved(route, status)
                    services.request_log.submit(
                        RequestRecord(
                            id=request_id,
                            at=datetime.now(UTC),
                            key_id=principal.key_id,
                            endpoint=endpoint,
                            route=route,
                            version=None,
                            status=status,
                            error_code=state.get("error_code"),
                            latency_ms=(time.perf_counter() - started) * 1000,
                        )
                    )
