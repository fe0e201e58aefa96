"""Alerts JSON API: ``/api/alerts/rules`` and ``/api/alerts/events``. Thin over the service.

Errors are ``AlertError``s, whose ``status`` and ``code`` the app's error handlers answer
with.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import Response

from modelyard.errors import error_responses
from modelyard.guard.auth import actor_of, principal_of, requires
from modelyard.guard.roles import Access
from modelyard.observe.alerts.protocol import (
    AlertEventList,
    AlertRule,
    AlertRuleList,
    AlertRuleOut,
    EventState,
)
from modelyard.observe.alerts.service import MAX_EVENTS, AlertService
from modelyard.wire import IsoDateTime

READ = requires(Access.read)
ADMIN = requires(Access.admin)

router = APIRouter(prefix="/api/alerts", tags=["observe"], responses=error_responses(401, 403))


def _alerts(request: Request) -> AlertService:
    return AlertService(request.app.state.services.store)


@router.get("/rules", response_model=AlertRuleList, dependencies=[READ])
async def list_rules(request: Request) -> AlertRuleList:
    return AlertRuleList(data=await asyncio.to_thread(_alerts(request).list_rules))


@router.post(
    "/rules",
    response_model=AlertRuleOut,
    status_code=201,
    dependencies=[ADMIN],
    responses=error_responses(409),
)
async def create_rule(body: AlertRule, request: Request) -> AlertRuleOut:
    actor = actor_of(principal_of(request))
    return await asyncio.to_thread(_alerts(request).create, body, actor)


@router.get(
    "/rules/{name}",
    response_model=AlertRuleOut,
    dependencies=[READ],
    responses=error_responses(404),
)
async def get_rule(name: str, request: Request) -> AlertRuleOut:
    return await asyncio.to_thread(_alerts(request).get, name)


@router.put(
    "/rules/{name}",
    response_model=AlertRuleOut,
    dependencies=[ADMIN],
    responses=error_responses(404, 409),
)
async def update_rule(name: str, body: AlertRule, request: Request) -> AlertRuleOut:
    actor = actor_of(principal_of(request))
    return await asyncio.to_thread(_alerts(request).update, name, body, actor)


@router.delete(
    "/rules/{name}", status_code=204, dependencies=[ADMIN], responses=error_responses(404)
)
async def delete_rule(name: str, request: Request) -> Response:
    await asyncio.to_thread(_alerts(request).delete, name, actor_of(principal_of(request)))
    return Response(status_code=204)


@router.get("/events", response_model=AlertEventList, dependencies=[READ])
async def list_events(
    request: Request,
    rule: str | None = None,
    state: EventState | None = None,
    since: IsoDateTime | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_EVENTS)] = 100,
) -> AlertEventList:
    events = await asyncio.to_thread(
        _alerts(request).events, rule=rule, state=state, since=since, limit=limit
    )
    return AlertEventList(data=events)


def attach(app: FastAPI) -> None:
    app.include_router(router)
