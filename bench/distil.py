"""Distilling banking77 into a student, and its latency against the embedded LLM's.

A real ``modelyard serve`` (SmolLM2-135M on llama.cpp as model ``default``, all-MiniLM-L6-v2
as ``default-embedding``) in a temporary home. Banking77 (../shared/datasets, PolyAI,
CC BY 4.0) in a seeded order, 2,000 texts train and 1,080 test, is labelled through the
API by a scripted teacher (model ``intents`` version 1) that gives the true intent except
for a known 10 %; ``POST /api/distil`` trains a student on the train split and registers it
as ``intents`` version 2. Then the same prompts (the labelling prompt: the 77 intents in the
system message, a test text as the user message, temperature 0, max_tokens 16) go to the
student and to the LLM one at a time over HTTP, and each one's latency is timed at the
client.

Targets: the student's accuracy on the 1,080 held-out texts (against the true intents) at
least 0.80, and its p50 latency under 1/20 of the LLM's. Exits 1 when one is missed.

    .venv/bin/python bench/distil.py [--prompts 100]
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from tests.live import live_server  # noqa: E402

from modelyard.config import Settings  # noqa: E402
from modelyard.evaluate.datasets import DatasetService  # noqa: E402
from modelyard.improve.distil.prompts import DEFAULT_SYSTEM, LabelPrompt  # noqa: E402
from modelyard.registry import Registry  # noqa: E402
from modelyard.registry.protocol import VersionCreate  # noqa: E402
from modelyard.store import open_store  # noqa: E402

CSV = ROOT.parent / "shared" / "datasets" / "banking77_test.csv"
RESULTS = ROOT / "bench" / "results"
TRAIN, WRONG_SHARE = 2000, 0.10
TARGET_ACCURACY, TARGET_RATIO = 0.80, 1 / 20


def banking77() -> list[dict[str, Any]]:
    with CSV.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    random.Random(77).shuffle(rows)  # the file is sorted by intent
    return [
        {"text": r["text"], "category": r["category"], "split": "train" if i < TRAIN else "test"}
        for i, r in enumerate(rows)
    ]


def teacher_answers(items: list[dict[str, Any]]) -> dict[str, str]:
    rng = random.Random(10)
    intents = sorted({item["category"] for item in items})
    answers = {}
    for item in items:
        wrong = rng.random() < WRONG_SHARE
        others = [i for i in intents if i != item["category"]]
        answers[item["text"]] = rng.choice(others) if wrong else item["category"]
    return answers


def prepare(home: Path, items: list[dict[str, Any]]) -> None:
    store = open_store(Settings(home=home).store_url)
    try:
        registry = Registry(store)
        version = registry.add_version(
            "intents",
            VersionCreate(
                engine_kind="scripted",
                artifact_uri="scripted:",
                parameters={"replies_by_message": teacher_answers(items)},
                notes="the teacher: true intents but for 10 %",
            ),
            actor="bench",
        )
        registry.set_alias("intents", "production", version.number, actor="bench")
        DatasetService(store).register_items("banking77", items, {"kind": "file"}, "bench")
    finally:
        store.close()


def until_done(client: httpx.Client, url: str, timeout_s: float = 1800) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get(url).json()
        if body["status"] != "running":
            return body
        time.sleep(0.5)
    raise TimeoutError(f"{url} still running after {timeout_s} s")


def timed(client: httpx.Client, model: str, messages: list[dict[str, str]]) -> tuple[float, str]:
    body = {"model": model, "messages": messages, "temperature": 0, "max_tokens": 16}
    started = time.perf_counter()
    response = client.post("/v1/chat/completions", json=body)
    elapsed_ms = (time.perf_counter() - started) * 1000
    response.raise_for_status()
    return elapsed_ms, (response.json()["choices"][0]["message"]["content"] or "").strip()


def latencies(
    client: httpx.Client, model: str, prompts: list[list[dict[str, str]]], truth: list[str]
) -> dict[str, Any]:
    for messages in prompts[:3]:  # warm-up: the engine loads, caches fill
        timed(client, model, messages)
    times, right = [], 0
    for messages, expected in zip(prompts, truth, strict=True):
        elapsed, answer = timed(client, model, messages)
        times.append(elapsed)
        right += answer == expected
    times.sort()
    return {
        "p50_ms": statistics.median(times),
        "p95_ms": times[int(0.95 * (len(times) - 1))],
        "mean_ms": statistics.fmean(times),
        "accuracy_on_prompts": right / len(prompts),
    }


def distil(client: httpx.Client) -> dict[str, Any]:
    started = time.perf_counter()
    body = {"dataset": "banking77", "teacher": "intents", "labels_from": "category"}
    run = client.post("/api/label", json={**body, "concurrency": 8}).json()
    run = until_done(client, f"/api/label/{run['id']}")
    labelling_s = time.perf_counter() - started
    started = time.perf_counter()
    body = {"dataset": run["result"], "model": "intents", "gold_field": "category"}
    out = client.post("/api/distil", json=body).json()
    out = until_done(client, f"/api/distil/{out['id']}")
    if out["status"] != "done":
        raise RuntimeError(f"the distillation failed: {out['message']}")
    return {
        "label_run": {"id": run["id"], "counts": run["counts"], "seconds": labelling_s},
        "distillation": {
            "id": out["id"],
            "version": f"intents@{out['version']}",
            "metrics": out["metrics"],
            "seconds": time.perf_counter() - started,
        },
        "labels": run["labels"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=100, help="Prompts timed per model.")
    args = parser.parse_args()
    items = banking77()
    tests = [item for item in items if item["split"] == "test"]
    sample = random.Random(5).sample(tests, args.prompts)
    with tempfile.TemporaryDirectory() as directory:
        home = Path(directory)
        prepare(home, items)
        env = {"MODELYARD_DEFAULT_MODEL": "smollm2", "MODELYARD_DEFAULT_EMBEDDING_MODEL": "minilm"}
        with live_server(home, timeout_s=300, **env) as base:
            client = httpx.Client(base_url=base, headers=base.headers, timeout=600)
            result = distil(client)
            prompt = LabelPrompt(DEFAULT_SYSTEM, "{{ input }}", tuple(result.pop("labels")), "text")
            prompts = [prompt.messages(item) for item in sample]
            truth = [item["category"] for item in sample]
            result["student"] = latencies(client, result["distillation"]["version"], prompts, truth)
            result["llm"] = latencies(client, "default", prompts, truth)
    report(result, args.prompts)


def report(result: dict[str, Any], prompts: int) -> None:
    metrics = result["distillation"]["metrics"]
    student, llm = result["student"], result["llm"]
    ratio = student["p50_ms"] / llm["p50_ms"]
    met = metrics["gold_accuracy"] >= TARGET_ACCURACY and ratio < TARGET_RATIO
    result.update(
        prompts=prompts,
        p50_ratio=ratio,
        targets={"accuracy": TARGET_ACCURACY, "p50_ratio_below": TARGET_RATIO},
        met=met,
    )
    print("banking77: 2,000 train / 1,080 held out, teacher 10 % wrong")
    print(f"labelling 3,080 texts through the API: {result['label_run']['seconds']:.1f} s")
    print(
        f"distillation: {result['distillation']['seconds']:.1f} s (embedding "
        f"{metrics['embedding_s']:.1f} s, training {metrics['training_s']:.2f} s)"
    )
    print(
        f"held-out accuracy: {metrics['gold_accuracy']:.3f} against the true intents, "
        f"{metrics['holdout_accuracy']:.3f} against the teacher's labels"
    )
    print(f"\n{prompts} prompts, one at a time over HTTP")
    print(f"{'':10}{'p50 ms':>10}{'p95 ms':>10}{'mean ms':>10}{'accuracy':>10}")
    for name, row in (("student", student), ("LLM", llm)):
        print(
            f"{name:10}{row['p50_ms']:>10.1f}{row['p95_ms']:>10.1f}{row['mean_ms']:>10.1f}"
            f"{row['accuracy_on_prompts']:>10.3f}"
        )
    verdict = "met" if met else "NOT met"
    print(f"student p50 / LLM p50 = {ratio:.4f} (target < {TARGET_RATIO:.3f}); targets {verdict}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    path = RESULTS / f"distil-{stamp}.json"
    meta = {"at": stamp, "machine": platform.machine(), "python": platform.python_version()}
    path.write_text(json.dumps({**meta, **result}, indent=2), encoding="utf-8")
    print(f"wrote {path.relative_to(ROOT)}")
    if not met:
        sys.exit(1)


if __name__ == "__main__":
    main()
