"""The one error type modelyard raises on purpose, and OpenAI's error body it leaves as.

Every package derives its errors from ``ModelyardError`` and says, as class attributes or
when raising, the HTTP status, code, OpenAI error type, param and headers; the app renders
them all with one handler (``serving/errors.py``). This module imports nothing of
modelyard, so any package may use it, and routers document their errors with
``error_responses`` without importing ``serving``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel

# OpenAI's error ``type`` for each status; any other status is a ``server_error``.
STATUS_TYPES = MappingProxyType(
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

_DESCRIPTIONS = MappingProxyType(
    {
        400: "The request is invalid: the error says which parameter and why.",
        401: "No valid API key: it is missing, unknown, revoked or expired.",
        403: "The API key's role may not do this.",
        404: "What the request names does not exist.",
        405: "The path does not take this method.",
        409: "The request conflicts with the current state.",
        413: "The request body is over the size limit.",
        429: "A rate limit or a budget is exhausted; `retry-after` says when to retry.",
        500: "The server failed.",
        502: "The upstream server answered with an error.",
        503: "The engine is not ready or its queue is full; retry later.",
        504: "The model did not answer in time.",
    }
)


def describe(status: int) -> str:
    """What an error status means here, for the OpenAPI document."""
    return _DESCRIPTIONS.get(status, "An error.")


def type_of(status: int) -> str:
    """OpenAI's error ``type`` of an HTTP status."""
    return STATUS_TYPES.get(status, "server_error")


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorBody(BaseModel):
    """OpenAI's error body: ``{"error": {message, type, param, code}}``."""

    error: ErrorDetail

    @classmethod
    def of(
        cls, message: str, type_: str, param: str | None = None, code: str | None = None
    ) -> dict[str, Any]:
        return cls(
            error=ErrorDetail(message=message, type=type_, param=param, code=code)
        ).model_dump()


class ModelyardError(Exception):
    """An error the API answers with as is: ``str()`` is the message for the user, the
    attributes say how it leaves. Subclasses set them as class attributes; a raise may
    override any of them with a keyword."""

    status: int = 500
    code: str | None = None
    error_type: str | None = None  # OpenAI's ``type``; None: the one of ``status``
    param: str | None = None
    headers: Mapping[str, str] = MappingProxyType({})

    def __init__(
        self,
        message: str = "",
        *,
        status: int | None = None,
        code: str | None = None,
        error_type: str | None = None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        if error_type is not None:
            self.error_type = error_type
        if param is not None:
            self.param = param
        if headers is not None:
            self.headers = dict(headers)

    @property
    def openai_type(self) -> str:
        return self.error_type or type_of(self.status)

    def body(self) -> dict[str, Any]:
        """The OpenAI error body of this error."""
        return ErrorBody.of(str(self), self.openai_type, self.param, self.code)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """FastAPI ``responses=`` entries documenting ``statuses`` with OpenAI's error body."""
    return {status: {"model": ErrorBody, "description": describe(status)} for status in statuses}
