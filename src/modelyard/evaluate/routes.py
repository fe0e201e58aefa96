"""Evaluation JSON API: runs, their items and reports, comparisons."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Query, Request

from modelyard.errors import error_responses
from modelyard.evaluate.compare import compare
from modelyard.evaluate.protocol import EvalItemOut, EvalRunList, EvalRunOut
from modelyard.evaluate.report import report, request_costs, task_of
from modelyard.evaluate.runs import EvalRuns
from modelyard.guard.auth import requires
from modelyard.guard.roles import Access
from modelyard.registry import Registry

router = APIRouter(prefix="/api/eval", tags=["evaluate"], responses=error_responses(401, 403))
READ = requires(Access.read)
RunId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _runs(request: Request) -> EvalRuns:
    return EvalRuns(request.app.state.services.store)


@router.get("/runs", response_model=EvalRunList, dependencies=[READ])
async def list_runs(
    request: Request,
    task: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EvalRunList:
    return EvalRunList(data=await asyncio.to_thread(_runs(request).list_runs, task, limit))


@router.get(
    "/runs/{run_id}", response_model=EvalRunOut, dependencies=[READ], responses=error_responses(404)
)
async def get_run(run_id: RunId, request: Request) -> EvalRunOut:
    return await asyncio.to_thread(_runs(request).get, run_id)


@router.get(
    "/runs/{run_id}/items",
    response_model=list[EvalItemOut],
    dependencies=[READ],
    responses=error_responses(404),
)
async def get_items(run_id: RunId, request: Request) -> list[EvalItemOut]:
    runs = _runs(request)
    await asyncio.to_thread(runs.get, run_id)
    return await asyncio.to_thread(runs.items, run_id)


def run_report(request: Request, run_id: int) -> dict[str, Any]:
    runs = _runs(request)
    store = request.app.state.services.store
    items = runs.items(run_id)
    costs = request_costs(store, [i.request_id for i in items if i.request_id])
    spec = runs.spec(run_id)
    return report(runs.get(run_id), items, Registry(store), task_of(spec), costs, spec.get("facts"))


def run_comparison(request: Request, baseline: int, candidate: int) -> dict[str, Any]:
    runs = _runs(request)
    return compare(
        task_of(runs.spec(candidate)),
        runs.get(baseline),
        runs.items(baseline),
        runs.get(candidate),
        runs.items(candidate),
    )


@router.get("/runs/{run_id}/report", dependencies=[READ], responses=error_responses(404))
async def get_report(run_id: RunId, request: Request) -> dict[str, Any]:
    """Metrics, per-version breakdown, latency distribution, worst items, model facts."""
    return await asyncio.to_thread(run_report, request, run_id)


@router.get("/compare", dependencies=[READ], responses=error_responses(404))
async def get_comparison(
    request: Request,
    baseline: Annotated[int, Query(ge=1, le=2**31 - 1)],
    candidate: Annotated[int, Query(ge=1, le=2**31 - 1)],
) -> dict[str, Any]:
    """Paired bootstrap 95% CIs per metric and McNemar's exact test."""
    return await asyncio.to_thread(run_comparison, request, baseline, candidate)


def attach(app: FastAPI) -> None:
    app.include_router(router)
