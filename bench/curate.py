"""Curation at scale: exact and near-duplicate removal and outlier detection of 100,000
rows, and (``--full``) a whole curation of them through the store.

The rows are generated, seeded: English questions of 20 to 40 words (Faker), 8% exact
copies (case and spaces changed), 8% near copies (a word dropped and a typo), 1% outliers
(an answer 40x longer and a minute's latency), the rest distinct. The first part runs the
steps as ``Curator`` runs them (``fingerprint`` and ``NearDuplicates`` per row, then
``FeatureColumns`` and the isolation forest) and checks that the planted rows are found.
``--full`` writes the rows into a temporary SQLite request log through the request-log
writer (sealed like a server's) and runs ``Curator`` on them in a fresh process: reading in
batches, PII scrubbing, language identification, the spool and writing the version
included, with that process's peak RSS.

Target: dedup and outliers of 100,000 rows in under 60 s on 2 cores. Exits 1 when missed.

    .venv/bin/python bench/curate.py [--rows 100000] [--full] [--seed 20261204]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from faker import Faker

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from modelyard.evaluate.contamination import fingerprint  # noqa: E402
from modelyard.improve.dedup import NearDuplicates  # noqa: E402
from modelyard.improve.outliers import FeatureColumns, isolation_scores  # noqa: E402
from modelyard.improve.protocol import Dedup, Outliers  # noqa: E402

RESULTS = ROOT / "bench" / "results"
TARGET_S = 60.0


def rows(count: int, seed: int) -> list[dict[str, Any]]:
    """The rows, each with its text, answer, latency, token counts and planted kind."""
    fake, rng = Faker("en_US"), random.Random(seed)
    fake.seed_instance(seed)
    words = [fake.word() for _ in range(5000)] + [fake.last_name() for _ in range(2000)]
    out: list[dict[str, Any]] = []
    for i in range(count):
        roll = rng.random()
        if out and roll < 0.08:
            text, kind = f" {rng.choice(out)['text'].upper()}", "exact"
        elif out and roll < 0.16:
            text, kind = near_copy(rng.choice(out)["text"], rng), "near"
        else:
            text = " ".join(rng.choice(words) for _ in range(rng.randint(20, 40))) + "?"
            kind = "normal"
        outlier = kind == "normal" and roll > 0.99
        answer_words = rng.randint(20, 60) * (40 if outlier else 1)
        out.append(
            {
                "id": f"r{i}",
                "text": text,
                "answer": " ".join(rng.choice(words) for _ in range(answer_words)),
                "latency_ms": rng.uniform(60_000, 90_000)
                if outlier
                else rng.lognormvariate(6.5, 0.3),
                "kind": "outlier" if outlier else kind,
            }
        )
    return out


def near_copy(text: str, rng: random.Random) -> str:
    words = text.split()
    del words[rng.randrange(len(words))]
    i = rng.randrange(len(words))
    if len(words[i]) > 3:
        words[i] = words[i][:-2] + words[i][-1] + words[i][-2]
    return " ".join(words)


def dedup_and_outliers(data: list[dict[str, Any]]) -> dict[str, Any]:
    """The steps as the curator runs them, timed, and what they found."""
    options = Dedup()
    started = time.perf_counter()
    exact: dict[str, int] = {}
    near = NearDuplicates(options.threshold, options.num_perm)
    dropped: dict[str, str] = {}
    kept: list[int] = []
    for i, row in enumerate(data):
        print_ = fingerprint(row["text"])
        if print_ in exact:
            dropped[row["id"]] = "exact"
            continue
        signature = near.signature(row["text"])
        if near.match(signature) is not None:
            dropped[row["id"]] = "near"
            continue
        exact[print_] = len(kept)
        near.add(len(kept), signature)
        kept.append(i)
    dedup_s = time.perf_counter() - started
    started = time.perf_counter()
    features = FeatureColumns()
    for i in kept:
        row = data[i]
        tokens = (len(row["text"].split()), len(row["answer"].split()))
        features.add(row["text"], row["answer"], row["latency_ms"], tokens, "en")
    scores = isolation_scores(features, Outliers())
    outliers_s = time.perf_counter() - started
    flagged = {data[i]["id"] for i, f in zip(kept, scores.flagged, strict=True) if f}
    return {
        "dedup_s": dedup_s,
        "outliers_s": outliers_s,
        "kept": len(kept),
        "found": {
            "duplicates": recall_precision(data, ("exact", "near"), set(dropped)),
            "outliers": recall_precision(data, ("outlier",), flagged),
        },
    }


def recall_precision(
    data: list[dict[str, Any]], kinds: tuple[str, ...], found: set[str]
) -> dict[str, float]:
    """Duplicates are scored together: a copy of a copy may be found as either kind."""
    planted = {row["id"] for row in data if row["kind"] in kinds}
    hit = len(found & planted)
    return {"recall": hit / max(1, len(planted)), "precision": hit / max(1, len(found))}


def record(row: dict[str, Any], at: datetime) -> Any:
    """The request-log record of one generated row, as a server submits it."""
    from modelyard.observe.requestlog import RequestRecord

    return RequestRecord(
        id=row["id"],
        at=at,
        key_id="k",
        endpoint="chat.completions",
        route="bench",
        version="bench@1",
        status=200,
        error_code=None,
        latency_ms=row["latency_ms"],
        finish_reason="stop",
        prompt_tokens=len(row["text"].split()),
        completion_tokens=len(row["answer"].split()),
        content={
            "messages": [{"role": "user", "content": row["text"]}],
            "response": row["answer"],
        },
    )


async def write_log(data: list[dict[str, Any]], home: Path) -> Any:
    from modelyard.guard import crypto
    from modelyard.observe.requestlog import RequestLogWriter
    from modelyard.store import open_store

    store = open_store(f"sqlite:///{home / 'bench.db'}")
    cipher = crypto.load_or_create(home)
    writer = RequestLogWriter(
        store,
        seal=cipher,
        store_content=True,
        flush_interval_s=0.05,
        batch_rows=1000,
        queue_rows=len(data) + 1,
    )
    start = datetime.now(UTC) - timedelta(days=1)
    for n, row in enumerate(data):
        writer.submit(record(row, start + timedelta(milliseconds=n)))
    await writer.close()
    return store, cipher


def curate_in_child(folder: str, rows: int, out: Any) -> None:
    """The curation alone, in a fresh interpreter, so its peak RSS is its own."""
    from modelyard.guard import crypto
    from modelyard.improve.curate import Curator
    from modelyard.improve.protocol import CurateRequest
    from modelyard.store import open_store

    store = open_store(f"sqlite:///{Path(folder) / 'bench.db'}")
    cipher = crypto.load_or_create(Path(folder))
    started = time.perf_counter()
    body = CurateRequest(name="bench", log={"limit": rows})
    report = Curator(store, body, open_content=cipher.open, actor="bench").run().out.report
    out.put((time.perf_counter() - started, report.kept, report.dropped_by))
    store.close()


def full(data: list[dict[str, Any]]) -> dict[str, Any]:
    import multiprocessing

    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        store, _ = asyncio.run(write_log(data, Path(folder)))
        store.close()
        write_s = time.perf_counter() - started
        context = multiprocessing.get_context("spawn")
        out = context.Queue()
        child = context.Process(target=curate_in_child, args=(folder, len(data), out))
        child.start()
        curate_s, kept, dropped_by = out.get()
        child.join()
    return {
        "write_s": write_s,
        "curate_s": curate_s,
        "kept": kept,
        "dropped_by": dropped_by,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=20261204)
    parser.add_argument("--full", action="store_true", help="Also a whole curation via the store.")
    args = parser.parse_args()
    started = time.perf_counter()
    data = rows(args.rows, args.seed)
    generate_s = time.perf_counter() - started
    result: dict[str, Any] = {
        "rows": args.rows,
        "generate_s": generate_s,
        **dedup_and_outliers(data),
        "peak_rss_mib": peak_rss_mib(),
    }
    result["total_s"] = result["dedup_s"] + result["outliers_s"]
    if args.full:
        result["full"] = full(data)
    result["target_met"] = result["total_s"] < TARGET_S
    show(result)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    path = RESULTS / f"curate-{stamp}.json"
    meta = {"at": stamp, "machine": platform.machine(), "python": platform.python_version()}
    path.write_text(json.dumps({**meta, **result}, indent=2), encoding="utf-8")
    print(f"wrote {path.relative_to(ROOT)}")
    return 0 if result["target_met"] else 1


def show(result: dict[str, Any]) -> None:
    steps = (
        ("exact + near duplicates", "dedup_s"),
        ("outliers (features + forest)", "outliers_s"),
        ("total", "total_s"),
    )
    print(f"{'step':<32} {'seconds':>9} {'rows/s':>10}")
    for name, key in steps:
        seconds = result[key]
        print(f"{name:<32} {seconds:>9.2f} {result['rows'] / seconds:>10.0f}")
    print(f"kept {result['kept']} of {result['rows']}; peak RSS {result['peak_rss_mib']:.0f} MiB")
    for kind, found in result["found"].items():
        print(f"  {kind:<10} recall {found['recall']:.3f} precision {found['precision']:.3f}")
    if "full" in result:
        f = result["full"]
        print(
            f"full curation through the store: write {f['write_s']:.1f} s, curate "
            f"{f['curate_s']:.1f} s, kept {f['kept']}; the curating process's peak RSS "
            f"{f['peak_rss_mib']:.0f} MiB"
        )
    verdict = "met" if result["target_met"] else "MISSED"
    print(f"target: dedup + outliers under {TARGET_S:.0f} s: {verdict}")


if __name__ == "__main__":
    sys.exit(main())
