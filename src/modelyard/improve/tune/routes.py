"""Tuning JSON API: start a study (it runs in the background; poll it), list studies, read
one with its trials, stop and resume one."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, FastAPI, Path, Query, Request

from modelyard.errors import error_responses
from modelyard.evaluate.datasets import DatasetService
from modelyard.guard.auth import actor_of, principal_of, requires
from modelyard.guard.roles import Access
from modelyard.improve.tune.create import create_study, items_of
from modelyard.improve.tune.errors import StudyBusy
from modelyard.improve.tune.jobs import TuneJobs
from modelyard.improve.tune.protocol import StudyList, StudyOut, StudyRequest
from modelyard.improve.tune.studies import Studies
from modelyard.services import services_of

router = APIRouter(prefix="/api/tune", tags=["improve"], responses=error_responses(401, 403))
READ = requires(Access.read)
ADMIN = requires(Access.admin)
StudyId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def jobs_of(request: Request) -> TuneJobs:
    jobs: TuneJobs = request.app.state.tune_jobs
    return jobs


def _studies(request: Request) -> Studies:
    return Studies(services_of(request).store)


def _create(body: StudyRequest, request: Request) -> int:
    store = services_of(request).store
    items = items_of(body.task, None, DatasetService(store).latest_items)
    actor = actor_of(principal_of(request))
    return create_study(store, body, items, set(jobs_of(request).trainers), actor)


def _launch(request: Request, study_id: int) -> None:
    """Run the study in the background as the caller (their key goes with each trial)."""
    jobs_of(request).start(
        request.app,
        study_id,
        _studies(request),
        request.headers,
        actor_of(principal_of(request)),
        services_of(request).settings.request_timeout_s,
    )


@router.post(
    "/studies",
    response_model=StudyOut,
    status_code=202,
    dependencies=[ADMIN],
    responses=error_responses(400, 404, 409),
)
async def start_study(body: StudyRequest, request: Request) -> StudyOut:
    """Check the study, store it and start its trials in the background; poll
    ``GET /api/tune/studies/{study_id}`` for its trials, best trial and confirmation."""
    study_id = await asyncio.to_thread(_create, body, request)
    _launch(request, study_id)
    return await asyncio.to_thread(_studies(request).get, study_id)


@router.get("/studies", response_model=StudyList, dependencies=[READ])
async def list_studies(
    request: Request, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> StudyList:
    """Studies, newest first."""
    return StudyList(data=await asyncio.to_thread(_studies(request).list_studies, limit))


@router.get(
    "/studies/{study_id}",
    response_model=StudyOut,
    dependencies=[READ],
    responses=error_responses(404),
)
async def get_study(study_id: StudyId, request: Request) -> StudyOut:
    """A study: its trials (each with its eval run), history, importances, confirmation."""
    return await asyncio.to_thread(_studies(request).get, study_id)


@router.post(
    "/studies/{study_id}/resume",
    response_model=StudyOut,
    status_code=202,
    dependencies=[ADMIN],
    responses=error_responses(404, 409),
)
async def resume_study(study_id: StudyId, request: Request) -> StudyOut:
    """Run an interrupted or failed study on: the trial it was in finishes where its eval
    run stopped, then the rest. 409 when it is done or running here."""
    studies = _studies(request)
    status = await asyncio.to_thread(studies.status, study_id)
    if status == "done" or jobs_of(request).running(study_id):
        raise StudyBusy(f"study {study_id} is {'done' if status == 'done' else 'running'}")
    await asyncio.to_thread(studies.set_status, study_id, "running")  # what a poll sees now
    _launch(request, study_id)
    return await asyncio.to_thread(studies.get, study_id)


@router.post(
    "/studies/{study_id}/stop",
    response_model=StudyOut,
    dependencies=[ADMIN],
    responses=error_responses(404, 409),
)
async def stop_study(study_id: StudyId, request: Request) -> StudyOut:
    """Stop a study running here; it is left ``interrupted`` with its trials, to resume."""
    studies = _studies(request)
    await asyncio.to_thread(studies.status, study_id)  # 404 before 409
    await jobs_of(request).stop(study_id)
    return await asyncio.to_thread(studies.get, study_id)


def attach(app: FastAPI) -> None:
    app.include_router(router)
