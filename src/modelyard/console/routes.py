"""Console pages. Each page renders the value its JSON twin's route function under ``/api``
returns (one call, no query of its own) and names that twin."""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, quote, urlencode

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader
from pydantic import BaseModel

from modelyard import __version__
from modelyard.backup import routes as backup_api
from modelyard.console import i18n
from modelyard.console.i18n import N_, Language, Phrase, phrase, pN_
from modelyard.console.preferences import remember_language, stored_language
from modelyard.evaluate import dataset_routes as dataset_api
from modelyard.evaluate import routes as eval_api
from modelyard.evaluate.redteam import routes as redteam_api
from modelyard.evaluate.robustness import routes as robustness_api
from modelyard.guard import routes as guard_api
from modelyard.guard.auth import authenticate, principal_of, requires
from modelyard.guard.keyring import AuthenticationFailed
from modelyard.guard.roles import Access, Role
from modelyard.guard.sessions import COOKIE
from modelyard.improve import routes as improve_api
from modelyard.improve.compress import routes as compress_api
from modelyard.improve.compress.table import display
from modelyard.improve.distil import routes as distil_api
from modelyard.improve.export import routes as finetune_api
from modelyard.improve.review import routes as review_api
from modelyard.improve.tune import routes as tune_api
from modelyard.observe import routes as observe_api
from modelyard.observe.alerts import routes as alerts_api
from modelyard.observe.quality import routes as quality_api
from modelyard.observe.quality.judgements import MAX_BUCKETS
from modelyard.observe.userdata import InvalidUser, UserNotFound
from modelyard.observe.userdata import routes as users_api
from modelyard.registry import routes as registry_api
from modelyard.release import routes as release_api
from modelyard.release.kinds import KINDS, ROLLOUT, Kind
from modelyard.release.planner import duration_text
from modelyard.release.protocol import LOWER_IS_BETTER
from modelyard.routing import routes as routing_api
from modelyard.routing.policies import PolicyRefused
from modelyard.services import services_of

HERE = Path(__file__).parent


def _plotly_js() -> Path:
    """plotly.min.js inside the installed plotly package, found without importing it."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or spec.origin is None:
        raise RuntimeError("the plotly package is not installed")
    return Path(spec.origin).parent / "package_data" / "plotly.min.js"


router = APIRouter(include_in_schema=False)

# Navigation of the console; later packages add their pages here. Its labels have a context
# of their own in the catalogues ("Label" is a verb here, a noun in a table).
NAV = (
    (pN_("navigation", "Playground"), "/"),
    (pN_("navigation", "Models"), "/ui/models"),
    (pN_("navigation", "Routes"), "/ui/routes"),
    (pN_("navigation", "Rollouts"), "/ui/rollouts"),
    (pN_("navigation", "Experiments"), "/ui/experiments"),
    (pN_("navigation", "Monitor"), "/ui/monitor"),
    (pN_("navigation", "Requests"), "/ui/requests"),
    (pN_("navigation", "Drift"), "/ui/drift"),
    (pN_("navigation", "Alerts"), "/ui/alerts"),
    (pN_("navigation", "Datasets"), "/ui/datasets"),
    (pN_("navigation", "Curate"), "/ui/curate"),
    (pN_("navigation", "Label"), "/ui/label"),
    (pN_("navigation", "Distil"), "/ui/distil"),
    (pN_("navigation", "Fine-tune"), "/ui/finetune"),
    (pN_("navigation", "Compress"), "/ui/compress"),
    (pN_("navigation", "Review"), "/ui/reviews"),
    (pN_("navigation", "Tune"), "/ui/tune"),
    (pN_("navigation", "Evals"), "/ui/eval"),
    (pN_("navigation", "Keys"), "/ui/keys"),
    (pN_("navigation", "Usage"), "/ui/usage"),
    (pN_("navigation", "Audit"), "/ui/audit"),
    (pN_("navigation", "Users"), "/ui/users"),
    (pN_("navigation", "Backup"), "/ui/backup"),
)
# The roles' names as the header shows them (a principal's role is one of these).
ROLE_NAMES = (N_("admin"), N_("developer"), N_("viewer"))
PLAY = requires(Access.infer, page=True)
READ = requires(Access.read, page=True)
READ_OWN = requires(Access.read_own, page=True)
ADMIN = requires(Access.admin, page=True)
RowId = Annotated[int, PathParam(ge=1, le=2**31 - 1)]
# How often the rollout and experiment pages ask the API for news, in milliseconds.
RELEASE_POLL_MS = 3000
# How many rows (items) a page shows; its JSON twin's link asks for as many.
AUDIT_ROWS = 200
REQUEST_ROWS = 200
DRIFT_ROWS = 50
DATASET_ITEMS = 50
CURATIONS = 100
LABEL_RUNS = 100
DISTILLATIONS = 100
COMPRESSIONS = 100
FINETUNES = 100
STUDIES = 100
REVIEWS = 100
EVAL_RUNS = 100
ALERT_EVENTS = 100
ROUTE_HISTORY = 20
LANGUAGE_COOKIE_S = 365 * 24 * 3600
# A rollout's or an experiment's page title, by its kind's name.
RELEASE_LISTS = {"rollouts": N_("Rollouts"), "experiments": N_("Experiments")}
RELEASE_TITLES = {
    "rollout": N_("Rollout {key}: {model}"),
    "experiment": N_("Experiment {key}: {model}"),
}


def _render(request: Request, template: str, context: dict[str, Any]) -> HTMLResponse:
    languages: dict[str, Language] = request.app.state.console_languages
    language = languages[i18n.chosen(request.cookies.get(i18n.COOKIE), _accepted(request))]
    templates: Jinja2Templates = request.app.state.console_templates[language.code]
    context = {  # the title, a login refusal: texts a route words, in the page's language
        name: value.translated(language.translations) if isinstance(value, Phrase) else value
        for name, value in context.items()
    }
    principal = getattr(request.state, "principal", None)
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return templates.TemplateResponse(
        request,
        template,
        {
            "nav": NAV,
            "version": __version__,
            "path": request.url.path,
            "here": here,
            "principal": principal,
            "language": language,
            "languages": languages.values(),
            **context,
        },
    )


def _accepted(request: Request) -> str | None:
    return request.headers.get("accept-language")


def _twin(
    request: Request,
    template: str,
    title: Phrase,
    value: BaseModel | dict[str, Any],
    json_url: str,
    **context: Any,
) -> HTMLResponse:
    """A page that renders ``value``, what its JSON twin at ``json_url`` returns (the page
    called the twin's own route function), and names the twin: a ``Link`` header and the
    page's JSON link, as datasette does."""
    response = _render(
        request, template, {"title": title, "value": _json(value), "json_url": json_url, **context}
    )
    response.headers["link"] = f'<{json_url}>; rel="alternate"; type="application/json"'
    return response


def _json(value: BaseModel | dict[str, Any]) -> dict[str, Any]:
    """``value`` as its JSON route sends it."""
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else value


def _segment(text: str) -> str:
    return quote(text, safe="")


def _query(**params: object) -> str:
    """``?a=1&b=2`` of the params given (None and "" are left out), or nothing."""
    given = {name: value for name, value in params.items() if value not in (None, "")}
    return f"?{urlencode(given)}" if given else ""


@router.get("/ui/login", response_class=HTMLResponse)
async def login_page(request: Request, next: str = "/") -> HTMLResponse:
    return _render(request, "login.html", {"title": phrase("Log in"), "next": _safe_next(next)})


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
            request,
            "login.html",
            {"title": phrase("Log in"), "next": target, "error": _refusal(error)},
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
    # The language this user chose before, on whatever browser: this one shows it too.
    store = services_of(request).store
    chosen = await asyncio.to_thread(stored_language, store, principal.key_id)
    if chosen is not None and chosen in request.app.state.console_languages:
        _set_language_cookie(response, chosen)
    return response


# What the login page says for each way a key can be refused (the API's own words are English).
REFUSALS = {
    "invalid_api_key": N_(
        "Incorrect API key. Keys look like my_<id>_<secret>; an admin creates them with "
        "`modelyard keys create`."
    ),
    "expired_api_key": N_("This API key has expired: ask an admin for a new one."),
}


def _refusal(error: AuthenticationFailed) -> Phrase:
    return phrase(REFUSALS.get(error.code or "", N_("This API key was refused.")))


@router.post("/ui/language")
async def choose_language(request: Request) -> RedirectResponse:
    """The header's language switch: the choice is kept in a cookie for a year and, for a
    logged-in user, in the store (their next login elsewhere gets it); the page the switch
    was on is shown again in that language."""
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    code = form.get("language", [""])[0]
    response = RedirectResponse(_safe_next(form.get("next", ["/"])[0]), status_code=303)
    if code in request.app.state.console_languages:
        _set_language_cookie(response, code)
        guard = services_of(request).guard
        try:
            principal = authenticate(request, guard.keyring, guard.signer)
        except AuthenticationFailed:  # the login page's switch: this browser only
            return response
        store = services_of(request).store
        await asyncio.to_thread(remember_language, store, principal.key_id, code)
    return response


def _set_language_cookie(response: Response, code: str) -> None:
    response.set_cookie(
        i18n.COOKIE,
        code,
        max_age=LANGUAGE_COOKIE_S,
        httponly=True,
        secure=True,
        samesite="lax",
        path="/",
    )


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
    return _render(request, "playground.html", {"title": phrase("Playground"), "models": models})


@router.get("/ui/models", response_class=HTMLResponse, dependencies=[READ])
async def models_page(request: Request) -> HTMLResponse:
    value = await registry_api.list_models(request)
    return _twin(request, "models.html", phrase("Models"), value, "/api/models")


@router.get("/ui/models/{name}", response_class=HTMLResponse, dependencies=[READ])
async def model_page(name: str, request: Request) -> HTMLResponse:
    value = await registry_api.get_model(name, request)
    return _twin(
        request,
        "model.html",
        phrase("Model {name}", name=name),
        value,
        f"/api/models/{_segment(name)}",
    )


@router.get("/ui/keys", response_class=HTMLResponse, dependencies=[READ])
async def keys_page(request: Request) -> HTMLResponse:
    value = await guard_api.list_keys(request)
    return _twin(request, "keys.html", phrase("API keys"), value, "/api/keys")


@router.get("/ui/usage", response_class=HTMLResponse, dependencies=[READ_OWN])
async def usage_page(request: Request, key_id: str | None = None) -> HTMLResponse:
    principal = principal_of(request)
    if not principal.sees_all:
        key_id = principal.key_id  # the page shows a developer its own, whatever it asks
    value = await guard_api.get_usage(await guard_api.usage_rows(request, key_id=key_id))
    query = _query(key_id=key_id)
    return _twin(
        request,
        "usage.html",
        phrase("Usage"),
        value,
        f"/api/usage{query}",
        key_id=key_id,
        csv_url=f"/api/usage.csv{query}",
    )


@router.get("/ui/audit", response_class=HTMLResponse, dependencies=[READ])
async def audit_page(request: Request, action: str | None = None) -> HTMLResponse:
    value = await guard_api.get_audit(
        request, action=action, target=None, actor=None, since=None, limit=AUDIT_ROWS
    )
    json_url = f"/api/audit{_query(action=action, limit=AUDIT_ROWS)}"
    return _twin(request, "audit.html", phrase("Audit log"), value, json_url, action=action or "")


@router.get("/ui/users", response_class=HTMLResponse, dependencies=[ADMIN])
async def users_page(request: Request, user: str | None = None) -> HTMLResponse:
    """A user's data on request: look a user up, download the export, erase."""
    blank = {"title": phrase("Users"), "user": user or "", "value": None, "json_url": None}
    if not user:
        return _render(request, "users.html", blank)
    try:
        value = await users_api.user_summary(user, request)
    except (UserNotFound, InvalidUser) as error:
        return _render(request, "users.html", {**blank, "message": str(error)})
    path = f"/api/users/{_segment(user)}"
    return _twin(
        request,
        "users.html",
        phrase("User {user}", user=user),
        value,
        f"{path}/summary",
        user=user,
        export_url=f"{path}/export",
        erase_url=f"{path}/erase",
    )


@router.get("/ui/backup", response_class=HTMLResponse, dependencies=[READ])
async def backup_page(request: Request) -> HTMLResponse:
    value = await backup_api.get_backup(request)
    return _twin(request, "backup.html", phrase("Backup"), value, "/api/backup")


@router.get("/ui/monitor", response_class=HTMLResponse, dependencies=[READ])
async def monitor_page(
    request: Request, route: str | None = None, hours: float = 24.0
) -> HTMLResponse:
    hours = min(max(hours, 0.1), 24 * 90)
    value = await observe_api.get_stats(request, route or None, hours)
    # Online quality in the charts' buckets (its twin: /api/quality), at most MAX_BUCKETS.
    bucket_s = max(value.bucket_s, 60, math.ceil(hours * 3600 / MAX_BUCKETS))
    # Which routes may be picked: this replica's routing table, in memory.
    routes = sorted({t.model for t in services_of(request).routing.public_models()})
    return _twin(
        request,
        "monitor.html",
        phrase("Monitor"),
        value,
        f"/api/stats{_query(hours=f'{hours:g}', route=route or None)}",
        routes=routes,
        route=route or "",
        hours=hours,
        tracing=_json(await observe_api.tracing(request)),  # its twin: /api/tracing
        quality=_json(await quality_api.live_quality(request, route or None, hours, bucket_s)),
        quality_url="/api/quality"
        + _query(hours=f"{hours:g}", route=route or None, bucket_s=bucket_s),
    )


@router.get("/ui/requests", response_class=HTMLResponse, dependencies=[READ_OWN])
async def requests_page(
    request: Request,
    route: str | None = None,
    status: Annotated[int | None, Query(ge=100, le=599)] = None,
    feedback: str | None = None,
    language: str | None = None,
) -> HTMLResponse:
    where = observe_api.request_filter(
        request,
        route=route or None,
        status=status,
        feedback=feedback or None,
        language=language or None,
    )
    value = await observe_api.requests_list(request, where, REQUEST_ROWS)
    query = _query(
        route=route, status=status, feedback=feedback, language=language, limit=REQUEST_ROWS
    )
    return _twin(
        request,
        "requests.html",
        phrase("Requests"),
        value,
        f"/api/requests{query}",
        route=route or "",
        status=status or "",
        feedback=feedback or "",
        prompt_language=language or "",  # "language" is the page's own (base.html)
    )


@router.get("/ui/requests/{request_id}", response_class=HTMLResponse, dependencies=[READ_OWN])
async def request_page(request_id: str, request: Request) -> HTMLResponse:
    value = await observe_api.request_detail(request_id, request)
    json_url = f"/api/requests/{_segment(request_id)}"
    return _twin(request, "request.html", phrase("Request {id}", id=request_id), value, json_url)


@router.get("/ui/drift", response_class=HTMLResponse, dependencies=[READ])
async def drift_page(request: Request, route: str | None = None) -> HTMLResponse:
    value = await observe_api.drift_reports(request, route or None, DRIFT_ROWS)
    json_url = f"/api/drift{_query(route=route, limit=DRIFT_ROWS)}"
    return _twin(request, "drift.html", phrase("Drift"), value, json_url)


@router.get("/ui/drift/{report_id}", response_class=HTMLResponse, dependencies=[READ])
async def drift_report_page(report_id: RowId, request: Request) -> HTMLResponse:
    value = await observe_api.drift_report_detail(report_id, request)
    title = phrase("Drift report {id}", id=report_id)
    return _twin(request, "drift_report.html", title, value, f"/api/drift/{report_id}")


@router.get("/ui/datasets", response_class=HTMLResponse, dependencies=[READ])
async def datasets_page(request: Request) -> HTMLResponse:
    value = await dataset_api.list_datasets(request)
    return _twin(request, "datasets.html", phrase("Datasets"), value, "/api/datasets")


@router.get("/ui/datasets/{name}/{version}", response_class=HTMLResponse, dependencies=[READ])
async def dataset_page(name: str, version: RowId, request: Request) -> HTMLResponse:
    value = await dataset_api.get_version(name, version, request, 0, DATASET_ITEMS)
    versions = await dataset_api.list_versions(name, request)
    return _twin(
        request,
        "dataset.html",
        phrase("Dataset {name}@{version}", name=name, version=version),
        value,
        f"/api/datasets/{_segment(name)}/{version}{_query(limit=DATASET_ITEMS)}",
        versions=_json(versions)["data"],
    )


@router.get("/ui/curate", response_class=HTMLResponse, dependencies=[READ])
async def curate_page(request: Request) -> HTMLResponse:
    value = await improve_api.list_curations(request, CURATIONS)
    json_url = f"/api/curate{_query(limit=CURATIONS)}"
    return _twin(request, "curate.html", phrase("Curate"), value, json_url)


@router.get("/ui/curate/{name}/{version}", response_class=HTMLResponse, dependencies=[READ])
async def curation_page(name: str, version: RowId, request: Request) -> HTMLResponse:
    value = await improve_api.get_curation(name, version, request)
    title = phrase("Curation of {name}@{version}", name=name, version=version)
    json_url = f"/api/curate/{_segment(name)}/{version}"
    return _twin(request, "curation.html", title, value, json_url)


@router.get("/ui/label", response_class=HTMLResponse, dependencies=[READ])
async def label_page(request: Request) -> HTMLResponse:
    value = await distil_api.list_label_runs(request, LABEL_RUNS)
    json_url = f"/api/label{_query(limit=LABEL_RUNS)}"
    return _twin(request, "label.html", phrase("Label with a teacher"), value, json_url)


@router.get("/ui/label/{run_id}", response_class=HTMLResponse, dependencies=[READ])
async def label_run_page(run_id: RowId, request: Request) -> HTMLResponse:
    value = await distil_api.get_label_run(run_id, request)
    title = phrase(
        "Label run {id}: {dataset} by {teacher}",
        id=run_id,
        dataset=value.dataset,
        teacher=value.teacher,
    )
    return _twin(request, "label_run.html", title, value, f"/api/label/{run_id}")


@router.get("/ui/distil", response_class=HTMLResponse, dependencies=[READ])
async def distil_page(request: Request) -> HTMLResponse:
    value = await distil_api.list_distillations(request, None, DISTILLATIONS)
    json_url = f"/api/distil{_query(limit=DISTILLATIONS)}"
    return _twin(request, "distil.html", phrase("Distil into a student"), value, json_url)


@router.get("/ui/compress", response_class=HTMLResponse, dependencies=[READ])
async def compress_page(request: Request) -> HTMLResponse:
    value = await compress_api.list_compressions(request, None, COMPRESSIONS)
    json_url = f"/api/compress{_query(limit=COMPRESSIONS)}"
    return _twin(
        request, "compress.html", phrase("Compress into quantised variants"), value, json_url
    )


@router.get("/ui/compress/{compression_id}", response_class=HTMLResponse, dependencies=[READ])
async def compression_page(compression_id: RowId, request: Request) -> HTMLResponse:
    value = await compress_api.get_compression(compression_id, request)
    headers, rows = display(value.engine_kind, value.variants, value.request.streams)
    title = phrase(
        "Compression {id}: {model}@{version}",
        id=compression_id,
        model=value.model,
        version=value.version,
    )
    json_url = f"/api/compress/{compression_id}"
    return _twin(request, "compression.html", title, value, json_url, headers=headers, rows=rows)


@router.get("/ui/distil/{distillation_id}", response_class=HTMLResponse, dependencies=[READ])
async def distillation_page(distillation_id: RowId, request: Request) -> HTMLResponse:
    value = await distil_api.get_distillation(distillation_id, request)
    title = phrase(
        "Distillation {id}: {dataset} into {model}",
        id=distillation_id,
        dataset=value.dataset,
        model=value.model,
    )
    json_url = f"/api/distil/{distillation_id}"
    return _twin(request, "distillation.html", title, value, json_url)


@router.get("/ui/reviews", response_class=HTMLResponse, dependencies=[READ])
async def reviews_page(request: Request) -> HTMLResponse:
    value = await review_api.list_reviews(request, None, REVIEWS)
    json_url = f"/api/reviews{_query(limit=REVIEWS)}"
    return _twin(request, "reviews.html", phrase("Review"), value, json_url)


@router.get("/ui/reviews/{review_id}", response_class=HTMLResponse, dependencies=[READ])
async def review_page(review_id: RowId, request: Request) -> HTMLResponse:
    value = await review_api.get_review(review_id, request)
    title = phrase(
        "Review {id}: {dataset}@{version}",
        id=review_id,
        dataset=value.dataset,
        version=value.version,
    )
    return _twin(request, "review.html", title, value, f"/api/reviews/{review_id}")


@router.get("/ui/finetune", response_class=HTMLResponse, dependencies=[READ])
async def finetune_page(request: Request) -> HTMLResponse:
    value = await finetune_api.list_all(request, FINETUNES)
    json_url = f"/api/finetune{_query(limit=FINETUNES)}"
    return _twin(
        request, "finetune.html", phrase("Fine-tune with an external trainer"), value, json_url
    )


@router.get("/ui/tune", response_class=HTMLResponse, dependencies=[READ])
async def tune_page(request: Request) -> HTMLResponse:
    value = await tune_api.list_studies(request, STUDIES)
    json_url = f"/api/tune/studies{_query(limit=STUDIES)}"
    return _twin(request, "tune.html", phrase("Tune"), value, json_url, example=_study_example())


@router.get("/ui/tune/{study_id}", response_class=HTMLResponse, dependencies=[READ])
async def study_page(study_id: RowId, request: Request) -> HTMLResponse:
    value = await tune_api.get_study(study_id, request)
    title = phrase("Study {id}: {task}", id=study_id, task=value.task)
    json_url = f"/api/tune/studies/{study_id}"
    return _twin(request, "study.html", title, value, json_url, poll_ms=RELEASE_POLL_MS)


def _study_example() -> dict[str, Any]:
    """The start form's first text: a study of a task over a registered dataset."""
    return {
        "task": {
            "name": "intent",
            "dataset": {"registered": "support", "split": "dev"},
            "prompt": {"template": "Which intent is this? {{ input }}"},
            "target": "label",
            "filters": ["first_line", "strip"],
            "metrics": [{"name": "accuracy"}],
            "generation": {"temperature": 0.7, "max_tokens": 16},
        },
        "model": "default",
        "trials": 20,
        "space": {
            "temperature": {"low": 0, "high": 1},
            "templates": ["Intent of: {{ input }}\nAnswer with the intent only."],
            "few_shot": {"low": 0, "high": 4},
        },
        "constraints": {"max_latency_ms": 2000},
    }


@router.get("/ui/eval", response_class=HTMLResponse, dependencies=[READ])
async def eval_page(request: Request) -> HTMLResponse:
    value = await eval_api.list_runs(request, None, EVAL_RUNS)
    json_url = f"/api/eval/runs{_query(limit=EVAL_RUNS)}"
    return _twin(request, "eval_runs.html", phrase("Eval runs"), value, json_url, example=EVAL_TASK)


# The eval start form's first text: a task over the test split of a registered dataset.
EVAL_TASK = """\
name: intent
dataset: {registered: support, split: test}
prompt:
  template: "Which intent is this? {{ input }}"
target: label
filters: [first_line, strip]
metrics:
  - name: accuracy
generation: {temperature: 0, max_tokens: 16}
"""


@router.get("/ui/eval/runs/{run_id}", response_class=HTMLResponse, dependencies=[READ])
async def eval_run_page(run_id: RowId, request: Request) -> HTMLResponse:
    value = await eval_api.get_report(run_id, request)
    title = phrase("Eval run {id}: {task}", id=run_id, task=value["run"]["task"])
    json_url = f"/api/eval/runs/{run_id}/report"
    return _twin(request, "eval_report.html", title, value, json_url, poll_ms=RELEASE_POLL_MS)


@router.get("/ui/eval/runs/{run_id}/slices", response_class=HTMLResponse, dependencies=[READ])
async def eval_slices_page(
    run_id: RowId,
    request: Request,
    by: Annotated[list[str], Query(max_length=10)] = [],  # noqa: B006 (FastAPI copies it)
    sensitive: Annotated[str | None, Query(max_length=200)] = None,
    positive: Annotated[str | None, Query(max_length=200)] = None,
) -> HTMLResponse:
    sensitive, positive = sensitive or None, positive or None  # the form sends empty fields
    by = [name for name in by if name]
    value = await eval_api.get_slices(run_id, request, by, sensitive, positive)
    title = phrase("Eval run {id}: slices and fairness", id=run_id)
    query = urlencode([("by", name) for name in by])
    extra = _query(sensitive=sensitive, positive=positive).lstrip("?")
    params = "&".join(part for part in (query, extra) if part)
    json_url = f"/api/eval/runs/{run_id}/slices" + (f"?{params}" if params else "")
    chosen = {"by": by, "sensitive": sensitive or "", "positive": positive or ""}
    return _twin(request, "eval_slices.html", title, value, json_url, chosen=chosen)


@router.get("/ui/eval/compare", response_class=HTMLResponse, dependencies=[READ])
async def eval_compare_page(
    request: Request,
    baseline: Annotated[int, Query(ge=1, le=2**31 - 1)],
    candidate: Annotated[int, Query(ge=1, le=2**31 - 1)],
) -> HTMLResponse:
    value = await eval_api.get_comparison(request, baseline, candidate)
    title = phrase("Run {candidate} against run {baseline}", candidate=candidate, baseline=baseline)
    json_url = f"/api/eval/compare{_query(baseline=baseline, candidate=candidate)}"
    return _twin(request, "eval_compare.html", title, value, json_url)


@router.get("/ui/eval/runs/{run_id}/robustness", response_class=HTMLResponse, dependencies=[READ])
async def eval_robustness_page(run_id: RowId, request: Request) -> HTMLResponse:
    value = await robustness_api.get_robustness(run_id, request)
    title = phrase("Eval run {id}: robustness", id=run_id)
    json_url = f"/api/eval/runs/{run_id}/robustness"
    return _twin(request, "eval_robustness.html", title, value, json_url)


@router.get("/ui/eval/redteam", response_class=HTMLResponse, dependencies=[READ])
async def eval_redteam_page(
    request: Request, run: Annotated[list[int], Query(min_length=1, max_length=20)]
) -> HTMLResponse:
    value = await redteam_api.get_redteam(request, run)
    json_url = "/api/eval/redteam?" + urlencode([("run", r) for r in run])
    return _twin(request, "eval_redteam.html", phrase("Red team and leakage"), value, json_url)


@router.get("/ui/alerts", response_class=HTMLResponse, dependencies=[READ])
async def alerts_page(request: Request) -> HTMLResponse:
    value = await alerts_api.list_rules(request)
    events = await alerts_api.list_events(request, None, None, None, ALERT_EVENTS)
    return _twin(
        request,
        "alerts.html",
        phrase("Alerts"),
        value,
        "/api/alerts/rules",
        events=_json(events)["data"],
    )


@router.get("/ui/routes", response_class=HTMLResponse, dependencies=[READ])
async def routes_page(request: Request) -> HTMLResponse:
    value = await routing_api.list_policies(request)
    served: dict[str, Any] = {}
    history: dict[str, Any] = {}
    for stored in value.data:
        changes = await routing_api.policy_history(stored.model, request, ROUTE_HISTORY)
        history[stored.model] = _json(changes)["data"]
        try:
            served[stored.model] = _json(await routing_api.get_route(stored.model, request))
        except PolicyRefused:
            served[stored.model] = None  # this replica has not loaded the model (yet)
    return _twin(
        request,
        "routes.html",
        phrase("Routes"),
        value,
        "/api/routes",
        served_routes=served,
        history=history,
    )


async def _release_list(kind: Kind, request: Request) -> HTMLResponse:
    value = await kind.read_list(request)
    title = phrase(RELEASE_LISTS[kind.plural])
    start_form = await _start_form(request) if kind is ROLLOUT else None
    json_url = f"/api/{kind.plural}"
    return _twin(request, f"{kind.plural}.html", title, value, json_url, start_form=start_form)


# The start form's first steps: an eval gate before any traffic, then 10 % and 50 % each
# followed by an analysis (the default steps'), then promotion.
ROLLOUT_STEPS_EXAMPLE = """\
# The gate waits for an eval run of the task on the candidate
# (`modelyard eval run`): name your task, or delete the gate.
- gate:
    task: qa
    rules:
      - {metric: exact_match, max_drop: 0.02}
- set_weight: 10
- analysis:
    interval_s: 60
    metrics: [{name: error_rate}, {name: latency}]
- set_weight: 50
- analysis: {interval_s: 60}
"""


async def _start_form(request: Request) -> dict[str, Any] | None:
    """For an admin, what the form that starts a rollout offers: the registered models, as
    their JSON route lists them, and example steps."""
    if principal_of(request).role is not Role.admin:
        return None
    models = _json(await registry_api.list_models(request))["data"]
    return {"models": models, "steps_example": ROLLOUT_STEPS_EXAMPLE}


async def _release_page(kind: Kind, request: Request, key: int | str) -> HTMLResponse:
    """A rollout or an experiment: what its JSON twin returns, with the measurements the
    charts draw and the events, each as their own JSON routes return them."""
    value = _json(await kind.read_one(request, key))
    measurements = _json(await kind.read_measurements(request, key))["data"]
    events = _json(await kind.read_events(request, key))["data"]
    plan = None
    if kind is ROLLOUT:  # what its analyses can detect, as its own JSON route says
        assert isinstance(key, int)
        plan = _json(await release_api.get_rollout_plan(key, request))
    return _twin(
        request,
        f"{kind.name}.html",
        phrase(RELEASE_TITLES[kind.name], key=key, model=value["model"]),
        value,
        f"/api/{kind.plural}/{_segment(str(key))}",
        kind=kind.name,
        measurements=measurements,
        events=events,
        lower_is_better=sorted(LOWER_IS_BETTER),
        poll_ms=RELEASE_POLL_MS,
        plan=plan,
        plan_url=f"/api/{kind.plural}/{_segment(str(key))}/plan",
    )


# Before the rollout pages: "plan" is not a rollout's id.
@router.get("/ui/rollouts/plan", response_class=HTMLResponse, dependencies=[READ])
async def rollout_plan_page(
    request: Request,
    model: Annotated[str | None, Query(max_length=128)] = None,
    candidate: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    requests_per_s: Annotated[float | None, Query(gt=0, le=1e6)] = None,
) -> HTMLResponse:
    """The plan of a rollout's default steps; a form until a model and candidate are given."""
    shown = {"model": model or "", "candidate": candidate or "", "requests_per_s": requests_per_s}
    if not model or candidate is None:
        context = {"title": phrase("Plan a rollout"), "value": None, **shown}
        return _render(request, "rollout_plan.html", context)
    value = await release_api.plan_rollout_defaults(request, model, candidate, requests_per_s)
    query = _query(model=model, candidate=candidate, requests_per_s=requests_per_s)
    title = phrase("Plan: {model}@{candidate}", model=model, candidate=candidate)
    return _twin(request, "rollout_plan.html", title, value, f"/api/rollouts/plan{query}", **shown)


def _add_release_pages(kind: Kind) -> None:
    """``/ui/rollouts`` and ``/ui/rollouts/{rollout_id}``, and so for experiments."""
    router.add_api_route(
        f"/ui/{kind.plural}",
        functools.partial(_release_list, kind),
        response_class=HTMLResponse,
        response_model=None,
        dependencies=[READ],
        name=f"{kind.plural}_page",
    )
    router.add_api_route(
        f"/ui/{kind.plural}/{{{kind.param}}}",
        kind.keyed(functools.partial(_release_page, kind)),
        response_class=HTMLResponse,
        response_model=None,
        dependencies=[READ],
        name=f"{kind.name}_page",
    )


for _kind in KINDS:
    _add_release_pages(_kind)


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
    languages = i18n.load_languages()
    app.state.console_languages = languages
    app.state.console_templates = {code: _templates(lang) for code, lang in languages.items()}
    app.state.templates = app.state.console_templates[i18n.SOURCE]
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(router)


def _templates(language: Language) -> Jinja2Templates:
    """The console's templates in one language: its own Jinja environment, with the
    language's gettext installed once (no request changes an environment)."""
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=True,
        extensions=["jinja2.ext.i18n"],
    )
    env.policies["ext.i18n.trimmed"] = True  # msgids without the templates' line breaks
    env.install_gettext_translations(language.translations, newstyle=True)  # type: ignore[attr-defined]
    env.filters["when"] = _when
    env.filters["duration"] = duration_text
    env.filters["exp"] = math.exp
    env.filters["number"] = language.number
    env.filters["changes"] = lambda event: _changes(event["before"], event["after"])
    return Jinja2Templates(env=env)
