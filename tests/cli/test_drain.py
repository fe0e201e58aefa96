"""A replica drained on SIGTERM: `/readyz` turns 503 at once while requests are still
answered, a stream in flight runs to its end, the process then exits, and every answered
request is in the request log."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import httpx

from modelyard.config import Settings
from modelyard.observe.queries import RequestFilter, list_requests
from modelyard.registry import Registry
from modelyard.store import open_store
from tests.conftest import register_scripted
from tests.live import live_server

WORDS = 40
TOKEN_DELAY_MS = 100  # the stream takes about 4 s


def test_sigterm_drains_then_stops(tmp_path: Path) -> None:
    home = tmp_path / "drain"
    home.mkdir()
    store = open_store(Settings(home=home).store_url)
    reply = " ".join(f"w{i}" for i in range(WORDS))
    register_scripted(Registry(store), "bot", replies=[reply], token_delay_ms=TOKEN_DELAY_MS)
    store.close()
    env = {"MODELYARD_DRAIN_DELAY_S": "1.5", "MODELYARD_DRAIN_TIMEOUT_S": "20"}
    with live_server(home, **env) as base:
        process = base.process
        body = {"model": "bot", "messages": [{"role": "user", "content": "go"}], "stream": True}
        streamed: list[str] = []

        def stream() -> None:
            with httpx.stream(
                "POST", f"{base}/v1/chat/completions", headers=base.headers, json=body, timeout=30
            ) as response:
                assert response.status_code == 200
                streamed.extend(line for line in response.iter_lines() if line)

        reader = threading.Thread(target=stream)
        reader.start()
        time.sleep(0.5)  # the stream has started
        process.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        ready = httpx.get(f"{base}/readyz", timeout=5)
        assert ready.status_code == 503 and ready.json() == {"status": "draining"}
        # Still serving while the balancer takes the replica out.
        plain = {**body, "stream": False}
        answered = httpx.post(
            f"{base}/v1/chat/completions", headers=base.headers, json=plain, timeout=30
        )
        assert answered.status_code == 200, answered.text
        reader.join(timeout=30)
        assert not reader.is_alive()
        assert streamed[-1] == "data: [DONE]"
        words = "".join(
            json.loads(line.removeprefix("data: "))["choices"][0]["delta"].get("content") or ""
            for line in streamed[:-1]
            if '"choices":[{' in line
        )
        assert words.split() == reply.split()  # the whole stream, not cut at the signal
        process.wait(timeout=30)
        assert process.returncode in (0, -signal.SIGTERM)
    store = open_store(Settings(home=home).store_url)
    try:
        logged = list_requests(store, RequestFilter(), limit=10)
    finally:
        store.close()
    assert sorted(row.streamed for row in logged) == [False, True]
    assert all(row.status == 200 for row in logged)
