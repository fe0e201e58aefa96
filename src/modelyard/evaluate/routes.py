"""Evaluation JSON API: runs, their items and reports, comparisons. Starting a run answers
202 with the run at once; its items go on in the background through this server's own
serving path with the caller's credentials, and ``GET /api/eval/runs/{id}`` shows how far
it got."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Query, Request

from modelyard.errors import error_responses
from modelyard.evaluate.breakdown import breakdown, load_breakdown
from modelyard.evaluate.compare import compare
from modelyard.evaluate.protocol import EvalItemOut, EvalRunList, EvalRunOut, EvalRunRequest
from modelyard.evaluate.redteam import routes as redteam_routes
from modelyard.evaluate.report import report, request_costs, task_of
from modelyard.evaluate.robustness import routes as robustness_routes
from modelyard.evaluate.runs import EvalRuns
from modelyard.evaluate.start import finish_started, start_run
from modelyard.guard.auth import actor_of, principal_of, requires
from modelyard.guard.roles import Access
from modelyard.jobs import BackgroundJobs, gateway_client
from modelyard.registry import Registry
from modelyard.services import services_of

router = APIRouter(prefix="/api/eval", tags=["evaluate"], responses=error_responses(401, 403))
READ = requires(Access.read)
ADMIN = requires(Access.admin)
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


@router.post(
    "/runs",
    response_model=EvalRunOut,
    status_code=202,
    dependencies=[ADMIN],
    responses=error_responses(400, 404, 409),
)
async def start_eval_run(body: EvalRunRequest, request: Request) -> EvalRunOut:
    """Run ``task`` (or ``task_yaml``, a task file's text) against ``model``, as
    ``modelyard eval run`` does: checked and created before the answer (409
    ``train_eval_overlap`` for items a curated dataset trains on), its items asked in the
    background as the caller. Poll ``GET /api/eval/runs/{id}``."""
    services = services_of(request)
    services.routing.plan(body.model)  # 404 model_not_found before a run is made
    actor = actor_of(principal_of(request))
    started = await asyncio.to_thread(start_run, services.store, body, actor)
    client = gateway_client(request.app, request.headers, services.settings.request_timeout_s)
    jobs: BackgroundJobs = request.app.state.eval_jobs
    work = finish_started(client, services.store, started, body.concurrency)
    jobs.start(f"eval:{started.run.id}", work)
    return started.run


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


def run_slices(
    request: Request, run_id: int, by: list[str], sensitive: str | None, positive: str | None
) -> dict[str, Any]:
    answers = load_breakdown(_runs(request), run_id)
    return breakdown(answers, by, sensitive, positive)


@router.get("/runs/{run_id}/slices", dependencies=[READ], responses=error_responses(400, 404))
async def get_slices(
    run_id: RunId,
    request: Request,
    by: Annotated[list[str], Query(max_length=10)] = [],  # noqa: B006 (FastAPI copies it)
    sensitive: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    positive: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    """Every metric by the slices of each attribute ``by`` (an item field, ``language``,
    ``length``, ``variant``) with sizes and 95% bootstrap intervals; the fairness measures
    over ``sensitive`` (classification; ``positive``: one label); the counterfactual pairs."""
    return await asyncio.to_thread(run_slices, request, run_id, by, sensitive, positive)


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
    robustness_routes.attach(app)
    redteam_routes.attach(app)
