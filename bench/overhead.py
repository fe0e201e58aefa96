"""Request-path overhead and throughput of modelyard against LiteLLM's proxy and a bare
pass-through floor, all in front of the same fake upstream, in one run (issue 8).

    .venv/bin/python bench/overhead.py              # full run, about 15-20 minutes
    .venv/bin/python bench/overhead.py --quick      # smoke run, about 3 minutes
    .venv/bin/python bench/overhead.py --soak 120   # modelyard only: steady load, RSS, log
    .venv/bin/python bench/overhead.py --quick --modelyard-rev HEAD  # before/after, one run

Targets, each started in turn on CPU core 0 while the load generator and the fake upstream
run on core 1 (taskset): ``direct`` (the fake upstream itself), ``modelyard`` (everything
on: key with rate limits, PII redaction, request log, metrics), ``litellm`` (its proxy in
``bench/.venvs/litellm``, master key, no database) and ``floor`` (Starlette + aiohttp
pass-through); with ``--modelyard-rev REV`` also ``modelyard@<commit>``, modelyard served
from ``src/`` of that revision, compared with the working tree's in its own table. Load
comes from ``bench/overhead_parts/loadgen.py`` in its own process
(aiohttp, closed loop). Prints the tables and writes ``bench/results/overhead-*.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import psutil
from rich.console import Console

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.overhead_parts import revisions, stats  # noqa: E402
from bench.overhead_parts.loadgen import check_answer, request_body  # noqa: E402
from bench.overhead_parts.revisions import Revision, RevisionError  # noqa: E402
from bench.overhead_parts.servers import (  # noqa: E402
    Server,
    ServerFailed,
    can_pin,
    cpu_busy,
    free_port,
    log_tail,
    pinned,
    running,
)

VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable
LITELLM_SPEC = "litellm[proxy]==1.106.2"
LITELLM_VENV = ROOT / "bench" / ".venvs" / "litellm"
RESULTS = ROOT / "bench" / "results"
MODEL = "bench"  # the public model name every target serves
UPSTREAM_MODEL = "bench-upstream"
HIGH_RPM = 100_000_000  # rate limiting is on, but never bites
HIGH_TPM = 1_000_000_000
SERVER_CORE, LOAD_CORE = 0, 1
NOISY_CORES = 0.15  # other processes' CPU during a step above which it is measured again
MAX_RETRIES = 2  # per step
RETRY_PAUSE_S = 3.0
HARNESS_BUSY = 90.0  # % of the load generator's core above which a step is harness-bound
ALL_TARGETS = ("direct", "modelyard", "litellm", "floor")
EXTRA_TARGETS = (
    "floor-httpx",  # diagnostic: the floor with httpx, modelyard's client
    # Requests with tools and extra fields (issue 15's pass-through): modelyard's added
    # latency against the upstream's for the same requests, and against plain requests.
    "direct+tools",
    "modelyard+tools",
    # The same byte size without tools: separates the cost of a larger body from the
    # handling of tools.
    "direct+padded",
    "modelyard+padded",
)
console = Console()
if not console.is_terminal:
    console = Console(width=150)


@dataclass(frozen=True)
class Plan:
    concurrencies: tuple[int, ...]
    reps: int
    warmup_s: float
    duration_s: float
    targets: tuple[str, ...]
    timeout_s: float = 20.0  # per request
    grace_s: float = 3.0  # wait for requests in flight after a step

    @property
    def steps_per_rep(self) -> int:
        return len(self.concurrencies) * 2 * len(self.targets)


@dataclass
class Context:
    plan: Plan
    work: Path  # temporary: modelyard homes, configs, raw step files
    logs: Path
    upstream: Server | None = None
    server_core: int | None = SERVER_CORE
    load_core: int | None = LOAD_CORE
    # Per modelyard target ("modelyard", "modelyard@<commit>"): template home, its key.
    modelyard_templates: dict[str, tuple[Path, str]] = field(default_factory=dict)
    revisions: dict[str, Revision] = field(default_factory=dict)  # --modelyard-rev, by target
    litellm_bin: Path | None = None
    keep_raw: bool = False
    retries_left: int = 0  # budget of re-measured steps for the whole run
    skipped: dict[str, str] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def upstream_v1(self) -> str:
        assert self.upstream is not None
        return self.upstream.base_url + "/v1"


@dataclass
class Target:
    name: str
    chat_url: str
    key: str
    server: Server
    extra: dict[str, Any] = field(default_factory=dict)


# --- the fake upstream and the targets ----------------------------------------------------


@contextlib.contextmanager
def fake_upstream(ctx: Context) -> Iterator[Server]:
    port = free_port()
    argv = [PYTHON, "-m", "bench.overhead_parts.upstream", "--port", str(port)]
    with running(
        "upstream",
        argv,
        port=port,
        ready_path="/v1/models",
        logs=ctx.logs,
        core=ctx.load_core,
        cwd=ROOT,
        timeout_s=30,
    ) as server:
        yield server


@contextlib.contextmanager
def start_direct(ctx: Context) -> Iterator[Target]:
    assert ctx.upstream is not None
    yield Target("direct", ctx.upstream_v1 + "/chat/completions", "none", ctx.upstream)


EXTRA_MODELYARD_ENV: dict[str, str] = {}  # --modelyard-env KEY=VALUE, for experiments


def modelyard_env(home: Path, revision: Revision | None = None) -> dict[str, str]:
    """Settings of the benchmark's modelyard: a fresh home (SQLite), no embedded models;
    for a revision, its source first on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
    env.update(
        MODELYARD_HOME=str(home),
        MODELYARD_DEFAULT_MODEL="none",  # no SmolLM2 GGUF registered, so no llama.cpp
        MODELYARD_DEFAULT_EMBEDDING_MODEL="none",  # no all-MiniLM-L6-v2
        MODELYARD_DRIFT_EMBEDDING_MODEL="none",  # drift reports would ask for it
    )
    env.update(EXTRA_MODELYARD_ENV)
    return env if revision is None else revisions.with_pythonpath(env, revision.src)


def modelyard_cli(home: Path, *args: str, revision: Revision | None = None) -> Any:
    command = [str(VENV_BIN / "modelyard"), *args, "--json"]
    if revision is not None:  # the revision's CLI: its own schema, same venv
        command = [PYTHON, "-P", "-c", revisions.LAUNCHER, *args, "--json"]
    done = subprocess.run(
        command, env=modelyard_env(home, revision), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise ServerFailed(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    out = done.stdout
    if revision is not None:  # the launcher's first line says where modelyard came from
        found = revisions.imported_from(out)
        if found is None or not revisions.inside(found, revision.src):
            raise ServerFailed(f"{revision.name}: modelyard imported from {found}")
        out = out.split("\n", 1)[1]
    return json.loads(out)


def prepare_modelyard(ctx: Context, revision: Revision | None = None) -> None:
    """Register ``bench`` (upstream engine → the fake upstream, alias production), a
    developer key with rate limits that never bite, and PII redaction on the route; once,
    in a template home each block copies. A revision gets a template of its own, made by
    its own CLI (its database schema may differ from the working tree's)."""
    name = "modelyard" if revision is None else revision.name
    home = ctx.work / f"{name.replace('@', '-')}-template"
    modelyard_cli(
        home,
        "models",
        "add",
        MODEL,
        "--upstream",
        ctx.upstream_v1,
        "--upstream-model",
        UPSTREAM_MODEL,
        "--alias",
        "production",
        "--reason",
        "overhead benchmark",
        revision=revision,
    )
    created = modelyard_cli(
        home,
        "keys",
        "create",
        "bench-load",
        "--role",
        "developer",
        "--rpm",
        str(HIGH_RPM),
        "--tpm",
        str(HIGH_TPM),
        revision=revision,
    )
    policy = modelyard_cli(
        home,
        "policy",
        "set",
        MODEL,
        "--pii",
        "redact",
        "--injection",
        "flag",
        "--rpm",
        str(HIGH_RPM),
        "--tpm",
        str(HIGH_TPM),
        revision=revision,
    )
    ctx.modelyard_templates[name] = (home, created["secret"])
    env = modelyard_env(home, revision)
    ctx.notes[f"{name}_setup"] = {
        "env": {k: v for k, v in env.items() if k.startswith("MODELYARD_") or k == "PYTHONPATH"},
        "key_limits": created["limits"],
        "route_policy": policy,
    }


@contextlib.contextmanager
def start_modelyard(ctx: Context, rep: int, revision: Revision | None = None) -> Iterator[Target]:
    """The working tree's modelyard (``.venv/bin/modelyard serve``, the editable install)
    or, for a revision, the same ``serve`` through the launcher with the revision's source
    first on PYTHONPATH; its log must show modelyard imported from that source."""
    name = "modelyard" if revision is None else revision.name
    template, key = ctx.modelyard_templates[name]
    home = ctx.work / f"{name.replace('@', '-')}-home-{rep}-{secrets.token_hex(3)}"
    shutil.copytree(template, home)
    port = free_port()
    serve = ["serve", "--host", "127.0.0.1", "--port", str(port)]
    argv = [str(VENV_BIN / "modelyard"), *serve]
    if revision is not None:
        argv = [PYTHON, "-P", "-c", revisions.LAUNCHER, *serve]
    with running(
        name,
        argv,
        port=port,
        ready_path="/readyz",
        logs=ctx.logs,
        core=ctx.server_core,
        env=modelyard_env(home, revision),
        timeout_s=120,
    ) as server:
        target = Target(name, server.base_url + "/v1/chat/completions", key, server)
        target.extra["home"] = home
        if revision is not None:
            found = revisions.imported_from(log_tail(server.log, 10_000))
            if found is None or not revisions.inside(found, revision.src):
                raise ServerFailed(
                    f"{name} imported modelyard from {found}, not from {revision.src}; "
                    f"see {server.log}"
                )
            target.extra["modelyard_file"] = str(found)
        yield target


def modelyard_observations(target: Target) -> dict[str, Any]:
    """After the load: the request-log writer's and guard's counters (``/metrics``, admin
    key) and modelyard's own ``overhead_ms`` from its request log."""
    home: Path = target.extra["home"]
    time.sleep(2.5)  # MODELYARD_LOG_FLUSH_INTERVAL_S is 1 s
    out: dict[str, Any] = {}
    admin = (home / "admin.key").read_text().strip()
    with contextlib.suppress(httpx.HTTPError):
        text = httpx.get(
            target.server.base_url + "/metrics",
            headers={"authorization": f"Bearer {admin}"},
            timeout=10,
        ).text
        wanted = ("modelyard_request_log_", "modelyard_pii", "modelyard_rate_limited")
        out["metrics"] = [
            line for line in text.splitlines() if line.startswith(wanted) and " " in line
        ]
    with contextlib.closing(
        sqlite3.connect(f"file:{home / 'modelyard.db'}?mode=ro", uri=True)
    ) as db:
        rows = db.execute("SELECT streamed, overhead_ms FROM request_log").fetchall()
        pii_rows = db.execute("SELECT COUNT(*) FROM request_log WHERE pii != '{}'").fetchone()[0]
    out["request_log_rows"] = len(rows)
    out["request_log_rows_with_pii"] = pii_rows
    for streamed in (False, True):
        values = sorted(o for s, o in rows if bool(s) == streamed and o is not None)
        out["stream" if streamed else "non_stream"] = {
            "logged_overhead_ms_p50": round(stats.percentile(values, 50), 3) if values else None,
            "logged_overhead_ms_p99": round(stats.percentile(values, 99), 3) if values else None,
        }
    return out


def litellm_version() -> str | None:
    python = LITELLM_VENV / "bin" / "python"
    done = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return None
    return done.stdout.strip() or None


def ensure_litellm(ctx: Context, spec: str) -> None:
    """Create ``bench/.venvs/litellm`` with ``spec`` unless it is there already; on failure
    LiteLLM is skipped, with the reason."""
    stamp = LITELLM_VENV / ".bench-spec"
    litellm = LITELLM_VENV / "bin" / "litellm"
    if stamp.exists() and stamp.read_text() == spec and litellm.exists():
        ctx.litellm_bin = litellm
        return
    log = ctx.logs / "litellm-install.log"
    console.print(f"installing {spec} into {LITELLM_VENV.relative_to(ROOT)} (log: {log}) …")
    started = time.monotonic()
    LITELLM_VENV.parent.mkdir(parents=True, exist_ok=True)
    ignore = LITELLM_VENV.parent / ".gitignore"
    if not ignore.exists():  # as `python -m venv` does from 3.13 on
        ignore.write_text("# Created by bench/overhead.py: never committed.\n*\n")
    try:
        with log.open("w") as out:
            if not (LITELLM_VENV / "bin" / "python").exists():
                subprocess.run(
                    [sys.executable, "-m", "venv", str(LITELLM_VENV)],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    check=True,
                    timeout=300,
                )
            pip = [str(LITELLM_VENV / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
            subprocess.run(
                [*pip, "install", spec],
                stdout=out,
                stderr=subprocess.STDOUT,
                check=True,
                timeout=1800,
            )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as error:
        last = [line for line in log_tail(log, 200).splitlines() if "ERROR" in line][-2:]
        ctx.skipped["litellm"] = f"pip install {spec} failed ({error}); " + " ".join(last)[:300]
        return
    stamp.write_text(spec)
    ctx.litellm_bin = litellm
    console.print(f"installed LiteLLM in {time.monotonic() - started:.0f} s")


@contextlib.contextmanager
def start_litellm(ctx: Context, rep: int) -> Iterator[Target]:
    assert ctx.litellm_bin is not None
    master = "sk-bench-" + secrets.token_hex(12)
    config = ctx.work / f"litellm-{rep}.yaml"
    config.write_text(
        "model_list:\n"
        f"  - model_name: {MODEL}\n"
        "    litellm_params:\n"
        f"      model: openai/{UPSTREAM_MODEL}\n"
        f"      api_base: {ctx.upstream_v1}\n"
        "      api_key: fake-upstream-key\n"
        "general_settings:\n"
        "  master_key: os.environ/LITELLM_MASTER_KEY\n"
    )
    port = free_port()
    argv = [str(ctx.litellm_bin), "--config", str(config), "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--num_workers", "1"]
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(LITELLM_MASTER_KEY=master, LITELLM_LOCAL_MODEL_COST_MAP="True")
    with running(
        "litellm",
        argv,
        port=port,
        ready_path="/health/liveliness",
        logs=ctx.logs,
        core=ctx.server_core,
        env=env,
        cwd=ctx.work,
        timeout_s=240,
    ) as server:
        yield Target("litellm", server.base_url + "/v1/chat/completions", master, server)


def floor_starter(
    client: str,
) -> Callable[[Context, int], contextlib.AbstractContextManager[Target]]:
    @contextlib.contextmanager
    def start(ctx: Context, rep: int) -> Iterator[Target]:
        key = "floor-" + secrets.token_hex(8)
        port = free_port()
        argv = [PYTHON, "-m", "bench.overhead_parts.floor", "--port", str(port)]
        argv += ["--upstream", ctx.upstream_v1, "--key", key, "--client", client]
        name = "floor" if client == "aiohttp" else f"floor-{client}"
        with running(
            name,
            argv,
            port=port,
            ready_path="/healthz",
            logs=ctx.logs,
            core=ctx.server_core,
            cwd=ROOT,
            timeout_s=60,
        ) as server:
            yield Target(name, server.base_url + "/v1/chat/completions", key, server)

    return start


STARTERS: dict[str, Callable[[Context, int], contextlib.AbstractContextManager[Target]]] = {
    "direct": lambda ctx, rep: start_direct(ctx),
    "modelyard": start_modelyard,
    "litellm": start_litellm,
    "floor": floor_starter("aiohttp"),
    "floor-httpx": floor_starter("httpx"),
}


def with_body(
    base: Callable[[Context, int], contextlib.AbstractContextManager[Target]], name: str
) -> Callable[[Context, int], contextlib.AbstractContextManager[Target]]:
    """A ``+tools`` or ``+padded`` target: the base target's server, sent other requests."""

    @contextlib.contextmanager
    def start(ctx: Context, rep: int) -> Iterator[Target]:
        with base(ctx, rep) as target:
            yield dataclasses.replace(target, name=name)

    return start


def starter(
    ctx: Context, name: str
) -> Callable[[Context, int], contextlib.AbstractContextManager[Target]]:
    server, body = stats.split_target(name)
    if body != "plain":
        return with_body(starter(ctx, server), name)
    if name in ctx.revisions:
        revision = ctx.revisions[name]
        return lambda ctx, rep: start_modelyard(ctx, rep, revision)
    return STARTERS[name]


# --- measuring ----------------------------------------------------------------------------


def smoke(target: Target) -> str | None:
    """One non-streaming and one streaming request; None when both answer as expected."""
    headers = {"authorization": f"Bearer {target.key}", "content-type": "application/json"}
    for stream in (False, True):
        body = request_body(MODEL, stream=stream, user=f"smoke-{target.name}-{stream}")
        try:
            response = httpx.post(target.chat_url, content=body, headers=headers, timeout=60)
        except httpx.HTTPError as error:
            return f"{'streaming' if stream else 'non-streaming'} request failed: {error!r}"
        problem = (
            f"HTTP {response.status_code}"
            if response.status_code != 200
            else check_answer(response.content, stream=stream)
        )
        if problem:
            return (
                f"{'streaming' if stream else 'non-streaming'} request: {problem}: "
                + (response.text[:300])
            )
    return None


def upstream_counters(ctx: Context) -> dict[str, int]:
    assert ctx.upstream is not None
    with contextlib.suppress(httpx.HTTPError):
        counters: dict[str, int] = httpx.get(ctx.upstream.base_url + "/stats", timeout=5).json()
        return counters
    return {}


def _cpu_s(process: psutil.Process) -> float:
    with contextlib.suppress(psutil.Error):
        times = process.cpu_times()
        return float(times.user + times.system)
    return 0.0


@dataclass(frozen=True)
class CpuReading:
    at: float
    per_cpu: Any
    server_s: float
    upstream_s: float
    helpers_s: float  # the load generator and this process
    others: dict[int, tuple[str, float]]  # every other process: command, CPU seconds


def _other_processes(ours: set[int]) -> dict[int, tuple[str, float]]:
    found = {}
    for proc in psutil.process_iter(["pid", "cmdline", "name", "cpu_times"]):
        info = proc.info
        if info["pid"] in ours or info["cpu_times"] is None:
            continue
        command = " ".join(info["cmdline"] or []) or info["name"] or "?"
        found[info["pid"]] = (command[:120], info["cpu_times"].user + info["cpu_times"].system)
    return found


def read_cpu(ctx: Context, target: Target, helpers: list[psutil.Process]) -> CpuReading:
    upstream = ctx.upstream
    separate = upstream is not None and upstream is not target.server
    ours = {p.pid for p in helpers} | target.server.pids()
    if upstream is not None:
        ours |= upstream.pids()
    return CpuReading(
        time.perf_counter(),
        psutil.cpu_times(percpu=True),
        target.server.cpu_s(),
        upstream.cpu_s() if separate and upstream is not None else 0.0,
        sum(_cpu_s(p) for p in helpers),
        _other_processes(ours),
    )


def cpu_between(first: CpuReading, second: CpuReading) -> dict[str, Any]:
    """CPU use between two readings: the server's, the upstream's, the benchmark's own
    helpers', every core's busy share, and other processes' (in cores)."""
    elapsed = second.at - first.at
    cpu = cpu_busy(first.per_cpu, second.per_cpu)
    # Every core's busy time but soft interrupts (loopback TCP, charged to no process),
    # less what the benchmark's own processes used: other work on the machine.
    machine_cores = sum(b - q for b, q in zip(cpu["busy"], cpu["softirq"], strict=True)) / 100
    server = second.server_s - first.server_s
    upstream = second.upstream_s - first.upstream_s
    helpers = second.helpers_s - first.helpers_s
    busiest = sorted(
        (
            (round((used - first.others.get(pid, ("", 0.0))[1]) / elapsed, 3), command)
            for pid, (command, used) in second.others.items()
        ),
        reverse=True,
    )
    return {
        "server_cpu_cores": round(server / elapsed, 3),
        "upstream_cpu_cores": round(upstream / elapsed, 3),
        "helpers_cpu_cores": round(helpers / elapsed, 3),
        "others_cores": round(max(0.0, machine_cores - (server + upstream + helpers) / elapsed), 3),
        # Who they were (a process started in the window counts all its CPU so far).
        "other_processes": [[cores, command] for cores, command in busiest[:3] if cores >= 0.02],
        **{f"cpu_{k}_pct": v for k, v in cpu.items()},
    }


def measure_step(
    ctx: Context, target: Target, rep: int, stream: bool, concurrency: int
) -> dict[str, Any]:
    """One step: the load generator in its own process, CPU read around the window."""
    plan = ctx.plan
    mode = "stream" if stream else "non-stream"
    out = ctx.work / f"step-{target.name}-{rep}-{mode}-{concurrency}.json"
    argv = [PYTHON, "-m", "bench.overhead_parts.loadgen", "--url", target.chat_url]
    argv += ["--key", target.key, "--model", MODEL, "--concurrency", str(concurrency)]
    argv += ["--warmup", str(plan.warmup_s), "--duration", str(plan.duration_s)]
    argv += ["--timeout", str(plan.timeout_s), "--grace", str(plan.grace_s), "--out", str(out)]
    argv += ["--user-prefix", f"{target.name}-{rep}-{mode}-{concurrency}"]
    if stream:
        argv.append("--stream")
    argv += ["--body", stats.split_target(target.name)[1]]
    upstream = ctx.upstream
    assert upstream is not None
    with (ctx.logs / "loadgen.log").open("a") as log:
        process = subprocess.Popen(
            pinned(argv, ctx.load_core), cwd=ROOT, stdout=subprocess.PIPE, stderr=log
        )
    assert process.stdout is not None
    if process.stdout.readline().strip() != b"go":
        process.wait()
        raise ServerFailed(f"the load generator failed; see {ctx.logs / 'loadgen.log'}")
    helpers = [psutil.Process(process.pid), psutil.Process()]  # load generator, this process
    time.sleep(plan.warmup_s)
    first = read_cpu(ctx, target, helpers)
    time.sleep(plan.duration_s)
    used = cpu_between(first, read_cpu(ctx, target, helpers))
    rss = target.server.rss_mib()
    process.wait(timeout=plan.grace_s + plan.timeout_s + 60)
    data = json.loads(out.read_text())
    if not ctx.keep_raw:
        out.unlink()
    result = stats.summarise(
        data["requests"],
        warmup_s=plan.warmup_s,
        duration_s=plan.duration_s,
        unfinished=data["unfinished"],
    )
    busy = used["cpu_busy_pct"]
    row = stats.step_row(
        target.name,
        rep,
        stream,
        concurrency,
        result,
        sent=data["sent"],
        **used,
        # The load generator's core was (nearly) full: the step measured the harness too.
        harness_bound=ctx.load_core is not None and busy[ctx.load_core] >= HARNESS_BUSY,
        loadgen_cpu_s=data["cpu_s"],
        server_rss_mib=rss,
    )
    if ctx.keep_raw:
        row["raw"] = data["requests"]
    return row


def run_step(
    ctx: Context, target: Target, rep: int, stream: bool, concurrency: int
) -> dict[str, Any]:
    """A step, measured again (up to twice, within the run's budget) while other processes
    used more than ``NOISY_CORES`` of the machine; the quietest attempt is kept."""
    attempts = [measure_step(ctx, target, rep, stream, concurrency)]
    while (
        attempts[-1]["others_cores"] > NOISY_CORES
        and len(attempts) <= MAX_RETRIES
        and ctx.retries_left > 0
    ):
        ctx.retries_left -= 1
        busiest = attempts[-1]["other_processes"][:1]
        console.print(
            f"  [yellow]other processes used {attempts[-1]['others_cores']:.2f} cores "
            f"{busiest}; measuring again[/yellow]"
        )
        time.sleep(RETRY_PAUSE_S)
        attempts.append(measure_step(ctx, target, rep, stream, concurrency))
    best = min(attempts, key=lambda a: a["others_cores"])
    if len(attempts) > 1:
        best["attempts"] = [
            {"rps": a["rps"], "others_cores": a["others_cores"], "p50": a["latency_ms"]["p50"]}
            for a in attempts
        ]
    return best


def run_block(ctx: Context, name: str, rep: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Start one target, measure every step of one repetition, stop it."""
    plan = ctx.plan
    rows: list[dict[str, Any]] = []
    block: dict[str, Any] = {"target": name, "rep": rep}
    with starter(ctx, name)(ctx, rep) as target:
        problem = smoke(target)
        if problem:
            raise ServerFailed(f"{name} answered the first requests wrongly: {problem}")
        time.sleep(1.0)
        block["argv"] = target.server.argv
        block["processes"] = target.server.processes()
        block["rss_mib_before"] = target.server.rss_mib()
        upstream_before = upstream_counters(ctx)
        for stream in stats.MODES:
            for concurrency in plan.concurrencies:
                row = run_step(ctx, target, rep, stream, concurrency)
                rows.append(row)
                console.print(
                    f"  {name:<11} run {rep} {'stream' if stream else 'non-stream':<10} "
                    f"{concurrency:>4} clients: {row['rps']:8.1f} rps  "
                    f"p50 {row['latency_ms']['p50']:8.2f} ms  "
                    f"p99 {row['latency_ms']['p99']:8.2f} ms"
                    f"  errors {100 * row['error_rate']:.2f}%  server CPU "
                    f"{row['server_cpu_cores']:.2f}  cores busy {row['cpu_busy_pct']}%"
                    f"  others {row['others_cores']:.2f} cores"
                )
                time.sleep(1.0 if concurrency >= 100 else 0.3)
        block["rss_mib_after"] = target.server.rss_mib()
        block["rss_mib_peak"] = max([block["rss_mib_after"], *(r["server_rss_mib"] for r in rows)])
        upstream_after = upstream_counters(ctx)
        block["upstream_received"] = {
            k: upstream_after.get(k, 0) - upstream_before.get(k, 0) for k in upstream_after
        }
        if revisions.is_modelyard(name):
            block["modelyard"] = modelyard_observations(target)
        if "modelyard_file" in target.extra:
            block["modelyard_file"] = target.extra["modelyard_file"]
    return rows, block


# --- reporting ------------------------------------------------------------------------------


def versions() -> dict[str, Any]:
    found: dict[str, Any] = {"python": platform.python_version()}
    for package in ("modelyard", "aiohttp", "uvicorn", "starlette", "fastapi", "httpx", "uvloop"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[package] = metadata.version(package)
    git = subprocess.run(
        ["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=False,
    )
    found["modelyard_git"] = git.stdout.strip() or None
    if LITELLM_VENV.exists():
        found["litellm"] = litellm_version()
    return found


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "platform": platform.platform(),
        "cpu": model,
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "load_average": os.getloadavg(),
    }


def placement(ctx: Context) -> str:
    if ctx.server_core is None:
        return "not pinned (taskset or a second core missing): every process shares every core"
    return (
        f"server under test on core {ctx.server_core}; load generator, fake upstream and "
        f"this orchestrator on core {ctx.load_core} (taskset)"
    )


def write_json(report: dict[str, Any], kind: str) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    path = RESULTS / f"overhead-{kind + '-' if kind else ''}{stamp}.json"
    path.write_text(json.dumps(report, indent=1, default=str))
    return path


# --- the two modes ----------------------------------------------------------------------------


def benchmark(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    plan = ctx.plan
    if "litellm" in plan.targets:
        ensure_litellm(ctx, args.litellm_spec)
    for name in plan.targets:
        name = stats.split_target(name)[0]
        if not revisions.is_modelyard(name) or name in ctx.modelyard_templates:
            continue
        try:
            prepare_modelyard(ctx, ctx.revisions.get(name))
        except ServerFailed as error:
            ctx.skipped[name] = str(error)[:300]
            console.print(f"[red]{name} skipped:[/red] {error}")
    steps: list[dict[str, Any]] = []
    blocks: list[dict[str, Any]] = []
    for rep in range(1, plan.reps + 1):
        order = list(plan.targets) if rep % 2 else list(reversed(plan.targets))
        for name in order:
            if name in ctx.skipped:
                continue
            console.print(f"[bold]{name}[/bold], run {rep} of {plan.reps}")
            try:
                rows, block = run_block(ctx, name, rep)
            except ServerFailed as error:
                ctx.skipped[name] = str(error).splitlines()[0][:300]
                blocks.append({"target": name, "rep": rep, "failed": str(error)})
                console.print(f"[red]{name} skipped:[/red] {error}")
                steps = [s for s in steps if s["target"] != name]
                continue
            steps += rows
            blocks.append(block)
    measured = [t for t in plan.targets if t not in ctx.skipped]
    rss: dict[str, dict[str, Any]] = {}
    for name in measured:
        mine = [b for b in blocks if b["target"] == name and "rss_mib_after" in b]
        rss[name] = {
            "before": max(b["rss_mib_before"] for b in mine),
            "after": max(b["rss_mib_after"] for b in mine),
            "peak": max(b["rss_mib_peak"] for b in mine),
            "by_rep": {b["rep"]: [b["rss_mib_before"], b["rss_mib_after"]] for b in mine},
        }
    summaries = stats.summary(steps, measured, rss)
    found = stats.verdicts(summaries, ctx.skipped)
    # --modelyard-rev: the working tree against each revision, same run.
    comparisons = {name: stats.compare(steps, summaries, name) for name in ctx.revisions}
    for baseline in ("modelyard", "modelyard+padded"):
        if "modelyard+tools" in measured and baseline in measured:
            # Issue 15: what passing tools and extra fields through adds, same run: against
            # plain requests, and against plain requests of the same size.
            comparisons[baseline] = stats.compare(steps, summaries, baseline, "modelyard+tools")
    report: dict[str, Any] = {
        "steps": steps,
        "blocks": blocks,
        "summary": summaries,
        "verdicts": [v.as_dict() for v in found],
        "_tables": (steps, measured, summaries, found, comparisons),
    }
    if comparisons:
        report["comparisons"] = {
            f"{rows[0].subject if rows else 'modelyard'} vs {name}": [c.as_dict() for c in rows]
            for name, rows in comparisons.items()
        }
    return report


def soak(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    prepare_modelyard(ctx)
    duration = float(args.soak)
    run_id = secrets.token_hex(4)
    prefix = f"soak-{run_id}"
    with start_modelyard(ctx, 1) as target:
        problem = smoke(target)
        if problem:
            raise ServerFailed(f"modelyard answered the first requests wrongly: {problem}")
        time.sleep(1.0)
        rss_idle = target.server.rss_mib()
        out = ctx.work / "soak.json"
        argv = [PYTHON, "-m", "bench.overhead_parts.loadgen", "--url", target.chat_url]
        argv += ["--key", target.key, "--model", MODEL]
        argv += ["--concurrency", str(args.soak_concurrency), "--rate", str(args.soak_rps)]
        argv += ["--warmup", "0", "--duration", str(duration), "--timeout", "30", "--grace", "15"]
        argv += ["--user-prefix", prefix, "--out", str(out)]
        with (ctx.logs / "loadgen.log").open("a") as log:
            process = subprocess.Popen(
                pinned(argv, ctx.load_core), cwd=ROOT, stdout=subprocess.PIPE, stderr=log
            )
        assert process.stdout is not None
        if process.stdout.readline().strip() != b"go":
            raise ServerFailed(f"the load generator failed; see {ctx.logs / 'loadgen.log'}")
        started = time.perf_counter()
        helpers = [psutil.Process(process.pid), psutil.Process()]
        first = last = read_cpu(ctx, target, helpers)
        samples: list[tuple[float, float]] = []
        next_report = 10.0
        while process.poll() is None:
            elapsed = time.perf_counter() - started
            if elapsed <= duration + 0.5:
                samples.append((round(elapsed, 2), target.server.rss_mib()))
                last = read_cpu(ctx, target, helpers)
            if elapsed >= next_report:
                console.print(f"  soak: {elapsed:5.0f} s, RSS {samples[-1][1]} MiB")
                next_report += 10.0
            time.sleep(1.0)
        used = cpu_between(first, last)
        data = json.loads(out.read_text())
        # Wait for the request log to flush, then compare: every request sent, exactly once.
        db = target.extra["home"] / "modelyard.db"
        check: dict[str, Any] = {}
        sent_users = [f"{prefix}-{seq}" for seq in range(data["sent"])]
        for _ in range(20):
            time.sleep(1.5)
            with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
                logged = dict(
                    conn.execute(
                        "SELECT user, COUNT(*) FROM request_log WHERE user LIKE ? GROUP BY user",
                        (prefix + "-%",),
                    ).fetchall()
                )
                statuses = dict(
                    conn.execute(
                        "SELECT status, COUNT(*) FROM request_log WHERE user LIKE ? "
                        "GROUP BY status",
                        (prefix + "-%",),
                    ).fetchall()
                )
            check = stats.log_check(sent_users, logged)
            check["logged_statuses"] = statuses
            if check["exactly_once"]:
                break
        observed = modelyard_observations(target)
    warm = [rss for t, rss in samples if t >= args.soak_warmup]
    rss_warm, rss_end = (warm[0], warm[-1]) if warm else (rss_idle, rss_idle)
    errors_all: dict[str, int] = {}
    for record in data["requests"]:
        if record[3] is not None:
            errors_all[record[3]] = errors_all.get(record[3], 0) + 1
    errors = sum(errors_all.values()) + data["unfinished"]
    result = stats.summarise(
        data["requests"], warmup_s=0.0, duration_s=duration, unfinished=data["unfinished"]
    )
    growth = 100.0 * (rss_end - rss_warm) / rss_warm if rss_warm else None
    return {
        "soak": {
            "duration_s": duration,
            "concurrency": args.soak_concurrency,
            "target_rps": args.soak_rps or None,
            "requests_sent": data["sent"],
            "requests_completed": len(data["requests"]),
            "errors": errors,
            "error_kinds": errors_all,
            "unfinished": data["unfinished"],
            "rps": result.rps,
            "latency_ms": result.latency_ms,
            **used,
            "rss_mib_idle": rss_idle,
            "rss_mib_after_warmup": rss_warm,
            "warmup_s": args.soak_warmup,
            "rss_mib_end": rss_end,
            "rss_growth_pct": round(growth, 2) if growth is not None else None,
            "rss_samples": samples,
            "request_log": check,
            "modelyard": observed,
        }
    }


def print_soak(report: dict[str, Any]) -> None:
    from rich.table import Table

    soaked = report["soak"]
    check = soaked["request_log"]
    table = Table(title=f"Soak: modelyard, {soaked['duration_s']:.0f} s", title_justify="left")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("verdict")
    load = f"{soaked['concurrency']} clients" + (
        f" at {soaked['target_rps']} rps" if soaked["target_rps"] else " (closed loop)"
    )
    table.add_row("load", load, "")
    table.add_row(
        "requests sent / completed",
        f"{soaked['requests_sent']} / {soaked['requests_completed']}",
        "",
    )
    table.add_row("throughput", f"{soaked['rps']:.1f} rps", "")
    lat = soaked["latency_ms"]
    table.add_row("latency p50 / p99", f"{lat['p50']:.2f} / {lat['p99']:.2f} ms", "")
    others = soaked["others_cores"]
    table.add_row(
        "CPU: modelyard / other processes",
        f"{soaked['server_cpu_cores']:.2f} / {others:.2f} cores",
        f"[yellow]other work shared the machine: rps and latency are low; busiest: "
        f"{soaked['other_processes'][:2]}[/yellow]"
        if others > NOISY_CORES
        else "",
    )
    table.add_row(
        "errors (incl. unfinished)",
        str(soaked["errors"]),
        "[green]target met[/green]"
        if soaked["errors"] == 0
        else f"[red]short by {soaked['errors']}[/red] {soaked['error_kinds']}",
    )
    table.add_row(
        f"RSS after {soaked['warmup_s']:.0f} s warm-up → end",
        f"{soaked['rss_mib_after_warmup']} → {soaked['rss_mib_end']} MiB",
        f"growth {soaked['rss_growth_pct']}%",
    )
    table.add_row(
        "request log: sent / logged rows / logged once",
        f"{check['sent']} / {check['logged_rows']} / {check['logged_once']}",
        "[green]every request exactly once[/green]"
        if check["exactly_once"]
        else f"[red]missing {check['missing']}, duplicated {check['duplicated']}, "
        f"unknown {check['unknown']}[/red]",
    )
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: ~3 minutes")
    parser.add_argument("--soak", type=float, metavar="SECONDS", help="modelyard-only soak")
    parser.add_argument("--soak-concurrency", type=int, default=10)
    parser.add_argument("--soak-rps", type=float, default=0.0, help="0: closed loop")
    parser.add_argument("--soak-warmup", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, nargs="+", help="override the levels")
    parser.add_argument("--reps", type=int, help="repetitions of every step")
    parser.add_argument("--warmup", type=float, help="seconds discarded at each step's start")
    parser.add_argument("--duration", type=float, help="seconds measured per step")
    parser.add_argument(
        "--targets",
        nargs="+",
        choices=[*ALL_TARGETS, *EXTRA_TARGETS],
        help="default: " + " ".join(ALL_TARGETS),
    )
    parser.add_argument("--litellm-spec", default=LITELLM_SPEC)
    parser.add_argument("--no-pin", action="store_true", help="do not use taskset")
    parser.add_argument("--raw", action="store_true", help="keep every request in the JSON")
    parser.add_argument(
        "--modelyard-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an extra MODELYARD_* setting for modelyard (repeatable; recorded in the JSON)",
    )
    parser.add_argument(
        "--modelyard-rev",
        action="append",
        default=[],
        metavar="REV",
        help="also measure modelyard served from src/ of this git revision (target "
        "modelyard@<commit>, same run, same steps) and compare the working tree with it "
        "(repeatable)",
    )
    args = parser.parse_args()
    if args.soak and args.modelyard_rev:
        parser.error("--modelyard-rev is for the benchmark, not for --soak")

    quick = args.quick
    for setting in args.modelyard_env:
        key, _, value = setting.partition("=")
        if not key.startswith("MODELYARD_") or not _:
            parser.error(f"--modelyard-env wants MODELYARD_NAME=VALUE, not {setting!r}")
        EXTRA_MODELYARD_ENV[key] = value
    targets = tuple(args.targets or ALL_TARGETS)
    if "direct" not in targets:
        targets = ("direct", *targets)
    work = Path(tempfile.mkdtemp(prefix="modelyard-overhead-"))
    found_revisions: dict[str, Revision] = {}
    for given in args.modelyard_rev:
        try:
            revision = revisions.export(ROOT, given, work)
            revisions.check_import(PYTHON, modelyard_env(work, revision), revision)
        except RevisionError as error:
            shutil.rmtree(work, ignore_errors=True)
            parser.error(str(error))
        if revision.name in found_revisions:
            console.print(f"--modelyard-rev {given} is {revision.name} again: measured once")
            continue
        found_revisions[revision.name] = revision
    targets = revisions.with_revisions(targets, list(found_revisions))
    plan = Plan(
        concurrencies=tuple(args.concurrency or ((1, 50) if quick else (1, 10, 50, 200))),
        reps=args.reps or (1 if quick else 2),
        warmup_s=args.warmup if args.warmup is not None else (1.0 if quick else 2.0),
        duration_s=args.duration or (4.0 if quick else 8.0),
        targets=targets,
    )
    ctx = Context(plan, work, work / "logs", keep_raw=args.raw, revisions=found_revisions)
    ctx.retries_left = plan.steps_per_rep * plan.reps // 4
    ctx.logs.mkdir()
    if args.no_pin or not can_pin():
        ctx.server_core = ctx.load_core = None
    else:
        os.sched_setaffinity(0, {LOAD_CORE})
    started = time.monotonic()
    console.print(f"[bold]modelyard overhead benchmark[/bold] · {placement(ctx)} · work dir {work}")
    report: dict[str, Any] = {
        "kind": "soak" if args.soak else ("quick" if quick else "full"),
        "started_at": datetime.now(UTC).isoformat(),
        "machine": machine(),
        "placement": placement(ctx),
        "load_generator": "bench/overhead_parts/loadgen.py: aiohttp client in its own process, "
        "closed loop, N connections, keep-alive; streamed answers read to [DONE]",
        "plan": {
            "concurrencies": plan.concurrencies,
            "reps": plan.reps,
            "warmup_s": plan.warmup_s,
            "duration_s": plan.duration_s,
            "targets": plan.targets,
            "request_timeout_s": plan.timeout_s,
            "aggregation": "max rps: the highest rps among a run's steps with < 1% errors, then "
            "the best run; added latency: target minus direct at 1 client in the same run, then "
            "the best run (the mean of runs is in summary too); RSS: the largest of the runs; "
            f"a step during which other processes used > {NOISY_CORES} cores is measured again "
            f"(up to {MAX_RETRIES} times, the quietest attempt kept)",
        },
        "request": json.loads(request_body(MODEL, stream=False, user="<unique per request>")),
        "work_dir": str(work),
        "versions": versions(),  # modelyard is installed editable: its code as the run starts
    }
    if found_revisions:
        report["revisions"] = {name: r.as_dict() for name, r in found_revisions.items()}
    try:
        with fake_upstream(ctx) as upstream:
            ctx.upstream = upstream
            report["upstream_rss_mib"] = upstream.rss_mib()
            if args.soak:
                report.update(soak(ctx, args))
            else:
                report.update(benchmark(ctx, args))
    finally:
        report["elapsed_s"] = round(time.monotonic() - started, 1)
    at_end = versions()
    if at_end.get("modelyard_git") != report["versions"].get("modelyard_git"):
        # Servers started after the change ran the new code (editable install).
        report["versions"]["modelyard_git_at_end"] = at_end.get("modelyard_git")
    report["versions"]["litellm"] = at_end.get("litellm")
    report["skipped"] = ctx.skipped
    report["notes"] = ctx.notes
    for block in report.get("blocks", []):
        if "modelyard_file" in block:  # where each revision's server imported modelyard from
            report["revisions"][block["target"]].setdefault(
                "modelyard_file", block["modelyard_file"]
            )
    report["machine"]["load_average_after"] = os.getloadavg()
    tables = report.pop("_tables", None)
    path = write_json(report, report["kind"] if report["kind"] != "full" else "")
    console.print()
    console.print(f"{placement(ctx)}; load: {report['load_generator']}")
    shown = {k: v for k, v in report["versions"].items() if k in ("python", "modelyard", "litellm")}
    console.print(
        f"versions: {shown}; machine: {report['machine']['cpu']}, {report['machine']['cpus']} CPUs"
    )
    if tables is not None:
        steps, measured, summaries, found, comparisons = tables
        console.print(stats.steps_table(steps, measured))
        console.print(stats.summary_table(summaries, ctx.skipped))
        console.print(stats.verdict_table(found))
        for rows in comparisons.values():
            console.print(stats.comparison_table(rows))
    else:
        print_soak(report)
    console.print(
        f"JSON: {path.relative_to(ROOT)} · {report['elapsed_s']:.0f} s · logs in {ctx.logs}"
    )


if __name__ == "__main__":
    main()
