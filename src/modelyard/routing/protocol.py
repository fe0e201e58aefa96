"""Wire types of routing: the traffic policy of a route, and what the API shows of it."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal, Self

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


def _member() -> Any:
    """A combination member's field: a public name."""
    return Field(
        min_length=1, max_length=200, description="A public name: 'm', 'm:alias' or 'm@n'."
    )


class Confidence(BaseModel):
    """How sure a cascade's small model is of its answer: exactly one signal.

    ``min_probability``: the geometric mean of its tokens' probabilities (``exp`` of the
    mean token logprob) must reach this; the small model is asked for logprobs, which a
    client that did not ask for them never sees. ``valid_json``: the answer must parse as
    JSON.
    ``pattern``: the whole answer (stripped) must match this regular expression.
    ``labels``: the answer (stripped) must be one of these."""

    model_config = ConfigDict(extra="forbid")

    min_probability: Number | None = Field(default=None, gt=0, le=1)
    valid_json: bool = False
    pattern: str | None = Field(default=None, min_length=1, max_length=1000)
    labels: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        default=None, min_length=1, max_length=1000
    )

    @model_validator(mode="after")
    def _one_signal(self) -> Self:
        given = [
            name
            for name, value in (
                ("min_probability", self.min_probability),
                ("valid_json", self.valid_json or None),
                ("pattern", self.pattern),
                ("labels", self.labels),
            )
            if value is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of min_probability, valid_json (true), pattern or labels"
                + (f"; got {', '.join(given)}" if given else "")
            )
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as error:
                raise ValueError(f"pattern is not a regular expression: {error}") from None
        return self

    @property
    def signal(self) -> str:
        """The signal's name: logprobs, valid_json, pattern or labels."""
        if self.min_probability is not None:
            return "logprobs"
        if self.valid_json:
            return "valid_json"
        return "pattern" if self.pattern is not None else "labels"


class Cascade(BaseModel):
    """The small model answers first; the large one answers instead when the small one's
    confidence is below the threshold (or its answer fails the validator)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["cascade"]
    small: str = _member()
    large: str = _member()
    confidence: Confidence

    @property
    def members(self) -> tuple[str, ...]:
        return (self.small, self.large)

    @property
    def roles(self) -> tuple[str, ...]:
        return ("small", "large")

    @property
    def summary(self) -> str:
        return f"cascade {self.small} → {self.large} when not {self.confidence.signal}"


class Vote(BaseModel):
    """Every target answers; the most frequent answer (stripped, case-folded) wins, a tie
    going to the answer of the earliest target in ``targets`` among the tied ones."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["vote"]
    targets: list[Annotated[str, _member()]] = Field(min_length=2, max_length=9)

    @property
    def members(self) -> tuple[str, ...]:
        return tuple(self.targets)

    @property
    def roles(self) -> tuple[str, ...]:
        return ("voter",) * len(self.targets)

    @property
    def summary(self) -> str:
        return "vote of " + ", ".join(self.targets)


class BestOfN(BaseModel):
    """``target`` answers ``n`` times; the ``judge`` route scores each answer from 0 to 10
    and the best is returned (a tie: the earliest answer)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["best_of_n"]
    target: str = _member()
    n: int = Field(default=3, ge=2, le=8)
    judge: str = _member()

    @property
    def members(self) -> tuple[str, ...]:
        return (self.target, self.judge)

    @property
    def roles(self) -> tuple[str, ...]:
        return ("candidate", "judge")

    @property
    def summary(self) -> str:
        return f"best of {self.n} {self.target}, judged by {self.judge}"


CombinationPolicy = Annotated[Cascade | Vote | BestOfN, Field(discriminator="kind")]


# Cosine similarity above which the semantic cache answers with a stored answer: picked by
# ``bench/cache.py`` on banking77 (docs/cache.md says how).
DEFAULT_SIMILARITY = 0.94


class CachePolicy(BaseModel):
    """A route's response cache (docs/cache.md): off unless the policy has one."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["exact", "semantic"] = Field(
        default="exact",
        description="'exact': the same normalised request; 'semantic': the same request but "
        "for a last user message of similar meaning (by the embedding model).",
    )
    backend: Literal["memory", "redis"] = Field(
        default="memory", description="'memory' (this replica) or 'redis' (shared by replicas)."
    )
    ttl_s: Number = Field(default=3600, gt=0, le=30 * 86_400, description="An answer's lifetime.")
    max_entries: int = Field(
        default=10_000, ge=1, le=1_000_000, description="Most answers kept per version served."
    )
    max_answer_chars: int = Field(
        default=32_000, ge=1, le=1_000_000, description="Longer answers are not kept."
    )
    nondeterministic: bool = Field(
        default=False,
        description="Also cache requests sampled at a temperature above 0 without a seed.",
    )
    shared: bool = Field(
        default=False,
        description="Share answers between API keys; by default each key has its own.",
    )
    embedding_model: str = Field(
        default="default-embedding",
        min_length=1,
        max_length=200,
        description="The embedding model of the semantic cache (a public name).",
    )
    threshold: Number = Field(
        default=DEFAULT_SIMILARITY,
        ge=0.5,
        le=1,
        description="Least cosine similarity of a semantic hit.",
    )
    lookup_timeout_s: Number = Field(
        default=0.25,
        gt=0,
        le=10,
        description="Longest a lookup (Redis, the embedding) may take; then it is a miss.",
    )

    @model_validator(mode="after")
    def _supported(self) -> Self:
        if self.mode == "semantic" and self.backend == "redis":
            raise ValueError("the semantic cache keeps its index in memory: use backend 'memory'")
        return self


class LiveJudging(BaseModel):
    """A share of the route's answered requests scored by a judge route in the background
    (docs/observe.md#live-quality): never on the request path, within a budget."""

    model_config = ConfigDict(extra="forbid")

    judge: str = Field(
        min_length=1,
        max_length=200,
        description="The judge: a public name ('m', 'm:alias' or 'm@n') of a chat model.",
    )
    share: Number = Field(gt=0, le=1, description="Share of answered requests judged (0-1).")
    rubric: str = Field(
        default="How well does the answer respond to the request: correct, complete, clear?",
        min_length=1,
        max_length=2000,
        description="The criterion the judge scores by (the rubric of eval judges' prompt).",
    )
    scale: tuple[int, int] = Field(
        default=(1, 5), description="The judge's lowest and highest score."
    )
    max_per_minute: int | None = Field(
        default=60,
        ge=1,
        le=100_000,
        description="Most judge calls a replica starts per minute; beyond it samples are "
        "skipped and counted. None: no limit by count (then max_cost_per_day must be set).",
    )
    max_cost_per_day: Number | None = Field(
        default=None,
        gt=0,
        description="Most the judge calls of a replica may cost per UTC day (the judge "
        "version's price unit); beyond it samples are skipped and counted.",
    )

    @model_validator(mode="after")
    def _bounded(self) -> Self:
        low, high = self.scale
        if low >= high:
            raise ValueError(f"scale: the lowest score ({low}) must be below the highest ({high})")
        if self.max_per_minute is None and self.max_cost_per_day is None:
            raise ValueError("live judging needs a budget: max_per_minute or max_cost_per_day")
        return self


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
    combine: CombinationPolicy | None = Field(
        default=None,
        description="Answer with a combination of models (cascade, vote, best_of_n) "
        "instead of one version; excludes candidates, shadows and fallbacks.",
    )
    cache: CachePolicy | None = Field(
        default=None, description="The route's response cache; none: off (docs/cache.md)."
    )
    live_judge: LiveJudging | None = Field(
        default=None,
        description="Judge a share of answered requests in the background, for the online "
        "quality metric; none: off (docs/observe.md#live-quality).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.combine is not None and (self.candidates or self.shadows or self.fallbacks):
            raise ValueError(
                "a combination route has no candidates, shadows or fallbacks: "
                "leave them out, or clear 'combine'"
            )
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


class CacheStats(BaseModel):
    """A route's response cache as this replica sees it (entries: in its memory)."""

    hits: int
    misses: int
    bypassed: int = Field(description="Requests the cache could not answer (not deterministic).")
    hit_rate: float | None = Field(description="Hits over lookups (hits and misses).")
    entries: int | None = Field(description="Answers held in this replica's memory.")


class RouteOut(BaseModel):
    """A route as this replica serves it: its policy, its variants and its breakers."""

    model: str
    policy: TrafficPolicy | None
    variants: list[dict[str, object]]
    breakers: list[BreakerOut]
    cache: CacheStats | None = None
