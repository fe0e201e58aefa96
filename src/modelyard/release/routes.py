"""Release JSON API: ``/api/rollouts`` and ``/api/experiments``. Thin over the services;
after a change this replica reloads its routing table at once. The reads, the same for
both kinds, are in ``release.kinds``."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, FastAPI, Path, Query, Request

from modelyard.errors import error_responses
from modelyard.guard.auth import actor_of, principal_of, requires
from modelyard.guard.roles import Access
from modelyard.release.baselines import plan_from_log
from modelyard.release.errors import ReleaseError
from modelyard.release.kinds import EXPERIMENT, READ, ROLLOUT
from modelyard.release.protocol import (
    ExperimentCreate,
    ExperimentOut,
    RolloutAction,
    RolloutCreate,
    RolloutOut,
    RolloutPlan,
    RolloutPlanCreate,
)
from modelyard.services import services_of
from modelyard.store.tables import utcnow

ADMIN = requires(Access.admin)
RolloutId = Annotated[int, Path(ge=1, le=2**31 - 1)]
RequestsPerS = Annotated[float | None, Query(gt=0, le=1e6)]
MIN_WINDOW_S = 60.0  # a rollout's own traffic rate, over at least this much of the log

rollouts = APIRouter(prefix="/api/rollouts", tags=["release"], responses=error_responses(401, 403))
# Before ``rollouts``: ``/api/rollouts/plan`` is not the rollout ``{rollout_id}``.
plans = APIRouter(prefix="/api/rollouts", tags=["release"], responses=error_responses(401, 403))
experiments = APIRouter(
    prefix="/api/experiments", tags=["release"], responses=error_responses(401, 403)
)
ROLLOUT.add_reads(rollouts)
EXPERIMENT.add_reads(experiments)


def _actor(request: Request) -> str:
    return actor_of(principal_of(request))


@rollouts.post(
    "",
    response_model=RolloutOut,
    status_code=201,
    dependencies=[ADMIN],
    responses=error_responses(404, 409),
)
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


@rollouts.post(
    "/{rollout_id}/promote",
    response_model=RolloutOut,
    dependencies=[ADMIN],
    responses=error_responses(404, 409),
)
async def promote_rollout(
    rollout_id: RolloutId, request: Request, body: RolloutAction | None = None
) -> RolloutOut:
    return await _act(request, "promote", rollout_id, body)


@rollouts.post(
    "/{rollout_id}/abort",
    response_model=RolloutOut,
    dependencies=[ADMIN],
    responses=error_responses(404, 409),
)
async def abort_rollout(
    rollout_id: RolloutId, request: Request, body: RolloutAction | None = None
) -> RolloutOut:
    return await _act(request, "abort", rollout_id, body)


@rollouts.post(
    "/{rollout_id}/resume",
    response_model=RolloutOut,
    dependencies=[ADMIN],
    responses=error_responses(404, 409),
)
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


@experiments.post(
    "",
    response_model=ExperimentOut,
    status_code=201,
    dependencies=[ADMIN],
    responses=error_responses(404, 409),
)
async def start_experiment(body: ExperimentCreate, request: Request) -> ExperimentOut:
    services = services_of(request)
    out = await asyncio.to_thread(services.experiments.start, body, _actor(request))
    await services.refresher.refresh_now()
    return out


@experiments.post(
    "/{name}/stop",
    response_model=ExperimentOut,
    dependencies=[ADMIN],
    responses=error_responses(404, 409),
)
async def stop_experiment(
    name: str, request: Request, body: RolloutAction | None = None
) -> ExperimentOut:
    services = services_of(request)
    reason = body.reason if body is not None else ""
    out = await asyncio.to_thread(services.experiments.stop, name, _actor(request), reason)
    await services.refresher.refresh_now()
    return out


@plans.post("/plan", response_model=RolloutPlan, dependencies=[READ])
async def plan_rollout_spec(body: RolloutPlanCreate, request: Request) -> RolloutPlan:
    """What the analyses of a rollout's spec can detect, before it starts."""
    return await asyncio.to_thread(
        plan_from_log,
        services_of(request).store,
        body.model,
        body.steps,
        requests_per_s=body.requests_per_s,
        given=body.baselines,
        window_s=body.window_h * 3600,
    )


@plans.get("/plan", response_model=RolloutPlan, dependencies=[READ])
async def plan_rollout_defaults(
    request: Request,
    model: Annotated[str, Query(min_length=1, max_length=128)],
    candidate: Annotated[int, Query(ge=1, le=2**31 - 1)],
    requests_per_s: RequestsPerS = None,
    window_h: Annotated[float, Query(gt=0, le=24 * 90)] = 24,
) -> RolloutPlan:
    """The same for the default steps (the console's plan page)."""
    spec = RolloutPlanCreate(
        model=model, candidate=candidate, requests_per_s=requests_per_s, window_h=window_h
    )
    return await plan_rollout_spec(spec, request)


@plans.get(
    "/{rollout_id}/plan",
    response_model=RolloutPlan,
    dependencies=[READ],
    responses=error_responses(404),
)
async def get_rollout_plan(
    rollout_id: RolloutId, request: Request, requests_per_s: RequestsPerS = None
) -> RolloutPlan:
    """What a stored rollout's analyses can detect at the traffic the route had while it ran
    (from its start to its end, or now; at least the last ``MIN_WINDOW_S``)."""
    services = services_of(request)
    out = await asyncio.to_thread(services.rollouts.get, rollout_id)
    until = out.finished_at or utcnow()
    return await asyncio.to_thread(
        plan_from_log,
        services.store,
        out.model,
        out.steps,
        requests_per_s=requests_per_s,
        window_s=max((until - out.started_at).total_seconds(), MIN_WINDOW_S),
        now=until,
        rollout=out.id,
    )


def attach(app: FastAPI) -> None:
    app.include_router(plans)
    app.include_router(rollouts)
    app.include_router(experiments)
