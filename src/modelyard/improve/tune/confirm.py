"""The best trial confirmed on the held-out items, which no trial saw: the task's own
settings on the route's production alias (the baseline) and the best trial's settings (the
candidate), compared item by item with the paired bootstrap (``evaluate.compare``)."""

from __future__ import annotations

import asyncio
from typing import Any

from modelyard.evaluate.compare import compare
from modelyard.improve.tune.evaluator import Evaluator
from modelyard.improve.tune.protocol import Confirmation, TrialOut
from modelyard.improve.tune.space import Objective, configured, production_of, settings_for
from modelyard.improve.tune.studies import Studies, StudyState


async def confirm(
    evaluator: Evaluator, studies: Studies, state: StudyState, best: TrialOut | None
) -> Confirmation:
    """Run (or finish) the confirmation of ``best`` and store what it found."""
    request = state.request
    baseline_model = production_of(request.model)
    found = Confirmation(
        status="running",
        objective=state.objective.key,
        holdout_items=len(state.holdout),
        baseline_model=baseline_model,
    )
    if best is None:
        reason = "no trial completed within the bounds: nothing to confirm"
        return await _save(studies, state, found.model_copy(update=_skipped(reason)))
    baseline = settings_for(request, {}, baseline_model)
    if best.settings.model_dump(exclude={"model"}) == baseline.model_dump(exclude={"model"}) and (
        production_of(best.settings.model) == best.settings.model
    ):
        reason = f"trial {best.number} is the production configuration itself"
        return await _save(studies, state, found.model_copy(update=_skipped(reason)))
    found = found.model_copy(update={"trial": best.number, "candidate_model": best.settings.model})
    if state.confirmation is not None and state.confirmation.trial == best.number:
        found = state.confirmation  # resumed: finish the runs it started
    return await _compared(evaluator, studies, state, found, best)


async def _compared(
    evaluator: Evaluator,
    studies: Studies,
    state: StudyState,
    found: Confirmation,
    best: TrialOut,
) -> Confirmation:
    task, holdout = state.request.task, state.holdout
    candidate_task = configured(task, best.settings)
    candidate_model = best.settings.model
    if found.baseline_run is None:
        run_id = await evaluator.start(task, holdout, found.baseline_model)
        found = await _save(studies, state, found.model_copy(update={"baseline_run": run_id}))
    if found.candidate_run is None:
        run_id = await evaluator.start(candidate_task, holdout, candidate_model)
        found = await _save(studies, state, found.model_copy(update={"candidate_run": run_id}))
    base, base_items = await evaluator.finish(
        task, holdout, found.baseline_model, found.baseline_run or 0
    )
    cand, cand_items = await evaluator.finish(
        candidate_task, holdout, candidate_model, found.candidate_run or 0
    )
    comparison = await asyncio.to_thread(compare, task, base, base_items, cand, cand_items)
    found = found.model_copy(update={"status": "done", **_verdict(state.objective, comparison)})
    return await _save(studies, state, found)


def _verdict(objective: Objective, comparison: dict[str, Any]) -> dict[str, Any]:
    """The objective's difference, McNemar's p when it tested the objective, and whether
    the interval lies wholly on the better side of 0."""
    difference = comparison["differences"].get(objective.key)
    mcnemar = comparison.get("mcnemar") or {}
    p_value = mcnemar.get("p_value") if mcnemar.get("metric") == objective.key else None
    if difference is None:
        reason = f"{objective.key} has no per-item scores: the paired bootstrap cannot test it"
        return {"comparison": comparison, "reason": reason}
    low, high = difference["ci_low"], difference["ci_high"]
    better = low > 0 if objective.higher_is_better else high < 0
    return {
        "comparison": comparison,
        "difference": difference,
        "p_value": p_value,
        "better": bool(better),
    }


def _skipped(reason: str) -> dict[str, Any]:
    return {"status": "skipped", "reason": reason}


async def _save(studies: Studies, state: StudyState, found: Confirmation) -> Confirmation:
    await asyncio.to_thread(studies.save_confirmation, state.id, found)
    return found
