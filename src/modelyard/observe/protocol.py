"""Wire types of the request log API."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from modelyard.wire import Number

FeedbackSource = Literal["human", "judge", "code"]


class LoggedRequest(BaseModel):
    """A request-log row's columns: what the writer stores and the API shows (the one
    place they are spelled)."""

    model_config = ConfigDict(frozen=True)

    id: str
    at: datetime
    key_id: str
    endpoint: str
    route: str
    version: str | None
    status: int
    error_code: str | None
    latency_ms: float
    ttft_ms: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    streamed: bool = False
    pii: dict[str, int] = Field(default_factory=dict)
    injection: list[str] = Field(default_factory=list)
    overhead_ms: float | None = None
    energy_wh: float = 0.0
    carbon_g: float = 0.0
    user: str | None = None
    variant: str | None = None  # the traffic variant served (stable, candidate, shadow, ...)
    fallback_from: str | None = None  # the version that failed before a fallback answered
    finish_reason: str | None = None  # how the answer ended: stop, length, tool_calls, ...
    response_format: str | None = None  # the format asked: text, json_object, json_schema
    schema_name: str | None = None  # a json_schema format's name
    tool_calls: int = 0  # the tool calls the model made (their arguments: in the content)
    tool_names: list[str] = Field(default_factory=list)  # the functions called, in order
    # Why an answer to a JSON format is not what was asked: invalid_json, schema_mismatch.
    format_error: str | None = None
    cache_hit: bool = False  # answered by the route's response cache, not an engine


LOGGED_COLUMNS = tuple(LoggedRequest.model_fields)


class RequestOut(LoggedRequest):
    has_content: bool
    language: str | None = Field(
        default=None,
        description="The prompt's language, an ISO 639 code (`und`: letters of no language "
        "told; empty: no letters); rows logged before languages were identified hold the "
        "writing system (`latin`, `cyrillic`, ...).",
    )


MAX_CATEGORY = 128


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(min_length=1, max_length=64)
    name: str = Field(
        min_length=1, max_length=64, description="What is judged: `thumbs`, `correct`…"
    )
    value: bool | float | str = Field(
        description=f"A boolean, a number, or a category (1 to {MAX_CATEGORY} characters).",
        # minLength and maxLength apply to the category alone (JSON Schema: to strings)
        json_schema_extra={"minLength": 1, "maxLength": MAX_CATEGORY},
    )
    comment: str = Field(default="", max_length=4000)
    source: FeedbackSource = "human"

    @field_validator("value")
    @classmethod
    def _short_category(cls, value: bool | float | str) -> bool | float | str:
        if isinstance(value, str) and not 0 < len(value) <= MAX_CATEGORY:
            raise ValueError(f"a category is 1 to {MAX_CATEGORY} characters")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("a number must be finite")
        return value


class FeedbackOut(BaseModel):
    id: int
    request_id: str
    key_id: str
    name: str
    value: bool | float | str | None
    comment: str
    source: FeedbackSource
    at: datetime


class RequestDetail(RequestOut):
    content: dict[str, Any] | None
    content_error: str | None = None
    feedback: list[FeedbackOut] = Field(default_factory=list)


class RequestList(BaseModel):
    object: Literal["list"] = "list"
    data: list[RequestOut]


class SeriesPoint(BaseModel):
    at: datetime
    version: str
    requests: int
    per_second: float
    errors: int
    client_errors: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    ttft_p50_ms: float | None
    ttft_p95_ms: float | None
    prompt_tokens: int
    completion_tokens: int
    cost: float
    energy_wh: float
    carbon_g: float


class Stats(BaseModel):
    route: str | None
    since: datetime
    until: datetime
    bucket_s: int
    truncated: bool = Field(description="The window held more rows than were read.")
    points: list[SeriesPoint]


class DriftRun(BaseModel):
    """Which windows a drift report compares (and, for a manual run, which route)."""

    model_config = ConfigDict(extra="forbid")

    route: str | None = Field(default=None, description="One route; empty: every active route.")
    current_hours: Number = Field(default=24.0, gt=0, le=24 * 90)
    reference_days: Number = Field(default=7.0, gt=0, le=365)


class DriftReportOut(BaseModel):
    id: int
    at: datetime
    route: str
    reference_from: datetime
    reference_to: datetime
    current_from: datetime
    current_to: datetime
    drifted: bool
    share_drifted: float
    report: dict[str, Any]


class DriftReportList(BaseModel):
    object: Literal["list"] = "list"
    data: list[DriftReportOut]
