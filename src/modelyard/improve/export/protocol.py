"""Wire types of exports for an external trainer and of the fine-tunes registered from them
(``/api/finetune``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from modelyard.improve.distil.protocol import REFERENCE_PATTERN
from modelyard.registry.protocol import NAME_PATTERN as MODEL_PATTERN

ExportFormat = Literal["openai", "sharegpt", "sharegpt-json"]
SPLIT_PATTERN = r"^[A-Za-z0-9_-]{1,16}$"
# An export's id, or the dataset version it exports: ``name@version``.
FROM_EXPORT_PATTERN = r"^([1-9][0-9]{0,9}|[A-Za-z0-9][A-Za-z0-9._-]{0,127}@[1-9][0-9]{0,8})$"
Scalar = str | int | float | bool | None


class ExportRequest(BaseModel):
    """A dataset version to export for an external trainer."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(
        pattern=REFERENCE_PATTERN, description="`name` (its latest version) or `name@version`."
    )
    format: ExportFormat = Field(
        default="openai",
        description="`openai`: chat fine-tuning JSONL; `sharegpt`: ShareGPT conversations, "
        "one per line; `sharegpt-json`: the same as one JSON array.",
    )
    split: str | None = Field(
        default=None,
        pattern=SPLIT_PATTERN,
        description="Only the items of this split (`train`, ...); default: every item.",
    )


class Skipped(BaseModel):
    """An item that could not be converted, and why (its content is not repeated here)."""

    item_index: int
    reason: str
    detail: str


class ExportCounts(BaseModel):
    items: int = Field(description="Items in the dataset version.")
    other_splits: int = Field(description="Items of other splits, left out as asked.")
    written: int = Field(description="Conversations written (lines, or array elements).")
    corrected: int = Field(description="Of those, conversations whose answer is a correction.")
    skipped: int = Field(description="Items that could not be converted.")
    skipped_by: dict[str, int] = Field(description="Skipped items by reason.")


class ExportOut(BaseModel):
    """An export's manifest: what it holds and the SHA-256 of its bytes (the same version,
    format and split always give the same bytes)."""

    id: int
    dataset: str = Field(description="`name@version` exported.")
    dataset_sha256: str
    format: ExportFormat
    split: str | None
    counts: ExportCounts
    skipped_examples: list[Skipped]
    sha256: str = Field(description="SHA-256 of the exported bytes.")
    bytes: int
    media_type: str
    filename: str
    file_url: str = Field(description="Where the bytes are: `GET` streams them.")
    created_at: datetime
    created_by: str


class FineTuneRequest(BaseModel):
    """What an external trainer made from an export, to register with its lineage."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        pattern=MODEL_PATTERN, description="The model it becomes the next version of."
    )
    from_export: str = Field(
        pattern=FROM_EXPORT_PATTERN,
        description="The export trained on: its id, or `name@version` (that version's "
        "export in `format` and `split`, made now if there is none).",
    )
    format: ExportFormat | None = Field(
        default=None, description="With `name@version`: the export's format (default openai)."
    )
    split: str | None = Field(
        default=None, pattern=SPLIT_PATTERN, description="With `name@version`: its split."
    )
    gguf: str | None = Field(default=None, min_length=1, description="A GGUF file's path.")
    upstream: str | None = Field(
        default=None, min_length=1, description="Base URL of an OpenAI-compatible server (`/v1`)."
    )
    upstream_model: str | None = Field(
        default=None, min_length=1, max_length=256, description="The upstream's model name."
    )
    api_key_env: str | None = Field(
        default=None, min_length=1, max_length=128, description="Env variable of its API key."
    )
    base: str | None = Field(
        default=None, max_length=256, description="The model it was fine-tuned from."
    )
    trainer: str | None = Field(
        default=None, max_length=128, description="What trained it (axolotl, openai, ...)."
    )
    trainer_job: str | None = Field(
        default=None, max_length=256, description="The trainer's job id."
    )
    hyperparameters: dict[str, Scalar] = Field(
        default_factory=dict, description="The trainer's settings, as the user gives them."
    )
    parameters: dict[str, Any] = Field(
        default_factory=dict, description="Engine parameters of the version (docs/engines.md)."
    )
    notes: str = Field(default="", max_length=2000)


class FineTuneOut(BaseModel):
    """A registered fine-tune: the version and where it comes from."""

    id: int
    model: str
    version: int
    engine_kind: str
    artifact_uri: str
    artifact_sha256: str | None
    lineage: dict[str, Any]
    notes: str
    created_at: datetime
    created_by: str


class FineTuneOverview(BaseModel):
    """Exports and registered fine-tunes, newest first."""

    exports: list[ExportOut]
    finetunes: list[FineTuneOut]
