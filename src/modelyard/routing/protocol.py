"""Wire types of routing: the traffic policy of a route, and what the API shows of it."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.config import JsonDict

from modelyard.wire import Number

VARIANT_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"
RESERVED_VARIANTS = frozenset({"shadow", "fallback"})
# What the document says of a variant's name: the pattern, and not a reserved one.
_NOT_RESERVED: JsonDict = {"not": {"enum": [*sorted(RESERVED_VARIANTS)]}}


class Candidate(BaseModel):
    """A version that takes ``weight`` percent of the route's traffic."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="candidate", pattern=VARIANT_PATTERN, json_schema_extra=_NOT_RESERVED)
    version: int = Field(ge=1, le=2**31 - 1)
    weight: Number = Field(ge=0, le=100, description="Percent of the route's requests.")


class Shadow(BaseModel):
    """A version that gets a copy of ``share`` percent of requests; its answers are logged
    (variant ``shadow``), never returned."""

    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, le=2**31 - 1)
    share: Number = Field(gt=0, le=100, description="Percent of requests mirrored.")


class FallbackTarget(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        min_length=1, max_length=200, description="A public name: 'm', 'm:alias' or 'm@n'."
    )
    timeout_s: Number | None = Field(
        default=None, gt=0, le=3600, description="Time allowed to its first token."
    )


class BreakerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    failures: int = Field(default=5, ge=1, le=10_000, description="Consecutive failures to open.")
    cooldown_s: Number = Field(
        default=30.0, gt=0, le=86_400, description="Open time before a probe."
    )


class _PolicyFields(BaseModel):
    """How a route's requests are split among versions, mirrored and failed over."""

    model_config = ConfigDict(extra="forbid")

    stable_alias: str = Field(default="production", min_length=1, max_length=64)
    stable_variant: str = Field(
        default="stable", pattern=VARIANT_PATTERN, json_schema_extra=_NOT_RESERVED
    )
    candidates: list[Candidate] = Field(default_factory=list, max_length=16)
    sticky_header: str = Field(
        default="x-modelyard-user",
        pattern=r"^[a-z0-9-]{1,64}$",
        description="Request header naming the end user when the body's 'user' is absent.",
    )
    salt: str = Field(default="", max_length=64, description="Assignment salt (new per rollout).")
    shadows: list[Shadow] = Field(default_factory=list, max_length=8)
    timeout_s: Number | None = Field(
        default=None,
        gt=0,
        le=3600,
        description="The primary's time to first token, when a fallback follows.",
    )
    fallbacks: list[FallbackTarget] = Field(default_factory=list, max_length=8)
    breaker: BreakerSettings = Field(default_factory=BreakerSettings)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        names = [c.name for c in self.candidates]
        if len(set(names)) != len(names):
            raise ValueError("candidate names must be distinct")
        if self.stable_variant in names:
            raise ValueError(
                f"'{self.stable_variant}' names both the stable variant and a candidate"
            )
        reserved = RESERVED_VARIANTS & {*names, self.stable_variant}
        if reserved:
            raise ValueError(f"variant names {sorted(reserved)} are reserved")
        total = sum(c.weight for c in self.candidates)
        if total > 100 + 1e-9:
            raise ValueError(f"candidate weights add up to {total:g}%, more than 100%")
        return self


class TrafficPolicy(_PolicyFields):
    """A route's policy as stored and shown: with the rollout or experiment that owns it."""

    owner: str | None = Field(
        default=None,
        max_length=64,
        description="'rollout:N' or 'experiment:N' while one of them manages the weights.",
    )


class TrafficPolicyIn(_PolicyFields):
    """A route's policy as an admin sends it: its owner is set by the rollout or experiment
    that manages it, never by hand (a policy read from the API may be sent back as it is
    while it has none)."""

    owner: None = Field(
        default=None, description="Set by the rollout or experiment that manages the route."
    )


class TrafficPolicyOut(BaseModel):
    model: str
    policy: TrafficPolicy
    updated_at: datetime
    updated_by: str


class TrafficPolicyList(BaseModel):
    object: Literal["list"] = "list"
    data: list[TrafficPolicyOut]


class TrafficPolicyChange(BaseModel):
    id: int
    model: str
    before: TrafficPolicy | None
    after: TrafficPolicy | None
    actor: str
    reason: str
    at: datetime


class TrafficPolicyHistory(BaseModel):
    object: Literal["list"] = "list"
    data: list[TrafficPolicyChange]


class TrafficPolicyPut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    policy: TrafficPolicyIn
    reason: str = Field(default="", max_length=2000)


class BreakerOut(BaseModel):
    target: str
    state: Literal["closed", "open", "half_open"]
    consecutive_failures: int
    opened_at: float | None


class RouteOut(BaseModel):
    """A route as this replica serves it: its policy, its variants and its breakers."""

    model: str
    policy: TrafficPolicy | None
    variants: list[dict[str, object]]
    breakers: list[BreakerOut]
