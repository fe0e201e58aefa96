"""The request log's journal: what appending a row costs the event loop.

    .venv/bin/python bench/journal.py [--rounds 5] [--rows 20000]

``RequestLogWriter.submit`` is the request path's only contact with the log. With the
journal (the default) it also serialises the row, seals its content (AES-GCM) and writes it
to a segment file; without it, it only queues the row. Both arms submit the same rows
(a chat request with a system message, a question and an answer: the content a gateway
logs), alternating round by round so the shared machine slows each alike; CPU time of
this process per row (``time.process_time``), so other processes' load counts less.
No store is written: the writer task does not run, as between two flushes.

Prints a table and writes ``bench/results/journal-<time>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from modelyard.guard.crypto import ContentCipher
from modelyard.observe.journal import RequestJournal
from modelyard.observe.requestlog import RequestLogWriter, RequestRecord
from modelyard.store import open_store

RESULTS = Path(__file__).parent / "results"
SYSTEM = "You are a helpful assistant for a bank. Answer briefly and politely. " * 3


def record(i: int) -> RequestRecord:
    return RequestRecord(
        id=f"req-{i}",
        at=datetime.now(UTC),
        key_id="k1",
        endpoint="chat.completions",
        route="bot",
        version="bot@1",
        status=200,
        error_code=None,
        latency_ms=12.5,
        ttft_ms=3.1,
        prompt_tokens=48,
        completion_tokens=24,
        streamed=i % 2 == 0,
        user=f"user-{i % 50}",
        content={
            "messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": f"How do I activate card number {i}?"},
            ],
            "response": "Open the app, choose Cards, then Activate, and follow the steps.",
            "finish_reason": "stop",
        },
    )


def per_row_us(writer: RequestLogWriter, rows: list[RequestRecord]) -> float:
    started = time.process_time()
    for row in rows:
        writer.submit(row)
    return (time.process_time() - started) / len(rows) * 1e6


async def measure(rounds: int, rows: int, work: Path) -> dict[str, list[float]]:
    cipher = ContentCipher(primary="k1", keys={"k1": os.urandom(32)})
    store = open_store(f"sqlite:///{work / 'bench.db'}")
    found: dict[str, list[float]] = {"no journal": [], "journal": []}
    try:
        for index in range(rounds):
            arms = list(found) if index % 2 == 0 else list(reversed(found))
            for arm in arms:
                journal = None
                if arm == "journal":
                    journal = RequestJournal(
                        work / f"journal-{index}", seal=cipher.seal, segment_rows=5_000
                    )
                writer = RequestLogWriter(
                    store,
                    seal=cipher,
                    store_content=True,
                    flush_interval_s=1.0,
                    batch_rows=500,
                    queue_rows=rows + 1,
                    journal=journal,
                )
                found[arm].append(per_row_us(writer, [record(i) for i in range(rows)]))
                if journal is not None:
                    journal.close()
    finally:
        store.close()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rows", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        found = asyncio.run(measure(args.rounds, args.rows, Path(work)))
    medians = {arm: statistics.median(values) for arm, values in found.items()}
    table = Table(title=f"submit() CPU per row, median of {args.rounds} rounds of {args.rows}")
    for column in ("arm", "µs per row", "rounds"):
        table.add_column(column)
    for arm, values in found.items():
        table.add_row(arm, f"{medians[arm]:.1f}", ", ".join(f"{v:.1f}" for v in values))
    added = medians["journal"] - medians["no journal"]
    table.add_row("journal's cost", f"+{added:.1f}", "")
    Console().print(table)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"journal-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps({"rounds": found, "median_us": medians, "added_us": added}))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
