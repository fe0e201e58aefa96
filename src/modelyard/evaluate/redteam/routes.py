"""The red-team and leakage summary's JSON API: runs of the suites side by side (one per
route), with what the guard blocked and flagged. The runs themselves are ordinary eval runs
of ``tasks/redteam.yaml`` and ``tasks/leakage.yaml`` (``POST /api/eval/runs``)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request

from modelyard.errors import error_responses
from modelyard.evaluate.redteam.summary import redteam_summary
from modelyard.guard.auth import requires
from modelyard.guard.roles import Access

router = APIRouter(prefix="/api/eval", tags=["evaluate"], responses=error_responses(401, 403))
READ = requires(Access.read)
RunIds = Annotated[list[int], Query(min_length=1, max_length=20)]


@router.get("/redteam", dependencies=[READ], responses=error_responses(400, 404))
async def get_redteam(request: Request, run: RunIds) -> dict[str, Any]:
    """Attack-success (or leak) and refusal rates of each run given (``?run=1&run=2``), and
    how many of its requests the guard blocked or flagged."""
    store = request.app.state.services.store
    return await asyncio.to_thread(redteam_summary, store, run)


def attach(app: FastAPI) -> None:
    app.include_router(router)
