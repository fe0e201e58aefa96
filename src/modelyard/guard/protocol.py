"""Wire types of the guard's JSON API: keys, route policies, usage, audit events."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    field_validator,
)

from modelyard.guard.injection import InjectionPolicy
from modelyard.guard.pii import ENTITIES, PiiPolicy
from modelyard.guard.roles import Role
from modelyard.wire import JSON_INTEGER, IsoDateTime

KeyStatus = Literal["active", "revoked", "expired"]
ROUTE_PATTERN = r"\S"  # a route pattern is not blank
_ROUTE = re.compile(ROUTE_PATTERN)
# A known PII entity type in any case ("cn_mobile" is CN_MOBILE), letter by letter so that
# the document states it (JSON Schema has no case-insensitive flag).
ENTITY_PATTERN = (
    "^(?:"
    + "|".join(
        "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else re.escape(c) for c in entity)
        for entity in sorted(ENTITIES)
    )
    + ")$"
)
_ENTITY = re.compile(ENTITY_PATTERN)


class KeyLimits(BaseModel):
    """Rate limits and budgets of one key; empty means unlimited."""

    model_config = ConfigDict(extra="forbid")

    requests_per_minute: Annotated[int, Field(ge=1), JSON_INTEGER] | None = None
    tokens_per_minute: Annotated[int, Field(ge=1), JSON_INTEGER] | None = None
    daily_tokens: Annotated[int, Field(ge=0), JSON_INTEGER] | None = None
    monthly_tokens: Annotated[int, Field(ge=0), JSON_INTEGER] | None = None
    daily_cost: StrictFloat | None = Field(default=None, ge=0)
    monthly_cost: StrictFloat | None = Field(default=None, ge=0)


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128)
    role: Role = Role.developer
    allowed_routes: list[str] = Field(
        default_factory=lambda: ["*"],
        description="Route (public model name) patterns this key may call; `*` matches any.",
        json_schema_extra={"items": {"type": "string", "pattern": ROUTE_PATTERN}},
    )
    expires_at: IsoDateTime | None = None
    limits: KeyLimits = Field(default_factory=KeyLimits)

    @field_validator("allowed_routes")
    @classmethod
    def _routes(cls, value: list[str]) -> list[str]:
        if any(not _ROUTE.search(route) for route in value):
            raise ValueError("route patterns must not be empty")
        return value

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("expires_at needs a timezone (e.g. 2027-01-01T00:00:00Z)")
        return value


class KeyUpdate(BaseModel):
    """Fields of a key an admin may change in place (the secret changes by rotation)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=128)
    allowed_routes: list[str] | None = None
    expires_at: datetime | None = None
    limits: KeyLimits | None = None


class KeyOut(BaseModel):
    id: str
    name: str
    role: Role
    prefix: str = Field(description="The visible start of the secret: `my_<id>_`.")
    allowed_routes: list[str]
    expires_at: datetime | None
    limits: KeyLimits
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    previous_valid_until: datetime | None = Field(
        description="While a rotation's grace period lasts, the old secret works until then."
    )
    status: KeyStatus


class KeyCreated(KeyOut):
    secret: str = Field(description="The key itself. It is shown once and never stored.")


class KeyRotate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grace_seconds: int = Field(default=3600, ge=0, le=30 * 86400)


class KeyList(BaseModel):
    object: Literal["list"] = "list"
    data: list[KeyOut]


class RoutePolicy(BaseModel):
    """How the guard treats one route (a public model name, or `*` for all others)."""

    model_config = ConfigDict(extra="forbid")

    pii: PiiPolicy = "detect"
    pii_restore: StrictBool = Field(
        default=True, description="With `redact`, put the originals back into the response."
    )
    pii_entities: list[str] | None = Field(
        default=None,
        description=f"Entity types to look for, in any case ({', '.join(sorted(ENTITIES))}); "
        "empty means all.",
        json_schema_extra={"items": {"type": "string", "pattern": ENTITY_PATTERN}},
    )
    injection: InjectionPolicy = "flag"
    requests_per_minute: Annotated[int, Field(ge=1), JSON_INTEGER] | None = None
    tokens_per_minute: Annotated[int, Field(ge=1), JSON_INTEGER] | None = None

    @field_validator("pii_entities")
    @classmethod
    def _known_entities(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        unknown = sorted({entity.upper() for entity in value if not _ENTITY.fullmatch(entity)})
        if unknown:
            raise ValueError(
                f"unknown PII type(s) {', '.join(unknown)}; known: {', '.join(sorted(ENTITIES))}"
            )
        return [entity.upper() for entity in value] or None


class RoutePolicyOut(RoutePolicy):
    route: str
    updated_at: datetime | None
    updated_by: str | None


class RoutePolicyList(BaseModel):
    object: Literal["list"] = "list"
    data: list[RoutePolicyOut]


class UsageRow(BaseModel):
    key_id: str
    route: str
    day: str
    requests: int
    errors: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost: float


class UsageList(BaseModel):
    object: Literal["list"] = "list"
    data: list[UsageRow]


class AuditEvent(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class AuditList(BaseModel):
    object: Literal["list"] = "list"
    data: list[AuditEvent]


class LoginForm(BaseModel):
    key: str
