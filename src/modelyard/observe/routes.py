"""Observe's HTTP faces: ``/api/requests`` (the request log and its exports),
``POST /v1/feedback`` and ``GET /metrics``. A developer key sees its own requests only."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.responses import Response, StreamingResponse

from modelyard.errors import error_responses
from modelyard.guard.auth import Forbidden, principal_of, requires
from modelyard.guard.roles import Access, Role
from modelyard.observe.drift_jobs import DriftScheduler, get_report, list_reports, run_drift
from modelyard.observe.feedback import FeedbackRefused, add_feedback, owner_of
from modelyard.observe.metrics import CONTENT_TYPE
from modelyard.observe.protocol import (
    DriftReportList,
    DriftReportOut,
    DriftRun,
    FeedbackIn,
    FeedbackOut,
    RequestDetail,
    RequestList,
    Stats,
)
from modelyard.observe.queries import (
    RequestFilter,
    RequestNotFound,
    as_csv,
    as_jsonl,
    export_rows,
    get_request,
    list_requests,
)
from modelyard.observe.stats import stats
from modelyard.observe.tracing import TracingStatus, status_of
from modelyard.services import services_of
from modelyard.wire import IsoDateTime

router = APIRouter(tags=["observe"], responses=error_responses(401, 403))
READ = requires(Access.read)
READ_OWN = requires(Access.read_own)
INFER = requires(Access.infer)
ADMIN = requires(Access.admin)


FilterQuery = Annotated[str | None, Query()]


def request_filter(
    request: Request,
    key_id: FilterQuery = None,
    route: FilterQuery = None,
    version: FilterQuery = None,
    status: Annotated[int | None, Query(ge=100, le=599)] = None,
    since: IsoDateTime | None = None,
    until: IsoDateTime | None = None,
    feedback: Annotated[
        str | None, Query(description="Only requests with feedback of this name (`*`: any).")
    ] = None,
    language: Annotated[
        str | None,
        Query(
            max_length=16,
            description="Only requests whose prompt is in this language (an ISO 639 code such "
            "as `en` or `zh`; `und`: letters of no language told; rows logged before "
            "languages were identified hold a script such as `latin`).",
        ),
    ] = None,
) -> RequestFilter:
    """The request-log filter a request asks for (a dependency shared by the list and the
    exports); a developer key is held to its own requests."""
    principal = principal_of(request)
    if not principal.sees_all:
        if key_id is not None and key_id != principal.key_id:
            raise Forbidden("A developer key may read its own requests only.")
        key_id = principal.key_id
    return RequestFilter(key_id, route, version, status, since, until, feedback, language)


Where = Annotated[RequestFilter, Depends(request_filter)]


@router.get("/api/requests", response_model=RequestList, dependencies=[READ_OWN])
async def requests_list(
    request: Request, where: Where, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> RequestList:
    rows = await asyncio.to_thread(list_requests, services_of(request).store, where, limit)
    return RequestList(data=rows)


@router.get("/api/requests.jsonl", dependencies=[READ_OWN], response_class=StreamingResponse)
@router.get("/api/requests.csv", dependencies=[READ_OWN], response_class=StreamingResponse)
async def requests_export(request: Request, where: Where) -> StreamingResponse:
    """Every matching row, oldest first (metadata; content stays in the detail view)."""
    rows = export_rows(services_of(request).store, where)
    if request.url.path.endswith(".csv"):
        # A sync iterator: Starlette reads it on a worker thread, off the event loop.
        return StreamingResponse(
            as_csv(rows),
            media_type="text/csv",
            headers={"content-disposition": 'attachment; filename="requests.csv"'},
        )
    return StreamingResponse(as_jsonl(rows), media_type="application/x-ndjson")


@router.get(
    "/api/requests/{request_id}",
    response_model=RequestDetail,
    dependencies=[READ_OWN],
    responses=error_responses(404),
)
async def request_detail(request_id: str, request: Request) -> RequestDetail:
    services = services_of(request)
    detail = await asyncio.to_thread(
        get_request, services.store, request_id, services.guard.cipher.open
    )
    if not principal_of(request).owns(detail.key_id):
        raise RequestNotFound(request_id)
    return detail


@router.post(
    "/v1/feedback",
    response_model=FeedbackOut,
    status_code=201,
    dependencies=[INFER],
    responses=error_responses(404),
)
async def feedback(body: FeedbackIn, request: Request) -> FeedbackOut:
    """Feedback on a logged request, from the key that made it (or an admin)."""
    services = services_of(request)
    principal = principal_of(request)
    owner = services.request_log.recent_owner(body.request_id)
    if owner is None:
        owner = await asyncio.to_thread(owner_of, services.store, body.request_id)
    if owner is None or (owner != principal.key_id and principal.role != Role.admin):
        raise FeedbackRefused(body.request_id)
    out = await asyncio.to_thread(add_feedback, services.store, body, principal.key_id)
    services.metrics.feedback.labels(out.name, out.source).inc()
    return out


@router.get("/api/stats", response_model=Stats, dependencies=[READ])
async def get_stats(
    request: Request,
    route: FilterQuery = None,
    hours: Annotated[float, Query(gt=0, le=24 * 90)] = 24.0,
) -> Stats:
    """Time series per version over the last ``hours`` (about 60 buckets)."""
    until = datetime.now(UTC)
    return await asyncio.to_thread(
        stats, services_of(request).store, until - timedelta(hours=hours), until, route
    )


@router.get("/api/drift", response_model=DriftReportList, dependencies=[READ])
async def drift_reports(
    request: Request,
    route: FilterQuery = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DriftReportList:
    rows = await asyncio.to_thread(list_reports, services_of(request).store, route, limit)
    return DriftReportList(data=rows)


@router.get(
    # ``:int``: only a number is a report, so GET /api/drift/run is a 405, not a bad id
    "/api/drift/{report_id:int}",
    response_model=DriftReportOut,
    dependencies=[READ],
    responses=error_responses(404),
)
async def drift_report_detail(
    report_id: Annotated[int, Path(ge=1, le=2**31 - 1)], request: Request
) -> DriftReportOut:
    return await asyncio.to_thread(get_report, services_of(request).store, report_id)


@router.post("/api/drift/run", response_model=DriftReportList, dependencies=[ADMIN])
async def drift_run(body: DriftRun, request: Request) -> DriftReportList:
    """Compute drift reports now: for one route (400 if it lacks data) or every active one."""
    services = services_of(request)
    embed = request.app.state.prompt_embedder
    scheduler = DriftScheduler(services.store, services.guard.cipher.open, body, embed)
    if body.route is None:
        return DriftReportList(data=await scheduler.run_once())
    windows = scheduler.windows(datetime.now(UTC))
    report = await run_drift(services.store, body.route, windows, services.guard.cipher.open, embed)
    return DriftReportList(data=[report])


@router.get("/api/energy", dependencies=[READ])
async def energy(request: Request) -> dict[str, object]:
    """How per-request energy and carbon are estimated here: method, sources, figures."""
    services = services_of(request)
    return {
        "assumptions": services.power.assumptions(),
        "unattributed_cpu_seconds": services.meter.idle_cpu_seconds,
    }


@router.get("/api/tracing", response_model=TracingStatus, dependencies=[READ])
async def tracing(request: Request) -> TracingStatus:
    """Whether this server exports OpenTelemetry traces, where to and how many (the
    endpoint without credentials)."""
    return status_of(services_of(request).tracing)


@router.get("/metrics", dependencies=[READ], response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus text format. Scrape with a viewer key (`authorization` in the scrape
    config)."""
    return Response(services_of(request).metrics.render(), media_type=CONTENT_TYPE)


def attach(app: FastAPI) -> None:
    app.include_router(router)
