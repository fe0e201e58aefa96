"""Live quality JSON API: ``GET /api/quality`` (online quality per route and version over
time, and this replica's live judge) and ``GET /api/quality/judgements`` (judged samples)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, FastAPI, Query, Request

from modelyard.errors import error_responses
from modelyard.guard.auth import requires
from modelyard.guard.roles import Access
from modelyard.observe.quality.judgements import LiveJudgements
from modelyard.observe.quality.protocol import LiveJudgementList, LiveQualityOut
from modelyard.services import services_of

READ = requires(Access.read)

router = APIRouter(prefix="/api/quality", tags=["observe"], responses=error_responses(401, 403))

Route = Annotated[str | None, Query(max_length=128, description="One route; none: all.")]
Hours = Annotated[float, Query(gt=0, le=30 * 24, description="The window, back from now.")]
Bucket = Annotated[int, Query(ge=60, le=86_400, description="A point's span, seconds.")]


async def live_quality(
    request: Request, route: str | None = None, hours: float = 24, bucket_s: int = 3600
) -> LiveQualityOut:
    """What ``GET /api/quality`` answers (the Monitor page renders it too)."""
    services = services_of(request)
    judgements = LiveJudgements(services.store)
    replica = services.live_judge.stats()
    return await asyncio.to_thread(
        lambda: judgements.quality(hours=hours, bucket_s=bucket_s, route=route, replica=replica)
    )


@router.get("", response_model=LiveQualityOut, dependencies=[READ], responses=error_responses(400))
async def get_quality(
    request: Request, route: Route = None, hours: Hours = 24, bucket_s: Bucket = 3600
) -> LiveQualityOut:
    return await live_quality(request, route, hours, bucket_s)


@router.get("/judgements", response_model=LiveJudgementList, dependencies=[READ])
async def list_judgements(
    request: Request,
    route: Route = None,
    version: Annotated[str | None, Query(max_length=160)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> LiveJudgementList:
    judgements = LiveJudgements(services_of(request).store)
    return LiveJudgementList(data=await asyncio.to_thread(judgements.recent, route, version, limit))


def attach(app: FastAPI) -> None:
    app.include_router(router)
