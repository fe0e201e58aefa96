"""A private redis-server on a free port, for tests that stop, freeze and restart Redis."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

from tests.live import free_port

REDIS_SERVER = "/usr/bin/redis-server"


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """``start()`` runs it (again, on the same port), ``stop()`` ends it, ``freeze()``
    stops the process without closing its socket (a hung server), ``thaw()`` resumes it."""

    def __init__(self, binary: str = REDIS_SERVER) -> None:
        self.binary = binary
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._frozen = False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 10.0) -> None:
        if self._process is not None:
            raise RuntimeError("the server is already running")
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no"]
        self._process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout_s
        while not _answers_ping(self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        if self._process is None:
            return
        self.thaw()
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def freeze(self) -> None:
        if self._process is None:
            raise RuntimeError("the server is not running")
        os.kill(self._process.pid, signal.SIGSTOP)
        self._frozen = True

    def thaw(self) -> None:
        if self._process is not None and self._frozen:
            os.kill(self._process.pid, signal.SIGCONT)
            self._frozen = False
