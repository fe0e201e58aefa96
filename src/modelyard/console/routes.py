"""Console pages. Each page renders what its JSON twin under ``/api`` returns."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from modelyard import __version__
from modelyard.services import services_of

HERE = Path(__file__).parent
router = APIRouter(include_in_schema=False)

# Navigation of the console; later packages add their pages here.
NAV = (("Playground", "/"), ("Models", "/ui/models"))


def _render(request: Request, template: str, context: dict[str, Any]) -> HTMLResponse:
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(
        request,
        template,
        {"nav": NAV, "version": __version__, "path": request.url.path, **context},
    )


@router.get("/", response_class=HTMLResponse)
@router.get("/ui/playground", response_class=HTMLResponse)
async def playground(request: Request) -> HTMLResponse:
    models = [t.public_name for t in services_of(request).routing.public_models()]
    return _render(request, "playground.html", {"title": "Playground", "models": models})


@router.get("/ui/models", response_class=HTMLResponse)
async def models_page(request: Request) -> HTMLResponse:
    registry = services_of(request).registry
    models = await asyncio.to_thread(registry.list_models)
    data = [m.model_dump(mode="json") for m in models]
    return _render(
        request, "models.html", {"title": "Models", "models": data, "json_url": "/api/models"}
    )


@router.get("/ui/models/{name}", response_class=HTMLResponse)
async def model_page(name: str, request: Request) -> HTMLResponse:
    registry = services_of(request).registry
    detail = await asyncio.to_thread(registry.model, name)
    return _render(
        request,
        "model.html",
        {
            "title": f"Model {name}",
            "model": detail.model_dump(mode="json"),
            "json_url": f"/api/models/{name}",
        },
    )


def _when(value: str | None) -> str:
    """ISO timestamps from the JSON, shown to the second in UTC."""
    if not value:
        return "—"
    return datetime.fromisoformat(value).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def attach(app: FastAPI) -> None:
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters["when"] = _when
    app.state.templates = templates
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(router)
