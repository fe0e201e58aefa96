"""A replica killed with SIGKILL while its request-log rows wait in memory: with the
journal (the default) the next process on the same home stores every answered request
once; without it, they are lost (the control that shows the test can tell)."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from modelyard.config import Settings
from modelyard.observe.queries import RequestFilter, list_requests
from modelyard.registry import Registry
from modelyard.store import open_store
from tests.conftest import register_scripted
from tests.live import Live, live_server

REQUESTS = 12
# Nothing is written to the store before the kill: every row waits in memory.
SLOW_FLUSH = {"MODELYARD_LOG_FLUSH_INTERVAL_S": "600", "MODELYARD_LOG_BATCH_ROWS": "10000"}


def answer_then_kill(home: Path, **env: str) -> list[str]:
    """Answer REQUESTS requests (half streamed), SIGKILL the server; the answered ids."""
    ids: list[str] = []
    with live_server(home, **SLOW_FLUSH, **env) as base:
        for i in range(REQUESTS):
            body = {
                "model": "bot",
                "messages": [{"role": "user", "content": f"question {i}"}],
                "stream": i % 2 == 0,
            }
            response = httpx.post(
                f"{base}/v1/chat/completions", headers=base.headers, json=body, timeout=30
            )
            assert response.status_code == 200, response.text
            if body["stream"]:
                assert response.text.rstrip().endswith("data: [DONE]")
            ids.append(response.headers["x-modelyard-request-id"])
        base.process.send_signal(signal.SIGKILL)
        base.process.wait(timeout=10)
    return ids


def logged(home: Path) -> dict[str, tuple[int, bool, bool]]:
    store = open_store(Settings(home=home).store_url)
    try:
        rows = list_requests(store, RequestFilter(), limit=1000)
    finally:
        store.close()
    return {row.id: (row.status, row.streamed, row.has_content) for row in rows}


def restarted(home: Path, **env: str) -> Live:
    """Start a server on the home again (it replays what it finds), then stop it."""
    with live_server(home, **env) as base:
        return base


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "replica"
    home.mkdir()
    store = open_store(Settings(home=home).store_url)
    register_scripted(Registry(store), "bot", replies=["a short answer"])
    store.close()
    return home


def test_sigkill_loses_no_answered_request(home: Path) -> None:
    ids = answer_then_kill(home)
    assert logged(home) == {}  # the kill came before any flush
    assert list((home / "journal").glob("*.jsonl"))  # what the dead process left
    restarted(home)
    rows = logged(home)
    assert sorted(rows) == sorted(ids)  # each answered request, once
    assert all(status == 200 and content for status, _, content in rows.values())
    assert sorted(streamed for _, streamed, _ in rows.values()) == [False] * 6 + [True] * 6
    assert list((home / "journal").glob("*.jsonl")) == []


def test_without_the_journal_the_kill_loses_the_queued_rows(home: Path) -> None:
    answer_then_kill(home, MODELYARD_LOG_JOURNAL="false")
    restarted(home, MODELYARD_LOG_JOURNAL="false")
    assert logged(home) == {}
