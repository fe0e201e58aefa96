"""Liveness (``/healthz``: the process answers) and readiness (``/readyz``: engines loaded,
and the replica not draining)."""

from __future__ import annotations

import resource

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from modelyard import __version__
from modelyard.errors import error_responses
from modelyard.guard.auth import requires
from modelyard.guard.roles import Access
from modelyard.routing import version_name
from modelyard.services import services_of
from modelyard.serving.drain import Drain

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok", "version": __version__}


@router.get(
    "/readyz",
    responses={
        503: {
            "description": "Not ready: an aliased version's engine is not loaded, or the "
            "replica is draining (it was told to stop and still finishes what it serves)."
        }
    },
)
async def readyz(request: Request) -> JSONResponse:
    drain: Drain = request.app.state.drain
    if drain.draining:
        return JSONResponse({"status": "draining"}, status_code=503)
    services = services_of(request)
    engines = services.engines.states()
    wanted = {(s.model, s.version) for s in services.routing.aliased_specs()}
    loaded = {(e.model, e.version): e for e in engines}
    missing = [version_name(m, v) for m, v in sorted(wanted) if (m, v) not in loaded]
    not_ready = [e for e in engines if (e.model, e.version) in wanted and e.state != "ready"]
    ready = not missing and not not_ready
    body = {
        "status": "ready" if ready else "not_ready",
        "engines": [
            {"model": e.model, "version": e.version, "state": e.state, "error": e.error}
            for e in engines
        ],
        "not_loaded": missing,
    }
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get(
    "/api/engines", dependencies=[requires(Access.read)], responses=error_responses(401, 403)
)
async def engines(request: Request) -> dict[str, object]:
    """Every engine this replica has started: state, context length, slots, load errors."""
    states = services_of(request).engines.states()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    return {
        "object": "list",
        "data": [state.as_json() for state in states],
        "process": {"peak_rss_bytes": peak},
    }


def attach(app: FastAPI) -> None:
    app.include_router(router)
