"""Structured decoding benchmark: the embedded engine with a JSON schema against without.

The same SmolLM2 GGUF and prompts, greedy. For 1 and 8 concurrent streams, the aggregate
decode rate (completion tokens / wall time) with ``response_format`` set to a JSON schema
and without it, measured alternately in one run so the ratio compares like with like (the
target is >= 0.8x). The rate is decode only: each stream's tokens after its first one over
the time since it, summed over the streams. Then the grammar compile time of each schema
of the test corpus (tests/engines/llamacpp/schema_corpus.py): cold, and cached.
Prints a table and writes JSON under bench/results/.

    .venv/bin/python bench/structured.py [--rounds 3] [--max-tokens 96]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.engines.llamacpp.schema_corpus import corpus  # noqa: E402

from modelyard.bootstrap import smollm2_path  # noqa: E402
from modelyard.config import Settings  # noqa: E402
from modelyard.engines import EngineSpec, GenerationRequest, Message  # noqa: E402
from modelyard.engines.llamacpp import LlamaCppEngine  # noqa: E402
from modelyard.engines.llamacpp.grammar import GrammarCache, InvalidSchema  # noqa: E402

# A function-call style schema: nested object, enum, array, bounds, a format.
SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 14},
        "start": {"type": "string", "format": "date"},
        "alerts": {"type": "array", "items": {"type": "string"}, "maxItems": 4},
        "location": {
            "type": "object",
            "properties": {"lat": {"type": "number"}, "lon": {"type": "number"}},
            "required": ["lat", "lon"],
        },
    },
    "required": ["city", "unit", "days", "start", "alerts", "location"],
}
PROMPTS = [
    "Plan a weather forecast request for Paris.",
    "Describe the weather query for Tokyo next week as JSON.",
    "Give the forecast parameters for a trip to Lima.",
    "What would a weather lookup for Oslo look like?",
    "Weather request for Cairo, as JSON.",
    "Build a forecast request for Sydney.",
    "A weather query for Toronto in fahrenheit.",
    "Forecast parameters for Nairobi.",
]


async def decode_rate(
    engine: LlamaCppEngine, streams: int, constrained: bool, max_tokens: int
) -> float:
    fmt = {"type": "json_schema", "json_schema": {"name": "w", "schema": SCHEMA}}

    async def one(prompt: str) -> tuple[int, float, float]:
        request = GenerationRequest(
            messages=[Message("user", prompt)],
            temperature=0.0,
            max_tokens=max_tokens,
            response_format=fmt if constrained else None,
        )
        first = 0.0
        chunks = []
        async for chunk in engine.generate(request):
            first = first or time.perf_counter()
            chunks.append(chunk)
        usage = chunks[-1].usage
        return (usage.completion_tokens if usage else 0), first, time.perf_counter()

    # Decode only (after each stream's first token): a constrained reply ends sooner, and
    # counting its prefill would charge the grammar for the prompt.
    runs = await asyncio.gather(*(one(PROMPTS[i % len(PROMPTS)]) for i in range(streams)))
    return sum((n - 1) / (end - first) for n, first, end in runs if n > 1 and end > first)


def compile_times(vocab: Any) -> dict[str, Any]:
    cold, warm, refused = [], [], 0
    for item in corpus():
        cache = GrammarCache(vocab)
        fmt = {"type": "json_schema", "json_schema": {"name": "s", "schema": item.schema}}
        for into in (cold, warm):
            start = time.perf_counter()
            try:
                cache.grammar_for(fmt)
            except InvalidSchema:
                refused += into is cold
            into.append((time.perf_counter() - start) * 1000)
    return {
        "schemas": len(cold),
        "refused": refused,
        "cold_ms_median": statistics.median(cold),
        "cold_ms_max": max(cold),
        "cached_ms_median": statistics.median(warm),
    }


async def main(rounds: int, max_tokens: int) -> dict[str, Any]:
    spec = EngineSpec("bench", 1, "llamacpp", str(smollm2_path()), {"n_ctx": 1024})
    engine = LlamaCppEngine(spec, Settings())
    await engine.start()
    try:
        await decode_rate(engine, 1, True, 8)  # warm-up, and the schema's compile
        levels = {}
        for streams in (1, 8):
            free, schema = [], []
            for _ in range(rounds):  # alternated: load on the shared cores hits both alike
                free.append(await decode_rate(engine, streams, False, max_tokens))
                schema.append(await decode_rate(engine, streams, True, max_tokens))
            levels[streams] = {
                "free_tok_s": statistics.median(free),
                "schema_tok_s": statistics.median(schema),
                "ratio": statistics.median(schema) / statistics.median(free),
            }
        vocab = engine._model.vocab  # the loaded model's, as the engine's cache uses
        compiled = await asyncio.to_thread(compile_times, vocab)
    finally:
        await engine.aclose()
    return {"levels": levels, "compile": compiled, "rounds": rounds, "max_tokens": max_tokens}


def report(result: dict[str, Any]) -> None:
    print("| streams | without schema tok/s | with schema tok/s | ratio (target >= 0.8) |")
    print("|---|---|---|---|")
    for streams, level in result["levels"].items():
        print(
            f"| {streams} | {level['free_tok_s']:.1f} | {level['schema_tok_s']:.1f} "
            f"| {level['ratio']:.2f} |"
        )
    c = result["compile"]
    print(
        f"\ngrammar compile over {c['schemas']} corpus schemas ({c['refused']} refused): "
        f"median {c['cold_ms_median']:.2f} ms, max {c['cold_ms_max']:.2f} ms; "
        f"cached {c['cached_ms_median']:.3f} ms"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=96)
    args = parser.parse_args()
    outcome = asyncio.run(main(args.rounds, args.max_tokens))
    report(outcome)
    out = ROOT / "bench" / "results" / f"structured-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(outcome, indent=2) + "\n")
    print(f"\nwritten {out.relative_to(ROOT)}")
