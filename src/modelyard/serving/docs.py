"""``/openapi.json`` and ``/docs`` behind a key, like every other non-health route."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

from modelyard.guard.auth import requires
from modelyard.guard.roles import Access

router = APIRouter(include_in_schema=False)
ANY_KEY = requires(*Access)


@router.get("/openapi.json", dependencies=[ANY_KEY])
async def openapi(request: Request) -> dict[str, Any]:
    schema: dict[str, Any] = request.app.openapi()
    return schema


@router.get("/docs", response_class=HTMLResponse, dependencies=[requires(*Access, page=True)])
async def swagger() -> HTMLResponse:
    return get_swagger_ui_html(openapi_url="/openapi.json", title="modelyard API")


def attach(app: FastAPI) -> None:
    app.include_router(router)
