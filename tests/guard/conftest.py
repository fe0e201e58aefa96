"""Redis for the guard's tests: the shared server at 127.0.0.1:6379 (required in CI) and
private servers that a test may stop."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.conftest import IN_CI
from tests.guard.redis_server import REDIS_SERVER, RedisServer

REDIS_URL = os.environ.get("MODELYARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def redis_url() -> str:
    """The shared test Redis; skipped when unreachable, except in CI where that fails."""
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    except (redis.ConnectionError, redis.TimeoutError) as error:
        if IN_CI:
            pytest.fail(f"Redis is required in CI and unreachable at {REDIS_URL}: {error}")
        pytest.skip(f"Redis unreachable at {REDIS_URL}")
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"test-{secrets.token_hex(6)}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    try:
        for key in client.scan_iter(match=f"{prefix}:*"):
            client.delete(key)
    finally:
        client.close()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A synchronous client of the shared test Redis, to look at keys."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own, which it may stop, freeze and restart."""
    if not Path(REDIS_SERVER).exists():
        if IN_CI:
            pytest.fail(f"{REDIS_SERVER} is required in CI")
        pytest.skip(f"no {REDIS_SERVER}")
    server = RedisServer()
    server.start()
    yield server
    server.stop()


class FakeClock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
