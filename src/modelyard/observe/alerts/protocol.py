"""Wire types of alerts: rules over the request log, and the events they produce."""

from __future__ import annotations

import math
import operator
import re
from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    field_validator,
    model_validator,
)

from modelyard.wire import Integer

Metric = Literal[
    "error_rate",
    "client_error_rate",
    "p95_latency_ms",
    "p50_latency_ms",
    "p95_ttft_ms",
    "requests",
    "tokens",
    "cost",
    "energy_wh",
    "pii_detections",
    "injection_flags",
    "negative_feedback_rate",
    "drift",
    "rollout_aborts",
    "online_quality",
]
METRICS: tuple[str, ...] = get_args(Metric)
# Shares between 0 and 1: their thresholds are too.
SHARES = frozenset(
    {"error_rate", "client_error_rate", "negative_feedback_rate", "drift", "online_quality"}
)
Comparison = Literal[">", ">=", "<", "<="]
COMPARE = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
Severity = Literal["info", "warning", "critical"]
EventState = Literal["firing", "resolved"]

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"
NAME = re.compile(NAME_PATTERN)
ROUTE_PATTERN = r"\S"  # a route is not blank
_ROUTE = re.compile(ROUTE_PATTERN)
MAX_WINDOW_S = 30 * 86400
MAX_WEBHOOKS = 10
# An http(s) URL with a host, in printable ASCII (what the webhook client sends to).
WEBHOOK_PATTERN = r"^https?://[A-Za-z0-9._~-]+(:[0-9]{1,5})?([/?#][!-~]*)?$"
_WEBHOOK = re.compile(WEBHOOK_PATTERN)


class AlertRule(BaseModel):
    """A condition on one metric of the request log over a look-back window."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={  # _share_threshold, as the schema says it
            "if": {"properties": {"metric": {"enum": [*sorted(SHARES)]}}},
            "then": {"properties": {"threshold": {"maximum": 1}}},
        },
    )

    name: str = Field(
        min_length=1,
        max_length=128,
        description="Letters, digits and `. _ : -`; it names the rule in URLs and the CLI.",
        json_schema_extra={"pattern": NAME_PATTERN},
    )
    metric: Metric = Field(
        description="error_rate (share of 5xx), client_error_rate (share of 4xx), "
        "p50/p95_latency_ms, p95_ttft_ms, requests, tokens (prompt + completion), cost, "
        "energy_wh, pii_detections and injection_flags (requests with any), "
        "negative_feedback_rate (share of boolean feedback that is 0), drift (the latest "
        "drift report's share of drifted features), rollout_aborts (rollouts of the route "
        "aborted in the window), online_quality (the mean live-judge score on 0-1 of the "
        "answers judged in the window; alert on it with '<')."
    )
    route: str | None = Field(
        default=None,
        max_length=128,
        description="A public model name; none means all routes.",
        json_schema_extra={"pattern": ROUTE_PATTERN},
    )
    comparison: Comparison = ">"
    threshold: StrictFloat = Field(
        description="0 or more; shares are between 0 and 1 (0.05 is 5%).",
        json_schema_extra={"minimum": 0},
    )
    window_s: Integer = Field(
        default=300, ge=1, le=MAX_WINDOW_S, description="Look-back window in seconds."
    )
    for_s: Integer = Field(
        default=0,
        ge=0,
        le=MAX_WINDOW_S,
        description="How long the condition must hold before the rule fires.",
    )
    severity: Severity = "warning"
    webhooks: list[str] = Field(
        default_factory=list,
        max_length=MAX_WEBHOOKS,
        description="URLs that get a JSON POST on firing and resolving.",
        json_schema_extra={"items": {"type": "string", "pattern": WEBHOOK_PATTERN}},
    )
    min_requests: Integer = Field(
        default=1,
        ge=0,
        description="Windows with fewer samples (requests; feedback rows for "
        "negative_feedback_rate; drift reports for drift; judged answers for "
        "online_quality) neither fire nor stay firing.",
    )
    enabled: StrictBool = True

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.fullmatch(value):
            raise ValueError(
                f"'{value}' is not a rule name: use letters, digits and . _ : - "
                "(starting with a letter or digit)"
            )
        return value

    @field_validator("route")
    @classmethod
    def _route(cls, value: str | None) -> str | None:
        if value is not None and not _ROUTE.search(value):
            raise ValueError("route is a public model name; leave it out to watch every route")
        return value.strip() if value is not None else None

    @field_validator("threshold")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value) or value < 0:
            raise ValueError("threshold must be a finite number, 0 or more")
        return value

    @field_validator("webhooks")
    @classmethod
    def _webhooks(cls, value: list[str]) -> list[str]:
        if len(value) > MAX_WEBHOOKS:
            raise ValueError(f"at most {MAX_WEBHOOKS} webhooks per rule")
        for url in value:
            if not _WEBHOOK.fullmatch(url):
                raise ValueError(f"'{url}' is not an http(s) URL with a host")
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _share_threshold(self) -> AlertRule:
        if self.metric in SHARES and self.threshold > 1:
            raise ValueError(
                f"{self.metric} is a share between 0 and 1, so its threshold is too "
                f"(write 0.05 for 5%, not {self.threshold:g})"
            )
        return self

    def holds(self, value: float) -> bool:
        """Whether ``value`` meets the rule's condition."""
        return bool(COMPARE[self.comparison](value, self.threshold))


class AlertRuleOut(AlertRule):
    id: int
    created_at: datetime
    updated_at: datetime
    updated_by: str


class AlertRuleList(BaseModel):
    object: Literal["list"] = "list"
    data: list[AlertRuleOut]


class Delivery(BaseModel):
    """How one webhook POST of an event went."""

    url: str
    attempts: int
    ok: bool
    status: int | None = None
    error: str | None = None


class AlertEventOut(BaseModel):
    id: int
    rule_id: int
    rule: str
    state: EventState
    at: datetime
    value: float | None
    details: dict[str, Any]
    deliveries: list[Delivery]


class AlertEventList(BaseModel):
    object: Literal["list"] = "list"
    data: list[AlertEventOut]
