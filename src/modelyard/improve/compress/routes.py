"""Compression JSON API. Starting one answers 202 at once; the variants are made, registered
and measured in the background, and ``GET`` shows how far it got and the table so far."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path as FilePath
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, FastAPI, Path, Query, Request

from modelyard.errors import error_responses
from modelyard.guard.auth import actor_of, principal_of, requires
from modelyard.guard.roles import Access
from modelyard.improve.compress.compression import compress, start_compression
from modelyard.improve.compress.protocol import CompressionList, CompressionOut, CompressRequest
from modelyard.improve.compress.records import Compressions
from modelyard.improve.compress.scoring import ClientFactory
from modelyard.jobs import BackgroundJobs, gateway_client
from modelyard.services import services_of
from modelyard.store import Store

if TYPE_CHECKING:
    import httpx

router = APIRouter(prefix="/api/compress", tags=["improve"], responses=error_responses(401, 403))
READ = requires(Access.read)
ADMIN = requires(Access.admin)
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]
Limit = Annotated[int, Query(ge=1, le=1000)]


@router.post(
    "",
    response_model=CompressionOut,
    status_code=202,
    dependencies=[ADMIN],
    responses=error_responses(400, 404),
)
async def start(body: CompressRequest, request: Request) -> CompressionOut:
    """Make quantised variants of ``model@version``, register each as a version and measure
    them beside the parent. Poll ``GET /api/compress/{id}``."""
    services = services_of(request)
    actor = actor_of(principal_of(request))
    out = await asyncio.to_thread(start_compression, services.store, body, actor)
    app, headers = request.app, dict(request.headers)

    @asynccontextmanager
    async def serving() -> AsyncIterator[httpx.AsyncClient]:
        await services.refresher.refresh_now()  # the variants just registered are served
        async with gateway_client(app, headers, services.settings.request_timeout_s) as client:
            yield client

    jobs: BackgroundJobs = request.app.state.improve_jobs
    jobs.start(f"compress:{out.id}", _job(services.store, services.settings.home, out.id, serving))
    return out


async def _job(store: Store, home: FilePath, compression_id: int, serving: ClientFactory) -> None:
    await compress(store, home, compression_id, serving)


@router.get("", response_model=CompressionList, dependencies=[READ])
async def list_compressions(
    request: Request, model: str | None = None, limit: Limit = 100
) -> CompressionList:
    """Compressions, newest first (of one model's, with ``model``)."""
    records = Compressions(services_of(request).store)
    return CompressionList(data=await asyncio.to_thread(records.list_compressions, model, limit))


@router.get(
    "/{compression_id}",
    response_model=CompressionOut,
    dependencies=[READ],
    responses=error_responses(404),
)
async def get_compression(compression_id: RowId, request: Request) -> CompressionOut:
    """One compression: its stage and table (parent first; measurements, comparisons with
    the parent, gate verdicts, the Pareto front)."""
    records = Compressions(services_of(request).store)
    return await asyncio.to_thread(records.get, compression_id)


def attach(app: FastAPI) -> None:
    app.include_router(router)
