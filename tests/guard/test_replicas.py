"""Rate limits across replicas: two real servers sharing one Redis, and what each
``redis_unavailable`` mode does while Redis is down."""

from __future__ import annotations

import concurrent.futures
import time
from pathlib import Path

import httpx
import pytest

from modelyard.config import Settings
from modelyard.registry import Registry
from modelyard.store import open_store
from tests.conftest import register_scripted
from tests.guard.redis_server import RedisServer
from tests.live import Live, live_server

ASK = {"model": "bot", "messages": [{"role": "user", "content": "hi"}]}


def prepared_home(home: Path) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    store = open_store(Settings(home=home).store_url)
    register_scripted(Registry(store), "bot", replies=["ok"])
    store.close()
    return home


def redis_env(url: str, prefix: str, mode: str = "local") -> dict[str, str]:
    return {
        "MODELYARD_RATE_LIMIT_BACKEND": "redis",
        "MODELYARD_REDIS_URL": url,
        "MODELYARD_REDIS_PREFIX": prefix,
        "MODELYARD_REDIS_UNAVAILABLE": mode,
        "MODELYARD_ROUTING_REFRESH_S": "0.2",
    }


def create_key(server: Live, rpm: int) -> str:
    response = httpx.post(
        f"{server}/api/keys",
        headers=server.headers,
        json={"name": "shared", "limits": {"requests_per_minute": rpm}},
    )
    assert response.status_code == 201, response.text
    secret: str = response.json()["secret"]
    return secret


def wait_until_known(server: str, key: str) -> None:
    """Another replica learns a new key within its refresh interval."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if httpx.get(f"{server}/api/keys/me", headers=bearer(key)).status_code == 200:
            return
        time.sleep(0.1)
    raise AssertionError(f"{server} never learned the key")


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def test_the_rpm_limit_holds_across_two_replicas(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    home = prepared_home(tmp_path / "shared")
    env = redis_env(redis_url, redis_prefix)
    with live_server(home, **env) as first, live_server(home, **env) as second:
        limit = 5
        key = create_key(first, rpm=limit)
        wait_until_known(second, key)

        def call(index: int) -> int:
            server = (first, second)[index % 2]
            return httpx.post(
                f"{server}/v1/chat/completions", json=ASK, headers=bearer(key), timeout=30
            ).status_code

        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            codes = list(pool.map(call, range(24)))
        # Full bucket of 5, refilling 5/min: the ~2 s this takes adds nothing whole.
        assert codes.count(200) == limit
        assert codes.count(429) == len(codes) - limit
        refused_by = {i % 2 for i, code in enumerate(codes) if code == 429}
        assert refused_by == {0, 1}  # both replicas enforce the one shared bucket
        status = httpx.get(f"{first}/api/guard", headers=first.headers).json()
        assert status["rate_limit_fallbacks"] == {}


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("deny", [503, 503, 503, 503]),
        ("allow", [200, 200, 200, 200]),
        ("local", [200, 200, 429, 429]),  # the key's 2 rpm, held by this replica alone
    ],
)
def test_while_redis_is_down(
    tmp_path: Path, private_redis: RedisServer, mode: str, expected: list[int]
) -> None:
    home = prepared_home(tmp_path / mode)
    with live_server(home, **redis_env(private_redis.url, "down", mode)) as server:
        key = create_key(server, rpm=2)
        wait_until_known(server, key)
        assert (
            httpx.post(f"{server}/v1/chat/completions", json=ASK, headers=bearer(key)).status_code
            == 200
        )  # Redis up: one of the two requests used
        private_redis.stop()
        started = time.monotonic()
        answers = [
            httpx.post(f"{server}/v1/chat/completions", json=ASK, headers=bearer(key), timeout=10)
            for _ in range(4)
        ]
        assert time.monotonic() - started < 3  # a dead Redis costs no long waits
        assert [a.status_code for a in answers] == expected
        if mode == "deny":
            assert answers[0].json()["error"]["code"] == "rate_limiter_unavailable"
            assert answers[0].headers["retry-after"] == "1"
        status = httpx.get(f"{server}/api/guard", headers=server.headers).json()
        assert status["rate_limit_fallbacks"].get(mode, 0) >= 4
