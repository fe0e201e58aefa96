"""The hot inference endpoints served as plain ASGI, around FastAPI's router.

``POST /v1/chat/completions`` and ``POST /v1/completions`` carry nearly all of a
gateway's traffic. Through FastAPI each request also paid for the router's matching,
its exception and exit-stack middlewares, dependency solving and a JSON parse followed by
a separate validation: 16 % of the server's CPU at 50 clients (issue 8's profile). This
middleware, the innermost of modelyard's own, answers those two paths itself with the
same steps FastAPI would take (``authorize`` as the routes' ``requires`` does, the body
validated straight from its bytes by pydantic, the same ``_serve``) and renders every
exception through the app's own exception handlers, looked up as Starlette looks them up
for a route, so responses and errors are the same. The FastAPI routes stay declared: they
are the OpenAPI document's entries, and what answers when this middleware is not installed
(a test compares the two).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from types import MappingProxyType
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from modelyard.guard.auth import authorize
from modelyard.guard.roles import Access
from modelyard.serving.protocol import ChatCompletionRequest, CompletionRequest
from modelyard.serving.routes import serve_chat, serve_completion

INFER = frozenset({Access.infer})
Handler = Callable[[Request], Awaitable[Response]]


def _endpoint(
    body: type[ChatCompletionRequest] | type[CompletionRequest],
    serve: Callable[[Any, Request], Awaitable[Response]],
) -> Handler:
    """The handler of one endpoint: authorize, validate the body as ``body``, ``serve``."""

    async def handle(request: Request) -> Response:
        authorize(request, INFER)
        raw = await request.body()
        try:
            parsed = body.model_validate_json(raw)
        except ValidationError as error:
            raise RequestValidationError(error.errors(include_url=False)) from None
        return await serve(parsed, request)

    return handle


HANDLERS: MappingProxyType[str, Handler] = MappingProxyType(
    {
        "/v1/chat/completions": _endpoint(ChatCompletionRequest, serve_chat),
        "/v1/completions": _endpoint(CompletionRequest, serve_completion),
    }
)


class OpenAIFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._handlers: tuple[dict[Any, Any], dict[int, Any]] | None = None
        self._caught: tuple[type[Exception], ...] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = HANDLERS.get(scope["path"]) if scope["type"] == "http" else None
        if handler is None or scope["method"] != "POST":
            await self.app(scope, receive, send)  # everything else, 405s included
            return
        request = Request(scope, receive, send)
        caught = self._caught or self._handled(scope)
        try:
            response = await handler(request)
        except caught as error:
            response = await self._rendered(scope, request, error)
        await response(scope, receive, send)

    async def _rendered(self, scope: Scope, request: Request, error: Exception) -> Response:
        """The response of the app's own handler for ``error``, looked up as Starlette's
        ``ExceptionMiddleware`` looks it up for a route: a status-code handler for an
        HTTP exception, else the handler of the nearest class; a sync handler runs on a
        thread. Without one the error goes on to the server-error middleware outside
        (500), as there. Only a failing request pays for the lookup."""
        by_class, by_status = self._handlers_of(scope)
        found = by_status.get(error.status_code) if isinstance(error, HTTPException) else None
        if found is None:
            found = next((by_class[c] for c in type(error).__mro__ if c in by_class), None)
        if found is None:
            raise error  # not reached: only handled exceptions are caught
        if inspect.iscoroutinefunction(found):
            response: Response = await found(request, error)
        else:
            response = await run_in_threadpool(found, request, error)
        return response

    def _handled(self, scope: Scope) -> tuple[type[Exception], ...]:
        """The exceptions the app has a handler for (the rest reach the server-error
        middleware outside, which answers 500)."""
        by_class, by_status = self._handlers_of(scope)
        classes = [k for k in by_class if issubclass(k, Exception)]
        if by_status:
            classes.append(HTTPException)
        self._caught = tuple(classes)
        return self._caught

    def _handlers_of(self, scope: Scope) -> tuple[dict[Any, Any], dict[int, Any]]:
        if self._handlers is None:
            handlers = scope["app"].exception_handlers
            self._handlers = (
                {k: v for k, v in handlers.items() if isinstance(k, type) and k is not Exception},
                {k: v for k, v in handlers.items() if isinstance(k, int) and k != 500},
            )
        return self._handlers
