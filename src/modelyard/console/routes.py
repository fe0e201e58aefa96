"""Console pages. Each page renders what its JSON twin under ``/api`` returns."""

from __future__ import annotations

import asyncio
import importlib.util
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from modelyard import __version__
from modelyard.evaluate.dataset_routes import dataset_detail
from modelyard.evaluate.datasets import DatasetService
from modelyard.evaluate.routes import run_comparison, run_report
from modelyard.evaluate.runs import EvalRuns
from modelyard.guard.audit import audit_events
from modelyard.guard.auth import principal_of, requires
from modelyard.guard.keyring import AuthenticationFailed
from modelyard.guard.roles import Access
from modelyard.guard.sessions import COOKIE
from modelyard.guard.usage import usage
from modelyard.observe.alerts import AlertService
from modelyard.observe.drift_jobs import get_report, list_reports
from modelyard.observe.queries import RequestFilter, RequestNotFound, get_request, list_requests
from modelyard.observe.stats import stats
from modelyard.release.protocol import LOWER_IS_BETTER
from modelyard.routing.policies import PolicyRefused
from modelyard.routing.routes import route_out
from modelyard.services import services_of

HERE = Path(__file__).parent


def _plotly_js() -> Path:
    """plotly.min.js inside the installed plotly package, found without importing it."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or spec.origin is None:
        raise RuntimeError("the plotly package is not installed")
    return Path(spec.origin).parent / "package_data" / "plotly.min.js"


router = APIRouter(include_in_schema=False)

# Navigation of the console; later packages add their pages here.
NAV = (
    ("Playground", "/"),
    ("Models", "/ui/models"),
    ("Routes", "/ui/routes"),
    ("Rollouts", "/ui/rollouts"),
    ("Experiments", "/ui/experiments"),
    ("Monitor", "/ui/monitor"),
    ("Requests", "/ui/requests"),
    ("Drift", "/ui/drift"),
    ("Alerts", "/ui/alerts"),
    ("Datasets", "/ui/datasets"),
    ("Evals", "/ui/eval"),
    ("Keys", "/ui/keys"),
    ("Usage", "/ui/usage"),
    ("Audit", "/ui/audit"),
)
PLAY = requires(Access.infer, page=True)
READ = requires(Access.read, page=True)
READ_OWN = requires(Access.read_own, page=True)
RolloutId = Annotated[int, PathParam(ge=1, le=2**31 - 1)]
# How often the rollout and experiment pages ask the API for news, in milliseconds.
RELEASE_POLL_MS = 3000


def _render(request: Request, template: str, context: dict[str, Any]) -> HTMLResponse:
    templates: Jinja2Templates = request.app.state.templates
    principal = getattr(request.state, "principal", None)
    return templates.TemplateResponse(
        request,
        template,
        {
            "nav": NAV,
            "version": __version__,
            "path": request.url.path,
            "principal": principal,
            **context,
        },
    )


@router.get("/ui/login", response_class=HTMLResponse)
async def login_page(request: Request, next: str = "/") -> HTMLResponse:
    return _render(request, "login.html", {"title": "Log in", "next": _safe_next(next)})


@router.post("/ui/login", response_model=None)
async def login(request: Request) -> Response:
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    key = form.get("key", [""])[0].strip()
    target = _safe_next(form.get("next", ["/"])[0])
    guard = services_of(request).guard
    now = datetime.now(UTC)
    try:
        principal = guard.keyring.authenticate(key, now)
    except AuthenticationFailed as error:
        failed: Response = _render(
            request, "login.html", {"title": "Log in", "next": target, "error": str(error)}
        )
        failed.status_code = 401
        return failed
    record = guard.keyring.record(principal.key_id)
    assert record is not None  # authenticate just found it
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE,
        guard.signer.issue(record, now),
        max_age=guard.signer.ttl_s,
        httponly=True,
        secure=True,
        samesite="lax",
        path="/",
    )
    return response


@router.post("/ui/logout")
async def logout() -> RedirectResponse:
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="lax")
    return response


def _safe_next(target: str) -> str:
    """Only paths of this site (no ``//host`` or scheme), so login cannot redirect away."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/", response_class=HTMLResponse, dependencies=[PLAY])
@router.get("/ui/playground", response_class=HTMLResponse, dependencies=[PLAY])
async def playground(request: Request) -> HTMLResponse:
    models = [t.public_name for t in services_of(request).routing.public_models()]
    return _render(request, "playground.html", {"title": "Playground", "models": models})


@router.get("/ui/models", response_class=HTMLResponse, dependencies=[READ])
async def models_page(request: Request) -> HTMLResponse:
    registry = services_of(request).registry
    models = await asyncio.to_thread(registry.list_models)
    data = [m.model_dump(mode="json") for m in models]
    return _render(
        request, "models.html", {"title": "Models", "models": data, "json_url": "/api/models"}
    )


@router.get("/ui/models/{name}", response_class=HTMLResponse, dependencies=[READ])
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


@router.get("/ui/keys", response_class=HTMLResponse, dependencies=[READ])
async def keys_page(request: Request) -> HTMLResponse:
    keys = await asyncio.to_thread(services_of(request).guard.keys.list_keys)
    return _render(
        request,
        "keys.html",
        {
            "title": "API keys",
            "keys": [k.model_dump(mode="json") for k in keys],
            "json_url": "/api/keys",
        },
    )


@router.get("/ui/usage", response_class=HTMLResponse, dependencies=[READ_OWN])
async def usage_page(request: Request, key_id: str | None = None) -> HTMLResponse:
    principal = principal_of(request)
    if not principal.sees_all:
        key_id = principal.key_id
    rows = await asyncio.to_thread(usage, services_of(request).store, key_id=key_id)
    query = f"?key_id={key_id}" if key_id else ""
    return _render(
        request,
        "usage.html",
        {
            "title": "Usage",
            "rows": [r.model_dump(mode="json") for r in reversed(rows)],
            "key_id": key_id,
            "json_url": f"/api/usage{query}",
            "csv_url": f"/api/usage.csv{query}",
        },
    )


@router.get("/ui/audit", response_class=HTMLResponse, dependencies=[READ])
async def audit_page(request: Request, action: str | None = None) -> HTMLResponse:
    events = await asyncio.to_thread(
        audit_events, services_of(request).store, action=action, limit=200
    )
    query = f"?action={action}" if action else ""
    return _render(
        request,
        "audit.html",
        {
            "title": "Audit log",
            "events": [e.model_dump(mode="json") for e in events],
            "action": action or "",
            "json_url": f"/api/audit{query}",
        },
    )


@router.get("/ui/monitor", response_class=HTMLResponse, dependencies=[READ])
async def monitor_page(
    request: Request, route: str | None = None, hours: float = 24.0
) -> HTMLResponse:
    services = services_of(request)
    hours = min(max(hours, 0.1), 24 * 90)
    until = datetime.now(UTC)
    series = await asyncio.to_thread(
        stats, services.store, until - timedelta(hours=hours), until, route or None
    )
    routes = sorted({t.model for t in services.routing.public_models()})
    query = f"?hours={hours:g}" + (f"&route={route}" if route else "")
    return _render(
        request,
        "monitor.html",
        {
            "title": "Monitor",
            "stats": series.model_dump(mode="json"),
            "routes": routes,
            "route": route or "",
            "hours": hours,
            "json_url": f"/api/stats{query}",
        },
    )


@router.get("/ui/requests", response_class=HTMLResponse, dependencies=[READ_OWN])
async def requests_page(
    request: Request,
    route: str | None = None,
    status: Annotated[int | None, Query(ge=100, le=599)] = None,
    feedback: str | None = None,
) -> HTMLResponse:
    principal = principal_of(request)
    where = RequestFilter(
        key_id=None if principal.sees_all else principal.key_id,
        route=route or None,
        status=status,
        feedback=feedback or None,
    )
    rows = await asyncio.to_thread(list_requests, services_of(request).store, where, 200)
    return _render(
        request,
        "requests.html",
        {
            "title": "Requests",
            "rows": [r.model_dump(mode="json") for r in rows],
            "route": route or "",
            "status": status or "",
            "feedback": feedback or "",
            "json_url": "/api/requests",
        },
    )


@router.get("/ui/requests/{request_id}", response_class=HTMLResponse, dependencies=[READ_OWN])
async def request_page(request_id: str, request: Request) -> HTMLResponse:
    services = services_of(request)
    detail = await asyncio.to_thread(
        get_request, services.store, request_id, services.guard.cipher.open
    )
    if not principal_of(request).owns(detail.key_id):
        raise RequestNotFound(request_id)
    return _render(
        request,
        "request.html",
        {
            "title": f"Request {request_id}",
            "r": detail.model_dump(mode="json"),
            "json_url": f"/api/requests/{request_id}",
        },
    )


@router.get("/ui/drift", response_class=HTMLResponse, dependencies=[READ])
async def drift_page(request: Request, route: str | None = None) -> HTMLResponse:
    reports = await asyncio.to_thread(list_reports, services_of(request).store, route or None, 50)
    return _render(
        request,
        "drift.html",
        {
            "title": "Drift",
            "reports": [r.model_dump(mode="json") for r in reports],
            "json_url": "/api/drift",
        },
    )


@router.get("/ui/drift/{report_id}", response_class=HTMLResponse, dependencies=[READ])
async def drift_report_page(
    report_id: Annotated[int, PathParam(ge=1, le=2**31 - 1)], request: Request
) -> HTMLResponse:
    report = await asyncio.to_thread(get_report, services_of(request).store, report_id)
    return _render(
        request,
        "drift_report.html",
        {
            "title": f"Drift report {report_id}",
            "d": report.model_dump(mode="json"),
            "json_url": f"/api/drift/{report_id}",
        },
    )


@router.get("/ui/datasets", response_class=HTMLResponse, dependencies=[READ])
async def datasets_page(request: Request) -> HTMLResponse:
    found = await asyncio.to_thread(DatasetService(services_of(request).store).list_datasets)
    return _render(
        request,
        "datasets.html",
        {
            "title": "Datasets",
            "datasets": [d.model_dump(mode="json") for d in found],
            "json_url": "/api/datasets",
        },
    )


@router.get("/ui/datasets/{name}/{version}", response_class=HTMLResponse, dependencies=[READ])
async def dataset_page(
    name: str, version: Annotated[int, PathParam(ge=1, le=2**31 - 1)], request: Request
) -> HTMLResponse:
    datasets = DatasetService(services_of(request).store)
    detail = await asyncio.to_thread(dataset_detail, datasets, name, version, 0, 50)
    versions = await asyncio.to_thread(datasets.versions, name)
    return _render(
        request,
        "dataset.html",
        {
            "title": f"Dataset {name}@{version}",
            "d": detail.model_dump(mode="json"),
            "versions": [v.model_dump(mode="json") for v in versions],
            "json_url": f"/api/datasets/{name}/{version}",
        },
    )


@router.get("/ui/eval", response_class=HTMLResponse, dependencies=[READ])
async def eval_page(request: Request) -> HTMLResponse:
    runs = await asyncio.to_thread(EvalRuns(services_of(request).store).list_runs)
    return _render(
        request,
        "eval_runs.html",
        {
            "title": "Eval runs",
            "runs": [r.model_dump(mode="json") for r in runs],
            "json_url": "/api/eval/runs",
        },
    )


@router.get("/ui/eval/runs/{run_id}", response_class=HTMLResponse, dependencies=[READ])
async def eval_run_page(
    run_id: Annotated[int, PathParam(ge=1, le=2**31 - 1)], request: Request
) -> HTMLResponse:
    data = await asyncio.to_thread(run_report, request, run_id)
    return _render(
        request,
        "eval_report.html",
        {
            "title": f"Eval run {run_id}: {data['run']['task']}",
            "r": data,
            "json_url": f"/api/eval/runs/{run_id}/report",
        },
    )


@router.get("/ui/eval/compare", response_class=HTMLResponse, dependencies=[READ])
async def eval_compare_page(
    request: Request,
    baseline: Annotated[int, Query(ge=1, le=2**31 - 1)],
    candidate: Annotated[int, Query(ge=1, le=2**31 - 1)],
) -> HTMLResponse:
    data = await asyncio.to_thread(run_comparison, request, baseline, candidate)
    return _render(
        request,
        "eval_compare.html",
        {
            "title": f"Run {candidate} against run {baseline}",
            "c": data,
            "json_url": f"/api/eval/compare?baseline={baseline}&candidate={candidate}",
        },
    )


@router.get("/ui/alerts", response_class=HTMLResponse, dependencies=[READ])
async def alerts_page(request: Request) -> HTMLResponse:
    service = AlertService(services_of(request).store)
    rules = await asyncio.to_thread(service.list_rules)
    events = await asyncio.to_thread(lambda: service.events(limit=100))
    return _render(
        request,
        "alerts.html",
        {
            "title": "Alerts",
            "rules": [r.model_dump(mode="json") for r in rules],
            "events": [e.model_dump(mode="json") for e in events],
            "json_url": "/api/alerts/rules",
        },
    )


@router.get("/ui/routes", response_class=HTMLResponse, dependencies=[READ])
async def routes_page(request: Request) -> HTMLResponse:
    services = services_of(request)

    def load() -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
        return [
            (
                stored.model_dump(mode="json"),
                [c.model_dump(mode="json") for c in services.policies.history(stored.model, 20)],
            )
            for stored in services.policies.list_policies()
        ]

    def served(model: str) -> dict[str, Any] | None:
        try:
            return route_out(services, model).model_dump(mode="json")
        except PolicyRefused:
            return None  # this replica has not loaded the model (yet)

    stored = await asyncio.to_thread(load)
    # On the event loop: the breakers are this replica's memory, changed by requests there.
    routes = [
        {**policy, "route": served(policy["model"]), "history": history}
        for policy, history in stored
    ]
    return _render(
        request, "routes.html", {"title": "Routes", "routes": routes, "json_url": "/api/routes"}
    )


@router.get("/ui/rollouts", response_class=HTMLResponse, dependencies=[READ])
async def rollouts_page(request: Request) -> HTMLResponse:
    found = await asyncio.to_thread(services_of(request).rollouts.list_rollouts)
    return _render(
        request,
        "rollouts.html",
        {
            "title": "Rollouts",
            "rollouts": [r.model_dump(mode="json") for r in found],
            "json_url": "/api/rollouts",
        },
    )


@router.get("/ui/rollouts/{rollout_id}", response_class=HTMLResponse, dependencies=[READ])
async def rollout_page(rollout_id: RolloutId, request: Request) -> HTMLResponse:
    service = services_of(request).rollouts
    rollout = await asyncio.to_thread(service.get, rollout_id)
    measurements = await asyncio.to_thread(service.measurements, rollout_id)
    events = await asyncio.to_thread(service.events, rollout_id)
    return _render(
        request,
        "rollout.html",
        {
            "title": f"Rollout {rollout_id}: {rollout.model}",
            "r": rollout.model_dump(mode="json"),
            "measurements": [m.model_dump(mode="json") for m in measurements],
            "events": [e.model_dump(mode="json") for e in events],
            "lower_is_better": sorted(LOWER_IS_BETTER),
            "poll_ms": RELEASE_POLL_MS,
            "json_url": f"/api/rollouts/{rollout_id}",
        },
    )


@router.get("/ui/experiments", response_class=HTMLResponse, dependencies=[READ])
async def experiments_page(request: Request) -> HTMLResponse:
    found = await asyncio.to_thread(services_of(request).experiments.list_experiments)
    return _render(
        request,
        "experiments.html",
        {
            "title": "Experiments",
            "experiments": [e.model_dump(mode="json") for e in found],
            "json_url": "/api/experiments",
        },
    )


@router.get("/ui/experiments/{name}", response_class=HTMLResponse, dependencies=[READ])
async def experiment_page(name: str, request: Request) -> HTMLResponse:
    service = services_of(request).experiments
    experiment = await asyncio.to_thread(service.get, name)
    measurements = await asyncio.to_thread(service.measurements, name)
    events = await asyncio.to_thread(service.events, name)
    return _render(
        request,
        "experiment.html",
        {
            "title": f"Experiment {experiment.name}: {experiment.model}",
            "x": experiment.model_dump(mode="json"),
            "measurements": [m.model_dump(mode="json") for m in measurements],
            "events": [e.model_dump(mode="json") for e in events],
            "lower_is_better": sorted(LOWER_IS_BETTER),
            "poll_ms": RELEASE_POLL_MS,
            "json_url": f"/api/experiments/{quote(experiment.name, safe='')}",
        },
    )


@router.get("/ui/vendor/plotly.min.js", dependencies=[READ])
async def plotly_js() -> FileResponse:
    """plotly.js as the plotly package ships it (no CDN: the console works offline)."""
    return FileResponse(_plotly_js(), media_type="text/javascript")


def _when(value: str | None) -> str:
    """ISO timestamps from the JSON, shown to the second in UTC."""
    if not value:
        return "—"
    return datetime.fromisoformat(value).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _changes(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[list[Any]]:
    """The fields an audited change altered: [[field, before, after], ...]."""
    if before is None or after is None:
        return []
    return [
        [name, before.get(name), after.get(name)]
        for name in sorted(set(before) | set(after))
        if before.get(name) != after.get(name)
    ]


def attach(app: FastAPI) -> None:
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters["when"] = _when
    templates.env.filters["changes"] = lambda event: _changes(event["before"], event["after"])
    app.state.templates = templates
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(router)
