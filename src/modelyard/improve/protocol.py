"""Wire types of curation: what a dataset version is built from and how, and the report of
what each step did and why."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from modelyard.evaluate.datasets import DatasetOut
from modelyard.wire import JSON_INTEGER, JSON_NUMBER

Split = Literal["train", "dev", "test"]
SPLITS: tuple[Split, ...] = ("train", "dev", "test")
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
REFERENCE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}(@[1-9][0-9]{0,8})?$"


class LogSelection(BaseModel):
    """Which logged requests to read (newest first), and with which feedback."""

    model_config = ConfigDict(extra="forbid")

    route: str | None = Field(default=None, description="Only requests to this route.")
    days: Annotated[float, JSON_NUMBER] = Field(
        default=7, gt=0, le=3660, description="How far back to look."
    )
    feedback: str | None = Field(
        default=None, description="Only requests with feedback of this name (e.g. thumbs)."
    )
    negative_only: StrictBool = Field(
        default=False, description="Only negative feedback: boolean false or a score of 0."
    )
    limit: Annotated[int, JSON_INTEGER] = Field(
        default=100_000, ge=1, le=1_000_000, description="At most this many requests (newest)."
    )


class Cleaning(BaseModel):
    """Which kinds of row to drop; each is counted in the report either way."""

    model_config = ConfigDict(extra="forbid")

    failed: StrictBool = Field(default=True, description="Requests that did not end with 200.")
    empty: StrictBool = Field(default=True, description="No question, or no answer to a request.")
    truncated: StrictBool = Field(
        default=True, description="Answers cut at the token limit (finish_reason `length`)."
    )
    refused: StrictBool = Field(
        default=True,
        description="Refusals: finish_reason `content_filter`, or an answer that opens with "
        'a refusal ("I\'m sorry, but I can\'t…", "抱歉，我无法…").',
    )
    shadow: StrictBool = Field(
        default=True, description="Shadow copies (variant `shadow`): no client saw them."
    )


class Dedup(BaseModel):
    """Exact duplicates (same normalized input) and near duplicates (MinHash LSH over
    character 5-grams of the input)."""

    model_config = ConfigDict(extra="forbid")

    exact: StrictBool = True
    near: StrictBool = True
    threshold: Annotated[float, JSON_NUMBER] = Field(
        default=0.6, ge=0.3, le=1.0, description="Jaccard similarity that makes two inputs near."
    )
    num_perm: Annotated[int, JSON_INTEGER] = Field(
        default=128, ge=16, le=512, description="MinHash permutations."
    )


class Outliers(BaseModel):
    """An isolation forest over prompt and answer length, latency, tokens and how common
    the item's language is."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["flag", "drop", "off"] = Field(
        default="flag", description="Flag outliers in the items (`outlier`), drop them, or skip."
    )
    contamination: Annotated[float, Field(gt=0, le=0.5), JSON_NUMBER] | Literal["auto"] = Field(
        default="auto",
        description="The share expected to be outliers, (0, 0.5]; `auto`: scores below the "
        "far-out fence of all scores (first quartile - 3 IQR).",
    )
    seed: Annotated[int, JSON_INTEGER] = Field(default=0, ge=0, le=2**31 - 1)


class Splits(BaseModel):
    """Stratified train/dev/test splits; the weights are normalized to shares."""

    model_config = ConfigDict(extra="forbid")

    train: Annotated[float, JSON_NUMBER] = Field(default=0.8, gt=0, le=100)
    dev: Annotated[float, JSON_NUMBER] = Field(default=0.1, ge=0, le=100)
    test: Annotated[float, JSON_NUMBER] = Field(default=0.1, ge=0, le=100)
    by: Literal["label_language", "label", "language", "none"] = Field(
        default="label_language", description="What each split keeps the shares of."
    )
    seed: Annotated[int, JSON_INTEGER] = Field(default=0, ge=0, le=2**31 - 1)


class CurateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, description="The dataset to add a version to.")
    log: LogSelection | None = Field(
        default_factory=LogSelection, description="Logged requests to read; null: none."
    )
    datasets: list[Annotated[str, Field(pattern=REFERENCE_PATTERN)]] = Field(
        default_factory=list,
        max_length=20,
        description="Registered datasets whose items join in, `name` or `name@version`.",
    )
    label: str | None = Field(
        default=None,
        pattern=r"^(output|feedback:.+)$",
        description="An item's class: `output` (the answer is the class) or `feedback:NAME` "
        "(the value of that feedback).",
    )
    scrub_pii: StrictBool = Field(
        default=True,
        description="Replace PII with placeholders (the guard's detector). False is recorded "
        "in the version's provenance.",
    )
    languages: list[str] | None = Field(
        default=None,
        max_length=100,
        description="Restrict language identification to these ISO 639 codes (default: all).",
    )
    cleaning: Cleaning = Field(default_factory=Cleaning)
    dedup: Dedup = Field(default_factory=Dedup)
    outliers: Outliers = Field(default_factory=Outliers)
    splits: Splits = Field(default_factory=Splits)
    examples: Annotated[int, JSON_INTEGER] = Field(
        default=5, ge=0, le=50, description="Examples per step in the report."
    )


class Example(BaseModel):
    request_ids: list[str]
    text: str = Field(description="The input as curated (PII scrubbed unless opted out).")
    note: str = ""


class StepReport(BaseModel):
    step: str
    what: str = Field(description="What the step did and why.")
    seen: int
    dropped: int = 0
    flagged: int = 0
    counts: dict[str, int] = Field(default_factory=dict)
    examples: list[Example] = Field(default_factory=list)


class PiiProvenance(BaseModel):
    scrubbed: bool
    opted_out_by: str | None = None
    entities: dict[str, int] = Field(default_factory=dict)


class CurationReport(BaseModel):
    read: int = Field(description="Rows read: logged requests and dataset items.")
    kept: int
    dropped: int
    dropped_by: dict[str, int] = Field(description="Why each dropped row went; adds up.")
    steps: list[StepReport]
    languages: dict[str, int]
    labels: dict[str, int]
    splits: dict[str, dict[str, int]] = Field(
        description="Per split: its items, and per language and label."
    )
    pii: PiiProvenance
    language_id: str = Field(description="The language-ID library that tagged the items.")


class CurateOut(BaseModel):
    dataset: DatasetOut | None = Field(description="The version built; null for a preview.")
    request: CurateRequest
    report: CurationReport


class CurationList(BaseModel):
    object: Literal["list"] = "list"
    data: list[DatasetOut]
