"""Every error leaves as OpenAI's body ``{"error": {message, type, param, code}}``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from modelyard.engines import EngineError
from modelyard.evaluate.compare import NotComparable
from modelyard.evaluate.datasets import DatasetNotFound, InvalidDataset
from modelyard.evaluate.runs import RunNotFound
from modelyard.guard.auth import Forbidden, LoginRequired
from modelyard.guard.errors import GuardError
from modelyard.guard.gate import Refusal
from modelyard.guard.keyring import AuthenticationFailed
from modelyard.observe.alerts import AlertError
from modelyard.observe.drift_jobs import DriftReportNotFound, NotEnoughData
from modelyard.observe.feedback import FeedbackRefused
from modelyard.observe.queries import RequestNotFound
from modelyard.registry import (
    AliasNotFound,
    InvalidRegistration,
    ModelNotFound,
    RegistryError,
    VersionNotFound,
)
from modelyard.release.errors import ReleaseError
from modelyard.routing import ModelNotRoutable, route_of
from modelyard.routing.policies import PolicyRefused
from modelyard.serving.protocol import ErrorBody

_STATUS_TYPES = MappingProxyType(
    {
        400: "invalid_request_error",
        401: "authentication_error",
        403: "permission_error",
        404: "not_found_error",
        405: "invalid_request_error",
        409: "invalid_request_error",
        413: "invalid_request_error",
        429: "rate_limit_error",
        504: "timeout",
    }
)


class APIError(Exception):
    """An error the API returns as is."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        error_type: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.error_type = error_type or _STATUS_TYPES.get(status, "server_error")


def error_response(error: APIError, headers: Mapping[str, str] | None = None) -> JSONResponse:
    body = ErrorBody.of(error.message, error.error_type, error.param, error.code)
    return JSONResponse(body, status_code=error.status, headers=headers)


def engine_api_error(error: EngineError) -> APIError:
    return APIError(error.status, str(error), code=error.code, error_type=error.error_type)


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


def install(app: FastAPI) -> None:
    """Map every exception modelyard raises on purpose to an OpenAI-shaped response once."""

    @app.exception_handler(APIError)
    async def _api(_request: Request, error: APIError) -> JSONResponse:
        return error_response(error)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        request.state.route = await _route_of_body(request)
        request.state.error_code = "invalid_request"
        errors = error.errors()
        message, param = _validation_message(errors[0]) if errors else ("Invalid request.", None)
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
        return error_response(APIError(400, message, param=param, code="invalid_request"))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, error: StarletteHTTPException) -> JSONResponse:
        message = str(error.detail) if error.detail else "error"
        if error.status_code == 404 and message == "Not Found":
            message = "Unknown path: see /docs for the routes modelyard serves."
        return error_response(APIError(error.status_code, message), headers=error.headers)

    @app.exception_handler(ModelNotRoutable)
    async def _unknown_model(_request: Request, error: ModelNotRoutable) -> JSONResponse:
        return error_response(APIError(404, str(error), code="model_not_found", param="model"))

    @app.exception_handler(EngineError)
    async def _engine(_request: Request, error: EngineError) -> JSONResponse:
        headers = None
        if error.retry_after_s is not None:
            headers = {"retry-after": str(error.retry_after_s)}
        return error_response(engine_api_error(error), headers=headers)

    @app.exception_handler(Refusal)
    async def _refused(_request: Request, error: Refusal) -> JSONResponse:
        api = APIError(
            error.status,
            error.message,
            code=error.code,
            param=error.param,
            error_type=error.error_type,
        )
        return error_response(api, headers=error.headers)

    @app.exception_handler(AuthenticationFailed)
    async def _unauthenticated(_request: Request, error: AuthenticationFailed) -> JSONResponse:
        return error_response(
            APIError(401, str(error), code=error.code),
            headers={"www-authenticate": 'Bearer realm="modelyard"'},
        )

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, _error: LoginRequired) -> RedirectResponse:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/ui/login?{urlencode({'next': target})}", status_code=303)

    @app.exception_handler(Forbidden)
    async def _forbidden(_request: Request, error: Forbidden) -> JSONResponse:
        return error_response(APIError(403, str(error), code="permission_denied"))

    @app.exception_handler(GuardError)
    async def _guard(_request: Request, error: GuardError) -> JSONResponse:
        return error_response(APIError(error.status, str(error), code=error.code))

    @app.exception_handler(DatasetNotFound)
    async def _no_dataset(_request: Request, error: DatasetNotFound) -> JSONResponse:
        return error_response(APIError(404, str(error), code="dataset_not_found"))

    @app.exception_handler(InvalidDataset)
    async def _invalid_dataset(_request: Request, error: InvalidDataset) -> JSONResponse:
        return error_response(APIError(400, str(error), code="invalid_dataset"))

    @app.exception_handler(RunNotFound)
    async def _no_run(_request: Request, error: RunNotFound) -> JSONResponse:
        return error_response(APIError(404, str(error), code="not_found"))

    @app.exception_handler(NotComparable)
    async def _not_comparable(_request: Request, error: NotComparable) -> JSONResponse:
        return error_response(APIError(400, str(error), code="not_comparable"))

    @app.exception_handler(AlertError)
    async def _alert(_request: Request, error: AlertError) -> JSONResponse:
        return error_response(APIError(error.status, str(error), code=error.code))

    @app.exception_handler(NotEnoughData)
    async def _no_data(_request: Request, error: NotEnoughData) -> JSONResponse:
        return error_response(APIError(400, str(error), code="not_enough_data"))

    @app.exception_handler(DriftReportNotFound)
    async def _no_report(_request: Request, error: DriftReportNotFound) -> JSONResponse:
        return error_response(APIError(404, str(error), code="not_found"))

    @app.exception_handler(FeedbackRefused)
    async def _feedback_refused(_request: Request, error: FeedbackRefused) -> JSONResponse:
        return error_response(
            APIError(404, str(error), code="request_not_found", param="request_id")
        )

    @app.exception_handler(RequestNotFound)
    async def _no_request(_request: Request, error: RequestNotFound) -> JSONResponse:
        return error_response(APIError(404, str(error), code="request_not_found"))

    @app.exception_handler(ReleaseError)
    async def _release(_request: Request, error: ReleaseError) -> JSONResponse:
        return error_response(APIError(error.status, str(error), code=error.code))

    @app.exception_handler(PolicyRefused)
    async def _policy(_request: Request, error: PolicyRefused) -> JSONResponse:
        return error_response(APIError(error.status, str(error), code=error.code))

    @app.exception_handler(RegistryError)
    async def _registry(_request: Request, error: RegistryError) -> JSONResponse:
        not_found = (ModelNotFound, VersionNotFound, AliasNotFound)
        status = 404 if isinstance(error, not_found) else 400
        code = "not_found" if status == 404 else "invalid_registration"
        if not isinstance(error, (*not_found, InvalidRegistration)):
            status, code = 409, "conflict"
        return error_response(APIError(status, str(error), code=code))
