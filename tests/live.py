"""Real ``modelyard serve`` processes for end-to-end tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

from modelyard.guard.keys import read_admin_key


class Live(str):
    """The base URL of a live server (no ``/v1``), carrying the admin key its first start
    wrote: ``live.key``, ``live.headers``."""

    key: str
    process: subprocess.Popen[bytes]  # the server, for tests that signal it

    @property
    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.key}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def live_server(
    home: Path,
    *,
    ready: bool = True,
    timeout_s: float = 120,
    args: Sequence[str] = (),
    **env: str,
) -> Iterator[Live]:
    """Start ``modelyard serve`` on a free port; yield its base URL (no ``/v1``)."""
    port = free_port()
    environment = {**os.environ, "MODELYARD_HOME": str(home), **env}
    log_path = home / f"serve-{port}.log"
    home.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "modelyard", "serve", "--port", str(port), *args],
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(base, "/readyz" if ready else "/healthz", process, log_path, timeout_s)
        live = Live(base)
        live.key = read_admin_key(home) or ""
        live.process = process
        yield live
    finally:
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait(
    base: str, path: str, process: subprocess.Popen[bytes], log: Path, timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"modelyard serve exited early:\n{log.read_text()}")
        try:
            if httpx.get(base + path, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"modelyard serve not ready after {timeout_s}s:\n{log.read_text()}")
