"""Guard JSON API: keys, route policies, usage, audit trail. Thin over the services."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import Response

from modelyard.errors import error_responses
from modelyard.guard.audit import audit_events
from modelyard.guard.auth import Forbidden, actor_of, principal_of, requires
from modelyard.guard.errors import KeyNotFound
from modelyard.guard.protocol import (
    AuditList,
    KeyCreate,
    KeyCreated,
    KeyList,
    KeyOut,
    KeyRotate,
    KeyUpdate,
    RoutePolicy,
    RoutePolicyList,
    RoutePolicyOut,
    UsageList,
    UsageRow,
)
from modelyard.guard.roles import Access
from modelyard.guard.runtime import GuardServices
from modelyard.guard.usage import as_csv, usage
from modelyard.wire import IsoDate, IsoDateTime

READ = requires(Access.read)
READ_OWN = requires(Access.read_own)
ADMIN = requires(Access.admin)
ANY_KEY = requires(*Access)

router = APIRouter(prefix="/api", tags=["guard"], responses=error_responses(401, 403))


def _guard(request: Request) -> GuardServices:
    guard: GuardServices = request.app.state.services.guard
    return guard


# -- keys -------------------------------------------------------------------------------


@router.post("/keys", response_model=KeyCreated, status_code=201, dependencies=[ADMIN])
async def create_key(body: KeyCreate, request: Request) -> KeyCreated:
    guard = _guard(request)
    created = await asyncio.to_thread(guard.keys.create, body, actor_of(principal_of(request)))
    await guard.reload()
    return created


@router.get("/keys", response_model=KeyList, dependencies=[READ])
async def list_keys(request: Request) -> KeyList:
    return KeyList(data=await asyncio.to_thread(_guard(request).keys.list_keys))


@router.get("/keys/me", response_model=KeyOut, dependencies=[ANY_KEY])
async def my_key(request: Request) -> KeyOut:
    return await asyncio.to_thread(_guard(request).keys.get, principal_of(request).key_id)


@router.get(
    "/keys/{key_id}", response_model=KeyOut, dependencies=[READ_OWN], responses=error_responses(404)
)
async def get_key(key_id: str, request: Request) -> KeyOut:
    if not principal_of(request).owns(key_id):
        raise KeyNotFound(key_id)
    return await asyncio.to_thread(_guard(request).keys.get, key_id)


@router.patch(
    "/keys/{key_id}", response_model=KeyOut, dependencies=[ADMIN], responses=error_responses(404)
)
async def update_key(key_id: str, body: KeyUpdate, request: Request) -> KeyOut:
    guard = _guard(request)
    out = await asyncio.to_thread(guard.keys.update, key_id, body, actor_of(principal_of(request)))
    await guard.reload()
    return out


@router.post(
    "/keys/{key_id}/revoke",
    response_model=KeyOut,
    dependencies=[ADMIN],
    responses=error_responses(404),
)
async def revoke_key(key_id: str, request: Request) -> KeyOut:
    guard = _guard(request)
    out = await asyncio.to_thread(guard.keys.revoke, key_id, actor_of(principal_of(request)))
    guard.keyring.forget(key_id)
    await guard.reload()
    return out


@router.post(
    "/keys/{key_id}/rotate",
    response_model=KeyCreated,
    dependencies=[ADMIN],
    responses=error_responses(404),
)
async def rotate_key(key_id: str, body: KeyRotate, request: Request) -> KeyCreated:
    guard = _guard(request)
    created = await asyncio.to_thread(
        guard.keys.rotate, key_id, body.grace_seconds, actor_of(principal_of(request))
    )
    await guard.reload()
    return created


# -- usage ------------------------------------------------------------------------------


def _usage_key(request: Request, key_id: str | None) -> str | None:
    """Readers see every key; a developer sees its own key only (and asks for no other)."""
    principal = principal_of(request)
    if principal.sees_all:
        return key_id
    if key_id is not None and key_id != principal.key_id:
        raise Forbidden("A developer key may read its own usage only.")
    return principal.key_id


async def usage_rows(
    request: Request,
    key_id: str | None = None,
    route: str | None = None,
    since: IsoDate | None = None,
    until: IsoDate | None = None,
) -> list[UsageRow]:
    """The usage rows a request asks for (a dependency shared by the JSON and CSV routes)."""
    return await asyncio.to_thread(
        usage,
        _guard(request).store,
        key_id=_usage_key(request, key_id),
        route=route,
        since=since,
        until=until,
    )


UsageRows = Annotated[list[UsageRow], Depends(usage_rows)]


@router.get("/usage", response_model=UsageList, dependencies=[READ_OWN])
async def get_usage(rows: UsageRows) -> UsageList:
    return UsageList(data=rows)


@router.get("/usage.csv", dependencies=[READ_OWN], response_class=Response)
async def get_usage_csv(rows: UsageRows) -> Response:
    return Response(
        as_csv(rows),
        media_type="text/csv",
        headers={"content-disposition": 'attachment; filename="usage.csv"'},
    )


# -- route policies ---------------------------------------------------------------------


@router.get("/policies", response_model=RoutePolicyList, dependencies=[READ])
async def list_policies(request: Request) -> RoutePolicyList:
    return RoutePolicyList(data=await asyncio.to_thread(_guard(request).policies.list_policies))


@router.get(
    "/policies/{route}",
    response_model=RoutePolicyOut,
    dependencies=[READ],
    responses=error_responses(404),
)
async def get_policy(route: str, request: Request) -> RoutePolicyOut:
    return await asyncio.to_thread(_guard(request).policies.get, route)


@router.put("/policies/{route}", response_model=RoutePolicyOut, dependencies=[ADMIN])
async def set_policy(route: str, body: RoutePolicy, request: Request) -> RoutePolicyOut:
    guard = _guard(request)
    out = await asyncio.to_thread(guard.policies.set, route, body, actor_of(principal_of(request)))
    await guard.reload()
    return out


@router.delete(
    "/policies/{route}", status_code=204, dependencies=[ADMIN], responses=error_responses(404)
)
async def delete_policy(route: str, request: Request) -> Response:
    guard = _guard(request)
    await asyncio.to_thread(guard.policies.delete, route, actor_of(principal_of(request)))
    await guard.reload()
    return Response(status_code=204)


# -- audit trail ------------------------------------------------------------------------


@router.get("/audit", response_model=AuditList, dependencies=[READ])
async def get_audit(
    request: Request,
    action: str | None = None,
    target: str | None = None,
    actor: str | None = None,
    since: IsoDateTime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditList:
    events = await asyncio.to_thread(
        audit_events,
        _guard(request).store,
        action=action,
        target=target,
        actor=actor,
        since=since,
        limit=limit,
    )
    return AuditList(data=events)


@router.get("/guard", dependencies=[READ])
async def guard_status(request: Request) -> dict[str, object]:
    """Counters of this replica's guard: rate-limiter fallback decisions while Redis
    was unreachable."""
    guard = _guard(request)
    return {
        "rate_limit_fallbacks": guard.gate.limiter_fallbacks(),
        "keys_cached": guard.keyring.size,
        "policies_cached": guard.book.size,
    }


def attach(app: FastAPI) -> None:
    app.include_router(router)
