"""Wire types of evaluation runs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from modelyard.evaluate.tasks import Task
from modelyard.wire import JSON_INTEGER


class EvalItemOut(BaseModel):
    item_index: int
    request_id: str | None
    version: str | None
    question: str
    prediction: str
    extracted: str
    reference: Any
    error: str | None
    latency_ms: float
    prompt_tokens: int
    completion_tokens: int


class EvalRunOut(BaseModel):
    id: int
    task: str
    dataset_sha256: str
    model: str
    versions: list[str]
    item_count: int
    done: int
    status: Literal["running", "done", "failed"]
    metrics: dict[str, Any]
    created_at: datetime
    finished_at: datetime | None
    created_by: str
    error: str | None = Field(default=None, description="Why a failed run stopped.")


class EvalRunList(BaseModel):
    object: Literal["list"] = "list"
    data: list[EvalRunOut]


class EvalRunRequest(BaseModel):
    """A run to start: the task (as a task file holds it, its dataset registered), the model
    it asks, and the sample, as ``modelyard eval run`` takes them."""

    model_config = ConfigDict(extra="forbid")

    task: Task | None = Field(
        default=None, description="The task as a JSON object; or give `task_yaml`."
    )
    task_yaml: str | None = Field(
        default=None,
        min_length=1,
        max_length=200_000,
        description="The task as a task file's YAML text; or give `task`.",
    )
    model: str = Field(
        default="default",
        min_length=1,
        max_length=160,
        description="Public model name (`NAME`, `NAME:alias`) or `NAME@VERSION`.",
    )
    limit: Annotated[int, Field(ge=1, le=1_000_000), JSON_INTEGER] | None = Field(
        default=None, description="A sample of this many items (default: every item)."
    )
    seed: Annotated[int, Field(ge=0, le=2**31 - 1), JSON_INTEGER] = Field(
        default=0, description="Seed of the sample."
    )
    concurrency: Annotated[int, Field(ge=1, le=64), JSON_INTEGER] = Field(
        default=4, description="Items asked at once."
    )
    allow_train_overlap: bool = Field(
        default=False,
        description="Grade items a curated dataset's train split holds (refused with 409 "
        "`train_eval_overlap` by default; recorded in the run's spec).",
    )
