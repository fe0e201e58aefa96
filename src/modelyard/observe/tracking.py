"""Pure-ASGI middleware around every HTTP request: its id, the time modelyard spent
outside the engine, requests in flight, and the request-log row of an inference request
that passed authentication but ended before a handler logged it (a 400 from validation,
a 403 for the key's role), so every such request is logged exactly once.

What the middleware and the handlers share about one request is one typed object,
``RequestState``, in the ASGI scope's state (``tracked_of(request)``); the guard keeps
the authenticated principal there too (``request.state.principal``).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelyard.observe.accounting import Outcome

REQUEST_ID_HEADER = "x-modelyard-request-id"
OVERHEAD_HEADER = "x-modelyard-overhead-ms"
_REQUEST_ID, _OVERHEAD = REQUEST_ID_HEADER.encode(), OVERHEAD_HEADER.encode()
_OWN_HEADERS = (_REQUEST_ID, _OVERHEAD)
# Inference endpoints: path -> the endpoint name the request log uses.
LOGGED_PATHS = MappingProxyType(
    {
        "/v1/chat/completions": "chat.completions",
        "/v1/completions": "completions",
        "/v1/responses": "responses",
        "/v1/embeddings": "embeddings",
    }
)


def new_request_id() -> str:
    """96 random bits. Ids name requests, they are not secrets (feedback checks the key
    that made the request), so they come from the fast PRNG rather than the OS's CSPRNG,
    whose system call per id showed in the request path's profile."""
    return f"req_{random.getrandbits(96):024x}"


@dataclass
class RequestState:
    """One HTTP request as the middleware and the handlers see it."""

    id: str
    started: float  # perf counter at arrival
    engine_s: float = 0.0  # the engine's time so far (set before the response starts)
    route: str | None = None  # the route the request named, once known
    error_code: str | None = None  # why it ended early, when a handler did not log it
    routed_headers: dict[str, str] = field(default_factory=dict)  # where it was routed
    logged: bool = False  # its request-log row is queued (exactly once)
    metered: bool = False  # the energy meter follows it (until its row is logged)

    def overhead_ms(self) -> float:
        return max((time.perf_counter() - self.started - self.engine_s) * 1000, 0.0)


def tracked_of(request: Request) -> RequestState:
    tracked: RequestState = request.state.tracked
    return tracked


class RequestTracking:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        tracked = RequestState(new_request_id(), time.perf_counter())
        state["tracked"] = tracked
        status = 500

        async def tracked_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": _headers(tracked, message)}
            await send(message)

        services = getattr(scope["app"].state, "services", None)
        if services is not None:
            services.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, tracked_send)
        finally:
            if services is not None:
                services.metrics.in_flight.dec()
                _log_unserved(services, tracked, state, scope["path"], status)


def _headers(tracked: RequestState, message: Message) -> list[tuple[bytes, bytes]]:
    """The response's headers with the request id, the overhead and, on error responses
    too, where the request was routed."""
    headers = [(k, v) for k, v in message.get("headers", ()) if k not in _OWN_HEADERS]
    if tracked.routed_headers:
        present = {name for name, _ in headers}
        for name, value in tracked.routed_headers.items():
            if name.encode() not in present:
                headers.append((name.encode(), value.encode()))
    headers.append((_REQUEST_ID, tracked.id.encode()))
    headers.append((_OVERHEAD, b"%.2f" % tracked.overhead_ms()))
    return headers


def _log_unserved(
    services: Any, tracked: RequestState, state: dict[str, Any], path: str, status: int
) -> None:
    """The row of an authenticated inference request no handler logged; the meter stops
    following any request that ended without its row (a handler failed unexpectedly)."""
    endpoint = LOGGED_PATHS.get(path)
    principal = state.get("principal")
    if endpoint is None or principal is None or tracked.logged:
        if tracked.metered:
            services.meter.finish(tracked.id)
        return
    tracked.logged = True
    services.accounting.record(
        Outcome(
            id=tracked.id,
            at=datetime.now(UTC),
            key_id=principal.key_id,
            endpoint=endpoint,
            route=tracked.route or "-",
            status=status,
            error_code=tracked.error_code,
            latency_s=time.perf_counter() - tracked.started,
            metered=tracked.metered,
            counted="unserved",
        )
    )
