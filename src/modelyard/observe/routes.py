"""Request log JSON API: ``/api/requests``. A developer key sees its own requests only."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, FastAPI, Query, Request

from modelyard.guard.auth import Forbidden, principal_of, requires
from modelyard.guard.roles import Access
from modelyard.observe.protocol import RequestDetail, RequestList
from modelyard.observe.queries import RequestNotFound, get_request, list_requests

router = APIRouter(prefix="/api/requests", tags=["observe"])
READ_OWN = requires(Access.read_own)


@router.get("", response_model=RequestList, dependencies=[READ_OWN])
async def requests_list(
    request: Request,
    key_id: str | None = None,
    route: str | None = None,
    status: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> RequestList:
    principal = principal_of(request)
    if not principal.sees_all:
        if key_id is not None and key_id != principal.key_id:
            raise Forbidden("A developer key may read its own requests only.")
        key_id = principal.key_id
    services = request.app.state.services
    rows = await asyncio.to_thread(
        list_requests,
        services.store,
        key_id=key_id,
        route=route,
        status=status,
        since=since,
        until=until,
        limit=limit,
    )
    return RequestList(data=rows)


@router.get("/{request_id}", response_model=RequestDetail, dependencies=[READ_OWN])
async def request_detail(request_id: str, request: Request) -> RequestDetail:
    services = request.app.state.services
    detail = await asyncio.to_thread(
        get_request, services.store, request_id, services.guard.cipher.open
    )
    if not principal_of(request).owns(detail.key_id):
        raise RequestNotFound(request_id)
    return detail


def attach(app: FastAPI) -> None:
    app.include_router(router)
