"""Wire types of teacher labelling (``/api/label``) and distillation (``/api/distil``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from modelyard.registry.protocol import NAME_PATTERN as MODEL_PATTERN

DATASET_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
# A dataset, ``name`` (its latest version) or ``name@version``.
REFERENCE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}(@[1-9][0-9]{0,8})?$"
# A public model name as clients send it: a route, or ``model@version``.
ROUTE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}(@[1-9][0-9]{0,8})?$"
FIELD_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
Label = Annotated[str, Field(min_length=1, max_length=200, pattern=r"\S")]
DEFAULT_TEMPLATE = "{{ input }}"
LabelStatus = Literal["running", "stopped", "failed", "done"]
DistilStatus = Literal["running", "failed", "done"]
Stage = Literal["queued", "reading", "embedding", "training", "registering", "done", "failed"]


class LabelRequest(BaseModel):
    """A dataset version to label with a teacher, through the serving path."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "oneOf": [
                {"required": ["labels"], "properties": {"labels": {"type": "array"}}},
                {"required": ["labels_from"], "properties": {"labels_from": {"type": "string"}}},
            ]
        },
    )

    dataset: str = Field(pattern=REFERENCE_PATTERN, description="`name` or `name@version`.")
    teacher: str = Field(
        pattern=ROUTE_PATTERN, description="The route (public model name) that labels."
    )
    labels: list[Label] | None = Field(
        default=None,
        min_length=2,
        max_length=1000,
        json_schema_extra={"uniqueItems": True},
        description="The label set; or `labels_from`.",
    )
    labels_from: str | None = Field(
        default=None,
        pattern=FIELD_PATTERN,
        description="Take the label set from this field's values in the dataset.",
    )
    input_field: str | None = Field(
        default=None,
        pattern=FIELD_PATTERN,
        description="The item field to classify (default: input, text, question or prompt).",
    )
    label_field: str = Field(
        default="label", pattern=FIELD_PATTERN, description="Where the label goes in each item."
    )
    system: str | None = Field(
        default=None,
        max_length=20_000,
        description="Jinja2 system prompt with `labels` and the item's fields (default: "
        "classify into exactly one of the labels, listed).",
    )
    template: str = Field(
        default=DEFAULT_TEMPLATE,
        min_length=1,
        max_length=20_000,
        description="Jinja2 user message: `input` is the text, the item's fields are set too.",
    )
    generation: dict[str, Any] = Field(
        default_factory=lambda: {"temperature": 0, "max_tokens": 32},
        description="Sampling fields sent with each request.",
    )
    concurrency: int = Field(default=4, ge=1, le=64, description="Requests in flight at once.")
    name: str | None = Field(
        default=None,
        pattern=DATASET_PATTERN,
        description="The labelled dataset (default: `<dataset>-labelled`).",
    )
    fresh: bool = Field(
        default=False,
        description="Start over instead of continuing the last run of this same labelling.",
    )

    @model_validator(mode="after")
    def _one_label_set(self) -> LabelRequest:
        if (self.labels is None) == (self.labels_from is None):
            raise ValueError("give exactly one of labels and labels_from")
        if self.labels is not None and len(set(self.labels)) != len(self.labels):
            raise ValueError("labels must be distinct")
        return self

    def identity(self) -> dict[str, Any]:
        """What makes two requests the same labelling (a re-run continues the other)."""
        return self.model_dump(mode="json", exclude={"concurrency", "fresh", "name"})


class LabelCounts(BaseModel):
    items: int
    done: int = Field(description="Items the teacher answered or failed on.")
    labelled: int = Field(description="Answers that are one of the labels.")
    unmapped: int = Field(description="Answers outside the label set (left out).")
    failed: int = Field(description="Requests that failed (asked again when the run resumes).")


class LabelExample(BaseModel):
    item_index: int
    request_id: str | None
    text: str
    answer: str
    error: str | None = None


class LabelRunOut(BaseModel):
    id: int
    dataset: str = Field(description="`name@version` labelled.")
    teacher: str
    status: LabelStatus
    request: LabelRequest
    labels: list[str]
    input_field: str
    counts: LabelCounts
    versions: list[str] = Field(description="The teacher's versions that answered.")
    result: str | None = Field(description="The labelled dataset version, `name@version`.")
    message: str | None
    created_at: datetime
    created_by: str
    heartbeat_at: datetime
    finished_at: datetime | None


class LabelRunDetail(LabelRunOut):
    distribution: dict[str, int] = Field(description="Items per label.")
    unmapped_examples: list[LabelExample]
    failed_examples: list[LabelExample]


class LabelRunList(BaseModel):
    object: Literal["list"] = "list"
    data: list[LabelRunOut]


class DistilRequest(BaseModel):
    """Train a student on a labelled dataset version and register it as a version."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(pattern=REFERENCE_PATTERN, description="`name` or `name@version`.")
    model: str = Field(
        pattern=MODEL_PATTERN,
        description="The model the student becomes a version of (created if needed).",
    )
    input_field: str | None = Field(
        default=None,
        pattern=FIELD_PATTERN,
        description="The text field (default: input, text, question or prompt).",
    )
    label_field: str = Field(default="label", pattern=FIELD_PATTERN)
    gold_field: str | None = Field(
        default=None,
        pattern=FIELD_PATTERN,
        description="Also score the hold-out against this field (true labels, if known).",
    )
    holdout: float = Field(
        default=0.2,
        ge=0.05,
        le=0.5,
        description="Share held out per label when the items carry no `split`.",
    )
    c: float = Field(
        default=10.0, gt=0, le=1e6, description="Inverse regularisation of the head (C)."
    )
    max_iter: int = Field(default=1000, ge=10, le=100_000)
    class_weight: Literal["balanced"] | None = Field(
        default=None, description="`balanced`: weigh rare labels up."
    )
    embedding_model: str = Field(
        default="default-embedding",
        pattern=ROUTE_PATTERN,
        description="The embedding route the texts go through (a sentence-transformers "
        "version); the student serves with the same encoder.",
    )
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    notes: str = Field(default="", max_length=2000)


class DistillationOut(BaseModel):
    id: int
    model: str
    version: int | None = Field(description="The version registered (when done).")
    dataset: str = Field(description="`name@version` trained on.")
    status: DistilStatus
    stage: Stage
    request: DistilRequest
    metrics: dict[str, Any]
    lineage: dict[str, Any]
    artifact_uri: str | None
    message: str | None
    created_at: datetime
    created_by: str
    finished_at: datetime | None


class DistillationList(BaseModel):
    object: Literal["list"] = "list"
    data: list[DistillationOut]
