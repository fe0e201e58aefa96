"""The workload of ``bench/engine.py``: concurrent streaming chat completions, measured per request.

One asyncio process, one ``httpx.AsyncClient`` with a connection per stream, so the requests of
a level really are in flight at once. Times are ``time.perf_counter()`` seconds.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

# Distinct short English prompts that ask for more than a sentence, so most generations run
# to max_tokens. A level of N streams takes the next N prompts, so no prompt is repeated
# across levels (no server answers a level from a prompt cache filled by the one before).
PROMPTS = (
    "Write a short story about a lighthouse keeper.",
    "Explain how a bicycle works.",
    "Describe a walk through a forest in autumn.",
    "Give me ten tips for staying focused while studying.",
    "Write a letter to a friend about your summer holiday.",
    "Explain why the sky is blue.",
    "Describe your ideal weekend in detail.",
    "Write a short story about a robot who learns to paint.",
    "Explain how bread is made, step by step.",
    "Describe the life of a honeybee.",
    "Write a poem about the ocean.",
    "Explain how rain forms.",
    "Give me a plan for learning to play the guitar.",
    "Describe a busy market in a small town.",
    "Write a short story about a lost dog finding its way home.",
    "Explain how a computer stores information.",
    "Describe the four seasons.",
    "Write a speech for a school graduation.",
    "Explain what plants need to grow.",
    "Describe a train journey through the mountains.",
    "Write a short story about a dragon who is afraid of fire.",
    "Explain how to make a cup of tea.",
    "Give me advice for a first job interview.",
    "Describe a city at night.",
    "Write a diary entry of an astronaut on the moon.",
    "Explain how the heart pumps blood.",
    "Describe how to plant a vegetable garden.",
    "Write a short story about a child who finds a secret door.",
    "Explain why exercise is good for health.",
    "Describe a thunderstorm.",
    "Write a recipe for a simple vegetable soup.",
    "Explain how airplanes fly.",
    "Describe a day in the life of a farmer.",
    "Write a short story about two friends on a camping trip.",
    "Explain how the moon changes shape during a month.",
    "Describe your favourite kind of music and why.",
    "Write a product description for a new backpack.",
    "Explain how recycling helps the environment.",
    "Describe a visit to a museum.",
    "Write a short story about a cat who becomes a detective.",
)
WARMUP_PROMPT = "Write a few sentences about the weather today."
EMBEDDING_TEXT = "The quick brown fox jumps over the lazy dog, number {}."


@dataclass
class RequestResult:
    """One streaming request: when it was sent, when its first and last tokens came."""

    prompt: str
    sent: float
    first_token: float | None = None
    last_token: float | None = None
    done: float | None = None
    content_chunks: int = 0
    usage_tokens: int | None = None
    finish_reason: str | None = None
    error: str | None = None

    @property
    def completion_tokens(self) -> int:
        return self.usage_tokens if self.usage_tokens is not None else self.content_chunks

    @property
    def ttft_s(self) -> float | None:
        return None if self.first_token is None else self.first_token - self.sent

    @property
    def decode_tok_s(self) -> float | None:
        """Per-stream decode rate after the first token: (tokens - 1) / (last - first)."""
        if self.first_token is None or self.last_token is None:
            return None
        span = self.last_token - self.first_token
        return (self.completion_tokens - 1) / span if span > 0 else None


@dataclass(frozen=True)
class LevelResult:
    """One row of the table: a server at one concurrency level."""

    server: str
    concurrency: int
    requests: int
    errors: int
    wall_s: float
    ttft_p50_ms: float
    ttft_p95_ms: float
    stream_tok_s_p50: float
    aggregate_tok_s: float
    mean_tokens: float
    finish_reasons: dict[str, int]
    other_cores: float | None  # CPU other processes used meanwhile (a shared machine)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Percentile with linear interpolation between the two nearest ranks."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def chat_body(model: str, prompt: str, max_tokens: int) -> dict[str, object]:
    return {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0,
        # llama-cpp-python's and modelyard's SmolLM2 default; llama-server's is 1.0. modelyard
        # ignores the field today and applies its registered version default of 1.1.
        "repeat_penalty": 1.1,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def _read_chunk(result: RequestResult, data: str) -> None:
    chunk = json.loads(data)
    usage = chunk.get("usage")
    if isinstance(usage, dict) and usage.get("completion_tokens") is not None:
        result.usage_tokens = int(usage["completion_tokens"])
    for choice in chunk.get("choices") or ():
        content = (choice.get("delta") or {}).get("content")
        if content:
            now = time.perf_counter()
            result.first_token = result.first_token or now
            result.last_token = now
            result.content_chunks += 1
        if choice.get("finish_reason"):
            result.finish_reason = choice["finish_reason"]


async def stream_chat(
    client: httpx.AsyncClient, model: str, prompt: str, max_tokens: int, timeout_s: float
) -> RequestResult:
    """Send one streaming chat completion and time its content chunks."""
    result = RequestResult(prompt=prompt, sent=time.perf_counter())
    body = chat_body(model, prompt, max_tokens)
    try:
        async with (
            asyncio.timeout(timeout_s),
            client.stream("POST", "/v1/chat/completions", json=body) as response,
        ):
            if response.status_code != 200:
                text = (await response.aread()).decode(errors="replace")
                result.error = f"HTTP {response.status_code}: {text[:300]}"
                return result
            async for line in response.aiter_lines():
                if line.startswith("data:") and line[5:].strip() != "[DONE]":
                    _read_chunk(result, line[5:].strip())
    except TimeoutError:
        result.error = f"no complete answer within {timeout_s:.0f} s"
    except (httpx.HTTPError, json.JSONDecodeError) as error:
        result.error = f"{type(error).__name__}: {error}"
    finally:
        result.done = time.perf_counter()
    return result


def client_for(base_url: str, connections: int, headers: Mapping[str, str]) -> httpx.AsyncClient:
    """A client sending ``headers`` (the server's API key) with every request."""
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    timeout = httpx.Timeout(600.0, connect=10.0)
    return httpx.AsyncClient(
        base_url=base_url, limits=limits, timeout=timeout, headers=dict(headers)
    )


async def run_level(
    base_url: str,
    model: str,
    prompts: Sequence[str],
    max_tokens: int,
    timeout_s: float,
    headers: Mapping[str, str],
) -> tuple[float, list[RequestResult]]:
    """All prompts at once; return the level's wall time and each request's result."""
    async with client_for(base_url, len(prompts), headers) as client:
        started = time.perf_counter()
        results = await asyncio.gather(
            *(stream_chat(client, model, p, max_tokens, timeout_s) for p in prompts)
        )
        return time.perf_counter() - started, list(results)


async def warm_up(
    base_url: str, model: str, max_tokens: int, timeout_s: float, headers: Mapping[str, str]
) -> RequestResult:
    async with client_for(base_url, 1, headers) as client:
        return await stream_chat(client, model, WARMUP_PROMPT, max_tokens, timeout_s)


def summarize(
    server: str,
    concurrency: int,
    wall_s: float,
    results: Sequence[RequestResult],
    other_cores: float | None = None,
) -> LevelResult:
    ok = [r for r in results if r.error is None and r.first_token is not None]
    ttfts = [r.ttft_s * 1000 for r in ok if r.ttft_s is not None]
    rates = [rate for r in ok if (rate := r.decode_tok_s) is not None]
    tokens = [r.completion_tokens for r in ok]
    reasons: dict[str, int] = {}
    for r in ok:
        reasons[r.finish_reason or "none"] = reasons.get(r.finish_reason or "none", 0) + 1
    return LevelResult(
        server=server,
        concurrency=concurrency,
        requests=len(results),
        errors=len(results) - len(ok),
        wall_s=wall_s,
        ttft_p50_ms=percentile(ttfts, 0.50),
        ttft_p95_ms=percentile(ttfts, 0.95),
        stream_tok_s_p50=percentile(rates, 0.50),
        aggregate_tok_s=sum(tokens) / wall_s if wall_s > 0 else float("nan"),
        mean_tokens=statistics.fmean(tokens) if tokens else float("nan"),
        finish_reasons=reasons,
        other_cores=other_cores,
    )


def prompts_for_levels(levels: Sequence[int]) -> list[list[str]]:
    """Consecutive slices of PROMPTS, wrapping around if the levels ask for more."""
    batches, offset = [], 0
    for level in levels:
        batches.append([PROMPTS[(offset + i) % len(PROMPTS)] for i in range(level)])
        offset += level
    return batches


# --- embeddings ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EmbeddingResult:
    """Embeddings per second against one batch size (inputs per request, one request at once)."""

    batch: int
    requests: int
    inputs: int
    wall_s: float
    embeddings_per_s: float
    dimensions: int
    other_cores: float | None = None


class EmbeddingsFailed(RuntimeError):
    """``POST /v1/embeddings`` did not answer with the embeddings asked for."""


async def _embed(client: httpx.AsyncClient, model: str, texts: list[str]) -> int:
    response = await client.post("/v1/embeddings", json={"model": model, "input": texts})
    if response.status_code != 200:
        raise EmbeddingsFailed(
            f"POST /v1/embeddings answered HTTP {response.status_code}: {response.text[:300]}"
        )
    data = response.json()["data"]
    if len(data) != len(texts):
        raise EmbeddingsFailed(f"asked {len(texts)} embeddings, got {len(data)}")
    return len(data[0]["embedding"])


async def run_embeddings(
    base_url: str, model: str, batch: int, requests: int, headers: Mapping[str, str]
) -> EmbeddingResult:
    async with client_for(base_url, 1, headers) as client:
        await _embed(client, model, [EMBEDDING_TEXT.format("warm-up")])
        started = time.perf_counter()
        dimensions = 0
        for request in range(requests):
            texts = [EMBEDDING_TEXT.format(request * batch + i) for i in range(batch)]
            dimensions = await _embed(client, model, texts)
        wall_s = time.perf_counter() - started
    inputs = batch * requests
    return EmbeddingResult(batch, requests, inputs, wall_s, inputs / wall_s, dimensions)


# --- other processes' CPU use -------------------------------------------------------------

TICKS_PER_S = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class CpuSample:
    """Busy CPU time of the whole machine and of the benchmark's own processes, in s."""

    at: float
    machine_busy_s: float
    ours_s: float


def _machine_busy_s() -> float:
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(value) for value in fields[:8]]  # user nice system idle iowait irq softirq steal
    return (sum(ticks) - ticks[3] - ticks[4]) / TICKS_PER_S


def _process_s(pid: int) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_S  # utime, stime


def cpu_sample(pids: Sequence[int]) -> CpuSample | None:
    """None where there is no /proc (not Linux): the column then stays empty."""
    try:
        busy = _machine_busy_s()
    except OSError:
        return None
    ours = sum(_process_s(pid) for pid in (os.getpid(), *pids))
    return CpuSample(time.perf_counter(), busy, ours)


def other_cores(before: CpuSample | None, after: CpuSample | None) -> float | None:
    """Mean number of cores other processes kept busy between two samples."""
    if before is None or after is None or after.at <= before.at:
        return None
    others = (after.machine_busy_s - before.machine_busy_s) - (after.ours_s - before.ours_s)
    return max(0.0, others / (after.at - before.at))


def wait_for_quiet(pids: Sequence[int], max_wait_s: float, threshold: float = 0.2) -> float | None:
    """Wait (up to ``max_wait_s``) for a second in which other processes use < ``threshold``
    cores; return the last second's value."""
    deadline = time.monotonic() + max_wait_s
    while True:
        before = cpu_sample(pids)
        time.sleep(1.0)
        cores = other_cores(before, cpu_sample(pids))
        if cores is None or cores < threshold or time.monotonic() >= deadline:
            return cores
