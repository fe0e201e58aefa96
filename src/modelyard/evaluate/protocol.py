"""Wire types of evaluation runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel


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


class EvalRunList(BaseModel):
    object: Literal["list"] = "list"
    data: list[EvalRunOut]
