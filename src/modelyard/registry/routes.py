"""Registry JSON API under ``/api/models``. Handlers are thin: the service does the work."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, FastAPI, Path, Query, Request

from modelyard.errors import error_responses
from modelyard.guard.auth import actor_of, principal_of, requires
from modelyard.guard.roles import Access
from modelyard.registry.protocol import (
    NAME_PATTERN,
    AliasHistory,
    AliasMove,
    AliasMoveOut,
    AliasRollback,
    ModelCreate,
    ModelDetail,
    ModelList,
    ModelOut,
    VersionCreate,
    VersionOut,
)
from modelyard.services import services_of
from modelyard.wire import IsoDateTime

router = APIRouter(prefix="/api/models", tags=["registry"], responses=error_responses(401, 403))
READ = requires(Access.read)
ADMIN = requires(Access.admin)
# A model or alias name in a path the route creates: the pattern ``check_name`` applies.
NewName = Annotated[str, Path(json_schema_extra={"pattern": NAME_PATTERN})]


def _actor(request: Request, given: str | None) -> str:
    """The calling key; a name given in the body is kept beside it, never instead of it."""
    actor = actor_of(principal_of(request))
    return f"{actor} as {given}" if given else actor


@router.get("", response_model=ModelList, dependencies=[READ])
async def list_models(request: Request) -> ModelList:
    registry = services_of(request).registry
    return ModelList(data=await asyncio.to_thread(registry.list_models))


@router.post("", response_model=ModelOut, status_code=201, dependencies=[ADMIN])
async def create_model(body: ModelCreate, request: Request) -> ModelOut:
    registry = services_of(request).registry
    return await asyncio.to_thread(registry.create_model, body.name, body.task, body.description)


@router.get(
    "/{name}", response_model=ModelDetail, dependencies=[READ], responses=error_responses(404)
)
async def get_model(name: str, request: Request) -> ModelDetail:
    return await asyncio.to_thread(services_of(request).registry.model, name)


@router.get(
    "/{name}/versions",
    response_model=list[VersionOut],
    dependencies=[READ],
    responses=error_responses(404),
)
async def list_versions(name: str, request: Request) -> list[VersionOut]:
    detail = await asyncio.to_thread(services_of(request).registry.model, name)
    return detail.versions


@router.post(
    "/{name}/versions",
    response_model=VersionOut,
    status_code=201,
    dependencies=[ADMIN],
    responses=error_responses(404),
)
async def add_version(name: NewName, body: VersionCreate, request: Request) -> VersionOut:
    services = services_of(request)
    version = await asyncio.to_thread(
        services.registry.add_version, name, body, _actor(request, body.created_by)
    )
    await services.refresher.refresh_now()
    return version


@router.get(
    "/{name}/versions/{number}",
    response_model=VersionOut,
    dependencies=[READ],
    responses=error_responses(404),
)
async def get_version(
    name: str, number: Annotated[int, Path(ge=1, le=2**31 - 1)], request: Request
) -> VersionOut:
    return await asyncio.to_thread(services_of(request).registry.version, name, number)


@router.get(
    "/{name}/history",
    response_model=AliasHistory,
    dependencies=[READ],
    responses=error_responses(404),
)
async def history(name: str, request: Request, alias: str | None = None) -> AliasHistory:
    registry = services_of(request).registry
    return AliasHistory(data=await asyncio.to_thread(registry.history, name, alias))


@router.get("/{name}/aliases/{alias}", dependencies=[READ], responses=error_responses(404))
async def alias_at(
    name: str,
    alias: str,
    request: Request,
    at: Annotated[IsoDateTime | None, Query(description="ISO 8601 time; default now")] = None,
) -> dict[str, object]:
    registry = services_of(request).registry
    when = at or datetime.now().astimezone()
    if when.tzinfo is None:
        when = when.astimezone()
    version = await asyncio.to_thread(registry.alias_at, name, alias, when)
    return {"model": name, "alias": alias, "at": when.isoformat(), "version": version}


@router.put(
    "/{name}/aliases/{alias}",
    response_model=AliasMoveOut,
    dependencies=[ADMIN],
    responses=error_responses(404),
)
async def set_alias(name: str, alias: NewName, body: AliasMove, request: Request) -> AliasMoveOut:
    services = services_of(request)
    move = await asyncio.to_thread(
        lambda: services.registry.set_alias(
            name, alias, body.version, actor=_actor(request, body.actor), reason=body.reason
        )
    )
    await services.refresher.refresh_now()
    return move


@router.post(
    "/{name}/aliases/{alias}/rollback",
    response_model=AliasMoveOut,
    dependencies=[ADMIN],
    responses=error_responses(404),
)
async def rollback(name: str, alias: str, body: AliasRollback, request: Request) -> AliasMoveOut:
    services = services_of(request)
    move = await asyncio.to_thread(
        lambda: services.registry.rollback(
            name,
            alias,
            actor=_actor(request, body.actor),
            reason=body.reason,
            to_version=body.to_version,
        )
    )
    await services.refresher.refresh_now()
    return move


def attach(app: FastAPI) -> None:
    app.include_router(router)
