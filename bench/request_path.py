"""CPU per chat completion on modelyard's request path, without HTTP noise.

``bench/overhead.py`` measures throughput over real sockets, where a run-to-run spread of
±3-7 % hides changes of a few percent. This benchmark isolates the server's own work: each
source (the working tree, and each ``--rev``) runs in a child process that builds the app
with ``build_app`` and calls it as an ASGI application, ``--concurrency`` requests at a
time, against the same fake upstream (over a real socket, in its own process). What the
child process spends in CPU, all its threads included (the request-log writer too), over
``--requests`` requests is the figure; rounds alternate the sources so the machine's drift
falls on all of them alike, and the best round counts.

    python -m bench.request_path --rev 7ad487d [--stream] [--tools] [--concurrency 50]

It prints a table (µs of CPU per request, and the ratio to the first ``--rev``) and writes
``bench/results/request-path-<time>.json``. The setup is ``bench/overhead.py``'s: key with
rate limits, PII redaction, the injection flag, the request log with content.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import overhead
from bench.overhead_parts import loadgen, revisions
from bench.overhead_parts.servers import free_port, running

RESULTS = Path(__file__).resolve().parent / "results"
CHILD = "--child"


async def _drive(args: argparse.Namespace) -> dict[str, Any]:
    """In the child: the app, its lifespan, and the requests."""
    from modelyard.app import build_app

    app = build_app()
    headers = [
        (b"host", b"bench"),
        (b"authorization", f"Bearer {args.key}".encode()),
        (b"content-type", b"application/json"),
    ]
    counter = {"seq": 0, "bad": 0}

    async def one() -> None:
        seq = counter["seq"]
        counter["seq"] += 1
        body = loadgen.request_body(
            overhead.MODEL,
            stream=args.stream,
            user=f"u-{seq}",
            kind="tools" if args.tools else "plain",
        )
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/v1/chat/completions",
            "raw_path": b"/v1/chat/completions",
            "query_string": b"",
            "root_path": "",
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        sent = False
        done = asyncio.Event()
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    done.set()

        await app(scope, receive, send)
        if loadgen.check_answer(b"".join(chunks), stream=args.stream) is not None:
            counter["bad"] += 1

    async def batch(count: int) -> None:
        queue = iter(range(count))

        async def worker() -> None:
            for _ in queue:
                await one()

        await asyncio.gather(*(worker() for _ in range(args.concurrency)))

    collected = _GcTimes()
    async with app.router.lifespan_context(app):
        if args.gc_threshold:
            gc.set_threshold(args.gc_threshold, *gc.get_threshold()[1:])
        await batch(args.warmup)
        await asyncio.sleep(1.5)  # the warm-up's log rows written
        gc.callbacks.append(collected)
        cpu, wall = time.process_time(), time.perf_counter()
        profile = cProfile.Profile() if args.profile else None
        if profile is not None:
            profile.enable()
        await batch(args.requests)
        if profile is not None:
            profile.disable()
            profile.dump_stats(args.profile)
        await asyncio.sleep(1.5)  # the writer's flush of the measured rows (idle costs ~0)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall - 1.5
        gc.callbacks.remove(collected)
    return {
        "cpu_us_per_request": round(cpu / args.requests * 1e6, 1),
        "gc_us_per_request": round(collected.seconds / args.requests * 1e6, 1),
        "gc_collections": collected.counts,
        "gc_longest_ms": round(collected.longest * 1000, 2),
        "wall_rps": round(args.requests / wall, 1),
        "bad": counter["bad"],
    }


class _GcTimes:
    """The cyclic collector's passes while measuring: time, count per generation, longest."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.longest = 0.0
        self.counts = [0, 0, 0]
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        took = time.perf_counter() - self._started
        self.seconds += took
        self.longest = max(self.longest, took)
        self.counts[info["generation"]] += 1


def _child(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--key", required=True)
    parser.add_argument("--requests", type=int, required=True)
    parser.add_argument("--warmup", type=int, required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--tools", action="store_true")
    parser.add_argument("--profile", help="write the measured requests' cProfile here")
    parser.add_argument("--gc-threshold", type=int, default=0)
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(_drive(args))), flush=True)


def _measure(ctx: overhead.Context, name: str, args: argparse.Namespace, rep: int) -> Any:
    template, key = ctx.modelyard_templates[name]
    home = ctx.work / f"{name.replace('@', '-')}-{rep}"
    subprocess.run(["cp", "-r", str(template), str(home)], check=True)
    revision = ctx.revisions.get(name)
    env = overhead.modelyard_env(home, revision)
    command = [overhead.PYTHON, "-P", "-m", "bench.request_path", CHILD, "--key", key]
    command += ["--requests", str(args.requests), "--warmup", str(args.warmup)]
    command += ["--concurrency", str(args.concurrency)]
    command += ["--stream"] * args.stream + ["--tools"] * args.tools
    if args.profile:
        command += ["--profile", f"{args.profile}.{name}.{rep}"]
    if args.gc_threshold:
        command += ["--gc-threshold", str(args.gc_threshold)]
    if ctx.server_core is not None:
        command = ["taskset", "-c", str(ctx.server_core), *command]
    first = [] if revision is None else [str(revision.src)]
    env["PYTHONPATH"] = os.pathsep.join([*first, str(overhead.ROOT)])
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=overhead.ROOT)
    if done.returncode != 0:
        raise SystemExit(f"{name} failed:\n{done.stdout}\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == CHILD:
        _child(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rev", action="append", default=[], help="a git revision to compare")
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--tools", action="store_true")
    parser.add_argument("--profile", help="cProfile each child to PROFILE.<source>.<round>")
    parser.add_argument(
        "--gc-threshold", type=int, default=0, help="the collector's first threshold, if set"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="request-path-") as tmp:
        work = Path(tmp)
        plan = overhead.Plan((args.concurrency,), args.rounds, 0.0, 0.0, ("modelyard",))
        ctx = overhead.Context(plan=plan, work=work, logs=work / "logs")
        if not overhead.can_pin():
            ctx.server_core = ctx.load_core = None
        for given in args.rev:
            revision = revisions.export(overhead.ROOT, given, work)
            ctx.revisions[revision.name] = revision
        names = [*ctx.revisions, "modelyard"]
        port = free_port()
        argv = [overhead.PYTHON, "-m", "bench.overhead_parts.upstream", "--port", str(port)]
        with running(
            "upstream",
            argv,
            port=port,
            ready_path="/v1/models",
            logs=ctx.logs,
            core=ctx.load_core,
            cwd=overhead.ROOT,
            timeout_s=30,
        ) as upstream:
            ctx.upstream = upstream
            for name in names:
                overhead.prepare_modelyard(ctx, ctx.revisions.get(name))
            rounds: dict[str, list[Any]] = {name: [] for name in names}
            for rep in range(args.rounds):
                for name in names:
                    rounds[name].append(_measure(ctx, name, args, rep))
                    print(f"round {rep + 1} {name}: {rounds[name][-1]}", flush=True)
    _report(args, names, rounds)


def _report(args: argparse.Namespace, names: list[str], rounds: dict[str, list[Any]]) -> None:
    best = {name: min(r["cpu_us_per_request"] for r in rounds[name]) for name in names}
    base = best[names[0]]
    print(
        f"\nCPU per request, best of {args.rounds} rounds (stream={args.stream}, "
        f"tools={args.tools}, concurrency={args.concurrency})"
    )
    print(f"{'source':<22}{'µs/request':>12}{'ratio':>8}  rounds")
    for name in names:
        each = ", ".join(str(r["cpu_us_per_request"]) for r in rounds[name])
        print(f"{name:<22}{best[name]:>12.1f}{best[name] / base:>8.3f}  {each}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"request-path-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"args": vars(args), "rounds": rounds, "best": best}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
