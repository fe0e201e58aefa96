"""The robustness report's JSON API: a clean run's perturbed runs set against it. A
perturbed run is started like any run (``POST /api/eval/runs`` with ``task.perturbation``)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Request

from modelyard.errors import error_responses
from modelyard.evaluate.robustness.report import robustness_report
from modelyard.evaluate.runs import EvalRuns
from modelyard.guard.auth import requires
from modelyard.guard.roles import Access

router = APIRouter(prefix="/api/eval", tags=["evaluate"], responses=error_responses(401, 403))
READ = requires(Access.read)
RunId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get("/runs/{run_id}/robustness", dependencies=[READ], responses=error_responses(400, 404))
async def get_robustness(run_id: RunId, request: Request) -> dict[str, Any]:
    """Each perturbed run of this clean run (same task, model and items) against it: per
    metric the paired bootstrap 95% interval of the change, and McNemar's exact test."""
    runs = EvalRuns(request.app.state.services.store)
    return await asyncio.to_thread(robustness_report, runs, run_id)


def attach(app: FastAPI) -> None:
    app.include_router(router)
