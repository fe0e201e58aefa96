"""A version's parameters, as each engine kind declares them: a pydantic model that refuses
an unknown name or a wrong type, so a typo fails when the version is registered."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails


class Price(BaseModel):
    """What a request to the version costs, in the price's unit (``observe/cost.py``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input_per_million: float = Field(default=0.0, ge=0, description="Per million prompt tokens.")
    output_per_million: float = Field(
        default=0.0, ge=0, description="Per million completion tokens."
    )
    per_cpu_hour: float = Field(
        default=0.0, ge=0, description="Per hour of CPU time the request used (local kinds)."
    )


class EngineParameters(BaseModel):
    """What every kind accepts; a kind subclasses it with its own parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    price: Price | None = Field(
        default=None,
        description="`{input_per_million, output_per_million, per_cpu_hour}`: what a request "
        "costs (see observe.md); none costs 0.",
    )


def explain(error: ValidationError, kind: str, model: type[BaseModel]) -> str:
    """One sentence per refused parameter, then the names the kind accepts."""
    problems = "; ".join(_problem(item) for item in error.errors(include_url=False))
    accepted = ", ".join(sorted(model.model_fields))
    return f"engine kind '{kind}': {problems}. It accepts: {accepted} (see docs/engines.md)"


def _problem(item: ErrorDetails) -> str:
    name = ".".join(str(part) for part in item["loc"])
    if not name:
        return f"parameters must be an object of names and values, got {item['input']!r}"
    if item["type"] == "extra_forbidden":
        return f"unknown parameter '{name}'"
    if item["type"] == "missing":
        return f"parameter '{name}' is required"
    if item["type"] == "value_error" and "ctx" in item:
        return f"parameter '{name}': {item['ctx']['error']}"
    message = item["msg"][:1].lower() + item["msg"][1:]
    return f"parameter '{name}': {message}, got {item['input']!r}"
