"""Live judging (issue 20) on real questions: does the judge's score separate right answers
from wrong ones, and what does a judge call cost here?

    .venv/bin/python bench/live_judge.py [--questions 100] [--judge default]

NQ-open's dev questions (google-research-datasets/natural-questions, CC BY-SA 3.0; read
from ``../shared/datasets``). Each question is judged twice through the live judge's own
path (``serving.judging.judge_call``: routing, the engine, the request log), with the eval
judges' rubric prompt: once with its first accepted answer (right) and once with another
question's (wrong). Reported: the share of replies that held a score, the mean quality of
right and wrong answers, the AUC of quality for right against wrong (0.5: no better than a
coin; ties count half), and the judge call's latency. The default judge is the default
chat model (SmolLM2-135M-Instruct on llama.cpp), which the check does not expect to judge
well: the figure says what a tiny judge gives, and a real judge is a larger route.

Prints a table and writes ``bench/results/live-judge-<time>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from modelyard.app import build_app  # noqa: E402
from modelyard.config import Settings  # noqa: E402
from modelyard.evaluate.judges import rubric_prompt, rubric_score  # noqa: E402
from modelyard.observe.quality.worker import Sample, Verdict  # noqa: E402
from modelyard.routing.protocol import LiveJudging  # noqa: E402
from modelyard.serving.judging import judge_call  # noqa: E402

NQ_OPEN = ROOT.parent / "shared" / "datasets" / "nq_open_dev.jsonl"
RUBRIC = "Is the answer a correct answer to the question? 5: correct, 1: wrong."


def pairs(count: int, seed: int = 0) -> list[tuple[str, str, bool]]:
    """(question, answer, right) for ``count`` questions, each with a right and a wrong answer."""
    rows = [json.loads(line) for line in NQ_OPEN.read_text(encoding="utf-8").splitlines()]
    rng = random.Random(seed)
    chosen = rng.sample(rows, count)
    out: list[tuple[str, str, bool]] = []
    for index, row in enumerate(chosen):
        other = chosen[(index + 1) % count]
        out.append((row["question"], row["answer"][0], True))
        out.append((row["question"], other["answer"][0], False))
    rng.shuffle(out)
    return out


def auc(right: list[float], wrong: list[float]) -> float | None:
    """P(a right answer's quality > a wrong one's), ties half (Mann-Whitney)."""
    if not right or not wrong:
        return None
    wins = sum((r > w) + 0.5 * (r == w) for r in right for w in wrong)
    return wins / (len(right) * len(wrong))


async def judged(judge: str, items: list[tuple[str, str, bool]]) -> list[tuple[bool, Verdict]]:
    home = Path(tempfile.mkdtemp(prefix="modelyard-live-judge-bench-"))
    settings = Settings(home=home, default_embedding_model="none")
    app = build_app(settings)
    setting = LiveJudging(judge=judge, share=1.0, rubric=RUBRIC, max_per_minute=100_000)
    out: list[tuple[bool, Verdict]] = []
    async with app.router.lifespan_context(app):
        call = judge_call(app.state.services)
        for index, (question, answer, right) in enumerate(items):
            sample = Sample(
                f"bench{index}", "bench", None, "bench", "bench@1", None, question, answer, setting
            )
            prompt = rubric_prompt(f"user: {question}", answer, RUBRIC, setting.scale)
            out.append((right, await call(sample, prompt)))
    return out


def report(results: list[tuple[bool, Verdict]], judge: str) -> dict[str, Any]:
    scale = (1, 5)
    quality: dict[bool, list[float]] = {True: [], False: []}
    scored = 0
    for right, verdict in results:
        score = None if verdict.reply is None else rubric_score(verdict.reply, scale)
        if score is not None:
            scored += 1
            quality[right].append((score - 1) / 4)
    latencies = sorted(v.latency_s * 1000 for _, v in results)
    return {
        "judge": judge,
        "calls": len(results),
        "scored_share": scored / len(results),
        "mean_quality_right": statistics.fmean(quality[True]) if quality[True] else None,
        "mean_quality_wrong": statistics.fmean(quality[False]) if quality[False] else None,
        "auc": auc(quality[True], quality[False]),
        "latency_ms_p50": latencies[len(latencies) // 2],
        "latency_ms_p95": latencies[int(0.95 * (len(latencies) - 1))],
        "failed": sum(v.reply is None for _, v in results),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=100)
    parser.add_argument("--judge", default="default")
    args = parser.parse_args()
    results = asyncio.run(judged(args.judge, pairs(args.questions)))
    summary = report(results, args.judge)
    for name, value in summary.items():
        print(f"{name:>20}: {value:.3f}" if isinstance(value, float) else f"{name:>20}: {value}")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    out = ROOT / "bench" / "results" / f"live-judge-{stamp}.json"
    out.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(f"written {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
