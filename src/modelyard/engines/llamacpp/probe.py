"""What serving a GGUF costs and how well it models text, measured in a process of its own
(so its memory is its own and the server's event loop never waits on it):

- the file's size and weight type, the time to load it, the memory it keeps resident;
- decode tokens/s through the engine's own scheduler at each number of concurrent streams
  asked (greedy, the same prompts for every file);
- perplexity on a list of texts: exp of the mean negative log-likelihood of each token
  given the ones before it (each text on its own, from its first token: the start-of-text
  token where the model's metadata adds one, else the text's own first token).

    python -m modelyard.engines.llamacpp.probe SPEC.json RESULT.json

SPEC holds ``gguf``, ``texts``, ``streams``, ``max_tokens``, ``threads`` and ``n_ctx``;
RESULT gets a :class:`ProbeResult` as JSON. The exit status is 0 when RESULT was written.
"""

from __future__ import annotations

import asyncio
import json
import math
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from modelyard.engines.memory import peak_rss_mb, rss_mb

# The prompts every file decodes, one per stream (cycled past eight): open-ended, so that
# greedy decoding runs to max_tokens rather than stopping early.
PROMPTS = (
    "Write a long story about a lighthouse keeper who finds a message in a bottle.",
    "Explain in detail how a bicycle works, part by part.",
    "Describe a busy market in a small town on a Saturday morning.",
    "Write a long letter to a friend about your last holiday by the sea.",
    "Explain step by step how bread is made, from flour to loaf.",
    "Tell the history of a fictional city from its founding to today.",
    "Describe the life cycle of a tree over a hundred years.",
    "Write a long story about two robots who learn to cook.",
)


@dataclass(frozen=True)
class ProbeSpec:
    gguf: str
    texts: list[str]
    streams: list[int]
    max_tokens: int = 64
    threads: int = 0
    n_ctx: int = 512
    # Each level is decoded this many times and the median run kept: one run of a few
    # seconds on a shared machine is at the mercy of whatever else ran then.
    repeats: int = 3


@dataclass(frozen=True)
class StreamsResult:
    streams: int
    # Median over the streams of each one's decode rate after its first token.
    decode_tokens_per_s: float
    # All streams' tokens over the wall time from the first request to the last token.
    aggregate_tokens_per_s: float
    completion_tokens: int
    wall_s: float


@dataclass(frozen=True)
class ProbeResult:
    file_type: str
    size_bytes: int
    parameters: int | None
    load_s: float
    # Resident memory the loaded model added to the process, and the process's peak.
    rss_mb: float
    peak_rss_mb: float
    throughput: list[StreamsResult] = field(default_factory=list)
    perplexity: float | None = None
    perplexity_tokens: int = 0
    perplexity_texts: int = 0
    perplexity_s: float = 0.0
    # Each text's mean negative log-likelihood per token, in the order given (None for a
    # text too short to predict): what a paired comparison of two files resamples.
    text_nll: list[float | None] = field(default_factory=list)


def probe(spec: ProbeSpec) -> ProbeResult:
    """Measure the GGUF ``spec`` names (blocking; minutes for a large text list)."""
    import llama_cpp  # noqa: F401  (loaded before the baseline, so it is not counted)

    from modelyard.engines.llamacpp.quantise import file_type

    path = Path(spec.gguf)
    kind = file_type(path)
    loaded = asyncio.run(_serve(spec))
    perplexity, tokens, per_text, seconds = _perplexity(spec)
    return ProbeResult(
        file_type=kind,
        size_bytes=path.stat().st_size,
        parameters=loaded.parameters,
        load_s=round(loaded.load_s, 4),
        rss_mb=round(max(loaded.resident_mb, 0.0), 1),
        peak_rss_mb=round(peak_rss_mb(), 1),
        throughput=loaded.throughput,
        perplexity=None if perplexity is None else round(perplexity, 4),
        perplexity_tokens=tokens,
        perplexity_texts=sum(value is not None for value in per_text),
        perplexity_s=round(seconds, 3),
        text_nll=per_text,
    )


@dataclass(frozen=True)
class _Served:
    load_s: float
    resident_mb: float
    parameters: int | None
    throughput: list[StreamsResult]


async def _serve(spec: ProbeSpec) -> _Served:
    from modelyard import config
    from modelyard.engines.base import EngineSpec
    from modelyard.engines.llamacpp.engine import LlamaCppEngine

    baseline = rss_mb()
    parameters: dict[str, Any] = {"max_num_seqs": max(spec.streams), "n_ctx": spec.n_ctx}
    if spec.threads:
        parameters["threads"] = spec.threads
    engine = LlamaCppEngine(
        EngineSpec("probe", 0, "llamacpp", spec.gguf, parameters), config.Settings()
    )
    started = time.perf_counter()
    await engine.start()
    load_s = time.perf_counter() - started
    resident = rss_mb() - baseline
    try:
        await _decode(engine, 1, 8)  # warm-up: first-call allocations are not measured
        throughput = [
            await _median_run(engine, streams, spec.max_tokens, spec.repeats)
            for streams in spec.streams
        ]
        return _Served(load_s, resident, engine.info().parameters, throughput)
    finally:
        await engine.aclose()


async def _median_run(engine: Any, streams: int, max_tokens: int, repeats: int) -> StreamsResult:
    """The run of ``repeats`` whose aggregate rate is the median."""
    runs = [await _decode(engine, streams, max_tokens) for _ in range(max(repeats, 1))]
    runs.sort(key=lambda run: run.aggregate_tokens_per_s)
    return runs[len(runs) // 2]


async def _decode(engine: Any, streams: int, max_tokens: int) -> StreamsResult:
    from modelyard.engines.base import GenerationRequest, Message

    async def one(index: int) -> tuple[int, float | None]:
        request = GenerationRequest(
            messages=[Message("user", PROMPTS[index % len(PROMPTS)])],
            max_tokens=max_tokens,
            temperature=0.0,
        )
        tokens, first, last = 0, None, None
        async for chunk in engine.generate(request):
            now = time.perf_counter()
            if chunk.text:
                first = now if first is None else first
                last = now
            if chunk.usage is not None:
                tokens = chunk.usage.completion_tokens
        rate = None
        if first is not None and last is not None and last > first and tokens > 1:
            rate = (tokens - 1) / (last - first)
        return tokens, rate

    started = time.perf_counter()
    results = await asyncio.gather(*(one(index) for index in range(streams)))
    wall = time.perf_counter() - started
    total = sum(tokens for tokens, _ in results)
    rates = [rate for _, rate in results if rate is not None]
    return StreamsResult(
        streams=streams,
        decode_tokens_per_s=round(statistics.median(rates), 2) if rates else 0.0,
        aggregate_tokens_per_s=round(total / wall, 2) if wall > 0 else 0.0,
        completion_tokens=total,
        wall_s=round(wall, 4),
    )


def _perplexity(spec: ProbeSpec) -> tuple[float | None, int, list[float | None], float]:
    """exp(mean NLL) over every predicted token of every text, how many tokens it covered,
    and each text's mean NLL. A text longer than the context is cut at it."""
    if not spec.texts:
        return None, 0, [], 0.0
    import llama_cpp
    import numpy as np

    started = time.perf_counter()
    model = llama_cpp.Llama(
        model_path=spec.gguf,
        n_ctx=spec.n_ctx,
        n_batch=spec.n_ctx,
        logits_all=True,
        n_threads=spec.threads or None,
        verbose=False,
    )
    total, count, per_text = 0.0, 0, list[float | None]()
    try:
        for text in spec.texts:
            tokens = model.tokenize(text.encode("utf-8"), add_bos=True, special=False)
            tokens = tokens[: spec.n_ctx]
            if len(tokens) < 2:
                per_text.append(None)
                continue
            model.reset()  # type: ignore[no-untyped-call]
            model.eval(tokens)
            logits = np.asarray(model.scores[: len(tokens) - 1], dtype=np.float64)
            peak = logits.max(axis=1, keepdims=True)
            log_norm = peak[:, 0] + np.log(np.exp(logits - peak).sum(axis=1))
            targets = np.asarray(tokens[1:])
            picked = logits[np.arange(len(targets)), targets]
            nll = float((log_norm - picked).sum())
            total += nll
            count += len(targets)
            per_text.append(round(nll / len(targets), 6))
    finally:
        model.close()
    seconds = time.perf_counter() - started
    return (math.exp(total / count) if count else None), count, per_text, seconds


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m modelyard.engines.llamacpp.probe SPEC.json RESULT.json")
        return 2
    spec = ProbeSpec(**json.loads(Path(argv[0]).read_text(encoding="utf-8")))
    result = probe(spec)
    target = Path(argv[1])
    partial = target.with_name(target.name + ".partial")
    partial.write_text(json.dumps(asdict(result)), encoding="utf-8")
    partial.replace(target)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
