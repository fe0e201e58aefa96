"""What a serving process imports (issue 8): numpy, redis, httpx and Alembic serve analyses,
evaluations, the Redis backends and migrations, not requests, so a server with the default
settings starts and answers chat completions without them; OpenTelemetry's SDK (and its
exporter) serves traces, which are off by default (issue 19; FastAPI itself imports
OpenTelemetry's API, and leaves it unused while no global tracer provider is set).

Run in a fresh interpreter (this one has imported them all), which drives the app through
its ASGI interface by hand: an HTTP client would import httpx itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelyard.config import Settings
from modelyard.registry import Registry
from modelyard.registry.protocol import VersionCreate
from modelyard.store import open_store
from tests.conftest import admin_key, register_scripted
from tests.live import live_server

HEAVY = ("numpy", "redis", "httpx", "alembic", "opentelemetry.sdk")
KEY_ENV = "FOOTPRINT_UPSTREAM_KEY"

SERVE = """
import asyncio, json, sys

from modelyard.app import build_app
from modelyard.config import Settings
from modelyard.guard.keys import read_admin_key

HEAVY = ("numpy", "redis", "httpx", "alembic", "opentelemetry.sdk")


def loaded():
    return [name for name in HEAVY if name in sys.modules]


async def post(app, key, path, body):
    payload = json.dumps(body).encode()
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "client": ("127.0.0.1", 40000), "server": ("modelyard", 80),
        "headers": [
            (b"host", b"modelyard"), (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
            (b"authorization", f"Bearer {key}".encode()),
        ],
    }
    requested, done, sent = False, asyncio.Event(), []

    async def receive():
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": payload, "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            done.set()

    await app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    text = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, text.decode()


async def main(models):
    settings = Settings()
    app = build_app(settings)
    out = {}
    async with app.router.lifespan_context(app):
        out["started"] = loaded()
        key = read_admin_key(settings.home)
        replies = []
        for model in models:
            for stream in (False, True):
                messages = [{"role": "user", "content": "hello there"}]
                body = {"model": model, "messages": messages, "stream": stream}
                replies.append(await post(app, key, "/v1/chat/completions", body))
        services = app.state.services
        await services.guard.gate.drain()  # charged
        await services.request_log.flush()  # logged
        out["replies"] = replies
        out["served"] = loaded()
    print(json.dumps(out))


asyncio.run(main(sys.argv[1:]))
"""


def serve(home: Path, *models: str, **env: str) -> dict[str, Any]:
    """Start the app over ``home`` in a fresh interpreter, send each model a chat completion
    (then a streamed one), stop it: the heavy modules loaded after start-up and after the
    requests, and the replies."""
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")},
        "MODELYARD_HOME": str(home),
        "MODELYARD_DEFAULT_MODEL": "none",
        "MODELYARD_DEFAULT_EMBEDDING_MODEL": "none",
        "MODELYARD_DRIFT_EMBEDDING_MODEL": "none",
        **env,
    }
    done = subprocess.run(
        [sys.executable, "-c", SERVE, *models],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """Another modelyard serving a scripted ``tiny``: the upstream's base URL and key."""
    home = tmp_path_factory.mktemp("upstream")
    store = open_store(Settings(home=home).store_url)
    register_scripted(Registry(store), "tiny", replies=["alpha beta gamma"])
    store.close()
    with live_server(home) as base:
        yield f"{base}/v1", admin_key(home)


def test_serving_chat_imports_none_of_them(
    home_registry: Registry, modelyard_home: Path, upstream: tuple[str, str]
) -> None:
    """The store is at head (the fixture migrated it), so start-up skips Alembic too."""
    register_scripted(home_registry, "echo")
    url, key = upstream
    version = home_registry.add_version(
        "relay",
        VersionCreate(
            engine_kind="upstream",
            artifact_uri=url,
            parameters={"model": "tiny", "api_key_env": KEY_ENV},
        ),
        actor="tests",
    )
    home_registry.set_alias("relay", "production", version.number, actor="tests", reason="test")
    result = serve(modelyard_home, "echo", "relay", **{KEY_ENV: key})
    statuses = [status for status, _ in result["replies"]]
    assert statuses == [200] * 4, result["replies"]
    echo, echo_stream, relay, relay_stream = (text for _, text in result["replies"])
    assert json.loads(echo)["choices"][0]["message"]["content"] == "echo: hello there"
    assert "echo" in echo_stream and echo_stream.rstrip().endswith("data: [DONE]")
    assert json.loads(relay)["choices"][0]["message"]["content"] == "alpha beta gamma"
    assert "alpha" in relay_stream and relay_stream.rstrip().endswith("data: [DONE]")
    assert result["started"] == []
    assert result["served"] == []


def test_only_a_start_that_migrates_imports_alembic(tmp_path: Path) -> None:
    home = tmp_path / "fresh"
    assert serve(home)["started"] == ["alembic"]  # the first start creates the tables
    assert serve(home)["started"] == []  # the store is at head now
