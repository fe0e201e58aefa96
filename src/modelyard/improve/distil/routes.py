"""Teacher labelling and distillation JSON API. Starting either answers 202 with the run
at once; it goes on in the background, its requests through this server's own serving
path with the caller's credentials, and ``GET`` shows how far it got."""

from __future__ import annotations

import asyncio
from pathlib import Path as FilePath
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, FastAPI, Path, Query, Request

from modelyard.errors import ModelyardError, error_responses
from modelyard.guard.auth import actor_of, principal_of, requires
from modelyard.guard.roles import Access
from modelyard.improve.distil.distillation import (
    Distillations,
    distil,
    start_distillation,
)
from modelyard.improve.distil.errors import LabelRunActive
from modelyard.improve.distil.label_runs import LabelRuns
from modelyard.improve.distil.labelling import label, run_detail, start_labelling
from modelyard.improve.distil.protocol import (
    DistillationList,
    DistillationOut,
    DistilRequest,
    LabelRequest,
    LabelRunDetail,
    LabelRunList,
    LabelRunOut,
)
from modelyard.jobs import BackgroundJobs, gateway_client
from modelyard.services import services_of
from modelyard.store import Store

if TYPE_CHECKING:
    import httpx

router = APIRouter(tags=["improve"], responses=error_responses(401, 403))
READ = requires(Access.read)
ADMIN = requires(Access.admin)
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]
Limit = Annotated[int, Query(ge=1, le=1000)]


def _jobs(request: Request) -> BackgroundJobs:
    jobs: BackgroundJobs = request.app.state.improve_jobs
    return jobs


def _actor(request: Request) -> str:
    return actor_of(principal_of(request))


@router.post(
    "/api/label",
    response_model=LabelRunOut,
    status_code=202,
    dependencies=[ADMIN],
    responses=error_responses(400, 404, 409),
)
async def start_label_run(body: LabelRequest, request: Request) -> LabelRunOut:
    """Label a dataset version with a teacher route; continues the last run of the same
    labelling unless ``fresh``. Poll ``GET /api/label/{id}``."""
    store = services_of(request).store
    run = await asyncio.to_thread(start_labelling, store, body, _actor(request))
    _spawn_labelling(request, run.id)
    return run


@router.post(
    "/api/label/{run_id}/resume",
    response_model=LabelRunOut,
    status_code=202,
    dependencies=[ADMIN],
    responses=error_responses(404, 409),
)
async def resume_label_run(run_id: RowId, request: Request) -> LabelRunOut:
    """Continue a stopped or failed run: answered items are not asked again."""
    runs = LabelRuns(services_of(request).store)
    await asyncio.to_thread(runs.claim, run_id)
    _spawn_labelling(request, run_id)
    return await asyncio.to_thread(runs.get, run_id)


def _spawn_labelling(request: Request, run_id: int) -> None:
    services, jobs = services_of(request), _jobs(request)
    name = f"label:{run_id}"
    if jobs.running(name):
        raise LabelRunActive(f"label run {run_id} is being labelled by this server")
    client = gateway_client(request.app, request.headers, services.settings.request_timeout_s)
    jobs.start(name, _labelling_job(client, services.store, run_id))


async def _labelling_job(client: httpx.AsyncClient, store: Store, run_id: int) -> None:
    async with client:
        try:
            await label(client, store, run_id)
        except (ModelyardError, ValueError, OSError) as error:
            await asyncio.to_thread(LabelRuns(store).end, run_id, "failed", str(error))


@router.get("/api/label", response_model=LabelRunList, dependencies=[READ])
async def list_label_runs(request: Request, limit: Limit = 100) -> LabelRunList:
    """Labelling runs, newest first."""
    runs = LabelRuns(services_of(request).store)
    return LabelRunList(data=await asyncio.to_thread(runs.list_runs, limit))


@router.get(
    "/api/label/{run_id}",
    response_model=LabelRunDetail,
    dependencies=[READ],
    responses=error_responses(404),
)
async def get_label_run(run_id: RowId, request: Request) -> LabelRunDetail:
    """One run: its counts, the label distribution, examples of answers outside the
    label set and of failures."""
    return await asyncio.to_thread(run_detail, services_of(request).store, run_id)


@router.post(
    "/api/distil",
    response_model=DistillationOut,
    status_code=202,
    dependencies=[ADMIN],
    responses=error_responses(400, 404),
)
async def start_distillation_run(body: DistilRequest, request: Request) -> DistillationOut:
    """Train a student on a labelled dataset version and register it as a version of
    ``model``. Poll ``GET /api/distil/{id}``."""
    services = services_of(request)
    out = await asyncio.to_thread(start_distillation, services.store, body, _actor(request))
    client = gateway_client(request.app, request.headers, services.settings.request_timeout_s)
    home = services.settings.home
    _jobs(request).start(
        f"distil:{out.id}", _distillation_job(client, services.store, home, out.id)
    )
    return out


async def _distillation_job(
    client: httpx.AsyncClient, store: Store, home: FilePath, row_id: int
) -> None:
    async with client:
        await distil(client, store, home, row_id)


@router.get("/api/distil", response_model=DistillationList, dependencies=[READ])
async def list_distillations(
    request: Request, model: str | None = None, limit: Limit = 100
) -> DistillationList:
    """Distillations, newest first (of one model's, with ``model``)."""
    records = Distillations(services_of(request).store)
    return DistillationList(data=await asyncio.to_thread(records.list_distillations, model, limit))


@router.get(
    "/api/distil/{distillation_id}",
    response_model=DistillationOut,
    dependencies=[READ],
    responses=error_responses(404),
)
async def get_distillation(distillation_id: RowId, request: Request) -> DistillationOut:
    """One distillation: its stage, metrics on the hold-out, lineage and version."""
    records = Distillations(services_of(request).store)
    return await asyncio.to_thread(records.get, distillation_id)


def attach(app: FastAPI) -> None:
    app.include_router(router)
