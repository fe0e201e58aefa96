"""The app factory: builds the services, attaches each package's routes."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI

from modelyard import __version__
from modelyard.backup import routes as backup_routes
from modelyard.bootstrap import ensure_default_embedding_model, ensure_default_model
from modelyard.config import Settings
from modelyard.console import routes as console_routes
from modelyard.engines.pool import EnginePool
from modelyard.evaluate import dataset_routes
from modelyard.evaluate import routes as eval_routes
from modelyard.evaluate.judges import rubric_prompt, rubric_score
from modelyard.guard import routes as guard_routes
from modelyard.guard.crypto import ContentCipher
from modelyard.guard.keys import KeyService, ensure_admin_key
from modelyard.guard.retention import PURGE_EVERY_S, purge_periodically
from modelyard.guard.runtime import open_guard
from modelyard.improve import routes as improve_routes
from modelyard.improve.compress import routes as compress_routes
from modelyard.improve.distil import routes as distil_routes
from modelyard.improve.export import routes as finetune_routes
from modelyard.improve.review import routes as review_routes
from modelyard.improve.tune import routes as tune_routes
from modelyard.improve.tune.jobs import TuneJobs
from modelyard.improve.tune.students import builtin_trainers
from modelyard.jobs import BackgroundJobs
from modelyard.observe import routes as observe_routes
from modelyard.observe.accounting import Accounting
from modelyard.observe.alerts import AlertEvaluator, AlertService
from modelyard.observe.alerts import routes as alerts_routes
from modelyard.observe.alerts.notify import WebhookNotifier
from modelyard.observe.drift_jobs import DriftScheduler, Embedder
from modelyard.observe.energy import CpuMeter, load_power_model
from modelyard.observe.journal import JOURNAL_DIR, JOURNAL_SEGMENT_ROWS, RequestJournal
from modelyard.observe.metrics import Metrics
from modelyard.observe.protocol import DriftRun
from modelyard.observe.quality import routes as quality_routes
from modelyard.observe.quality.judgements import LiveJudgements
from modelyard.observe.quality.worker import LiveJudge, Rubric
from modelyard.observe.requestlog import RequestLogWriter
from modelyard.observe.tracing import open_tracing
from modelyard.observe.tracking import RequestTracking
from modelyard.observe.userdata import routes as userdata_routes
from modelyard.registry import Registry
from modelyard.registry import routes as registry_routes
from modelyard.release import routes as release_routes
from modelyard.release.controller import ReleaseController
from modelyard.release.experiments import Experiments
from modelyard.release.rollouts import Rollouts
from modelyard.routing import RoutingTable
from modelyard.routing import routes as routing_routes
from modelyard.routing.breaker import Breakers
from modelyard.routing.cache import RedisAnswers, ResponseCache, embedder
from modelyard.routing.policies import TrafficPolicies
from modelyard.routing.refresh import RoutingRefresher
from modelyard.routing.shadow import ShadowRunner
from modelyard.services import Services
from modelyard.serving import docs, embeddings, errors, health
from modelyard.serving import routes as serving_routes
from modelyard.serving.body_limit import BodyLimit
from modelyard.serving.drain import Drain
from modelyard.serving.fastpath import OpenAIFastPath
from modelyard.serving.judging import judge_call
from modelyard.store import Store, open_store
from modelyard.store.lease import leader

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

log = logging.getLogger(__name__)


def first_start(settings: Settings) -> Path | None:
    """Migrate the store, register the default models and write the admin key when the store
    has none: what a server's start does first, done by ``modelyard serve`` before its
    banner (and before its workers start, so they do not race to do it). Returns the admin
    key file when it was written now."""
    home = settings.ensure_home()
    store = open_store(settings.store_url)
    try:
        ensure_defaults(settings, Registry(store))
        return ensure_admin_key(home, KeyService(store), actor="modelyard")
    finally:
        store.close()


def ensure_defaults(settings: Settings, registry: Registry) -> None:
    """Register the default chat and embedding models unless they exist."""
    ensure_default_model(settings, registry, actor="modelyard")
    ensure_default_embedding_model(settings, registry, actor="modelyard")


def open_services(settings: Settings) -> Services:
    """Open the store (migrating it) and build the service objects; no engine starts yet."""
    home = settings.ensure_home()
    store = open_store(settings.store_url)
    registry = Registry(store)
    ensure_defaults(settings, registry)
    guard = open_guard(settings, store)
    written = ensure_admin_key(home, guard.keys, actor="modelyard")
    if written is not None:
        log.warning("created an admin API key: %s (mode 0600); keep it secret", written)
    table = RoutingTable()
    policies = TrafficPolicies(store, registry)
    engines = EnginePool(settings)
    cache = response_cache(settings, table, engines)

    def preload(current: RoutingTable) -> None:
        for spec in current.aliased_specs():
            engines.preload(spec)
        cache.retain(current.aliased_specs())  # a version no longer served: its answers go

    metrics = Metrics()
    request_log = open_request_log(settings, store, guard.cipher, metrics)
    power = load_power_model(
        settings.energy_cpu_tdp_w,
        settings.energy_pue,
        settings.energy_carbon_intensity_g_per_kwh,
        settings.energy_country_iso_code,
        ram_power_w=settings.energy_ram_power_w,
    )
    meter = CpuMeter(min_interval_s=0.005)
    metrics.watch_engines(engines.states)
    metrics.watch_log(request_log)
    return Services(
        settings=settings,
        store=store,
        registry=registry,
        routing=table,
        refresher=RoutingRefresher(table, registry, policies, on_change=preload),
        policies=policies,
        breakers=Breakers(),
        shadows=ShadowRunner(settings.shadow_concurrency),
        rollouts=Rollouts(store, registry, policies, AlertService(store)),
        experiments=Experiments(store, registry, policies),
        cache=cache,
        live_judge=live_judge(settings, store, metrics),
        engines=engines,
        guard=guard,
        request_log=request_log,
        metrics=metrics,
        power=power,
        meter=meter,
        accounting=Accounting(request_log, metrics, meter, power),
    )


def open_request_log(
    settings: Settings, store: Store, cipher: ContentCipher, metrics: Metrics
) -> RequestLogWriter:
    """The request-log writer, with its journal under the home unless turned off."""
    journal = None
    if settings.log_journal:
        journal = RequestJournal(
            settings.ensure_home() / JOURNAL_DIR,
            seal=cipher.seal if settings.store_content else None,
            segment_rows=JOURNAL_SEGMENT_ROWS,
        )
    return RequestLogWriter(
        store,
        seal=cipher,  # its seal_many seals a whole batch at once
        store_content=settings.store_content,
        flush_interval_s=settings.log_flush_interval_s,
        batch_rows=settings.log_batch_rows,
        queue_rows=settings.log_queue_rows,
        answered=metrics.answered,
        journal=journal,
    )


def live_judge(settings: Settings, store: Store, metrics: Metrics) -> LiveJudge:
    """The app's live judge: scores a share of routes' answers in the background."""
    return LiveJudge(
        LiveJudgements(store),
        metrics,
        Rubric(rubric_prompt, rubric_score),  # the eval judges' prompt and score
        queue_size=settings.live_judge_queue,
        concurrency=settings.live_judge_concurrency,
    )


def response_cache(settings: Settings, table: RoutingTable, engines: EnginePool) -> ResponseCache:
    """The app's response cache: embeddings by its own engines, Redis from the settings."""
    redis = RedisAnswers(settings.redis_url, settings.redis_prefix, settings.redis_timeout_s)
    return ResponseCache(embedder(table, engines), redis)


def prompt_embedder(services: Services) -> Embedder | None:
    """Embeds prompts for drift reports with the configured embedding model."""
    name = services.settings.drift_embedding_model
    if name.lower() == "none":
        return None

    async def embed(texts: list[str]) -> list[list[float]]:
        target = services.routing.resolve(name)
        if target.task != "embedding":
            raise ValueError(f"'{name}' is a {target.task} model, not an embedding model")
        engine = await services.engines.get(target.spec)
        return [list(vector) for vector in (await engine.embed(texts)).vectors]

    return embed


@dataclass
class _Jobs:
    """The background tasks of one running app, the alert evaluator's HTTP client, and the
    tuning studies running here."""

    tasks: list[asyncio.Task[None]]
    alerts: AlertEvaluator
    tune: TuneJobs
    improve: BackgroundJobs  # labelling and distillation jobs
    evals: BackgroundJobs  # eval runs started over the API


def lifespan_of(
    settings: Settings, span_exporter: SpanExporter | None = None
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Opens the services and starts the background jobs; stops and closes them at the end."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = await asyncio.to_thread(open_services, settings)
        services.tracing = await asyncio.to_thread(open_tracing, settings, span_exporter)
        app.state.services = services
        # Rows a killed process left in the journal are stored before anything reads the
        # log (budgets are seeded from it) and before this process serves.
        await asyncio.to_thread(
            services.request_log.recover,
            settings.ensure_home() / JOURNAL_DIR,
            services.guard.cipher.open,
        )
        await services.refresher.refresh_now()
        await services.guard.reload()
        await services.guard.seed_budgets()
        jobs = _start_jobs(app, services)
        # Everything made at start-up (the app, its routes, SQLAlchemy's and pydantic's
        # structures) lives as long as the process: moved out of the collector's reach, a
        # full collection no longer walks it. Measured at 50 clients: p99 180-200 ms ->
        # 96-124 ms (docs/performance.md).
        gc.collect()
        gc.freeze()
        thresholds = gc.get_threshold()
        if settings.gc_threshold:
            gc.set_threshold(settings.gc_threshold, *thresholds[1:])
        try:
            yield
        finally:
            gc.set_threshold(*thresholds)
            await _stop(services, jobs)

    return lifespan


def _start_jobs(app: FastAPI, services: Services) -> _Jobs:
    """Routing and key refreshes, the request-log writer, the energy meter, retention, drift
    reports, alert rules and the release controller, each a task."""
    settings, store = services.settings, services.store
    tasks = [
        asyncio.create_task(services.refresher.watch(settings.routing_refresh_s)),
        asyncio.create_task(services.guard.watch(settings.routing_refresh_s)),
        asyncio.create_task(services.request_log.run()),
        asyncio.create_task(services.meter.run(settings.energy_tick_s)),
        asyncio.create_task(services.live_judge.run(judge_call(services))),
        asyncio.create_task(
            purge_periodically(
                store,
                settings.content_retention_days,
                leader(store, "retention", timedelta(seconds=3 * PURGE_EVERY_S)),
            )
        ),
    ]
    app.state.prompt_embedder = prompt_embedder(services)
    drift = DriftScheduler(
        store,
        services.guard.cipher.open,
        DriftRun(
            current_hours=settings.drift_current_hours,
            reference_days=settings.drift_reference_days,
        ),
        app.state.prompt_embedder,
    )
    drift_lease = leader(store, "drift", timedelta(seconds=3 * settings.drift_interval_s))
    tasks.append(asyncio.create_task(drift.run(settings.drift_interval_s, drift_lease)))
    secret = settings.alert_webhook_secret
    alerts = AlertEvaluator(
        AlertService(store),
        WebhookNotifier(secret=secret.get_secret_value().encode() if secret else None),
    )
    alerts_lease = leader(store, "alerts", timedelta(seconds=3 * settings.alert_interval_s))
    tasks.append(asyncio.create_task(alerts.run(settings.alert_interval_s, alerts_lease)))
    controller = ReleaseController(
        store, services.rollouts, services.experiments, services.refresher.refresh_now
    )
    app.state.release_controller = controller
    tasks.append(asyncio.create_task(controller.run(settings.release_tick_s)))
    # studies start on request (POST /api/tune/studies)
    trainers = builtin_trainers(store, settings.home, services.refresher.refresh_now)
    app.state.tune_jobs = TuneJobs(trainers)
    app.state.improve_jobs = BackgroundJobs()  # on request too (POST /api/label, /api/distil)
    app.state.eval_jobs = BackgroundJobs()  # and POST /api/eval/runs
    return _Jobs(tasks, alerts, app.state.tune_jobs, app.state.improve_jobs, app.state.eval_jobs)


async def _stop(services: Services, jobs: _Jobs) -> None:
    """Cancel the jobs, let in-flight work finish, close the clients and the store."""
    await jobs.tune.aclose()  # first: a study writes that it stopped, through the store
    await jobs.improve.aclose()  # a labelling records what it has, resumable
    await jobs.evals.aclose()  # a run records its answers so far and that it stopped
    for task in jobs.tasks:
        task.cancel()
    for task in jobs.tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await jobs.alerts.aclose()
    await services.shadows.drain()
    await services.guard.gate.drain()
    await services.request_log.close()
    await services.guard.aclose()
    await services.cache.aclose()
    await services.engines.aclose()
    if services.tracing is not None:  # the last requests' spans, exported on its thread
        await asyncio.to_thread(services.tracing.shutdown)
    services.store.close()


def build_app(
    settings: Settings | None = None, *, span_exporter: SpanExporter | None = None
) -> FastAPI:
    """The app; ``span_exporter`` replaces tracing's OTLP exporter (tests hand an in-memory
    one; tracing is on when ``MODELYARD_TRACING`` says so)."""
    settings = settings or Settings()
    app = FastAPI(
        title="modelyard",
        version=__version__,
        lifespan=lifespan_of(settings, span_exporter),
        description="OpenAI-compatible API, model registry and console.",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.drain = Drain()  # `modelyard serve` begins it on SIGTERM; /readyz reads it
    app.add_middleware(OpenAIFastPath)  # innermost: inside the body limit and tracking
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestTracking)
    errors.install(app)
    health.attach(app)
    serving_routes.attach(app)
    embeddings.attach(app)
    registry_routes.attach(app)
    guard_routes.attach(app)
    backup_routes.attach(app)
    observe_routes.attach(app)
    quality_routes.attach(app)
    userdata_routes.attach(app)
    alerts_routes.attach(app)
    eval_routes.attach(app)
    dataset_routes.attach(app)
    improve_routes.attach(app)
    distil_routes.attach(app)
    compress_routes.attach(app)
    finetune_routes.attach(app)
    review_routes.attach(app)
    tune_routes.attach(app)
    routing_routes.attach(app)
    release_routes.attach(app)
    docs.attach(app)
    console_routes.attach(app)
    return app


def app_from_env() -> FastAPI:
    """The app of settings from the environment: what each ``--workers`` process builds."""
    settings = Settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return build_app(settings)
