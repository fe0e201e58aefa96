"""Wire types of compression (``/api/compress``): quantised variants of a version, each
registered as a version of the same model and measured beside its parent."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from modelyard.evaluate.gates import GateRule
from modelyard.evaluate.tasks import Task
from modelyard.registry.protocol import NAME_PATTERN as MODEL_PATTERN

# A dataset, ``name`` (its latest version) or ``name@version``.
REFERENCE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}(@[1-9][0-9]{0,8})?$"
FIELD_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
METHOD_PATTERN = r"^[A-Za-z0-9_]{1,16}$"
CompressStatus = Literal["running", "failed", "done"]
Stage = Literal[
    "queued", "reading", "quantising", "measuring", "evaluating", "comparing", "done", "failed"
]
Role = Literal["parent", "variant"]


class TextSource(BaseModel):
    """The texts a variant is measured on: a dataset version's items, or a list given."""

    model_config = ConfigDict(extra="forbid")

    dataset: str | None = Field(
        default=None, pattern=REFERENCE_PATTERN, description="`name` or `name@version`."
    )
    field: str | None = Field(
        default=None,
        pattern=FIELD_PATTERN,
        description="The item field holding the text (default: input, text, question, prompt).",
    )
    label_field: str | None = Field(
        default=None,
        pattern=FIELD_PATTERN,
        description="Embedding models: a label per item, to compare classification accuracy.",
    )
    texts: list[str] | None = Field(default=None, min_length=1, max_length=5000)
    limit: int = Field(default=200, ge=1, le=5000, description="At most this many texts.")

    @model_validator(mode="after")
    def _one_source(self) -> TextSource:
        if (self.dataset is None) == (self.texts is None):
            raise ValueError("give exactly one of dataset (name@version) or texts (a list)")
        if self.texts is not None and self.label_field is not None:
            raise ValueError("label_field goes with dataset, not with texts")
        return self


class CompressEval(BaseModel):
    """An eval task run on the parent and on every variant (the same items), through the
    serving path as the caller; each variant's scores compared with the parent's, paired."""

    model_config = ConfigDict(extra="forbid")

    task: Task | None = Field(default=None, description="The task as a JSON object.")
    task_yaml: str | None = Field(
        default=None, min_length=1, max_length=200_000, description="Or a task file's YAML."
    )
    limit: int | None = Field(default=None, ge=1, le=100_000, description="A sample of items.")
    seed: int = Field(default=0, ge=0, le=2**31 - 1, description="Seed of the sample.")
    concurrency: int = Field(default=4, ge=1, le=64)


class CompressRequest(BaseModel):
    """Quantised variants of ``model@version``, each registered as a new version."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(pattern=MODEL_PATTERN)
    version: int = Field(ge=1, le=2**31 - 1, description="The parent version.")
    to: list[str] = Field(
        min_length=1,
        max_length=12,
        json_schema_extra={"uniqueItems": True},
        description="Quantisation types: llama.cpp's (`Q8_0`, `Q5_K_M`, `Q4_K_M`, ...) for a "
        "`llamacpp` version, `int8` for a `sentence-transformers` one.",
    )
    texts: TextSource | None = Field(
        default=None,
        description="Perplexity texts (chat models) or agreement texts (embedding models); "
        "without them quality is not measured.",
    )
    streams: list[int] = Field(
        default_factory=lambda: [1, 8],
        min_length=1,
        max_length=4,
        description="Concurrent streams at which decode tokens/s is measured.",
    )
    max_tokens: int = Field(default=64, ge=8, le=1024, description="Tokens decoded per stream.")
    threads: int = Field(default=0, ge=0, le=256, description="CPU threads (0: every core).")
    eval: CompressEval | None = Field(
        default=None,
        description="Chat models: an eval task (its dataset registered) scored on every row.",
    )
    gate: list[GateRule] = Field(
        default_factory=list,
        max_length=20,
        description="Rules each variant's measurements must meet against the parent's "
        "(metrics: size_mb, load_s, rss_mb, tokens_per_s_<streams>, "
        "aggregate_tokens_per_s_<streams>, perplexity, eval_<metric>; embeddings: "
        "cosine_mean, cosine_min, accuracy, texts_per_s).",
    )
    notes: str = Field(default="", max_length=2000)

    @model_validator(mode="after")
    def _distinct(self) -> CompressRequest:
        if len(set(self.to)) != len(self.to):
            raise ValueError("to names a quantisation type twice")
        if any(not 1 <= streams <= 64 for streams in self.streams):
            raise ValueError("streams must each be between 1 and 64")
        return self


class VariantOut(BaseModel):
    """One row of a compression's table: the parent or a variant, with its measurements."""

    role: Role
    version: int | None = Field(description="The version (set once registered).")
    method: str = Field(description="The quantisation type, or the parent's own type.")
    measurements: dict[str, Any]
    lineage: dict[str, Any] = Field(
        default_factory=dict, description="Where a variant comes from: parent, method, tool."
    )
    comparison: dict[str, Any] = Field(
        default_factory=dict, description="Paired comparisons with the parent."
    )
    gate: dict[str, Any] | None = Field(
        default=None, description="The gate's verdict and checks (variants, when gated)."
    )
    pareto: bool = Field(
        default=False,
        description="No other row is at least as good on quality, size and speed and better "
        "on one.",
    )
    notes: list[str] = Field(default_factory=list)


class Axis(BaseModel):
    role: Literal["quality", "size", "speed"]
    metric: str
    greater_is_better: bool


class CompressionOut(BaseModel):
    id: int
    model: str
    version: int = Field(description="The parent version.")
    engine_kind: str
    status: CompressStatus
    stage: Stage
    request: CompressRequest
    variants: list[VariantOut]
    axes: list[Axis] = Field(
        default_factory=list,
        description="The front's axes (quality, size, speed) that every row has a value on.",
    )
    message: str | None
    created_at: datetime
    created_by: str
    finished_at: datetime | None


class CompressionList(BaseModel):
    object: Literal["list"] = "list"
    data: list[CompressionOut]
