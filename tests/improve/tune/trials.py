"""Trials made up for the pure parts of a study (the sampler, importances, ranking)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from modelyard.improve.tune.protocol import TrialOut, TrialSettings

SETTINGS = TrialSettings(model="m", system=None, template="t", few_shot=0, generation={})


def trial(
    number: int,
    value: float | None,
    params: dict[str, Any] | None = None,
    *,
    feasible: bool | None = True,
    state: str = "complete",
    constraints: dict[str, float] | None = None,
) -> TrialOut:
    return TrialOut.model_validate(
        {
            "number": number,
            "state": state,
            "default": False,
            "params": params or {},
            "settings": SETTINGS,
            "value": value,
            "latency_ms": 1.0,
            "cost": 0.0,
            "constraints": constraints or {},
            "feasible": feasible,
            "errors": 0,
            "run_id": None,
            "message": None,
            "started_at": datetime.now(UTC),
            "finished_at": None,
        }
    )
