"""Datasets JSON API: list, versions, one version with its items, JSONL, build from the log."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from modelyard.errors import error_responses
from modelyard.evaluate.datasets import DatasetOut, DatasetService
from modelyard.guard.auth import actor_of, principal_of, requires
from modelyard.guard.roles import Access
from modelyard.services import services_of

router = APIRouter(prefix="/api/datasets", tags=["evaluate"], responses=error_responses(401, 403))
READ = requires(Access.read)
ADMIN = requires(Access.admin)
Version = Annotated[int, Path(ge=1, le=2**31 - 1)]
MAX_ITEMS = 1000


class DatasetList(BaseModel):
    data: list[DatasetOut]


class DatasetDetail(DatasetOut):
    offset: int
    items: list[dict[str, Any]]


class FromLog(BaseModel):
    name: str = Field(description="The dataset to add a version to.")
    route: str | None = Field(default=None, description="Only requests to this route.")
    feedback: str | None = Field(
        default=None, description="Only requests with feedback of this name (e.g. thumbs)."
    )
    negative_only: bool = Field(
        default=False, description="Only negative feedback: boolean false or a score of 0."
    )
    days: float = Field(default=7, gt=0, le=3660, description="How far back to look.")
    limit: int = Field(default=1000, ge=1, le=100_000, description="At most this many requests.")


def _datasets(request: Request) -> DatasetService:
    return DatasetService(services_of(request).store)


@router.get("", response_model=DatasetList, dependencies=[READ])
async def list_datasets(request: Request) -> DatasetList:
    """The latest version of every dataset."""
    return DatasetList(data=await asyncio.to_thread(_datasets(request).list_datasets))


@router.post("/from-log", response_model=DatasetOut, status_code=201, dependencies=[ADMIN])
async def from_log(body: FromLog, request: Request) -> DatasetOut:
    """A version of ``name`` from successful logged requests (and their feedback)."""
    services = services_of(request)
    return await asyncio.to_thread(
        DatasetService(services.store).from_log,
        body.name,
        route=body.route,
        feedback=body.feedback,
        negative_only=body.negative_only,
        since=datetime.now(UTC) - timedelta(days=body.days),
        until=None,
        limit=body.limit,
        open_content=services.guard.cipher.open,
        actor=actor_of(principal_of(request)),
    )


@router.get(
    "/{name}", response_model=DatasetList, dependencies=[READ], responses=error_responses(404)
)
async def list_versions(name: str, request: Request) -> DatasetList:
    """Every version of one dataset, newest first."""
    return DatasetList(data=await asyncio.to_thread(_datasets(request).versions, name))


@router.get(
    "/{name}/{version}.jsonl",
    dependencies=[READ],
    response_class=StreamingResponse,
    responses=error_responses(404),
)
async def export_version(name: str, version: Version, request: Request) -> StreamingResponse:
    lines = await asyncio.to_thread(_datasets(request).export_jsonl, name, version)
    return StreamingResponse(
        lines,
        media_type="application/x-ndjson",
        headers={"content-disposition": f'attachment; filename="{name}-{version}.jsonl"'},
    )


@router.get(
    "/{name}/{version}",
    response_model=DatasetDetail,
    dependencies=[READ],
    responses=error_responses(404),
)
async def get_version(
    name: str,
    version: Version,
    request: Request,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_ITEMS)] = 100,
) -> DatasetDetail:
    """One version with up to ``limit`` of its items from ``offset``."""
    return await asyncio.to_thread(dataset_detail, _datasets(request), name, version, offset, limit)


def dataset_detail(
    datasets: DatasetService, name: str, version: int, offset: int = 0, limit: int = 100
) -> DatasetDetail:
    """What ``GET /api/datasets/{name}/{version}`` returns (the console page renders it)."""
    out = datasets.get(name, version)
    items = datasets.items(name, version, offset, limit)
    return DatasetDetail(**out.model_dump(), offset=offset, items=items)


def attach(app: FastAPI) -> None:
    app.include_router(router)
