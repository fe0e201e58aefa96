"""Wire types of release: rollout and experiment specs, their state, measurements and events."""

from __future__ import annotations

from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from modelyard.evaluate.gates import GateRule
from modelyard.routing.protocol import VARIANT_PATTERN

MetricName = Literal[
    "error_rate",
    "latency_p95",
    "ttft_p95",
    "positive_feedback_rate",
    "judge_score",
    "cost_per_request",
]
LOWER_IS_BETTER = frozenset({"error_rate", "latency_p95", "ttft_p95", "cost_per_request"})
# The most a candidate may be worse and still pass, in the compared quantity's unit: a
# share for rates and for the tail share above the pooled p95 (latency, TTFT), points of
# the judge's scale for judge scores. Cost's default is relative (10% of the baseline).
DEFAULT_MARGINS = MappingProxyType(
    {
        "error_rate": 0.02,
        "latency_p95": 0.05,
        "ttft_p95": 0.05,
        "positive_feedback_rate": 0.05,
        "judge_score": 0.25,
    }
)
COST_RELATIVE_MARGIN = 0.10
Outcome = Literal["Successful", "Failed", "Inconclusive"]
RolloutStatus = Literal["running", "paused", "promoted", "aborted"]
ExperimentStatus = Literal["running", "stopped"]


class AnalysisMetric(BaseModel):
    """One metric compared between candidate and baseline over the same period."""

    model_config = ConfigDict(extra="forbid")

    name: MetricName
    margin: float | None = Field(
        default=None,
        ge=0,
        description="Non-inferiority margin: how much worse the candidate may be and still "
        "pass. Defaults: error_rate 0.02, latency/ttft_p95 0.05 (share above the pooled "
        "p95), positive_feedback_rate 0.05, judge_score 0.25, cost 10% of the baseline.",
    )
    feedback: str = Field(
        default="thumbs",
        max_length=64,
        description="For positive_feedback_rate: the boolean feedback's name; for "
        "judge_score: the judge's feedback name (e.g. 'judge:quality').",
    )


def _default_metrics() -> list[AnalysisMetric]:
    return [AnalysisMetric(name="error_rate"), AnalysisMetric(name="latency_p95")]


class Analysis(BaseModel):
    """Argo Rollouts' analysis model with always-valid statistics: a measurement every
    ``interval_s``, each Successful, Failed or Inconclusive."""

    model_config = ConfigDict(extra="forbid")

    interval_s: float = Field(default=60.0, ge=0.05, le=86_400)
    count: int = Field(default=30, ge=1, le=10_000, description="Most measurements taken.")
    failure_limit: int = Field(default=0, ge=0, description="Failed measurements tolerated.")
    inconclusive_limit: int | None = Field(
        default=None,
        ge=0,
        description="Inconclusive measurements tolerated before the rollout pauses for a "
        "human (default: count).",
    )
    min_samples: int = Field(
        default=100, ge=2, description="Fewer requests per variant is Inconclusive."
    )
    alpha: float = Field(default=0.05, gt=0, lt=0.5, description="False-alarm rate, overall.")
    planned_samples: int = Field(
        default=2000, ge=10, description="Requests (both variants) where the bound is tightest."
    )
    metrics: list[AnalysisMetric] = Field(default_factory=_default_metrics, min_length=1)

    @model_validator(mode="after")
    def _distinct(self) -> Analysis:
        names = [(m.name, m.feedback) for m in self.metrics]
        if len(set(names)) != len(names):
            raise ValueError("each metric may appear once in an analysis")
        return self


class Pause(BaseModel):
    model_config = ConfigDict(extra="forbid")

    duration_s: float | None = Field(
        default=None, ge=0, le=30 * 86_400, description="None waits for `rollout resume`."
    )


class Gate(BaseModel):
    """A required eval gate: the latest finished run of the task on the candidate version
    (and on the baseline, for rules that compare) must pass the rules."""

    model_config = ConfigDict(extra="forbid")

    task: str = Field(
        min_length=1, max_length=64, description="The task's name (as `modelyard eval run` ran it)."
    )
    rules: list[GateRule] = Field(min_length=1)


STEP_KINDS = ("set_weight", "pause", "analysis", "gate")


class Step(BaseModel):
    """Exactly one of: set a weight, pause, analyse, or require an eval gate."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={  # _one, as the schema says it: exactly one kind is not null
            "oneOf": [
                {"required": [kind], "properties": {kind: {"not": {"type": "null"}}}}
                for kind in STEP_KINDS
            ]
        },
    )

    set_weight: float | None = Field(default=None, ge=0, le=100)
    pause: Pause | None = None
    analysis: Analysis | None = None
    gate: Gate | None = None

    @model_validator(mode="after")
    def _one(self) -> Step:
        chosen = [name for name in STEP_KINDS if getattr(self, name) is not None]
        if len(chosen) != 1:
            raise ValueError(
                "a step is exactly one of set_weight, pause, analysis or gate "
                f"(this one has {', '.join(chosen) or 'none'})"
            )
        return self

    @property
    def kind(self) -> str:
        for name in STEP_KINDS:
            if getattr(self, name) is not None:
                return name
        raise AssertionError("validated: one kind is set")


def default_steps() -> list[Step]:
    return [
        Step(set_weight=10),
        Step(analysis=Analysis()),
        Step(set_weight=50),
        Step(analysis=Analysis()),
    ]


class RolloutCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, max_length=128)
    candidate: int = Field(ge=1, le=2**31 - 1, description="The version to release.")
    alias: str = Field(default="production", min_length=1, max_length=64)
    steps: list[Step] = Field(default_factory=default_steps, min_length=1, max_length=64)
    notify: list[str] = Field(
        default_factory=list,
        max_length=10,
        description="Webhook URLs of the alert raised when the rollout aborts.",
    )
    reason: str = Field(default="", max_length=2000)


class RolloutOut(BaseModel):
    id: int
    model: str
    alias: str
    baseline: int
    candidate: int
    status: RolloutStatus
    step: int
    steps: list[Step]
    weight: float
    weight_since: datetime
    step_started_at: datetime
    message: str
    started_at: datetime
    finished_at: datetime | None
    created_by: str


class RolloutList(BaseModel):
    object: Literal["list"] = "list"
    data: list[RolloutOut]


class MeasurementOut(BaseModel):
    id: int
    step: int
    seq: int
    at: datetime
    outcome: Outcome
    data: dict[str, Any]


class MeasurementList(BaseModel):
    object: Literal["list"] = "list"
    data: list[MeasurementOut]


class ReleaseEventOut(BaseModel):
    id: int
    at: datetime
    kind: str
    actor: str
    message: str
    data: dict[str, Any]


class ReleaseEventList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ReleaseEventOut]


class RolloutAction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=2000)


class Variant(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=VARIANT_PATTERN)
    version: int = Field(ge=1, le=2**31 - 1)
    weight: float = Field(gt=0, le=100)


class StopRules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    on_significance: bool = Field(
        default=True, description="Stop once the primary metric's interval excludes zero."
    )
    on_guardrail: bool = Field(default=True, description="Stop when a guardrail fails.")
    max_duration_s: float | None = Field(default=None, gt=0, le=365 * 86_400)
    max_samples: int | None = Field(
        default=None, ge=2, description="Stop when every variant has this many requests."
    )


class ExperimentCreate(BaseModel):
    """A fixed split; the first variant is the control and is served by ``alias``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
    model: str = Field(min_length=1, max_length=128)
    alias: str = Field(default="production", min_length=1, max_length=64)
    variants: list[Variant] = Field(min_length=2, max_length=8)
    primary: AnalysisMetric
    guardrails: list[AnalysisMetric] = Field(default_factory=list, max_length=8)
    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    min_samples: int = Field(default=100, ge=2)
    planned_samples: int = Field(default=5000, ge=10)
    interval_s: float = Field(default=60.0, ge=0.05, le=86_400)
    stop: StopRules = Field(default_factory=StopRules)

    @model_validator(mode="after")
    def _split(self) -> ExperimentCreate:
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError("variant names must be distinct")
        versions = [v.version for v in self.variants]
        if len(set(versions)) != len(versions):
            raise ValueError("each variant must be a different version")
        total = sum(v.weight for v in self.variants)
        if abs(total - 100) > 1e-6:
            raise ValueError(f"variant weights add up to {total:g}%, not 100%")
        return self


class ExperimentOut(BaseModel):
    id: int
    name: str
    model: str
    spec: ExperimentCreate
    status: ExperimentStatus
    message: str
    result: dict[str, Any]
    started_at: datetime
    finished_at: datetime | None
    created_by: str


class ExperimentList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ExperimentOut]
