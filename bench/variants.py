"""The variant tables of docs/compress.md: the packaged SmolLM2-135M-Instruct (Q4_1) and
all-MiniLM-L6-v2, compressed with `modelyard compress` in a fresh home, every row measured
beside its parent in the same run.

- Chat model: `--to Q8_0,Q5_K_M,Q4_K_M,Q4_0,Q3_K_M,Q2_K` (the defaults), perplexity on 200
  banking77 texts (every 15th row of ../shared/datasets/banking77_test.csv), decode tokens/s
  at 1 and 8 streams, and an eval task scored on each row and paired with the parent's
  answers: the 104 verses of ../shared/datasets/poem_sentiment_test.tsv, the model asked
  whether each is positive, negative or neutral (exact_match of the first of those words
  it says; SmolLM2-135M can answer this much, where it cannot pick one of 77 intents).
- Embedding model: `--to int8`, agreement and 5-fold classification accuracy on all 3,080
  banking77 texts with their 77 intents.

Each step is the CLI a user runs (`modelyard datasets add`, `models add`, `compress`); the
tables are the JSON it prints. Markdown goes to stdout, the JSON to
bench/results/variants.json. Exits 1 when a compression fails.

    .venv/bin/python bench/variants.py [--to Q8_0,Q4_K_M,Q2_K] [--texts 200]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from modelyard.bootstrap import minilm_dir, smollm2_path  # noqa: E402

DATASETS = ROOT.parent / "shared" / "datasets"
BANKING77 = DATASETS / "banking77_test.csv"
RESULTS = ROOT / "bench" / "results"
CLI = [str(ROOT / ".venv" / "bin" / "modelyard")]
DEFAULT_TO = "Q8_0,Q5_K_M,Q4_K_M,Q4_0,Q3_K_M,Q2_K"
POEMS = DATASETS / "poem_sentiment_test.tsv"
SENTIMENT = {"-1": "negative", "0": "neutral", "1": "positive"}
TASK = """
name: poem-sentiment
dataset: {registered: poems}
prompt:
  template: >-
    Is the feeling of this line of poetry positive, negative or neutral?
    Answer with one word: {{ text }}
target: sentiment
filters: [lower, {regex: "(positive|negative|neutral)"}]
metrics: [{name: exact_match}]
generation: {temperature: 0, max_tokens: 8}
"""


def run(args: list[str], home: Path) -> str:
    env = {**os.environ, "MODELYARD_HOME": str(home), "COLUMNS": "200"}
    done = subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, check=False)
    if done.returncode not in (0,):
        raise SystemExit(f"`modelyard {' '.join(args)}` failed: {done.stderr or done.stdout}")
    return done.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--to", default=DEFAULT_TO)
    parser.add_argument("--texts", type=int, default=200)
    options = parser.parse_args()
    with BANKING77.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    with tempfile.TemporaryDirectory(prefix="modelyard-variants-") as directory:
        home, work = Path(directory) / "home", Path(directory)
        texts = work / "texts.jsonl"
        texts.write_text("".join(json.dumps({"text": r["text"]}) + "\n" for r in rows[::15]))
        poems = work / "poems.jsonl"
        with POEMS.open(encoding="utf-8") as handle:
            verses = [line.rstrip("\n").split("\t") for line in handle if line.strip()]
        poems.write_text(
            "".join(
                json.dumps({"text": text, "sentiment": SENTIMENT[label]}) + "\n"
                for _, text, label in verses
            )
        )
        task = work / "task.yaml"
        task.write_text(TASK)
        run(["datasets", "add", "poems", str(poems)], home)
        run(["datasets", "add", "banking77", str(BANKING77)], home)
        run(
            ["models", "add", "smollm2", "--engine", "llamacpp", "--artifact", str(smollm2_path())],
            home,
        )
        run(
            [
                "models",
                "add",
                "minilm",
                "--task",
                "embedding",
                "--engine",
                "sentence-transformers",
                "--artifact",
                str(minilm_dir()),
            ],
            home,
        )
        chat = json.loads(
            run(
                [
                    "compress",
                    "smollm2@1",
                    "--to",
                    options.to,
                    "--texts-file",
                    str(texts),
                    "--limit",
                    str(options.texts),
                    "--eval-task",
                    str(task),
                    "--json",
                ],
                home,
            )
        )
        embedding = json.loads(
            run(
                [
                    "compress",
                    "minilm@1",
                    "--to",
                    "int8",
                    "--texts",
                    "banking77",
                    "--label-field",
                    "category",
                    "--limit",
                    "5000",
                    "--json",
                ],
                home,
            )
        )
    failed = [out["id"] for out in (chat, embedding) if out["status"] != "done"]
    print(chat_table(chat))
    print()
    print(embedding_table(embedding))
    RESULTS.mkdir(parents=True, exist_ok=True)
    target = RESULTS / "variants.json"
    target.write_text(
        json.dumps(
            {
                "when": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "load_average": os.getloadavg(),
                "chat": chat,
                "embedding": embedding,
            },
            indent=1,
        )
    )
    print(f"\nJSON: {target.relative_to(ROOT)}", file=sys.stderr)
    if failed:
        print(f"compressions {failed} failed", file=sys.stderr)
        return 1
    return 0


def chat_table(out: dict[str, Any]) -> str:
    lines = [
        "| version | type | size MB | load s | RSS MB | tok/s @1 | tok/s @8 (all) | "
        "perplexity | vs parent, paired (95 % CI) | eval accuracy | eval vs parent | front |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in out["variants"]:
        m = row["measurements"]
        nll = row["comparison"].get("nll_per_token")
        versus = "—"
        if nll:
            low, high = (math.exp(nll[k]) for k in ("ci_low", "ci_high"))
            versus = f"x{nll['perplexity_ratio']:.3f} [{low:.3f}, {high:.3f}]"
        paired = row["comparison"].get("eval", {}).get("differences", {}).get("exact_match")
        eval_versus = "—"
        if paired:
            eval_versus = (
                f"{paired['difference']:+.3f} [{paired['ci_low']:+.3f}, {paired['ci_high']:+.3f}]"
            )
        name = f"{row['version']}" + (" (parent)" if row["role"] == "parent" else "")
        lines.append(
            f"| {name} | {row['method']} | {m['size_mb']:.1f} | {m['load_s']:.2f} | "
            f"{m['rss_mb']:.0f} | {m['tokens_per_s_1']:.1f} | {m['tokens_per_s_8']:.1f} "
            f"({m['aggregate_tokens_per_s_8']:.0f}) | {m['perplexity']:.1f} | {versus} | "
            f"{m.get('eval_exact_match', float('nan')):.3f} | {eval_versus} | "
            f"{'yes' if row['pareto'] else ''} |"
        )
    return "\n".join(lines)


def embedding_table(out: dict[str, Any]) -> str:
    lines = [
        "| version | precision | graph MB | load s | RSS MB | texts/s | cosine mean / min | "
        "5-fold accuracy | vs parent, paired (95 % CI) | McNemar p | front |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in out["variants"]:
        m = row["measurements"]
        accuracy = row["comparison"].get("accuracy")
        versus, p = "—", "—"
        if accuracy:
            versus = (
                f"{accuracy['difference']:+.4f} [{accuracy['ci_low']:+.4f}, "
                f"{accuracy['ci_high']:+.4f}]"
            )
            p = f"{accuracy['mcnemar_p']:.3f}"
        name = f"{row['version']}" + (" (parent)" if row["role"] == "parent" else "")
        lines.append(
            f"| {name} | {row['method']} | {m['size_mb']:.1f} | {m['load_s']:.2f} | "
            f"{m['rss_mb']:.0f} | {m['texts_per_s']:.0f} | {m['cosine_mean']:.4f} / "
            f"{m['cosine_min']:.4f} | {m['accuracy']:.4f} | {versus} | {p} | "
            f"{'yes' if row['pareto'] else ''} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
