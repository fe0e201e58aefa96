"""The embedded engine's continuous-batching scheduler on the real SmolLM2 GGUF."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator

import pytest

from modelyard.bootstrap import smollm2_path
from modelyard.config import Settings
from modelyard.engines import (
    Chunk,
    ContextLengthExceeded,
    EngineSpec,
    GenerationRequest,
    Message,
)
from modelyard.engines.llamacpp import LlamaCppEngine
from modelyard.engines.llamacpp.scheduler import EngineOverloaded

pytestmark = [pytest.mark.anyio, pytest.mark.model]

PROMPTS = [
    "Name a fruit.",
    "Write a haiku about the sea.",
    "What is 2+2?",
    "Tell me about dragons in three sentences.",
    "Describe a cat.",
    "Give me a tip for sleeping well.",
    "What is Python?",
    "Say hello in French.",
]


async def started(**parameters: object) -> LlamaCppEngine:
    params = {"n_ctx": 512, **parameters}
    engine = LlamaCppEngine(
        EngineSpec("default", 1, "llamacpp", str(smollm2_path()), params), Settings()
    )
    await engine.start()
    return engine


@pytest.fixture
async def engine() -> AsyncIterator[LlamaCppEngine]:
    loaded = await started(max_num_seqs=8, prefill_chunk=32)
    yield loaded
    await loaded.aclose()


def ask(text: str, **kw: object) -> GenerationRequest:
    return GenerationRequest(messages=[Message("user", text)], temperature=0.0, **kw)  # type: ignore[arg-type]


async def run(engine: LlamaCppEngine, request: GenerationRequest) -> list[Chunk]:
    return [chunk async for chunk in engine.generate(request)]


def text_of(chunks: list[Chunk]) -> str:
    return "".join(c.text for c in chunks)


async def wait_until(condition: object, timeout_s: float = 10.0) -> None:
    assert callable(condition)
    for _ in range(int(timeout_s / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def test_batched_sequences_equal_the_same_requests_decoded_alone(
    engine: LlamaCppEngine,
) -> None:
    alone = [await run(engine, ask(p, max_tokens=24)) for p in PROMPTS]
    steps_alone = engine.info().details["steps"]
    together = await asyncio.gather(*(run(engine, ask(p, max_tokens=24)) for p in PROMPTS))
    assert [text_of(c) for c in together] == [text_of(c) for c in alone]
    assert [c[-1].usage for c in together] == [c[-1].usage for c in alone]
    # One decode step advances every sequence: far fewer steps than one at a time.
    assert engine.info().details["steps"] - steps_alone < steps_alone / 2


async def test_usage_counts_the_real_tokens(engine: LlamaCppEngine) -> None:
    chunks = await run(engine, ask("Name a color.", max_tokens=12))
    usage = chunks[-1].usage
    assert usage is not None
    assert usage.prompt_tokens == len(engine.tokenize_prompt(ask("Name a color.")))
    assert 0 < usage.completion_tokens <= 12
    assert sum(1 for c in chunks if c.text) <= usage.completion_tokens


async def test_max_tokens_and_stop_strings(engine: LlamaCppEngine) -> None:
    capped = await run(engine, ask("Count from one to twenty in words.", max_tokens=3))
    assert capped[-1].finish_reason == "length"
    assert capped[-1].usage is not None and capped[-1].usage.completion_tokens == 3
    full = text_of(await run(engine, ask("Count from one to ten.", max_tokens=40)))
    word = full.split()[2]
    cut = await run(engine, ask("Count from one to ten.", max_tokens=40, stop=(word,)))
    assert word not in text_of(cut) and full.startswith(text_of(cut))
    assert cut[-1].finish_reason == "stop"


async def test_seeded_sampling_is_reproducible_even_in_a_batch(engine: LlamaCppEngine) -> None:
    def seeded(seed: int) -> GenerationRequest:
        return GenerationRequest(
            messages=[Message("user", "Tell me a story.")],
            temperature=1.0,
            seed=seed,
            max_tokens=15,
        )

    one = text_of(await run(engine, seeded(7)))
    batch = await asyncio.gather(run(engine, seeded(7)), run(engine, seeded(8)))
    assert text_of(batch[0]) == one


async def test_repetition_penalties_and_sampling_defaults_apply() -> None:
    engine = await started(max_num_seqs=2, repeat_penalty=1.3, temperature=0.0)
    try:
        request = GenerationRequest(messages=[Message("user", "Say yes yes yes.")], max_tokens=20)
        penalised = text_of(await run(engine, request))
        assert penalised
        assert engine.info().details["sampling_defaults"] == {
            "repeat_penalty": 1.3,
            "temperature": 0.0,
        }
        batch = await asyncio.gather(run(engine, request), run(engine, request))
        assert [text_of(c) for c in batch] == [penalised, penalised]
    finally:
        await engine.aclose()


async def test_context_window_is_enforced(engine: LlamaCppEngine) -> None:
    with pytest.raises(ContextLengthExceeded):
        await run(engine, ask("hi", max_tokens=600))
    with pytest.raises(ContextLengthExceeded):
        await run(engine, ask("word " * 600))


async def test_closing_a_stream_frees_its_sequence(engine: LlamaCppEngine) -> None:
    stream = engine.generate(ask("Write a long essay about rivers.", max_tokens=400))
    await anext(stream)
    assert engine.info().details["active"] == 1
    await stream.aclose()
    await wait_until(lambda: engine.info().details["active"] == 0, timeout_s=2)


@contextlib.asynccontextmanager
async def one_running_one_waiting(
    max_waiting: int,
) -> AsyncIterator[tuple[LlamaCppEngine, AsyncGenerator[Chunk, None], asyncio.Task[list[Chunk]]]]:
    """An engine with a single sequence, held by a long stream, and a request queued."""
    engine = await started(max_num_seqs=1, max_waiting=max_waiting)
    try:
        running = engine.generate(ask("Write a long essay about rivers.", max_tokens=400))
        await anext(running)
        queued = asyncio.create_task(run(engine, ask("Name a fruit.", max_tokens=8)))
        await wait_until(lambda: engine.info().details["waiting"] == 1)
        yield engine, running, queued
        queued.cancel()
        await running.aclose()
    finally:
        await engine.aclose()


async def test_cancelling_lets_the_next_waiting_request_start() -> None:
    async with one_running_one_waiting(max_waiting=4) as (_engine, running, queued):
        await asyncio.sleep(0.3)
        assert not queued.done()  # it waits while the first holds the only sequence
        await running.aclose()
        done = await asyncio.wait_for(queued, timeout=10)
        assert done[-1].finish_reason in ("stop", "length")


async def test_a_full_queue_refuses_with_retry_after() -> None:
    async with one_running_one_waiting(max_waiting=1) as (engine, _running, _queued):
        with pytest.raises(EngineOverloaded) as refused:
            await run(engine, ask("One more?", max_tokens=4))
        assert refused.value.status == 503 and refused.value.retry_after_s


async def test_a_long_prompt_is_prefilled_between_decode_steps() -> None:
    engine = await started(max_num_seqs=2, prefill_chunk=16)
    try:
        stream = engine.generate(ask("Write a long essay about rivers.", max_tokens=300))
        await anext(stream)
        long_prompt = "Summarise this: " + "the river flows to the sea and " * 40
        reader = asyncio.create_task(run(engine, ask(long_prompt, max_tokens=1)))
        produced_meanwhile = 0
        while not reader.done():
            chunk = await anext(stream)
            produced_meanwhile += 1
            assert chunk.finish_reason is None
        # ~250 prompt tokens in slices of 16: the running stream kept producing throughout.
        assert produced_meanwhile >= 10
        await stream.aclose()
    finally:
        await engine.aclose()


async def test_a_shared_system_prompt_is_read_once_and_changes_nothing() -> None:
    system = "You are a terse assistant for a bakery. " * 12
    questions = ["What bread is best for toast?", "Do you sell croissants?"]

    def asked(question: str) -> GenerationRequest:
        messages = [Message("system", system), Message("user", question)]
        return GenerationRequest(messages=messages, temperature=0.0, max_tokens=16)

    answers = {}
    for cache in (True, False):
        engine = await started(max_num_seqs=2, prefix_cache=cache)
        try:
            answers[cache] = [text_of(await run(engine, asked(q))) for q in questions]
            reused = engine.info().details["reused_prompt_tokens"]
        finally:
            await engine.aclose()
        # ~120 system-prompt tokens are read once, then found in the cache.
        assert (reused > 100) is cache, (cache, reused)
    assert answers[True] == answers[False]


async def test_the_chat_template_comes_from_the_gguf(engine: LlamaCppEngine) -> None:
    info = engine.info()
    assert info.chat_template and "<|im_start|>" in info.chat_template
    assert info.context_length == 512
