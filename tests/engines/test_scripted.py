from __future__ import annotations

import pytest

from modelyard.config import Settings
from modelyard.engines import (
    ContextLengthExceeded,
    EngineError,
    EngineSpec,
    GenerationRequest,
    Message,
)
from modelyard.engines.scripted import ScriptedEngine

pytestmark = pytest.mark.anyio


def engine(**parameters: object) -> ScriptedEngine:
    return ScriptedEngine(EngineSpec("m", 1, "scripted", "scripted:", dict(parameters)), Settings())


def chat(text: str, **kw: object) -> GenerationRequest:
    return GenerationRequest(messages=[Message("user", text)], **kw)  # type: ignore[arg-type]


async def run(e: ScriptedEngine, request: GenerationRequest) -> tuple[str, str | None, object]:
    text, finish, usage = "", None, None
    async for chunk in e.generate(request):
        text += chunk.text
        finish = chunk.finish_reason or finish
        usage = chunk.usage or usage
    return text, finish, usage


async def test_echo_and_scripted_replies_in_turn() -> None:
    text, finish, usage = await run(engine(), chat("hello there"))
    assert (text, finish) == ("echo: hello there", "stop")
    assert usage is not None and usage.completion_tokens == 3  # type: ignore[attr-defined]
    scripted = engine(replies=["one", "two words"])
    assert [(await run(scripted, chat("x")))[0] for _ in range(3)] == ["one", "two words", "one"]


async def test_max_tokens_and_stop_sequences() -> None:
    e = engine(replies=["a b c d e"])
    assert (await run(e, chat("x", max_tokens=2)))[:2] == ("a b", "length")
    assert (await run(e, chat("x", stop=(" c",))))[:2] == ("a b", "stop")


async def test_injected_failures() -> None:
    with pytest.raises(EngineError) as failure:
        await run(engine(fail_when_prompt_contains="boom", fail_status=503), chat("boom"))
    assert failure.value.status == 503
    with pytest.raises(EngineError, match="mid-stream"):
        await run(engine(fail_after_tokens=1), chat("a b c"))
    with pytest.raises(ContextLengthExceeded):
        await run(engine(context_length=4), chat("a b c", max_tokens=5))


async def test_a_reply_sampled_above_the_threshold_comes_back_reversed() -> None:
    e = engine(reverse_above_temperature=0.5)
    assert (await run(e, chat("ab", temperature=0.5)))[0] == "echo: ab"
    assert (await run(e, chat("ab", temperature=0.7)))[0] == "ba :ohce"
    assert (await run(e, chat("ab")))[0] == "ba :ohce"  # no temperature: OpenAI's 1
    assert (await run(engine(), chat("ab", temperature=2.0)))[0] == "echo: ab"


def test_a_request_needs_messages_or_a_prompt() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        GenerationRequest()
    with pytest.raises(ValueError, match="exactly one"):
        GenerationRequest(messages=[Message("user", "x")], prompt="x")
