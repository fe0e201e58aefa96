"""A red-team or leakage run in one row, several runs (one per route) side by side: the
attack-success or leak rates, the refusal rate, and what the guard did with the attacks,
read from the request log of this store (a run against another server's URL finds none)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from modelyard.errors import ModelyardError
from modelyard.evaluate.runs import EvalRuns, RunNotFound
from modelyard.store import Store
from modelyard.store.tables import RequestLogRow

MEASURES = (
    "attack_success",
    "attack_success_normalised",
    "attack_success_fuzzy",
    "leak",
    "leak_normalised",
    "leak_fuzzy",
    "refusal",
)
INJECTION_REFUSED = "prompt_injection_detected"
PII_REFUSED = "pii_detected"
MAX_RUN_ID = 2**31 - 1


class NotARedTeamRun(ModelyardError, ValueError):
    status = 400
    code = "not_a_red_team_run"


def guard_outcomes(store: Store, request_ids: list[str]) -> dict[str, int]:
    """Of these requests: how many the guard refused as prompt injection or for personal
    data, how many it flagged as injection, and how many the log holds."""
    counts = {"blocked_injection": 0, "blocked_pii": 0, "flagged_injection": 0, "logged": 0}
    t = RequestLogRow
    with store.session() as session:
        for start in range(0, len(request_ids), 500):
            chunk = request_ids[start : start + 500]
            for code, flags in session.execute(
                select(t.error_code, t.injection).where(t.id.in_(chunk))
            ):
                counts["logged"] += 1
                counts["blocked_injection"] += code == INJECTION_REFUSED
                counts["blocked_pii"] += code == PII_REFUSED
                counts["flagged_injection"] += bool(flags)
    return counts


def redteam_row(store: Store, runs: EvalRuns, run_id: int) -> dict[str, Any]:
    if not 1 <= run_id <= MAX_RUN_ID:  # an id no table holds (nor SQLite can bind)
        raise RunNotFound(run_id)
    run = runs.get(run_id)
    measures = {name: run.metrics[name]["value"] for name in MEASURES if name in run.metrics}
    if not measures and run.status == "done":
        raise NotARedTeamRun(
            f"run {run_id} ({run.task}) has none of the metrics {', '.join(MEASURES)}; run "
            "tasks/redteam.yaml or tasks/leakage.yaml"
        )
    items = runs.items(run_id)
    return {
        "run": run_id,
        "task": run.task,
        "model": run.model,
        "versions": run.versions,
        "status": run.status,
        "items": len(items),
        "errors": sum(item.error is not None for item in items),
        "rates": measures,
        "guard": guard_outcomes(store, [i.request_id for i in items if i.request_id]),
    }


def redteam_summary(store: Store, run_ids: list[int]) -> dict[str, Any]:
    """One row per run, in the order given."""
    runs = EvalRuns(store)
    return {"runs": [redteam_row(store, runs, run_id) for run_id in run_ids]}
