"""``logprobs``, ``n`` and ``logit_bias`` on the embedded engine, on the real SmolLM2 GGUF:
logprobs checked against llama-cpp-python's own evaluation of the same tokens."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import numpy as np
import pytest
from llama_cpp import Llama

from modelyard.bootstrap import smollm2_path
from modelyard.engines import Chunk, GenerationRequest, Message
from modelyard.engines.llamacpp import LlamaCppEngine
from modelyard.engines.llamacpp.choices import InvalidChoiceField
from tests.engines.llamacpp.test_engine import run, started, wait_until

pytestmark = [pytest.mark.anyio, pytest.mark.model]
STORY = "Tell me a story about a brave knight."


@pytest.fixture
async def engine() -> AsyncIterator[LlamaCppEngine]:
    loaded = await started(max_num_seqs=4, prefill_chunk=16, prefix_cache=False)
    yield loaded
    await loaded.aclose()


@pytest.fixture(scope="module")
def reference() -> Iterator[Llama]:
    """llama-cpp-python's high-level model, every position's logits kept. With flash
    attention, as llama.cpp picks for the engine's context on this CPU (without it this
    quantised model's logprobs differ by up to ~0.5)."""
    llama = Llama(
        model_path=str(smollm2_path()),
        n_ctx=512,
        logits_all=True,
        flash_attn=True,
        verbose=False,
    )
    yield llama
    llama.close()


def chat(text: str, stream: bool = False, **openai: Any) -> GenerationRequest:
    return GenerationRequest(
        messages=[Message("user", text)],
        temperature=0.0,
        max_tokens=12,
        stream=stream,
        openai=openai,
    )


def log_softmax(row: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    row = row.astype(np.float64)
    peak = row.max()
    return row - (peak + np.log(np.exp(row - peak).sum()))  # type: ignore[no-any-return]


def greedy_reference(llama: Llama, prompt: list[int], steps: int) -> list[np.ndarray[Any, Any]]:
    """The log-softmax of each generated position, decoding the argmax as the engine does
    at temperature 0."""
    llama.reset()
    llama.eval(prompt)
    rows = []
    for _ in range(steps):
        row = log_softmax(np.asarray(llama.scores[llama.n_tokens - 1]))
        rows.append(row)
        llama.eval([int(row.argmax())])
    return rows


def whole(chunks: list[Chunk]) -> Mapping[str, Any]:
    (chunk,) = chunks
    assert chunk.openai is not None and chunk.usage is not None
    return chunk.openai


async def test_logprobs_are_the_models_own_log_softmax(
    engine: LlamaCppEngine, reference: Llama
) -> None:
    request = chat("Name three rivers.", logprobs=True, top_logprobs=5)
    answer = whole(await run(engine, request))
    (choice,) = answer["choices"]
    entries = choice["logprobs"]["content"]
    assert len(entries) == 12 and answer["usage"]["completion_tokens"] == 12
    rows = greedy_reference(reference, engine.tokenize_prompt(request), len(entries))
    worst = 0.0
    for entry, row in zip(entries, rows, strict=True):
        token = int(row.argmax())
        assert bytes(entry["bytes"]) == reference.detokenize([token], special=True)
        top = entry["top_logprobs"]
        assert len(top) == 5
        assert [t["logprob"] for t in top] == sorted((t["logprob"] for t in top), reverse=True)
        assert top[0]["bytes"] == entry["bytes"]  # greedy: the sampled token is the argmax
        expected = np.sort(row)[::-1][:5]
        worst = max(worst, abs(entry["logprob"] - row[token]))
        worst = max(worst, *(abs(t["logprob"] - e) for t, e in zip(top, expected, strict=True)))
    print(f"max |logprob - reference| = {worst:.2e}")
    assert worst < 1e-4
    assert "".join(bytes(e["bytes"]).decode() for e in entries) == choice["message"]["content"]


async def test_streamed_logprobs_match_and_completions_use_the_legacy_shape(
    engine: LlamaCppEngine, reference: Llama
) -> None:
    streamed = await run(engine, chat("Name three rivers.", stream=True, logprobs=True))
    events = [c.openai for c in streamed if c.openai is not None]
    assert all(e["object"] == "chat.completion.chunk" for e in events)
    assert events[0]["choices"][0]["delta"]["role"] == "assistant"
    streamed_entries = [
        entry
        for e in events
        if e["choices"][0]["logprobs"]
        for entry in e["choices"][0]["logprobs"]["content"]
    ]
    assert all(entry["top_logprobs"] == [] for entry in streamed_entries)
    plain = whole(await run(engine, chat("Name three rivers.", logprobs=True, top_logprobs=0)))
    assert streamed_entries == plain["choices"][0]["logprobs"]["content"]
    assert streamed[-1].openai is None and streamed[-1].usage is not None
    assert streamed[-1].finish_reason == "length"
    assert "".join(c.text for c in streamed) == plain["choices"][0]["message"]["content"]

    prompt = GenerationRequest(
        prompt="The capital of France is",
        temperature=0.0,
        max_tokens=6,
        stream=False,
        openai={"logprobs": 3},
    )
    answer = whole(await run(engine, prompt))
    assert answer["object"] == "text_completion"
    (choice,) = answer["choices"]
    logprobs = choice["logprobs"]
    assert len(logprobs["tokens"]) == len(logprobs["token_logprobs"]) == 6
    assert all(len(top) == 3 for top in logprobs["top_logprobs"])
    assert logprobs["text_offset"][0] == 0
    assert "".join(logprobs["tokens"]) == choice["text"]
    rows = greedy_reference(reference, engine.tokenize_prompt(prompt), 6)
    for got, row in zip(logprobs["token_logprobs"], rows, strict=True):
        assert abs(got - row.max()) < 1e-4


async def test_n_choices_share_the_prompt_and_sample_with_their_own_seeds(
    engine: LlamaCppEngine,
) -> None:
    def story(**openai: Any) -> GenerationRequest:
        return GenerationRequest(
            messages=[Message("user", STORY)],
            temperature=1.0,
            seed=7,
            max_tokens=30,
            stream=False,
            openai=openai,
        )

    prompt = len(engine.tokenize_prompt(story()))
    read_before = engine.info().details["prefilled_prompt_tokens"]
    answer = whole(await run(engine, story(n=3, logprobs=True)))
    # The prompt was read once for the three choices.
    assert engine.info().details["prefilled_prompt_tokens"] - read_before == prompt
    choices = answer["choices"]
    assert [c["index"] for c in choices] == [0, 1, 2]
    assert all(c["finish_reason"] in ("stop", "length") for c in choices)
    texts = [c["message"]["content"] for c in choices]
    assert len(set(texts)) == 3
    usage = answer["usage"]
    assert usage["prompt_tokens"] == prompt
    assert usage["completion_tokens"] == sum(len(c["logprobs"]["content"]) for c in choices)
    # Choice i samples with seed + i: each is what a single request with that seed gives.
    for index, text in enumerate(texts):
        alone = await run(engine, replace_seed(story(), 7 + index))
        assert "".join(c.text for c in alone) == text


def replace_seed(request: GenerationRequest, seed: int) -> GenerationRequest:
    return GenerationRequest(
        messages=request.messages,
        temperature=request.temperature,
        seed=seed,
        max_tokens=request.max_tokens,
    )


async def test_streamed_choices_finish_apart_and_cancelling_frees_them_all(
    engine: LlamaCppEngine,
) -> None:
    request = GenerationRequest(
        messages=[Message("user", STORY)],
        temperature=1.0,
        seed=3,
        max_tokens=20,
        openai={"n": 3},
    )
    chunks = await run(engine, request)
    texts: dict[int, str] = {0: "", 1: "", 2: ""}
    finishes: dict[int, str] = {}
    for chunk in chunks[:-1]:
        assert chunk.openai is not None and chunk.finish_reason is None
        (choice,) = chunk.openai["choices"]
        texts[choice["index"]] += choice["delta"].get("content") or ""
        if choice["finish_reason"]:
            finishes[choice["index"]] = choice["finish_reason"]
    assert sorted(finishes) == [0, 1, 2]
    assert "".join(c.text for c in chunks) == texts[0]
    last = chunks[-1]
    assert last.usage is not None and last.finish_reason == finishes[0]

    long = GenerationRequest(
        messages=[Message("user", STORY)], temperature=1.0, max_tokens=400, openai={"n": 4}
    )
    stream = engine.generate(long)
    for _ in range(8):
        await anext(stream)
    assert engine.info().details["active"] == 4
    await stream.aclose()
    await wait_until(lambda: engine.info().details["active"] == 0, timeout_s=2)
    again = await asyncio.wait_for(
        run(
            engine,
            GenerationRequest(
                messages=[Message("user", "Hi")],
                max_tokens=3,
                stream=False,
                openai={"n": 4},
            ),
        ),
        timeout=20,
    )
    assert len(whole(again)["choices"]) == 4


async def test_logit_bias_steers_sampling(engine: LlamaCppEngine, reference: Llama) -> None:
    request = chat("Name three rivers.")
    row = greedy_reference(reference, engine.tokenize_prompt(request), 1)[0]
    greedy, fifth = (int(t) for t in np.argsort(row)[::-1][[0, 4]])

    async def first(bias: dict[str, float]) -> Mapping[str, Any]:
        answer = whole(
            await run(engine, chat("Name three rivers.", logprobs=True, logit_bias=bias))
        )
        return answer["choices"][0]["logprobs"]["content"][0]  # type: ignore[no-any-return]

    plain = await first({})
    assert bytes(plain["bytes"]) == reference.detokenize([greedy], special=True)
    banned = await first({str(greedy): -100})
    assert banned["bytes"] != plain["bytes"]
    forced = await first({str(fifth): 100})
    assert bytes(forced["bytes"]) == reference.detokenize([fifth], special=True)
    # The logprob reported is the model's, before the bias.
    assert abs(forced["logprob"] - row[fifth]) < 1e-4


@pytest.mark.parametrize(
    ("openai", "param"),
    [
        ({"logit_bias": {"99999999": 5}}, "logit_bias"),
        ({"logit_bias": {"-1": 5}}, "logit_bias"),
        ({"logit_bias": {"abc": 5}}, "logit_bias"),
        ({"logit_bias": {"12": 150}}, "logit_bias"),
        ({"logit_bias": {"12": "high"}}, "logit_bias"),
        ({"n": 5}, "n"),  # more than the engine's 4 sequences
        ({"top_logprobs": 3}, "top_logprobs"),  # without logprobs: true
        ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
    ],
)
async def test_invalid_fields_are_400s_naming_them(
    engine: LlamaCppEngine, openai: dict[str, Any], param: str
) -> None:
    with pytest.raises(InvalidChoiceField) as refused:
        await run(engine, chat("Hi", **openai))
    assert (refused.value.status, refused.value.param) == (400, param)
    assert refused.value.body()["error"]["type"] == "invalid_request_error"
    assert engine.info().details["active"] == 0
