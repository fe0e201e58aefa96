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

from collections.abc import Awaitable, Callable
from types import MappingProxyType
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import request_response
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
        self._guarded: dict[str, ASGIApp] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = HANDLERS.get(scope["path"]) if scope["type"] == "http" else None
        if handler is None or scope["method"] != "POST":
            await self.app(scope, receive, send)  # everything else, 405s included
            return
        guarded = self._guarded.get(scope["path"])
        if guarded is None:
            guarded = self._guarded[scope["path"]] = _with_handlers(scope, handler)
        await guarded(scope, receive, send)


def _with_handlers(scope: Scope, handler: Handler) -> ASGIApp:
    """``handler`` behind the app's exception handlers, wrapped as Starlette wraps a route
    (``request_response`` inside the ``ExceptionMiddleware`` FastAPI builds): the same
    lookup (status-code handlers, nearest class, sync handlers on a thread) and the same
    request, so an error renders alike on both paths. Errors without a handler reach the
    server-error middleware outside, which answers 500, as there."""
    handlers = {
        key: value
        for key, value in scope["app"].exception_handlers.items()
        if key not in (500, Exception)  # those belong to the server-error middleware
    }
    return ExceptionMiddleware(request_response(handler), handlers=handlers)
