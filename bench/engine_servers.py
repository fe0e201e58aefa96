"""The three servers of ``bench/engine.py``: how to install or build them, start and stop them.

Everything installed or built lives in a cache dir outside the repository (default
``~/.cache/modelyard-bench``, or ``$MODELYARD_BENCH_CACHE``) and is reused by later runs:

- ``llama-cpp-server-venv/``: a venv with ``llama-cpp-python[server]`` (pip's wheel cache
  already holds the llama-cpp-python wheel modelyard was installed with);
- ``llama-server-<version>/``: llama.cpp's native ``llama-server``, built from the llama.cpp
  sources vendored in the llama-cpp-python sdist of the same version, so all three servers
  run the same llama.cpp code on the same GGUF.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
LLAMA_CPP_PYTHON_VERSION = "0.3.36"
CACHE = Path(os.environ.get("MODELYARD_BENCH_CACHE", Path.home() / ".cache" / "modelyard-bench"))
READY_TIMEOUT_S = 300.0
STOP_TIMEOUT_S = 20.0
LOG_TAIL_LINES = 40


class BenchSetupError(RuntimeError):
    """A server could not be installed, built or started; the message says where to look."""


@dataclass(frozen=True)
class ServerCommand:
    """One server to start: its command line, extra environment and readiness probe."""

    name: str
    argv: list[str]
    ready_path: str
    model: str
    env: Mapping[str, str] = field(default_factory=dict)
    # The file holding the API key to send, once the server is ready (modelyard writes its
    # admin key at its first start); None for servers that want no key.
    key_file: Path | None = None


@dataclass(frozen=True)
class BuildInfo:
    """How the native llama-server binary was obtained (built now or reused from the cache)."""

    binary: str
    version: str
    reused: bool
    download_s: float
    configure_s: float
    build_s: float
    cmake_args: list[str]

    @property
    def total_s(self) -> float:
        return self.download_s + self.configure_s + self.build_s


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    if not path.exists():
        return f"(no log at {path})"
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


def run_logged(argv: list[str], log: Path, *, cwd: Path | None = None) -> float:
    """Run a setup command with its output appended to ``log``; return its duration in s."""
    started = time.perf_counter()
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(argv)}\n")
        out.flush()
        result = subprocess.run(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        raise BenchSetupError(
            f"{' '.join(argv[:3])}... failed ({result.returncode}); last lines of {log}:\n"
            + log_tail(log)
        )
    return time.perf_counter() - started


# --- llama-cpp-python's own server -------------------------------------------------------


def llama_cpp_server_python(cache: Path = CACHE) -> Path:
    """The python of a cached venv holding ``llama-cpp-python[server]``, installed if needed."""
    venv = cache / "llama-cpp-server-venv"
    python = venv / "bin" / "python"
    check = (
        "import importlib.metadata as m, llama_cpp.server.app; "
        f"assert m.version('llama_cpp_python') == '{LLAMA_CPP_PYTHON_VERSION}'"
    )
    if python.exists() and subprocess.run([python, "-c", check], check=False).returncode == 0:
        return python
    cache.mkdir(parents=True, exist_ok=True)
    log = cache / "llama-cpp-server-venv.log"
    print(f"installing llama-cpp-python[server] into {venv} (log: {log})", flush=True)
    run_logged([sys.executable, "-m", "venv", "--clear", str(venv)], log)
    spec = f"llama-cpp-python[server]=={LLAMA_CPP_PYTHON_VERSION}"
    run_logged([str(python), "-m", "pip", "install", "--quiet", spec], log)
    return python


# --- llama.cpp's native llama-server -----------------------------------------------------


def llama_server_cmake_args(source: Path, build: Path) -> list[str]:
    """Configure flags, checked against the vendored tree's CMakeLists.txt (version 0.3.36).

    ``LLAMA_CURL`` is deprecated and ignored there (model downloads are off without it);
    ``LLAMA_USE_PREBUILT_UI`` would fetch the web UI at build time, so it is off, and so are
    HTTPS (``LLAMA_OPENSSL``), the npm UI build, tests and examples.
    """
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    return [
        "cmake",
        "-S",
        str(source),
        "-B",
        str(build),
        *generator,
        "-DCMAKE_BUILD_TYPE=Release",
        "-DGGML_NATIVE=ON",
        "-DBUILD_SHARED_LIBS=OFF",
        "-DLLAMA_BUILD_SERVER=ON",
        "-DLLAMA_BUILD_TOOLS=ON",
        "-DLLAMA_BUILD_TESTS=OFF",
        "-DLLAMA_BUILD_EXAMPLES=OFF",
        "-DLLAMA_BUILD_UI=OFF",
        "-DLLAMA_USE_PREBUILT_UI=OFF",
        "-DLLAMA_OPENSSL=OFF",
    ]


def _download_sdist(directory: Path, log: Path) -> Path:
    sdist = directory / f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}.tar.gz"
    if not sdist.exists():
        spec = f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}"
        pip = [sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps"]
        run_logged([*pip, spec, "-d", str(directory)], log)
    return sdist


def _extract_llama_cpp(sdist: Path, directory: Path) -> Path:
    source = directory / f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}" / "vendor" / "llama.cpp"
    if not (source / "CMakeLists.txt").exists():
        with tarfile.open(sdist) as archive:
            archive.extractall(directory, filter="data")
    if not (source / "CMakeLists.txt").exists():
        raise BenchSetupError(f"{sdist} holds no vendor/llama.cpp/CMakeLists.txt")
    return source


def llama_server_binary(cache: Path = CACHE, *, allow_build: bool = True) -> BuildInfo:
    """The cached ``llama-server`` binary, downloaded and built on first use."""
    directory = cache / f"llama-server-{LLAMA_CPP_PYTHON_VERSION}"
    binary = directory / "build" / "bin" / "llama-server"
    info_file = directory / "build-info.json"
    if binary.exists() and info_file.exists():
        recorded = json.loads(info_file.read_text())
        return BuildInfo(**{**recorded, "reused": True})
    if not allow_build:
        raise BenchSetupError(f"no llama-server at {binary} and --skip-build was given")
    directory.mkdir(parents=True, exist_ok=True)
    log = directory / "build.log"
    jobs = os.cpu_count() or 1
    print(
        f"building llama-server {LLAMA_CPP_PYTHON_VERSION} into {directory} "
        f"(first run only; about 20 minutes on 2 cores; log: {log})",
        flush=True,
    )
    started = time.perf_counter()
    sdist = _download_sdist(directory, log)
    source = _extract_llama_cpp(sdist, directory)
    download_s = time.perf_counter() - started
    cmake_args = llama_server_cmake_args(source, directory / "build")
    configure_s = run_logged(cmake_args, log)
    build = ["cmake", "--build", str(directory / "build"), "--target", "llama-server"]
    build_s = run_logged([*build, "-j", str(jobs)], log)
    info = BuildInfo(
        binary=str(binary),
        version=LLAMA_CPP_PYTHON_VERSION,
        reused=False,
        download_s=round(download_s, 1),
        configure_s=round(configure_s, 1),
        build_s=round(build_s, 1),
        cmake_args=cmake_args,
    )
    info_file.write_text(json.dumps({k: v for k, v in vars(info).items() if k != "reused"}))
    print(f"built llama-server in {info.total_s:.0f} s", flush=True)
    return info


# --- running a server --------------------------------------------------------------------


@dataclass
class RunningServer:
    name: str
    base_url: str
    model: str
    log: Path
    process: subprocess.Popen[bytes]
    argv: list[str]
    headers: dict[str, str] = field(default_factory=dict)

    def tail(self) -> str:
        return log_tail(self.log)


def auth_headers(key_file: Path | None) -> dict[str, str]:
    """The ``Authorization`` header of the key in ``key_file``; none when there is no file (a
    modelyard from before API keys writes none and wants none: a 401 then says so)."""
    if key_file is None or not key_file.exists():
        return {}
    key = key_file.read_text(encoding="utf-8").strip()
    return {"authorization": f"Bearer {key}"} if key else {}


def _wait_ready(server: RunningServer, path: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise BenchSetupError(
                f"{server.name} exited early ({server.process.returncode}); "
                f"last lines of {server.log}:\n{server.tail()}"
            )
        try:
            if httpx.get(server.base_url + path, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise BenchSetupError(
        f"{server.name} not ready after {timeout_s:.0f} s; last lines of {server.log}:\n"
        + server.tail()
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def running(
    command: Callable[[int], ServerCommand], logs: Path, *, timeout_s: float = READY_TIMEOUT_S
) -> Iterator[RunningServer]:
    """Start one server on a free 127.0.0.1 port, wait until ready, stop it on exit."""
    port = free_port()
    spec = command(port)
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{spec.name}.log"
    with log.open("w") as out:
        out.write(f"$ {' '.join(spec.argv)}\n")
        out.flush()
        process = subprocess.Popen(
            spec.argv,
            env={**os.environ, **spec.env},
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=logs,
        )
    base_url = f"http://127.0.0.1:{port}"
    server = RunningServer(spec.name, base_url, spec.model, log, process, spec.argv)
    try:
        _wait_ready(server, spec.ready_path, timeout_s)
        server.headers = auth_headers(spec.key_file)
        yield server
    finally:
        _stop(process)


# --- the three command lines ------------------------------------------------------------


def modelyard_python() -> str:
    venv_python = ROOT / ".venv" / "bin" / "python"
    return str(venv_python) if venv_python.exists() else sys.executable


def export_modelyard_revision(revision: str, directory: Path) -> tuple[str, Path]:
    """Write ``src/`` of a git revision of this repository to ``directory`` (``git archive``,
    read-only); return the commit and the path to put first on modelyard's PYTHONPATH."""
    git = ["git", "-C", str(ROOT)]
    resolved = subprocess.run(
        [*git, "rev-parse", "--short", f"{revision}^{{commit}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if resolved.returncode != 0:
        raise BenchSetupError(f"unknown git revision {revision!r}: {resolved.stderr.strip()}")
    commit = resolved.stdout.strip()
    archive = subprocess.run(
        [*git, "archive", "--format=tar", commit, "src"], capture_output=True, check=True
    )
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(directory, filter="data")
    return commit, directory / "src"


def modelyard_command(home: Path, env: Mapping[str, str]) -> Callable[[int], ServerCommand]:
    def command(port: int) -> ServerCommand:
        argv = [modelyard_python(), "-m", "modelyard", "serve", "--port", str(port)]
        environment = {
            "MODELYARD_HOME": str(home),
            "MODELYARD_DEFAULT_MODEL": "smollm2",
            **env,
        }
        key_file = Path(environment["MODELYARD_HOME"]) / "admin.key"  # env may move it
        return ServerCommand(
            "modelyard", argv, "/readyz", "default", environment, key_file=key_file
        )

    return command


def llama_cpp_python_command(
    python: Path, gguf: Path, *, threads: int, n_ctx: int
) -> Callable[[int], ServerCommand]:
    def command(port: int) -> ServerCommand:
        argv = [
            str(python),
            "-m",
            "llama_cpp.server",
            "--model",
            str(gguf),
            "--model_alias",
            "default",
            "--n_ctx",
            str(n_ctx),
            "--n_threads",
            str(threads),
            "--n_threads_batch",
            str(threads),
            # Its default stops a running stream whenever another request arrives.
            "--interrupt_requests",
            "False",
            "--verbose",
            "False",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        return ServerCommand("llama-cpp-python", argv, "/v1/models", "default")

    return command


def llama_server_command(
    binary: Path, gguf: Path, *, threads: int, n_ctx_per_slot: int, parallel: int
) -> Callable[[int], ServerCommand]:
    def command(port: int) -> ServerCommand:
        argv = [
            str(binary),
            "--model",
            str(gguf),
            "--alias",
            "default",
            "--threads",
            str(threads),
            "--threads-batch",
            str(threads),
            "--parallel",
            str(parallel),
            "--ctx-size",
            str(n_ctx_per_slot * parallel),  # the total across slots
            "--cont-batching",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        return ServerCommand("llama-server", argv, "/health", "default")

    return command
