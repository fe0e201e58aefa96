"""Starting, pinning, probing and stopping the benchmark's processes."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil

MIB = 1024 * 1024


class ServerFailed(RuntimeError):
    """A process did not start or did not become ready; the message says where to look."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def can_pin() -> bool:
    """Two cores or more, and taskset to place processes on them."""
    return (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None


def pinned(argv: Sequence[str], core: int | None) -> list[str]:
    if core is None:
        return list(argv)
    return ["taskset", "-c", str(core), *argv]


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@dataclass
class Server:
    name: str
    base_url: str
    process: subprocess.Popen[bytes]
    log: Path
    argv: list[str]

    def _tree(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.process.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def rss_mib(self) -> float:
        """Resident memory of the server and any processes it started."""
        total = 0
        for proc in self._tree():
            with contextlib.suppress(psutil.Error):
                total += proc.memory_info().rss
        return round(total / MIB, 1)

    def processes(self) -> int:
        return len(self._tree())

    def pids(self) -> set[int]:
        return {proc.pid for proc in self._tree()}

    def cpu_s(self) -> float:
        """CPU seconds (user + system) of the server and its children so far."""
        total = 0.0
        for proc in self._tree():
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total += times.user + times.system
        return total


def wait_ready(server: Server, path: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise ServerFailed(
                f"{server.name} exited ({server.process.returncode}); "
                f"last lines of {server.log}:\n{log_tail(server.log)}"
            )
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(server.base_url + path, timeout=2).status_code == 200:
                return
        time.sleep(0.25)
    raise ServerFailed(
        f"{server.name} not ready after {timeout_s:.0f} s; last lines of {server.log}:\n"
        + log_tail(server.log)
    )


def stop(process: subprocess.Popen[bytes], timeout_s: float = 15.0) -> None:
    if process.poll() is not None:
        return
    children: list[psutil.Process] = []
    with contextlib.suppress(psutil.Error):
        children = psutil.Process(process.pid).children(recursive=True)
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    for child in children:
        with contextlib.suppress(psutil.Error):
            child.kill()


@contextlib.contextmanager
def running(
    name: str,
    argv: Sequence[str],
    *,
    port: int,
    ready_path: str,
    logs: Path,
    core: int | None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout_s: float = 120.0,
) -> Iterator[Server]:
    """Start ``argv`` (listening on ``port``) pinned to ``core``, with ``env`` as its whole
    environment when given; wait for ``ready_path`` to answer 200; stop it on exit."""
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{name}-{port}.log"
    command = pinned(argv, core)
    with log.open("w") as out:
        out.write(f"$ {' '.join(command)}\n")
        out.flush()
        process = subprocess.Popen(
            command,
            env=dict(env) if env is not None else None,  # None: this process's environment
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
        )
    server = Server(name, f"http://127.0.0.1:{port}", process, log, command)
    try:
        wait_ready(server, ready_path, timeout_s)
        yield server
    finally:
        stop(process)


def cpu_busy(before: Sequence[Any], after: Sequence[Any]) -> dict[str, list[float]]:
    """Per CPU, between two ``psutil.cpu_times(percpu=True)`` readings: the busy share (%,
    everything but idle and iowait), and of it the share stolen by the hypervisor and spent
    in soft interrupts (loopback TCP)."""
    busy, steal, softirq = [], [], []
    for first, second in zip(before, after, strict=True):
        total = sum(second) - sum(first)
        if total <= 0:
            busy.append(0.0), steal.append(0.0), softirq.append(0.0)
            continue
        idle = (second.idle + second.iowait) - (first.idle + first.iowait)
        busy.append(round(100.0 * (1 - idle / total), 1))
        steal.append(round(100.0 * (second.steal - first.steal) / total, 1))
        softirq.append(round(100.0 * (second.softirq - first.softirq) / total, 1))
    return {"busy": busy, "steal": steal, "softirq": softirq}
