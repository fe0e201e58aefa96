"""Shared fixtures: an isolated MODELYARD_HOME per test, SQLite and PostgreSQL stores,
ASGI clients over scripted engines and real server processes."""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from modelyard.app import build_app
from modelyard.config import Settings
from modelyard.guard.keys import read_admin_key
from modelyard.registry import Registry
from modelyard.registry.protocol import VersionCreate
from modelyard.services import Services
from modelyard.store import Store, open_store

POSTGRES_URL = os.environ.get(
    "MODELYARD_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def modelyard_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own data dir; no test registers the real models unless it asks."""
    home = tmp_path / "home"
    for name in list(os.environ):
        if name.startswith("MODELYARD_") and name != "MODELYARD_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)
    monkeypatch.setenv("MODELYARD_HOME", str(home))
    monkeypatch.setenv("MODELYARD_DEFAULT_MODEL", "none")
    monkeypatch.setenv("MODELYARD_DEFAULT_EMBEDDING_MODEL", "none")
    return home


def _postgres_schema_url() -> Iterator[str]:
    """A fresh schema in the test database, dropped afterwards."""
    admin = create_engine(POSTGRES_URL)
    schema = f"t_{secrets.token_hex(6)}"
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError as error:
        admin.dispose()
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI and unreachable: {error.orig}")
        pytest.skip(f"PostgreSQL unreachable at {POSTGRES_URL}")
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, modelyard_home: Path) -> Iterator[str]:
    """The store URL, once for SQLite and once for PostgreSQL."""
    if request.param == "sqlite":
        modelyard_home.mkdir(parents=True, exist_ok=True)
        yield f"sqlite:///{modelyard_home / 'test.db'}"
    else:
        yield from _postgres_schema_url()


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = open_store(database_url)
    yield opened
    opened.close()


@pytest.fixture
def registry(store: Store) -> Registry:
    return Registry(store)


def register_scripted(
    registry: Registry, model: str, alias: str = "production", **parameters: Any
) -> int:
    """Add a scripted version of ``model`` and point ``alias`` at it; returns its number."""
    version = registry.add_version(
        model,
        VersionCreate(engine_kind="scripted", artifact_uri="scripted:", parameters=parameters),
        actor="tests",
    )
    registry.set_alias(model, alias, version.number, actor="tests", reason="test setup")
    return version.number


@pytest.fixture
def home_registry(modelyard_home: Path) -> Iterator[Registry]:
    """The registry of MODELYARD_HOME's own SQLite store (what `modelyard serve` opens)."""
    settings = Settings()
    settings.ensure_home()
    opened = open_store(settings.store_url)
    yield Registry(opened)
    opened.close()


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def admin_key(home: Path) -> str:
    """The admin key the first start wrote into ``home``."""
    key = read_admin_key(home)
    assert key is not None, f"no admin key in {home}"
    return key


async def new_key(api: httpx.AsyncClient, role: str = "developer", **fields: Any) -> str:
    """Create a key through the API (as ``api``'s admin) and return its secret."""
    response = await api.post("/api/keys", json={"name": f"{role}-key", "role": role, **fields})
    assert response.status_code == 201, response.text
    secret: str = response.json()["secret"]
    return secret


class AppClient(httpx.AsyncClient):
    """An ASGI client that also holds its app, for tests that look inside."""

    def __init__(self, app: FastAPI, **kwargs: Any) -> None:
        super().__init__(transport=httpx.ASGITransport(app=app), **kwargs)
        self.app = app

    @property
    def services(self) -> Services:
        services: Services = self.app.state.services
        return services

    async def reload_routes(self) -> None:
        """See models registered in the store since the app started, now."""
        await self.services.refresher.refresh_now()

    async def logged(self) -> None:
        """Wait until every request so far is in the request log (and charged)."""
        await self.services.guard.gate.drain()
        await self.services.request_log.flush()


@asynccontextmanager
async def app_client(settings: Settings) -> AsyncIterator[AppClient]:
    """A full app (lifespan included) and a client sending the admin key its first start
    created."""
    app = build_app(settings)
    async with (
        app.router.lifespan_context(app),
        AppClient(
            app,
            base_url="http://modelyard",
            headers=bearer(admin_key(settings.home)),
        ) as client,
    ):
        yield client


@pytest.fixture
async def api(home_registry: Registry) -> AsyncIterator[AppClient]:
    """An app over MODELYARD_HOME with default settings, as its admin."""
    async with app_client(Settings()) as client:
        yield client


def pytest_unconfigure(config: pytest.Config) -> None:
    """llama-cpp-python opens /dev/null twice at import (``llama_cpp._utils``) and never
    closes it; with warnings as errors, interpreter shutdown then reports two unclosed
    files after every run that loaded it. Close them once the tests are done."""
    utils = sys.modules.get("llama_cpp._utils")
    for name in ("outnull_file", "errnull_file"):
        handle = getattr(utils, name, None)
        if handle is not None:
            handle.close()
