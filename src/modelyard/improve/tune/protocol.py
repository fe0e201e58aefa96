"""Wire types of tuning: a study's request (the task, the model, the space searched, the
bounds on latency and cost, the held-out items), its trials, the confirmation on held-out
items and the parameters' importances."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from modelyard.evaluate.tasks import Task
from modelyard.wire import JSON_INTEGER, JSON_NUMBER

StudyStatus = Literal["running", "interrupted", "failed", "done"]
TrialState = Literal["running", "complete", "failed"]
Direction = Literal["maximize", "minimize"]
Variant = Annotated[str, Field(max_length=20_000)]


def _ordered(low: float, high: float) -> None:
    if low > high:
        raise ValueError(f"low ({low}) is above high ({high})")


class FloatRange(BaseModel):
    """Values from ``low`` to ``high`` (a log scale when ``log``)."""

    model_config = ConfigDict(extra="forbid")

    low: Annotated[float, Field(ge=-1e9, le=1e9), JSON_NUMBER]
    high: Annotated[float, Field(ge=-1e9, le=1e9), JSON_NUMBER]
    log: bool = Field(default=False, description="Sample on a log scale (low must be above 0).")

    @model_validator(mode="after")
    def _valid(self) -> FloatRange:
        _ordered(self.low, self.high)
        if self.log and self.low <= 0:
            raise ValueError("a log range needs low above 0")
        return self


class TemperatureRange(FloatRange):
    low: Annotated[float, Field(ge=0, le=2), JSON_NUMBER]
    high: Annotated[float, Field(ge=0, le=2), JSON_NUMBER]


class TopPRange(FloatRange):
    low: Annotated[float, Field(ge=0, le=1), JSON_NUMBER]
    high: Annotated[float, Field(ge=0, le=1), JSON_NUMBER]


class IntRange(BaseModel):
    """Integers from ``low`` to ``high`` in steps of ``step``."""

    model_config = ConfigDict(extra="forbid")

    low: Annotated[int, Field(ge=-(2**31), le=2**31 - 1), JSON_INTEGER]
    high: Annotated[int, Field(ge=-(2**31), le=2**31 - 1), JSON_INTEGER]
    step: Annotated[int, Field(ge=1, le=2**31 - 1), JSON_INTEGER] = 1

    @model_validator(mode="after")
    def _valid(self) -> IntRange:
        _ordered(self.low, self.high)
        return self


class MaxTokensRange(IntRange):
    low: Annotated[int, Field(ge=1, le=32_768), JSON_INTEGER]
    high: Annotated[int, Field(ge=1, le=32_768), JSON_INTEGER]


class FewShotRange(IntRange):
    low: Annotated[int, Field(ge=0, le=16), JSON_INTEGER]
    high: Annotated[int, Field(ge=0, le=16), JSON_INTEGER]


class FloatParam(FloatRange):
    type: Literal["float"]


class IntParam(IntRange):
    type: Literal["int"]


class CategoricalParam(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["categorical"]
    choices: list[str | bool | Annotated[int, JSON_INTEGER] | Annotated[float, JSON_NUMBER]] = (
        Field(min_length=1, max_length=64)
    )


StudentParam = Annotated[FloatParam | IntParam | CategoricalParam, Field(discriminator="type")]


class StudentSpace(BaseModel):
    """A student's hyper-parameters, searched with the rest: each trial asks the named
    trainer for the model its values make, and evaluates that model."""

    model_config = ConfigDict(extra="forbid")

    trainer: str = Field(
        min_length=1, max_length=64, description="A trainer this server has (`classifier`)."
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="The trainer's fixed settings (for `classifier`: a distillation's "
        "`dataset`, `model`, `label_field`, ...).",
    )
    params: dict[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")], StudentParam] = (
        Field(min_length=1, max_length=32)
    )


class SearchSpace(BaseModel):
    """What a trial may change; the task's own settings are where the search starts."""

    model_config = ConfigDict(extra="forbid")

    temperature: TemperatureRange | None = None
    top_p: TopPRange | None = None
    max_tokens: MaxTokensRange | None = None
    templates: list[Annotated[str, Field(min_length=1, max_length=20_000)]] = Field(
        default_factory=list,
        max_length=32,
        description="Prompt-template variants (Jinja2 over the item's fields) besides the "
        "task's own, which is variant 0.",
    )
    systems: list[Variant] = Field(
        default_factory=list,
        max_length=32,
        description='System-prompt variants besides the task\'s own (variant 0); "" is none.',
    )
    few_shot: FewShotRange | None = Field(default=None, description="Worked examples.")
    student: StudentSpace | None = None

    @model_validator(mode="after")
    def _something(self) -> SearchSpace:
        ranges = (self.temperature, self.top_p, self.max_tokens, self.few_shot, self.student)
        if all(r is None for r in ranges) and not (self.templates or self.systems):
            raise ValueError(
                "give at least one of temperature, top_p, max_tokens, templates, systems, "
                "few_shot, student"
            )
        return self


class Constraints(BaseModel):
    """Bounds a trial must keep to count; a trial over one is infeasible, shown as such
    and never the best."""

    model_config = ConfigDict(extra="forbid")

    max_latency_ms: Annotated[float, Field(gt=0, le=3_600_000), JSON_NUMBER] | None = Field(
        default=None, description="Mean latency per item, in milliseconds."
    )
    max_cost: Annotated[float, Field(ge=0, le=1e9), JSON_NUMBER] | None = Field(
        default=None,
        description="Mean cost per item, in the unit of the versions' prices "
        "(`parameters.price`, per token).",
    )


class StudyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task: Task = Field(description="An eval task, as in a task file; its dataset registered.")
    model: str = Field(
        default="default",
        min_length=1,
        max_length=160,
        description="The model the trials query. A plain route name means its production "
        "alias (`NAME:production`), so a rollout's traffic split mixes no versions into a trial.",
    )
    objective: str | None = Field(
        default=None,
        max_length=128,
        description="The task metric to optimise, or `judge:NAME` (default: its first metric).",
    )
    trials: Annotated[int, Field(ge=1, le=500), JSON_INTEGER] = 20
    startup_trials: Annotated[int, Field(ge=1, le=100), JSON_INTEGER] = Field(
        default=5, description="Trials drawn at random before TPE models the results."
    )
    seed: Annotated[int, Field(ge=0, le=2**31 - 1), JSON_INTEGER] = 0
    space: SearchSpace
    constraints: Constraints = Field(default_factory=Constraints)
    holdout_split: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="The split (items' `split` field) the best trial is confirmed on; default "
        "`test` when the task names the split searched (`task.dataset.split`).",
    )
    holdout_share: Annotated[float, Field(gt=0, lt=1), JSON_NUMBER] = Field(
        default=0.3,
        description="Without splits: the share of items held out, drawn with the seed.",
    )
    confirm: bool = Field(
        default=True,
        description="Confirm the best trial on the held-out items against production.",
    )
    concurrency: Annotated[int, Field(ge=1, le=64), JSON_INTEGER] = 4
    allow_train_overlap: bool = Field(
        default=False, description="Evaluate on items a curated dataset trains on (recorded)."
    )


class TrialSettings(BaseModel):
    """What a trial sent: the model, the prompt and the sampling fields."""

    model: str
    system: str | None
    template: str
    few_shot: int
    generation: dict[str, Any]
    student: dict[str, Any] = Field(default_factory=dict)


class TrialOut(BaseModel):
    number: int
    state: TrialState
    default: bool = Field(description="The task's own settings, as far as the space holds them.")
    params: dict[str, Any] = Field(
        description="What the sampler chose (`template`, `system`: the variant's index)."
    )
    settings: TrialSettings
    value: float | None = Field(description="The objective on the searched items.")
    latency_ms: float | None = Field(description="Mean latency per item.")
    cost: float | None = Field(description="Mean cost per item.")
    constraints: dict[str, float] = Field(
        description="How far over each bound (value - bound): feasible when none is above 0."
    )
    feasible: bool | None
    errors: int = Field(description="Items that got no answer.")
    run_id: int | None = Field(description="The trial's eval run.")
    message: str | None
    started_at: datetime
    finished_at: datetime | None


class HistoryPoint(BaseModel):
    number: int
    value: float | None
    feasible: bool | None
    best: float | None = Field(description="The best feasible value up to this trial.")


class Importances(BaseModel):
    evaluator: str
    trials: int = Field(description="Complete trials they are computed from.")
    values: dict[str, float] | None = Field(description="By parameter, adding up to 1.")
    reason: str | None = Field(description="Why there are none yet.")


class Partition(BaseModel):
    how: Literal["splits", "seeded"]
    search: str = Field(description="Which items the trials run on.")
    holdout: str = Field(description="Which items only the confirmation runs on.")
    search_items: int
    holdout_items: int
    duplicates_dropped: int = Field(
        description="Held-out items whose prompt a searched item has too, left out."
    )


class Confirmation(BaseModel):
    status: Literal["running", "done", "skipped"]
    reason: str | None = None
    trial: int | None = None
    objective: str
    holdout_items: int
    baseline_model: str
    candidate_model: str | None = None
    baseline_run: int | None = None
    candidate_run: int | None = None
    difference: dict[str, Any] | None = Field(
        default=None,
        description="The objective's paired bootstrap: candidate - baseline with its 95% CI.",
    )
    p_value: float | None = Field(
        default=None, description="McNemar's exact test on per-item correctness."
    )
    better: bool | None = Field(
        default=None, description="The CI lies wholly on the better side of 0."
    )
    comparison: dict[str, Any] | None = Field(
        default=None, description="The two runs compared, as `/api/eval/compare` gives it."
    )


class StudyOut(BaseModel):
    id: int
    task: str
    model: str
    status: StudyStatus
    message: str | None
    objective: str
    direction: Direction
    trials_planned: int
    partition: Partition
    best_trial: int | None
    best_value: float | None
    trials: list[TrialOut]
    history: list[HistoryPoint]
    importances: Importances | None
    confirmation: Confirmation | None
    request: StudyRequest
    created_at: datetime
    created_by: str
    updated_at: datetime
    finished_at: datetime | None


class StudySummary(BaseModel):
    id: int
    task: str
    model: str
    status: StudyStatus
    objective: str
    direction: Direction
    trials_planned: int
    trials_done: int
    best_trial: int | None
    best_value: float | None
    confirmed: bool | None = Field(description="The confirmation found the best trial better.")
    created_at: datetime
    created_by: str
    finished_at: datetime | None


class StudyList(BaseModel):
    object: Literal["list"] = "list"
    data: list[StudySummary]
