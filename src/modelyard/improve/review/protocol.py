"""Wire types of review queues (``/api/reviews``): a review over one dataset version, the
item a reviewer holds, the decisions, the progress and what finishing wrote."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

from modelyard.wire import JSON_INTEGER

DATASET_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
FIELD_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
ReviewStatus = Literal["open", "finished"]
Decision = Literal["accept", "correct", "reject"]
Action = Literal["accept", "correct", "reject", "skip"]
Undecided = Literal["keep", "drop"]
Label = Annotated[str, Field(min_length=1, max_length=200, pattern=r"\S")]
FieldName = Annotated[str, Field(pattern=FIELD_PATTERN)]
Scalar = StrictStr | StrictInt | StrictFloat | StrictBool | None
# A correction: the right answer, or for a labelled dataset the right label.
Correction = Annotated[str, Field(min_length=1, max_length=100_000, pattern=r"\S")]


class ReviewFilter(BaseModel):
    """Which items of the version go in the queue (all of them by default)."""

    model_config = ConfigDict(extra="forbid")

    split: str | None = Field(
        default=None, min_length=1, max_length=64, description="Only items of this split."
    )
    where: dict[FieldName, Scalar] = Field(
        default_factory=dict,
        max_length=16,
        description="Only items whose fields hold these values (JSON equality).",
    )


class ReviewCreate(BaseModel):
    """A review of one dataset version."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(pattern=DATASET_PATTERN, description="The dataset's name.")
    version: Annotated[int, Field(ge=1, le=2**31 - 1), JSON_INTEGER] | None = Field(
        default=None, description="Its version (default: the latest)."
    )
    filter: ReviewFilter = Field(default_factory=ReviewFilter)
    instructions: str = Field(
        default="", max_length=20_000, description="What reviewers should look for."
    )
    label_field: str | None = Field(
        default=None,
        pattern=FIELD_PATTERN,
        description="The field holding each item's label: a correction is a label and goes "
        "there too (default: the labelled version's label field, else none: a correction "
        "is an answer).",
    )
    labels: list[Label] | None = Field(
        default=None,
        min_length=1,
        max_length=1000,
        json_schema_extra={"uniqueItems": True},
        description="The labels a correction may be (default: the values of `label_field`).",
    )
    lease_minutes: Annotated[int, JSON_INTEGER] = Field(
        default=10,
        ge=1,
        le=240,
        description="How long a reviewer holds an item without activity before it goes "
        "back to the queue.",
    )


class DecisionCounts(BaseModel):
    accept: int = 0
    correct: int = 0
    reject: int = 0
    skip: int = Field(default=0, description="Skips (not decisions: the item stays open).")


class ReviewProgress(BaseModel):
    items: int = Field(description="Items in the queue.")
    decided: int
    remaining: int
    leased: int = Field(description="Undecided items a reviewer holds right now.")
    by_decision: DecisionCounts
    by_reviewer: dict[str, DecisionCounts]


class ReviewResult(BaseModel):
    """What finishing wrote."""

    dataset: str = Field(description="The new version, `name@version`.")
    undecided: Undecided
    accepted: int
    corrected: int
    rejected: int
    undecided_items: int
    outside_filter: int = Field(description="Items of the version not in the queue (kept).")
    items: int = Field(description="Items in the new version.")
    reviewers: list[str]


class ReviewOut(BaseModel):
    id: int
    dataset: str
    version: int
    status: ReviewStatus
    filter: ReviewFilter
    instructions: str
    label_field: str | None
    labels: list[str] | None
    lease_minutes: int
    progress: ReviewProgress
    result: ReviewResult | None
    created_at: datetime
    created_by: str
    finished_at: datetime | None
    finished_by: str | None


class ReviewList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ReviewOut]


class ItemView(BaseModel):
    """What a reviewer reads of an item, picked from its fields."""

    question: str | None
    messages: list[Any] | None
    answer: str | None
    label: str | None
    corrected: str | None
    feedback: list[Any]


class ReviewItemState(BaseModel):
    index: int = Field(description="The item's index in the dataset version.")
    decision: Decision | None
    correction: str | None
    decided_by: str | None
    decided_at: datetime | None
    leased_by: str | None
    lease_expires_at: datetime | None


class ReviewItemList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ReviewItemState]


class ReviewItemOut(ReviewItemState):
    data: dict[str, Any] = Field(description="The item as the version holds it.")
    view: ItemView
    skipped_before: bool = Field(description="The caller skipped it before.")


class ReviewStep(BaseModel):
    """The item a step concerns (None: nothing left for the caller) and the progress."""

    review: int
    item: ReviewItemOut | None
    progress: ReviewProgress
    message: str = ""


class Accept(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Literal["accept"]


class Correct(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Literal["correct"]
    correction: Correction


class Reject(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Literal["reject"]


class Skip(BaseModel):
    """Not a decision: the item goes back to the queue for others."""

    model_config = ConfigDict(extra="forbid")
    decision: Literal["skip"]


DecisionIn = Annotated[Accept | Correct | Reject | Skip, Field(discriminator="decision")]


class FinishRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    undecided: Undecided | None = Field(
        default=None,
        description="Keep or drop the items nobody decided (required when there are some).",
    )
    name: str | None = Field(
        default=None,
        pattern=DATASET_PATTERN,
        description="The dataset the new version belongs to (default: the reviewed one).",
    )
