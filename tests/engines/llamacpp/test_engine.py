"""The embedded engine on the real SmolLM2 GGUF."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

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

pytestmark = [pytest.mark.anyio, pytest.mark.model]


@pytest.fixture
async def engine() -> AsyncIterator[LlamaCppEngine]:
    spec = EngineSpec("default", 1, "llamacpp", str(smollm2_path()), {"slots": 2, "n_ctx": 512})
    loaded = LlamaCppEngine(spec, Settings())
    await loaded.start()
    yield loaded
    await loaded.aclose()


def ask(text: str, **kw: object) -> GenerationRequest:
    return GenerationRequest(messages=[Message("user", text)], temperature=0.0, **kw)  # type: ignore[arg-type]


async def run(engine: LlamaCppEngine, request: GenerationRequest) -> list[Chunk]:
    return [chunk async for chunk in engine.generate(request)]


async def test_greedy_output_is_deterministic_and_counts_tokens(engine: LlamaCppEngine) -> None:
    first = await run(engine, ask("Name a color.", max_tokens=12))
    second = await run(engine, ask("Name a color.", max_tokens=12))
    assert "".join(c.text for c in first) == "".join(c.text for c in second)
    usage = first[-1].usage
    assert usage is not None
    assert usage.prompt_tokens == len(engine.tokenize_prompt(ask("Name a color.")))
    assert 0 < usage.completion_tokens <= 12
    assert sum(1 for c in first if c.text) <= usage.completion_tokens


async def test_concurrent_requests_equal_sequential_ones(engine: LlamaCppEngine) -> None:
    prompts = ["Name a fruit.", "Name an animal.", "Name a planet."]
    alone = [await run(engine, ask(p, max_tokens=10)) for p in prompts]
    together = await asyncio.gather(*(run(engine, ask(p, max_tokens=10)) for p in prompts))
    assert ["".join(c.text for c in r) for r in together] == [
        "".join(c.text for c in r) for r in alone
    ]


async def test_max_tokens_and_stop_strings(engine: LlamaCppEngine) -> None:
    capped = await run(engine, ask("Count from one to twenty in words.", max_tokens=3))
    assert capped[-1].finish_reason == "length"
    assert capped[-1].usage is not None and capped[-1].usage.completion_tokens == 3
    full = "".join(c.text for c in await run(engine, ask("Count from one to ten.", max_tokens=40)))
    word = full.split()[2]
    cut = await run(engine, ask("Count from one to ten.", max_tokens=40, stop=(word,)))
    text = "".join(c.text for c in cut)
    assert word not in text and full.startswith(text)
    assert cut[-1].finish_reason == "stop"


async def test_seeded_sampling_is_reproducible(engine: LlamaCppEngine) -> None:
    def seeded() -> GenerationRequest:
        return GenerationRequest(
            messages=[Message("user", "Tell me a story.")], temperature=1.0, seed=7, max_tokens=15
        )

    one = "".join(c.text for c in await run(engine, seeded()))
    two = "".join(c.text for c in await run(engine, seeded()))
    assert one == two


async def test_context_window_is_enforced(engine: LlamaCppEngine) -> None:
    with pytest.raises(ContextLengthExceeded):
        await run(engine, ask("hi", max_tokens=600))
    with pytest.raises(ContextLengthExceeded):
        await run(engine, ask("word " * 600))


async def test_closing_the_stream_frees_the_slot(engine: LlamaCppEngine) -> None:
    stream = engine.generate(ask("Write a long essay about rivers.", max_tokens=400))
    await anext(stream)
    assert engine.info().details["free_slots"] == 1
    await stream.aclose()
    for _ in range(100):
        if engine.info().details["free_slots"] == 2:
            break
        await asyncio.sleep(0.02)
    assert engine.info().details["free_slots"] == 2


async def test_the_chat_template_comes_from_the_gguf(engine: LlamaCppEngine) -> None:
    info = engine.info()
    assert info.chat_template and "<|im_start|>" in info.chat_template
    assert info.context_length == 512
