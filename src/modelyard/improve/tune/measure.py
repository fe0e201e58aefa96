"""What a trial measured of its eval run: the objective, mean latency and cost per item, and
how far each bound is exceeded (Optuna's constraints: feasible when none is above 0)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from statistics import fmean
from typing import Any, Literal

from modelyard.evaluate.protocol import EvalItemOut, EvalRunOut
from modelyard.improve.tune.protocol import Constraints
from modelyard.improve.tune.space import Objective
from modelyard.observe.cost import cost_of
from modelyard.registry import Registry, RegistryError

# "model@n" -> that version's parameters (its `price` among them)
Parameters = Callable[[str], Mapping[str, Any]]


@dataclass(frozen=True)
class Measured:
    state: Literal["complete", "failed"]
    value: float | None
    latency_ms: float | None
    cost: float | None
    constraints: dict[str, float]
    feasible: bool | None
    errors: int
    message: str | None = None


def version_parameters(registry: Registry) -> Parameters:
    """Reads each version's parameters once (a trial's items share a few versions)."""
    seen: dict[str, Mapping[str, Any]] = {}

    def parameters(version: str) -> Mapping[str, Any]:
        if version not in seen:
            model, _, number = version.partition("@")
            try:
                seen[version] = registry.version(model, int(number)).parameters
            except (RegistryError, ValueError):
                seen[version] = {}
        return seen[version]

    return parameters


def measure(
    run: EvalRunOut,
    answers: list[EvalItemOut],
    objective: Objective,
    bounds: Constraints,
    parameters: Parameters,
) -> Measured:
    """A trial's measurements; ``failed`` when no item got an answer or the objective has
    no value (a failed trial is never the best, and the sampler learns to avoid it)."""
    errors = sum(answer.error is not None for answer in answers)
    answered = [answer for answer in answers if answer.error is None]
    value = (run.metrics.get(objective.key) or {}).get("value")
    if not answered or value is None:
        first = next((a.error for a in answers if a.error), None)
        why = f"no item got an answer ({first})" if not answered else f"no {objective.key}"
        return Measured("failed", None, None, None, {}, None, errors, why)
    latency = fmean(answer.latency_ms for answer in answered)
    cost = fmean(
        cost_of(parameters(a.version), a.prompt_tokens, a.completion_tokens) if a.version else 0.0
        for a in answered
    )
    excess = over_bounds(bounds, latency, cost)
    feasible = all(amount <= 0 for amount in excess.values())
    return Measured("complete", float(value), latency, cost, excess, feasible, errors)


def over_bounds(bounds: Constraints, latency_ms: float, cost: float) -> dict[str, float]:
    """How far each bound is exceeded (negative: the room left)."""
    excess: dict[str, float] = {}
    if bounds.max_latency_ms is not None:
        excess["latency_ms"] = latency_ms - bounds.max_latency_ms
    if bounds.max_cost is not None:
        excess["cost"] = cost - bounds.max_cost
    return excess
