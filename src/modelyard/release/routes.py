"""Release JSON API: ``/api/rollouts`` and ``/api/experiments``. Thin over the services;
after a change this replica reloads its routing table at once."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, FastAPI, Path, Query, Request

from modelyard.guard.auth import actor_of, principal_of, requires
from modelyard.guard.roles import Access
from modelyard.release.errors import ReleaseError
from modelyard.release.protocol import (
    ExperimentCreate,
    ExperimentList,
    ExperimentOut,
    MeasurementList,
    ReleaseEventList,
    RolloutAction,
    RolloutCreate,
    RolloutList,
    RolloutOut,
)
from modelyard.services import services_of

READ = requires(Access.read)
ADMIN = requires(Access.admin)
RolloutId = Annotated[int, Path(ge=1, le=2**31 - 1)]

rollouts = APIRouter(prefix="/api/rollouts", tags=["release"])
experiments = APIRouter(prefix="/api/experiments", tags=["release"])


def _actor(request: Request) -> str:
    return actor_of(principal_of(request))


@rollouts.post("", response_model=RolloutOut, status_code=201, dependencies=[ADMIN])
async def start_rollout(body: RolloutCreate, request: Request) -> RolloutOut:
    services = services_of(request)
    out = await asyncio.to_thread(services.rollouts.start, body, _actor(request))
    try:  # apply the first steps now rather than at the controller's next tick
        out = await asyncio.to_thread(services.rollouts.advance, out.id)
    except ReleaseError as error:
        if error.code != "conflict":
            raise
        out = await asyncio.to_thread(services.rollouts.get, out.id)  # the controller did
    await services.refresher.refresh_now()
    return out


@rollouts.get("", response_model=RolloutList, dependencies=[READ])
async def list_rollouts(
    request: Request,
    model: Annotated[str | None, Query(max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> RolloutList:
    service = services_of(request).rollouts
    return RolloutList(data=await asyncio.to_thread(service.list_rollouts, model, limit))


@rollouts.get("/{rollout_id}", response_model=RolloutOut, dependencies=[READ])
async def get_rollout(rollout_id: RolloutId, request: Request) -> RolloutOut:
    return await asyncio.to_thread(services_of(request).rollouts.get, rollout_id)


@rollouts.get("/{rollout_id}/measurements", response_model=MeasurementList, dependencies=[READ])
async def rollout_measurements(rollout_id: RolloutId, request: Request) -> MeasurementList:
    service = services_of(request).rollouts
    return MeasurementList(data=await asyncio.to_thread(service.measurements, rollout_id))


@rollouts.get("/{rollout_id}/events", response_model=ReleaseEventList, dependencies=[READ])
async def rollout_events(rollout_id: RolloutId, request: Request) -> ReleaseEventList:
    service = services_of(request).rollouts
    return ReleaseEventList(data=await asyncio.to_thread(service.events, rollout_id))


@rollouts.post("/{rollout_id}/promote", response_model=RolloutOut, dependencies=[ADMIN])
async def promote_rollout(
    rollout_id: RolloutId, request: Request, body: RolloutAction | None = None
) -> RolloutOut:
    return await _act(request, "promote", rollout_id, body)


@rollouts.post("/{rollout_id}/abort", response_model=RolloutOut, dependencies=[ADMIN])
async def abort_rollout(
    rollout_id: RolloutId, request: Request, body: RolloutAction | None = None
) -> RolloutOut:
    return await _act(request, "abort", rollout_id, body)


@rollouts.post("/{rollout_id}/resume", response_model=RolloutOut, dependencies=[ADMIN])
async def resume_rollout(
    rollout_id: RolloutId, request: Request, body: RolloutAction | None = None
) -> RolloutOut:
    return await _act(request, "resume", rollout_id, body)


async def _act(
    request: Request, action: str, rollout_id: RolloutId, body: RolloutAction | None
) -> RolloutOut:
    services = services_of(request)
    method = getattr(services.rollouts, action)
    reason = body.reason if body is not None else ""
    out: RolloutOut = await asyncio.to_thread(method, rollout_id, _actor(request), reason)
    await services.refresher.refresh_now()
    return out


@experiments.post("", response_model=ExperimentOut, status_code=201, dependencies=[ADMIN])
async def start_experiment(body: ExperimentCreate, request: Request) -> ExperimentOut:
    services = services_of(request)
    out = await asyncio.to_thread(services.experiments.start, body, _actor(request))
    await services.refresher.refresh_now()
    return out


@experiments.get("", response_model=ExperimentList, dependencies=[READ])
async def list_experiments(
    request: Request,
    model: Annotated[str | None, Query(max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ExperimentList:
    service = services_of(request).experiments
    return ExperimentList(data=await asyncio.to_thread(service.list_experiments, model, limit))


@experiments.get("/{name}", response_model=ExperimentOut, dependencies=[READ])
async def get_experiment(name: str, request: Request) -> ExperimentOut:
    return await asyncio.to_thread(services_of(request).experiments.get, name)


@experiments.get("/{name}/measurements", response_model=MeasurementList, dependencies=[READ])
async def experiment_measurements(name: str, request: Request) -> MeasurementList:
    service = services_of(request).experiments
    return MeasurementList(data=await asyncio.to_thread(service.measurements, name))


@experiments.post("/{name}/stop", response_model=ExperimentOut, dependencies=[ADMIN])
async def stop_experiment(
    name: str, request: Request, body: RolloutAction | None = None
) -> ExperimentOut:
    services = services_of(request)
    reason = body.reason if body is not None else ""
    out = await asyncio.to_thread(services.experiments.stop, name, _actor(request), reason)
    await services.refresher.refresh_now()
    return out


def attach(app: FastAPI) -> None:
    app.include_router(rollouts)
    app.include_router(experiments)
