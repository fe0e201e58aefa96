"""Wire types of release: rollout and experiment specs, their state, measurements and events."""

from __future__ import annotations

import json
from datetime import datetime
from types import MappingProxyType
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from modelyard.evaluate.gates import GateRule
from modelyard.routing.protocol import VARIANT_PATTERN
from modelyard.wire import Number

MetricName = Literal[
    "error_rate",
    "latency",
    "ttft",
    "latency_p95",
    "ttft_p95",
    "positive_feedback_rate",
    "judge_score",
    "cost_per_request",
    "online_quality",
]
LOWER_IS_BETTER = frozenset(
    {"error_rate", "latency", "ttft", "latency_p95", "ttft_p95", "cost_per_request"}
)
# Metrics compared on the log scale: their margin is relative (0.10: 10 % slower).
LOG_SCALE = frozenset({"latency", "ttft"})
# The most a candidate may be worse and still pass, in the compared quantity's unit: a
# share for rates and for the tail share above the pooled p95 (latency, TTFT), a relative
# slow-down of the geometric mean for latency and TTFT, points of the judge's scale for
# judge scores. Cost's default is relative (10% of the baseline).
DEFAULT_MARGINS = MappingProxyType(
    {
        "error_rate": 0.02,
        "latency": 0.10,
        "ttft": 0.10,
        "latency_p95": 0.05,
        "ttft_p95": 0.05,
        "positive_feedback_rate": 0.05,
        "judge_score": 0.25,
        "online_quality": 0.05,
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
    margin: Number | None = Field(
        default=None,
        ge=0,
        description="Non-inferiority margin: how much worse the candidate may be and still "
        "pass. Defaults: error_rate 0.02, latency/ttft 0.10 (10% slower geometric mean), "
        "latency/ttft_p95 0.05 (share above the pooled p95), positive_feedback_rate 0.05, "
        "judge_score 0.25, online_quality 0.05 (of the 0-1 live-judge score), cost 10% of "
        "the baseline.",
    )
    feedback: str = Field(
        default="thumbs",
        max_length=64,
        description="For positive_feedback_rate: the boolean feedback's name; for "
        "judge_score: the judge's feedback name (e.g. 'judge:quality').",
    )


def _default_metrics() -> list[AnalysisMetric]:
    return [AnalysisMetric(name="error_rate"), AnalysisMetric(name="latency")]


TestKind = Literal["group_sequential", "always_valid"]
SpendingName = Literal["obrien_fleming", "pocock"]
# Group-sequential boundaries are recomputed over every look so far: at most this many.
MAX_SEQUENTIAL_LOOKS = 200


class Analysis(BaseModel):
    """Argo Rollouts' analysis model with sequential statistics: a measurement every
    ``interval_s``, each Successful, Failed or Inconclusive."""

    model_config = ConfigDict(extra="forbid")

    interval_s: Number = Field(default=60.0, ge=0.05, le=86_400)
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
    alpha: Number = Field(default=0.05, gt=0, lt=0.5, description="False-alarm rate, overall.")
    planned_samples: int = Field(
        default=2000,
        ge=10,
        description="Requests (both variants) the analysis plans for: the group-sequential "
        "test's maximum, or where the always-valid bound is tightest.",
    )
    test: TestKind = Field(
        default="group_sequential",
        description="group_sequential: one-sided tests with alpha spending over at most "
        "`count` looks up to `planned_samples`; always_valid: a confidence sequence, for "
        "analyses without a planned size.",
    )
    spending: SpendingName = Field(
        default="obrien_fleming",
        description="Lan-DeMets alpha spending of the group-sequential test: obrien_fleming "
        "(little alpha early, most power at the end) or pocock (even over the looks).",
    )
    promote_alpha: Number | None = Field(
        default=None,
        gt=0,
        lt=0.5,
        description="Error rate of promoting a candidate worse than a margin (default: alpha).",
    )
    metrics: list[AnalysisMetric] = Field(default_factory=_default_metrics, min_length=1)

    @model_validator(mode="after")
    def _distinct(self) -> Analysis:
        names = [(m.name, m.feedback) for m in self.metrics]
        if len(set(names)) != len(names):
            raise ValueError("each metric may appear once in an analysis")
        if self.test == "group_sequential" and self.count > MAX_SEQUENTIAL_LOOKS:
            raise ValueError(
                f"a group-sequential analysis takes at most {MAX_SEQUENTIAL_LOOKS} looks "
                f"(count {self.count}); use fewer, longer intervals or test: always_valid"
            )
        return self


class Pause(BaseModel):
    model_config = ConfigDict(extra="forbid")

    duration_s: Number | None = Field(
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

    set_weight: Number | None = Field(default=None, ge=0, le=100)
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


# The most characters of a rollout's steps given as text (64 steps fit in far fewer).
STEPS_TEXT_MAX = 100_000


class _NoAliases(yaml.SafeLoader):
    """YAML without aliases (``*name``): each repeats a whole subtree, so nested ones make a
    short text a huge value to validate."""

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            mark = self.current_event.start_mark  # the event just checked
            raise yaml.composer.ComposerError(
                problem="aliases (*name) are not taken: write each step out", problem_mark=mark
            )
        return super().compose_node(parent, index)


def _steps_of_text(value: object) -> object:
    """A list of steps written as JSON or YAML (the console's form sends its text)."""
    if not isinstance(value, str):
        raise ValueError("expected the steps as YAML or JSON text")
    if len(value) > STEPS_TEXT_MAX:
        raise ValueError(f"the steps' text is over {STEPS_TEXT_MAX} characters")
    try:
        steps = json.loads(value)
    except ValueError:
        steps = _yaml_of(value)
    except RecursionError:
        raise ValueError("the steps are nested too deeply") from None
    if not isinstance(steps, list):
        raise ValueError("expected a list of steps, such as `- set_weight: 10`")
    return steps


def _yaml_of(text: str) -> object:
    try:
        return yaml.load(text, Loader=_NoAliases)  # a SafeLoader: plain data only
    except RecursionError:
        raise ValueError("the steps are nested too deeply") from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ValueError(f"not valid YAML or JSON: {error.problem}{where}") from None
    except yaml.YAMLError as error:
        raise ValueError(f"not valid YAML or JSON: {error}") from None


# Steps as text: what ``steps`` takes, written as YAML (or JSON) in one string.
StepsText = Annotated[
    list[Step],
    Field(min_length=1, max_length=64),
    BeforeValidator(_steps_of_text),
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": STEPS_TEXT_MAX}),
]


class RolloutCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"not": {"required": ["steps", "steps_yaml"]}},  # _one_steps
    )

    model: str = Field(min_length=1, max_length=128)
    candidate: int = Field(ge=1, le=2**31 - 1, description="The version to release.")
    alias: str = Field(default="production", min_length=1, max_length=64)
    steps: list[Step] = Field(default_factory=default_steps, min_length=1, max_length=64)
    steps_yaml: StepsText | None = Field(
        default=None,
        exclude=True,  # stored and returned as ``steps``
        description="The steps as YAML or JSON text of a list, instead of `steps` (the "
        "console's form sends it).",
    )
    notify: list[str] = Field(
        default_factory=list,
        max_length=10,
        description="Webhook URLs of the alert raised when the rollout aborts.",
    )
    reason: str = Field(default="", max_length=2000)

    @model_validator(mode="after")
    def _one_steps(self) -> RolloutCreate:
        if self.steps_yaml is not None:
            if "steps" in self.model_fields_set:
                raise ValueError("give the steps once: as steps or as steps_yaml, not both")
            self.steps = self.steps_yaml
        return self


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
    weight: Number = Field(gt=0, le=100)


class StopRules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    on_significance: bool = Field(
        default=True, description="Stop once the primary metric's interval excludes zero."
    )
    on_guardrail: bool = Field(default=True, description="Stop when a guardrail fails.")
    max_duration_s: Number | None = Field(default=None, gt=0, le=365 * 86_400)
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
    alpha: Number = Field(default=0.05, gt=0, lt=0.5)
    min_samples: int = Field(default=100, ge=2)
    planned_samples: int = Field(default=5000, ge=10)
    interval_s: Number = Field(default=60.0, ge=0.05, le=86_400)
    stop: StopRules = Field(default_factory=StopRules)
    test: TestKind | None = Field(
        default=None,
        description="group_sequential (needs stop.max_samples, the planned size) or "
        "always_valid; default: group_sequential when stop.max_samples is given.",
    )
    spending: SpendingName = Field(
        default="obrien_fleming", description="Alpha spending of the group-sequential test."
    )

    @property
    def sequential(self) -> bool:
        """Whether the group-sequential tests decide (else the always-valid sequences)."""
        if self.test is None:
            return self.stop.max_samples is not None
        return self.test == "group_sequential"

    @model_validator(mode="after")
    def _split(self) -> ExperimentCreate:
        if self.test == "group_sequential" and self.stop.max_samples is None:
            raise ValueError(
                "a group-sequential experiment needs its planned size: set stop.max_samples "
                "(or test: always_valid)"
            )
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


# -- the power planner (release.planner) -------------------------------------------------


class FeedbackBaseline(BaseModel):
    """What one feedback's values look like on the baseline."""

    model_config = ConfigDict(extra="forbid")

    mean: Number = Field(ge=-1e6, le=1e6, description="A boolean's rate, or a score's mean.")
    sd: Number | None = Field(
        default=None, gt=0, le=1e6, description="A score's standard deviation (a rate's follows)."
    )
    coverage: Number = Field(
        default=0.1, gt=0, le=1, description="The share of requests that get this feedback."
    )


class PlanBaselines(BaseModel):
    """Baseline values the plan uses instead of the request log's."""

    model_config = ConfigDict(extra="forbid")

    error_rate: Number | None = Field(default=None, ge=0, le=1)
    latency_log_sd: Number | None = Field(
        default=None, gt=0, le=10, description="Standard deviation of log latency."
    )
    ttft_log_sd: Number | None = Field(
        default=None, gt=0, le=10, description="Standard deviation of log TTFT."
    )
    cost_mean: Number | None = Field(default=None, gt=0, le=1e6)
    cost_sd: Number | None = Field(default=None, gt=0, le=1e6)
    feedback: dict[str, FeedbackBaseline] = Field(
        default_factory=dict, max_length=16, description="By feedback name."
    )


class RolloutPlanCreate(RolloutCreate):
    """A rollout's spec, as ``POST /api/rollouts`` takes it, and what to assume."""

    requests_per_s: Number | None = Field(
        default=None,
        gt=0,
        le=1e6,
        description="Expected requests per second on the route (default: the request log's).",
    )
    window_h: Number = Field(
        default=24, gt=0, le=24 * 90, description="The request log's window read, in hours."
    )
    baselines: PlanBaselines = Field(default_factory=PlanBaselines)


class PlanQuantity(BaseModel):
    """One per-request value the plan assumed for the baseline."""

    name: str  # errors, latency, ttft, cost, feedback:<name>
    mean: float  # a rate, a mean, or the mean of log milliseconds
    sd: float  # per request, on the compared scale (log latency after CUPED)
    coverage: float  # share of requests with a value
    n: int  # values it was estimated from
    source: Literal["log", "default", "given"]
    variance_reduction: float  # CUPED's share of the variance (log latency)


class PlannedLook(BaseModel):
    """One expected look of an analysis step's tests."""

    at_s: float  # from the step's start
    samples: float  # expected values of both variants
    information: float  # n_b·n_c/(n_b + n_c)
    bound: float | None  # the "worse" test's z bound (None: spends nothing, or always-valid)
    promote_bound: float | None  # the promotion test's


class MetricPlan(BaseModel):
    """What one metric of an analysis step can detect, at 80 % power."""

    name: str
    scale: Literal["rate", "log", "mean"]
    lower_is_better: bool
    margin: float  # as given (for log-scale metrics relative: 0.10 = 10 % slower)
    margin_text: str
    baseline: float | None  # the baseline's rate, geometric mean (ms) or mean
    sd: float  # per request, on the compared scale
    assumed: bool  # a documented default, not the request log
    looks: list[PlannedLook]  # measurements with min_samples, up to the planned maximum
    skipped: int  # measurements before min_samples
    final_look_s: float | None  # when the last look comes, from the step's start
    drift: float | None  # the expected z at the planned maximum that 80 % power needs
    detectable: float | None  # smallest effect detected (log scale: relative slow-down)
    detectable_ratio: float | None  # candidate / baseline at that effect
    detectable_text: str
    fixed_horizon: float | None  # the same, for one test at the last look
    fixed_horizon_ratio: float | None
    fixed_horizon_text: str
    power_at_margin: float | None  # chance of failing a candidate worse by the margin
    promote_if_equal: float | None  # chance of promoting a candidate equal to the baseline
    warnings: list[str]
    notes: list[str]


class StepPlan(BaseModel):
    """One analysis step's plan."""

    step: int  # index in the rollout's steps
    weight: float  # the candidate's share in force, in percent
    test: str
    spending: str | None
    alpha: float
    promote_alpha: float
    interval_s: float
    count: int
    min_samples: int
    planned_samples: int
    max_information: float  # planned_samples·w·(1 - w)
    duration_s: float  # the most the step takes: its last look, or count·interval_s
    expected_duration_s: float | None  # on average, for a candidate equal to the baseline
    promote_if_equal: float | None  # every metric at once (taken as independent)
    metrics: list[MetricPlan]
    warnings: list[str]


class RolloutPlan(BaseModel):
    """What a rollout's analyses can detect before it starts (``release.planner``)."""

    model: str
    rollout: int | None  # the stored rollout planned, if any
    power: float
    requests_per_s: float
    traffic_source: Literal["given", "request log"]
    window_s: float | None  # the request log's window read
    logged_requests: int  # requests on the route in that window
    quantities: list[PlanQuantity]
    steps: list[StepPlan]
    warnings: list[str]
