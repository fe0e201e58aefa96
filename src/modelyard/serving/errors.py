"""Every error leaves as OpenAI's body ``{"error": {message, type, param, code}}``.

Whatever modelyard raises on purpose is a ``ModelyardError`` and carries its own status,
code, type, param and headers: one handler renders them all. The framework's errors (an
invalid request, an unknown path or method) and the console's login redirect are the only
others mapped here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from modelyard.errors import ErrorBody, ModelyardError, describe, type_of
from modelyard.guard.auth import LoginRequired
from modelyard.observe.tracking import tracked_of
from modelyard.routing import route_of

# FastAPI's schemas of its 422 body, which no response here has.
_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


class APIError(ModelyardError):
    """An error serving raises itself, with the status given where it is raised."""

    error_type: str

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        error_type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        resolved = error_type or type_of(status)
        super().__init__(
            message, status=status, code=code, param=param, error_type=resolved, headers=headers
        )


def error_response(error: ModelyardError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=dict(error.headers))


def _validation_message(error: dict[str, Any]) -> tuple[str, str | None]:
    loc = [str(part) for part in error.get("loc", ()) if part != "body"]
    param = ".".join(loc) or None
    if error.get("type") == "json_invalid":
        return "We could not parse the JSON body of your request: it is not valid JSON.", None
    if error.get("type") == "missing":
        return f"Missing required parameter: '{param}'.", param
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    where = f"'{param}'" if param else "the request body"
    return f"Invalid value for {where}: {message}", param


async def _route_of_body(request: Request) -> str | None:
    """The route an invalid request named, for its request-log row (if it named one)."""
    try:
        body = json.loads(await request.body())
    except ValueError:
        return None
    model = body.get("model") if isinstance(body, dict) else None
    return route_of(model) if isinstance(model, str) and model else None


async def _modelyard(_request: Request, error: ModelyardError) -> JSONResponse:
    return error_response(error)


async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
    tracked = tracked_of(request)
    tracked.route = await _route_of_body(request)
    tracked.error_code = "invalid_request"
    errors = error.errors()
    message, param = _validation_message(errors[0]) if errors else ("Invalid request.", None)
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return error_response(APIError(400, message, param=param, code="invalid_request"))


async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
    message = str(error.detail) if error.detail else "error"
    if error.status_code == 404 and message == "Not Found":
        message = "Unknown path: see /docs for the routes modelyard serves."
    headers = dict(error.headers or {})
    allowed = _documented_methods(request) if error.status_code == 405 else ""
    if allowed:
        headers = {k: v for k, v in headers.items() if k.lower() != "allow"} | {"allow": allowed}
    return error_response(APIError(error.status_code, message, headers=headers))


def _documented_methods(request: Request) -> str:
    """Every method the OpenAPI document lists for the request's path: Starlette's
    ``Allow`` names only the first route on the path, and a path may have several (one
    per method). Empty for paths the document leaves out (console pages)."""
    path = request.url.path
    paths: dict[str, dict[str, Any]] = request.app.openapi().get("paths", {})
    if path in paths:  # a literal path wins over templates it also matches
        return ", ".join(sorted(method.upper() for method in paths[path]))
    methods: set[str] = set()
    for template, operations in paths.items():
        if re.fullmatch(re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template)), path):
            methods |= {method.upper() for method in operations}
    return ", ".join(sorted(methods))


async def _login(request: Request, _error: LoginRequired) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/ui/login?{urlencode({'next': target})}", status_code=303)


def _error_entry(status: int) -> dict[str, Any]:
    """An OpenAPI response with OpenAI's error body (its schema is among the components:
    every protected router documents its 401 with it)."""
    schema = {"$ref": f"#/components/schemas/{ErrorBody.__name__}"}
    return {"description": describe(status), "content": {"application/json": {"schema": schema}}}


def _as_answered(document: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    """``document`` with the errors every operation shares as they are answered here: an
    invalid request is a 400 with OpenAI's body (FastAPI lists a 422 for every operation
    with parameters, which never occurs), and a body over the limit is a 413."""

    def openapi() -> dict[str, Any]:
        schema = document()  # FastAPI's, built once and cached on the app
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                responses = operation.setdefault("responses", {})
                if responses.pop("422", None) is not None:
                    responses.setdefault("400", _error_entry(400))
                if "requestBody" in operation:
                    responses.setdefault("413", _error_entry(413))
        for name in _VALIDATION_SCHEMAS:
            schema.get("components", {}).get("schemas", {}).pop(name, None)
        return schema

    return openapi


def install(app: FastAPI) -> None:
    """Map every exception modelyard raises on purpose to an OpenAI-shaped response once,
    and document the errors as they are answered."""
    app.exception_handler(ModelyardError)(_modelyard)
    app.exception_handler(LoginRequired)(_login)  # a console page: to the login form
    app.exception_handler(RequestValidationError)(_invalid)
    app.exception_handler(StarletteHTTPException)(_http)
    # FastAPI's documented way to change the document is to replace this method.
    app.openapi = _as_answered(app.openapi)  # type: ignore[method-assign]
