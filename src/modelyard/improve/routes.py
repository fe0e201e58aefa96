"""Curation JSON API: build a version (or preview one), list curated versions, read one's
report."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, FastAPI, Path, Query, Request

from modelyard.errors import error_responses
from modelyard.guard.auth import actor_of, principal_of, requires
from modelyard.guard.roles import Access
from modelyard.improve.curate import Curator
from modelyard.improve.protocol import CurateOut, CurateRequest, CurationList
from modelyard.improve.versions import curated_versions, curation_of
from modelyard.services import services_of

router = APIRouter(prefix="/api/curate", tags=["improve"], responses=error_responses(401, 403))
READ = requires(Access.read)
ADMIN = requires(Access.admin)
Version = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _curate(body: CurateRequest, request: Request, dry_run: bool) -> CurateOut:
    services = services_of(request)
    curator = Curator(
        services.store,
        body,
        open_content=services.guard.cipher.open,
        actor=actor_of(principal_of(request)),
    )
    return curator.run(dry_run=dry_run).out


@router.post(
    "",
    response_model=CurateOut,
    status_code=201,
    dependencies=[ADMIN],
    responses=error_responses(400, 404),
)
async def curate(body: CurateRequest, request: Request) -> CurateOut:
    """A new version of ``name`` from the request log, feedback and datasets, cleaned,
    scrubbed, deduplicated, checked for outliers and split, with the report of each step."""
    return await asyncio.to_thread(_curate, body, request, False)


@router.post(
    "/preview", response_model=CurateOut, dependencies=[ADMIN], responses=error_responses(400, 404)
)
async def preview(body: CurateRequest, request: Request) -> CurateOut:
    """What ``POST /api/curate`` would build and why, without building it."""
    return await asyncio.to_thread(_curate, body, request, True)


@router.get("", response_model=CurationList, dependencies=[READ])
async def list_curations(
    request: Request, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> CurationList:
    """Curated dataset versions, newest first."""
    store = services_of(request).store
    return CurationList(data=await asyncio.to_thread(curated_versions, store, limit))


@router.get(
    "/{name}/{version}",
    response_model=CurateOut,
    dependencies=[READ],
    responses=error_responses(404),
)
async def get_curation(name: str, version: Version, request: Request) -> CurateOut:
    """One curated version: the request that built it and its report."""
    return await asyncio.to_thread(curation_of, services_of(request).store, name, version)


def attach(app: FastAPI) -> None:
    app.include_router(router)
