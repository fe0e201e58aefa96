"""``/openapi.json`` and ``/docs`` behind a key, like every other non-health route."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

from modelyard.config import Settings
from modelyard.guard.auth import requires
from modelyard.guard.roles import Access
from modelyard.services import services_of

router = APIRouter(include_in_schema=False)
ANY_KEY = requires(*Access)


@router.get("/openapi.json", dependencies=[ANY_KEY])
async def openapi(request: Request) -> dict[str, Any]:
    schema: dict[str, Any] = request.app.openapi()
    return with_limits(schema, services_of(request).settings)


def with_limits(schema: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The document with this server's limits on inference requests (settings, so not in
    the models): the cap on ``max_tokens`` and the most messages a chat may carry."""
    components = schema.get("components", {}).get("schemas", {})
    for name in ("ChatCompletionRequest", "CompletionRequest"):
        properties = components.get(name, {}).get("properties", {})
        for field in ("max_tokens", "max_completion_tokens"):
            for branch in properties.get(field, {}).get("anyOf", []):
                if branch.get("type") == "integer":
                    branch["maximum"] = settings.max_tokens_cap
        if "messages" in properties:
            properties["messages"]["maxItems"] = settings.max_messages
    return schema


@router.get("/docs", response_class=HTMLResponse, dependencies=[requires(*Access, page=True)])
async def swagger() -> HTMLResponse:
    return get_swagger_ui_html(openapi_url="/openapi.json", title="modelyard API")


def attach(app: FastAPI) -> None:
    app.include_router(router)
