"""Export for an external trainer and fine-tune registration, JSON API under
``/api/finetune``: make an export (its manifest), stream its bytes, register what the
trainer made, read the lineage."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, FastAPI, Path, Query, Request
from fastapi.responses import StreamingResponse

from modelyard.errors import error_responses
from modelyard.guard.auth import actor_of, principal_of, requires
from modelyard.guard.roles import Access
from modelyard.improve.export.exports import create_export, export_bytes
from modelyard.improve.export.protocol import (
    ExportOut,
    ExportRequest,
    FineTuneOut,
    FineTuneOverview,
    FineTuneRequest,
)
from modelyard.improve.export.records import finetune_of, get_export, overview
from modelyard.improve.export.register import register_finetune
from modelyard.services import services_of

router = APIRouter(prefix="/api/finetune", tags=["improve"], responses=error_responses(401, 403))
READ = requires(Access.read)
ADMIN = requires(Access.admin)
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]
Limit = Annotated[int, Query(ge=1, le=1000)]


def _actor(request: Request) -> str:
    return actor_of(principal_of(request))


@router.get("", response_model=FineTuneOverview, dependencies=[READ])
async def list_all(request: Request, limit: Limit = 100) -> FineTuneOverview:
    """Exports and registered fine-tunes, newest first."""
    return await asyncio.to_thread(overview, services_of(request).store, limit)


@router.post(
    "/exports",
    response_model=ExportOut,
    status_code=201,
    dependencies=[ADMIN],
    responses=error_responses(400, 404),
)
async def make_export(body: ExportRequest, request: Request) -> ExportOut:
    """Export a dataset version (one split, if asked) for an external trainer: the
    manifest, with the SHA-256 of the bytes `GET .../file` streams."""
    store = services_of(request).store
    return await asyncio.to_thread(create_export, store, body, _actor(request))


@router.get(
    "/exports/{export_id}",
    response_model=ExportOut,
    dependencies=[READ],
    responses=error_responses(404),
)
async def get_manifest(export_id: RowId, request: Request) -> ExportOut:
    """One export's manifest."""
    return await asyncio.to_thread(get_export, services_of(request).store, export_id)


@router.get(
    "/exports/{export_id}/file",
    dependencies=[READ],
    response_class=StreamingResponse,
    responses=error_responses(404),
)
async def download(export_id: RowId, request: Request) -> StreamingResponse:
    """The export's bytes, streamed a page of items at a time; the manifest's SHA-256
    and size are in the headers."""
    out, chunks = await asyncio.to_thread(export_bytes, services_of(request).store, export_id)
    return StreamingResponse(
        chunks,  # a sync iterator: Starlette reads it on a worker thread
        media_type=out.media_type,
        headers={
            "content-disposition": f'attachment; filename="{out.filename}"',
            "content-length": str(out.bytes),
            "etag": f'"{out.sha256}"',
            "x-modelyard-export-id": str(out.id),
            "x-modelyard-export-sha256": out.sha256,
        },
    )


@router.post(
    "/models",
    response_model=FineTuneOut,
    status_code=201,
    dependencies=[ADMIN],
    responses=error_responses(400, 404),
)
async def register(body: FineTuneRequest, request: Request) -> FineTuneOut:
    """Register what an external trainer made from an export (a GGUF file on this server,
    or an upstream model) as the next version of ``model``, with its lineage."""
    services = services_of(request)
    out = await asyncio.to_thread(register_finetune, services.store, body, _actor(request))
    await services.refresher.refresh_now()
    return out


@router.get(
    "/models/{model}/{version}",
    response_model=FineTuneOut,
    dependencies=[READ],
    responses=error_responses(404),
)
async def lineage(model: str, version: RowId, request: Request) -> FineTuneOut:
    """A version registered as a fine-tune, with its lineage."""
    return await asyncio.to_thread(finetune_of, services_of(request).store, model, version)


def attach(app: FastAPI) -> None:
    app.include_router(router)
