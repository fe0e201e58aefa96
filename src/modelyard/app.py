"""The app factory: builds the services, attaches each package's routes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from modelyard import __version__
from modelyard.bootstrap import ensure_default_embedding_model, ensure_default_model
from modelyard.config import Settings
from modelyard.console import routes as console_routes
from modelyard.engines.pool import EnginePool
from modelyard.registry import Registry
from modelyard.registry import routes as registry_routes
from modelyard.routing import RoutingTable
from modelyard.routing.refresh import RoutingRefresher
from modelyard.services import Services
from modelyard.serving import embeddings, errors, health
from modelyard.serving import routes as serving_routes
from modelyard.serving.body_limit import BodyLimit
from modelyard.store import open_store

log = logging.getLogger(__name__)


def open_services(settings: Settings) -> Services:
    """Open the store (migrating it) and build the service objects; no engine starts yet."""
    settings.ensure_home()
    store = open_store(settings.store_url)
    registry = Registry(store)
    ensure_default_model(settings, registry, actor="modelyard")
    ensure_default_embedding_model(settings, registry, actor="modelyard")
    table = RoutingTable()
    engines = EnginePool(settings)

    def preload(current: RoutingTable) -> None:
        for spec in current.aliased_specs():
            engines.preload(spec)

    return Services(
        settings=settings,
        store=store,
        registry=registry,
        routing=table,
        refresher=RoutingRefresher(table, registry, on_change=preload),
        engines=engines,
    )


def build_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = await asyncio.to_thread(open_services, settings)
        app.state.services = services
        await services.refresher.refresh_now()
        watcher = asyncio.create_task(services.refresher.watch(settings.routing_refresh_s))
        try:
            yield
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            await services.engines.aclose()
            services.store.close()

    app = FastAPI(
        title="modelyard",
        version=__version__,
        lifespan=lifespan,
        description="OpenAI-compatible API, model registry and console.",
    )
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    errors.install(app)
    health.attach(app)
    serving_routes.attach(app)
    embeddings.attach(app)
    registry_routes.attach(app)
    console_routes.attach(app)
    return app
