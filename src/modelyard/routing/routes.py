"""Traffic policies JSON API: ``/api/routes``. Thin over ``TrafficPolicies``; after a change
this replica reloads its routing table at once (others within ``routing_refresh_s``)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import Response

from modelyard.errors import error_responses
from modelyard.guard.auth import actor_of, principal_of, requires
from modelyard.guard.roles import Access
from modelyard.registry.protocol import version_name
from modelyard.routing.policies import PolicyRefused
from modelyard.routing.protocol import (
    BreakerSettings,
    RouteOut,
    TrafficPolicy,
    TrafficPolicyHistory,
    TrafficPolicyList,
    TrafficPolicyOut,
    TrafficPolicyPut,
)
from modelyard.routing.table import ModelNotRoutable
from modelyard.services import Services, services_of

READ = requires(Access.read)
ADMIN = requires(Access.admin)

router = APIRouter(prefix="/api/routes", tags=["routing"], responses=error_responses(401, 403))


def route_out(services: Services, model: str) -> RouteOut:
    """The route as this replica serves it now: its variants with their shares, and the
    breakers of the targets it has used (per replica)."""
    table = services.routing
    if model not in table.models():
        raise PolicyRefused(
            f"model '{model}' does not exist (see `modelyard models list`)",
            status=404,
            code="not_found",
        )
    policy = table.policy(model)
    variants: list[dict[str, object]] = []
    breaker = BreakerSettings()
    if policy is not None:
        breaker = policy.breaker
        stable = 100 - sum(c.weight for c in policy.candidates)
        variants.append(
            {"name": policy.stable_variant, "alias": policy.stable_alias, "weight": stable}
        )
        variants += [
            {"name": c.name, "version": c.version, "weight": c.weight} for c in policy.candidates
        ]
        variants += [
            {"name": "shadow", "version": s.version, "share": s.share} for s in policy.shadows
        ]
        if policy.combine is not None:  # its members answer, each request (routing.combine)
            combine = policy.combine
            variants = [
                {"name": f"{combine.kind}.{role}", "model": name}
                for role, name in zip(combine.roles, combine.members, strict=True)
            ]
    targets = {version_name(model, n) for n in table.version_numbers(model)}
    for fallback in policy.fallbacks if policy is not None else []:
        try:
            targets.add(table.resolve(fallback.model).name)
        except ModelNotRoutable:
            continue
    return RouteOut(
        model=model,
        policy=policy,
        variants=variants,
        breakers=services.breakers.describe(breaker, targets),
        cache=None if policy is None or policy.cache is None else services.cache.stats(model),
    )


@router.get("", response_model=TrafficPolicyList, dependencies=[READ])
async def list_policies(request: Request) -> TrafficPolicyList:
    policies = services_of(request).policies
    return TrafficPolicyList(data=await asyncio.to_thread(policies.list_policies))


@router.get(
    "/{model}", response_model=RouteOut, dependencies=[READ], responses=error_responses(404)
)
async def get_route(model: str, request: Request) -> RouteOut:
    return route_out(services_of(request), model)


@router.put(
    "/{model}",
    response_model=TrafficPolicyOut,
    dependencies=[ADMIN],
    responses=error_responses(404, 409),
)
async def put_policy(model: str, body: TrafficPolicyPut, request: Request) -> TrafficPolicyOut:
    services = services_of(request)
    actor = actor_of(principal_of(request))
    out = await asyncio.to_thread(
        lambda: services.policies.put(
            model,
            TrafficPolicy.model_validate(body.policy.model_dump()),
            actor=actor,
            reason=body.reason,
        )
    )
    await services.refresher.refresh_now()
    return out


@router.delete(
    "/{model}", status_code=204, dependencies=[ADMIN], responses=error_responses(404, 409)
)
async def delete_policy(
    model: str, request: Request, reason: Annotated[str, Query(max_length=2000)] = ""
) -> Response:
    services = services_of(request)
    actor = actor_of(principal_of(request))
    await asyncio.to_thread(lambda: services.policies.delete(model, actor=actor, reason=reason))
    await services.refresher.refresh_now()
    return Response(status_code=204)


@router.get("/{model}/history", response_model=TrafficPolicyHistory, dependencies=[READ])
async def policy_history(
    model: str, request: Request, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> TrafficPolicyHistory:
    policies = services_of(request).policies
    return TrafficPolicyHistory(data=await asyncio.to_thread(policies.history, model, limit))


def attach(app: FastAPI) -> None:
    app.include_router(router)
