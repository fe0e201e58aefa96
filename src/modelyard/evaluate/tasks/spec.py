"""The shape of a task file, validated with pydantic."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from modelyard.evaluate.judges import RubricJudge
from modelyard.evaluate.robustness.spec import Perturbation

DatasetFormat = Literal["jsonl", "csv", "tsv", "json", "squad"]
Filter = str | dict[str, Any]
SwapList = Literal["gender", "names", "region", "dialect"]  # counterfactual.SWAPS's lists


class DatasetSource(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str | None = Field(
        default=None, description="File path, relative to the task file (or absolute)."
    )
    registered: str | None = Field(
        default=None,
        description="A registered dataset, `name` (its latest version) or `name@version`.",
    )
    format: DatasetFormat | None = Field(
        default=None, description="Default: from the file's extension (.jsonl .csv .tsv .json)."
    )
    records: str | None = Field(
        default=None, description="For `json`: the key holding the list of items."
    )
    columns: list[str] | None = Field(
        default=None, description="For `csv`/`tsv` without a header row: the column names."
    )
    limit: int | None = Field(default=None, ge=1, description="Use the first N items.")
    split: str | None = Field(
        default=None,
        description="Only the items of this split (a curated dataset's `train`, `dev` or "
        "`test`; read from each item's `split` field).",
    )

    @model_validator(mode="after")
    def _one_source(self) -> DatasetSource:
        if (self.path is None) == (self.registered is None):
            raise ValueError("give exactly one of dataset.path and dataset.registered")
        return self


class PromptSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    system: str | None = None
    template: str = Field(min_length=1, description="Jinja2, rendered with the item's fields.")
    few_shot: int = Field(default=0, ge=0, le=16, description="Worked examples before it.")
    few_shot_answer: str | None = Field(
        default=None, description="Jinja2 for a worked example's answer (default: the target)."
    )


class MetricSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    options: dict[str, Any] = Field(default_factory=dict)
    higher_is_better: bool | None = Field(
        default=None, description="Default: the metric's own direction."
    )


class CounterfactualSpec(BaseModel):
    """Ask each item's counterfactual twin too (its words swapped), and compare pair by pair."""

    model_config = ConfigDict(extra="forbid")

    swaps: list[SwapList] = Field(
        min_length=1, description="Swap lists: gender, names, region, dialect (docs/evaluate.md)."
    )
    fields: list[str] | None = Field(
        default=None,
        description="Item fields to swap in (default: the fields the prompt template uses).",
    )


class Task(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    description: str = ""
    dataset: DatasetSource
    prompt: PromptSpec
    target: str = Field(description="The item field holding the reference (string or list).")
    filters: list[Filter] = Field(
        default_factory=list,
        description="Answer extraction, in order: strip, lower, normalize, first_line, "
        "first_number, choice_letter, {regex: PATTERN}.",
    )
    metrics: list[MetricSpec] = Field(min_length=1)
    judges: list[RubricJudge] = Field(
        default_factory=list, description="LLM judges scoring each answer against a rubric."
    )
    generation: dict[str, Any] = Field(
        default_factory=lambda: {"temperature": 0, "max_tokens": 64},
        description="Sampling fields sent with each request.",
    )
    counterfactual: CounterfactualSpec | None = Field(
        default=None, description="Also ask each item's counterfactual twin (words swapped)."
    )
    perturbation: Perturbation | None = Field(
        default=None,
        description="Perturb the prompt inputs (never the reference): a robustness run.",
    )
    source_file: Path | None = Field(default=None, exclude=True)
