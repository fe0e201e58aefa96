"""``modelyard serve --workers N``: worker processes on one port share keys, limits, the
request log and the singleton jobs."""

from __future__ import annotations

import concurrent.futures
import time
from pathlib import Path

import httpx
from click.testing import CliRunner
from sqlalchemy import func, select

from modelyard.cli import main
from modelyard.config import Settings
from modelyard.store import open_store
from modelyard.store.tables import LeaseRow, RequestLogRow
from tests.guard.test_replicas import ASK, bearer, create_key, prepared_home, redis_env
from tests.live import live_server


def test_more_than_one_worker_needs_shared_limits(modelyard_home: Path) -> None:
    result = CliRunner().invoke(main, ["serve", "--workers", "2"])
    assert result.exit_code == 1
    assert "MODELYARD_RATE_LIMIT_BACKEND=redis" in result.output


def test_two_workers_share_limits_keys_and_the_log(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    home = prepared_home(tmp_path / "workers")
    env = redis_env(redis_url, redis_prefix)
    with live_server(home, args=["--workers", "2"], **env) as server:
        limit = 5
        key = create_key(server, rpm=limit)  # made through one worker
        deadline = time.monotonic() + 10
        # known to both, within a refresh: 40 answers in a row on new connections (with 8,
        # all of them came from one worker about one run in a hundred, and the other, not
        # refreshed yet, then refused a call below with 401)
        while not all(known(server, key) for _ in range(40)):
            assert time.monotonic() < deadline, "a worker never learned the new key"
            time.sleep(0.1)

        def call(_index: int) -> int:
            with httpx.Client(timeout=30) as client:  # a new connection: any worker
                response = client.post(
                    f"{server}/v1/chat/completions", json=ASK, headers=bearer(key)
                )
                return response.status_code

        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            codes = list(pool.map(call, range(20)))
        assert codes.count(200) == limit and codes.count(429) == 20 - limit
        admin = [call_admin(server) for _ in range(10)]
        assert admin == [200] * 10
    store = open_store(Settings(home=home).store_url)
    try:
        with store.session() as session:
            rows = session.scalar(
                select(func.count()).select_from(RequestLogRow).where(RequestLogRow.route == "bot")
            )
            distinct = session.scalar(
                select(func.count(RequestLogRow.id.distinct())).where(RequestLogRow.route == "bot")
            )
            leases = session.scalars(select(LeaseRow.name)).all()
    finally:
        store.close()
    assert rows == distinct == 30  # every request once, whichever worker wrote it
    assert "release-controller" in leases  # alerts and drift take theirs after an interval


def known(server: object, key: str) -> bool:
    with httpx.Client(timeout=30) as client:  # a new connection: any worker answers
        return client.get(f"{server}/api/keys/me", headers=bearer(key)).status_code == 200


def call_admin(server: object) -> int:
    with httpx.Client(timeout=30) as client:
        response = client.post(
            f"{server}/v1/chat/completions",
            json=ASK,
            headers=server.headers,  # type: ignore[attr-defined]
        )
        return response.status_code
