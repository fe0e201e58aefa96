"""Wire types of the request log API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel


class RequestOut(BaseModel):
    id: str
    at: datetime
    key_id: str
    endpoint: str
    route: str
    version: str | None
    status: int
    error_code: str | None
    latency_ms: float
    ttft_ms: float | None
    prompt_tokens: int
    completion_tokens: int
    cost: float
    streamed: bool
    pii: dict[str, int]
    injection: list[str]
    has_content: bool


class RequestDetail(RequestOut):
    content: dict[str, Any] | None
    content_error: str | None = None


class RequestList(BaseModel):
    object: Literal["list"] = "list"
    data: list[RequestOut]
