"""A real `modelyard serve` process driven by the official openai SDK."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import openai
import pytest
from llama_cpp import Llama
from pydantic import BaseModel

from modelyard.bootstrap import SMALL_MODEL_SAMPLING, smollm2_path
from modelyard.config import Settings
from modelyard.registry import Registry
from modelyard.store import open_store
from tests.conftest import register_scripted
from tests.live import Live, live_server

QUESTION = [{"role": "user", "content": "Write one sentence about the ocean."}]


@pytest.fixture(scope="module")
def smollm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    home = tmp_path_factory.mktemp("smollm")
    with live_server(
        home, MODELYARD_DEFAULT_MODEL="smollm2", MODELYARD_LLAMACPP_MAX_NUM_SEQS="4"
    ) as url:
        yield url


@pytest.fixture(scope="module")
def tokenizer() -> Iterator[Llama]:
    llama = Llama(model_path=str(smollm2_path()), n_ctx=512, vocab_only=True, verbose=False)
    yield llama
    llama.close()


def client(base: Live) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base}/v1", api_key=base.key, max_retries=0)


@pytest.fixture
def sdk(smollm_server: Live) -> Iterator[openai.OpenAI]:
    with client(smollm_server) as opened:
        yield opened


def load(base: Live, what: str) -> int:
    """``active`` or ``waiting`` sequences of the default model's engine."""
    engines = httpx.get(f"{base}/api/engines", headers=base.headers).json()["data"]
    (engine,) = [e for e in engines if e["model"] == "default"]
    return int(engine["info"]["details"][what])


def wait_for(base: Live, what: str, wanted: int, within_s: float) -> int:
    deadline = time.monotonic() + within_s
    while (now := load(base, what)) != wanted and time.monotonic() < deadline:
        time.sleep(0.05)
    return now


@pytest.mark.model
def test_non_streamed_reply_with_real_token_counts(sdk: openai.OpenAI, tokenizer: Llama) -> None:
    reply = sdk.chat.completions.create(
        model="default",
        messages=QUESTION,
        temperature=0,
        max_tokens=60,  # type: ignore[arg-type]
    )
    text = reply.choices[0].message.content or ""
    assert len(text.split()) >= 4
    assert "ocean" in text.lower() or "sea" in text.lower()
    assert reply.usage is not None
    # SmolLM2's chat template (from the GGUF) with its default system prompt.
    prompt = (
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
        "Face<|im_end|>\n<|im_start|>user\nWrite one sentence about the ocean.<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert reply.usage.prompt_tokens == len(tokenizer.tokenize(prompt.encode(), False, True))
    completion_tokens = tokenizer.tokenize(text.encode(), add_bos=False, special=False)
    # Re-tokenising text can merge differently at piece boundaries; it is never far off.
    assert abs(reply.usage.completion_tokens - len(completion_tokens)) <= 2
    assert reply.choices[0].finish_reason in ("stop", "length")


@pytest.mark.model
def test_streamed_reply_matches_the_non_streamed_one(sdk: openai.OpenAI) -> None:
    kwargs = {"model": "default", "messages": QUESTION, "temperature": 0, "max_tokens": 40}
    whole = sdk.chat.completions.create(**kwargs)  # type: ignore[call-overload]
    pieces, usage = [], None
    for chunk in sdk.chat.completions.create(
        **kwargs, stream=True, stream_options={"include_usage": True}
    ):
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
        usage = chunk.usage or usage
    assert len(pieces) > 3
    assert "".join(pieces) == whole.choices[0].message.content
    assert usage is not None and usage.completion_tokens == whole.usage.completion_tokens


@pytest.mark.model
def test_text_completion(sdk: openai.OpenAI) -> None:
    reply = sdk.completions.create(
        model="default", prompt="The capital of France is", max_tokens=5, temperature=0
    )
    assert reply.usage is not None and reply.usage.completion_tokens <= 5
    assert reply.choices[0].text


@pytest.mark.model
def test_context_overflow_is_a_400(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="maximum context length"):
        sdk.chat.completions.create(
            model="default",
            messages=QUESTION,
            max_tokens=4000,  # type: ignore[arg-type]  # under the cap, over the 2048 context
        )


@pytest.mark.model
def test_disconnecting_mid_stream_frees_its_sequence(smollm_server: Live) -> None:
    assert load(smollm_server, "active") == 0
    body = {
        "model": "default",
        "stream": True,
        "temperature": 0,
        "max_tokens": 1500,
        "messages": [{"role": "user", "content": "Tell me a very long story about dragons."}],
    }
    with httpx.stream(
        "POST", f"{smollm_server}/v1/chat/completions", json=body, headers=smollm_server.headers
    ) as response:
        lines = response.iter_lines()
        for _ in range(6):
            next(lines)
        assert load(smollm_server, "active") == 1
    # Greedy, this reply runs ~600 tokens (~10 s); a stopped one leaves the batch at once.
    assert wait_for(smollm_server, "active", 0, within_s=4) == 0


@pytest.mark.model
def test_disconnecting_before_a_non_streamed_answer_frees_its_sequence(smollm_server: Live) -> None:
    body = {
        "model": "default",
        "temperature": 0,
        "max_tokens": 1500,
        "messages": [{"role": "user", "content": "Tell me a very long story about dragons."}],
    }
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{smollm_server}/v1/chat/completions",
            json=body,
            timeout=1.0,
            headers=smollm_server.headers,
        )
    # Greedy, this reply runs ~600 tokens (~10 s); a stopped one leaves the batch at once.
    assert wait_for(smollm_server, "active", 0, within_s=4) == 0


@pytest.mark.model
def test_health_answers_while_four_streams_run(smollm_server: Live) -> None:
    started = threading.Barrier(5)

    def stream() -> None:
        with client(smollm_server) as own:
            started.wait()
            for _ in own.chat.completions.create(
                model="default",
                messages=QUESTION,  # type: ignore[arg-type]
                max_tokens=64,
                stream=True,
            ):
                pass

    threads = [threading.Thread(target=stream) for _ in range(4)]
    for thread in threads:
        thread.start()
    started.wait()
    time.sleep(0.5)
    answers = [httpx.get(f"{smollm_server}/healthz", timeout=5).status_code for _ in range(5)]
    alive = [t.is_alive() for t in threads]
    for thread in threads:
        thread.join()
    assert answers == [200] * 5
    assert any(alive)  # health was asked while streams were still running


def test_a_full_queue_is_a_503_with_retry_after(tmp_path: Path) -> None:
    env = {
        "MODELYARD_DEFAULT_MODEL": "smollm2",
        "MODELYARD_LLAMACPP_MAX_NUM_SEQS": "1",
        "MODELYARD_LLAMACPP_MAX_WAITING": "1",
    }
    long = {
        "model": "default",
        "temperature": 0,
        "max_tokens": 600,
        "stream": True,
        "messages": [{"role": "user", "content": "Tell me a very long story about dragons."}],
    }
    short = {**long, "stream": False, "max_tokens": 4}
    answers: list[int] = []
    with (
        live_server(tmp_path / "busy", **env) as base,
        httpx.Client(base_url=base, timeout=60, headers=base.headers) as http,
    ):
        with http.stream("POST", "/v1/chat/completions", json=long) as running:
            lines = running.iter_lines()  # kept: dropping it could close the stream
            next(lines)
            # Headers come with the first token, so the queued request waits in a thread.
            queued = threading.Thread(
                target=lambda: answers.append(
                    httpx.post(
                        f"{base}/v1/chat/completions",
                        json=short,
                        timeout=60,
                        headers=base.headers,
                    ).status_code
                )
            )
            queued.start()
            assert wait_for(base, "waiting", 1, within_s=30) == 1
            refused = http.post("/v1/chat/completions", json=short)
            assert refused.status_code == 503
            assert refused.headers["retry-after"] == "1"
            assert refused.json()["error"]["code"] == "engine_overloaded"
        queued.join(timeout=30)
    assert answers == [200]  # the queued request ran once the stream was closed


def test_scripted_engine_through_the_sdk(tmp_path: Path) -> None:
    home = tmp_path / "scripted"
    home.mkdir()
    settings = Settings(home=home)
    store = open_store(settings.store_url)
    register_scripted(Registry(store), "bot", replies=["fixed answer here"], token_delay_ms=5)
    store.close()
    with live_server(home) as base, client(base) as sdk:
        reply = sdk.chat.completions.create(model="bot", messages=QUESTION)  # type: ignore[arg-type]
        assert reply.choices[0].message.content == "fixed answer here"
        streamed = "".join(
            chunk.choices[0].delta.content or ""
            for chunk in sdk.chat.completions.create(
                model="bot",
                messages=QUESTION,
                stream=True,  # type: ignore[arg-type]
            )
            if chunk.choices
        )
        assert streamed == "fixed answer here"
        with pytest.raises(openai.NotFoundError):
            sdk.chat.completions.create(model="nope", messages=QUESTION)  # type: ignore[arg-type]
        assert [m.id for m in sdk.models.list()] == ["bot"]


@pytest.mark.model
def test_the_default_version_records_its_sampling_defaults(smollm_server: Live) -> None:
    version = httpx.get(
        f"{smollm_server}/api/models/default/versions/1", headers=smollm_server.headers
    ).json()
    assert version["parameters"] == dict(SMALL_MODEL_SAMPLING)
    assert version["artifact_sha256"] and version["engine_kind"] == "llamacpp"


class City(BaseModel):
    """What ``chat.completions.parse`` asks the embedded model for."""

    name: str
    country: str
    population: int


@pytest.mark.model
def test_parse_returns_an_object_of_the_schema(sdk: openai.OpenAI) -> None:
    completion = sdk.chat.completions.parse(
        model="default",
        messages=[{"role": "user", "content": "Describe Paris as JSON."}],
        response_format=City,
        max_tokens=120,
        temperature=0,
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert isinstance(choice.message.parsed, City)
    assert City.model_validate_json(choice.message.content or "") == choice.message.parsed


@pytest.mark.model
def test_a_schema_the_engine_cannot_guarantee_is_a_400_naming_it(sdk: openai.OpenAI) -> None:
    schema = {"type": "object", "properties": {"tags": {"type": "array", "uniqueItems": True}}}
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(
            model="default",
            messages=[{"role": "user", "content": "Tags?"}],
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "tags", "schema": schema},
            },
        )
    assert caught.value.status_code == 400
    assert "uniqueItems" in str(caught.value)


@pytest.mark.model
def test_responses_create_returns_output_text(sdk: openai.OpenAI) -> None:
    response = sdk.responses.create(
        model="default",
        instructions="Answer in one sentence.",
        input="Write one sentence about the ocean.",
        max_output_tokens=60,
        temperature=0,
    )
    assert response.id.startswith("resp_") and response.status in ("completed", "incomplete")
    assert len(response.output_text.split()) >= 4
    assert response.usage is not None and 0 < response.usage.output_tokens <= 60


@pytest.mark.model
def test_responses_stream_ends_with_the_whole_text(sdk: openai.OpenAI) -> None:
    deltas: list[str] = []
    final = None
    for event in sdk.responses.create(
        model="default",
        input="Say hello in five words.",
        max_output_tokens=200,
        temperature=0,
        stream=True,
    ):
        if event.type == "response.output_text.delta":
            deltas.append(event.delta)
        elif event.type in ("response.completed", "response.incomplete", "response.failed"):
            final = event
    assert len(deltas) > 1
    assert final is not None and final.type == "response.completed"
    assert final.response.output_text == "".join(deltas)


@pytest.mark.model
def test_logprobs_streamed_and_not(sdk: openai.OpenAI) -> None:
    kwargs: dict[str, Any] = {
        "model": "default",
        "messages": QUESTION,
        "temperature": 0,
        "max_tokens": 12,
        "logprobs": True,
        "top_logprobs": 3,
    }
    whole = sdk.chat.completions.create(**kwargs)
    assert whole.id.startswith("chatcmpl") and whole.model == "default"
    (choice,) = whole.choices
    assert choice.logprobs is not None and choice.logprobs.content is not None
    content = choice.logprobs.content
    assert whole.usage is not None and len(content) == whole.usage.completion_tokens
    for entry in content:
        assert entry.logprob <= 0 and len(entry.top_logprobs) == 3
        tops = [top.logprob for top in entry.top_logprobs]
        assert tops == sorted(tops, reverse=True)
        # The raw distribution: the default's repeat_penalty may make greedy pick another.
        assert entry.logprob <= tops[0]
    assert "".join(entry.token for entry in content) == choice.message.content
    streamed, text = [], ""
    for chunk in sdk.chat.completions.create(**kwargs, stream=True):
        assert chunk.id.startswith("chatcmpl") and chunk.model == "default"
        for part in chunk.choices:
            text += part.delta.content or ""
            streamed += part.logprobs.content if part.logprobs and part.logprobs.content else []
    assert text == choice.message.content
    assert [(e.token, e.logprob) for e in streamed] == [(e.token, e.logprob) for e in content]


@pytest.mark.model
def test_n_choices_streamed_and_not(sdk: openai.OpenAI) -> None:
    kwargs: dict[str, Any] = {
        "model": "default",
        "messages": QUESTION,
        "temperature": 1,
        "seed": 11,
        "max_tokens": 24,
        "n": 3,
    }
    one = sdk.chat.completions.create(**{**kwargs, "n": 1})
    whole = sdk.chat.completions.create(**kwargs)
    assert [c.index for c in whole.choices] == [0, 1, 2]
    assert all(c.finish_reason in ("stop", "length") for c in whole.choices)
    assert len({c.message.content for c in whole.choices}) == 3
    assert whole.choices[0].message.content == one.choices[0].message.content  # same seed
    assert whole.usage is not None and one.usage is not None
    assert whole.usage.prompt_tokens == one.usage.prompt_tokens  # the prompt counted once
    texts, finishes, usage = ["", "", ""], [None, None, None], None
    for chunk in sdk.chat.completions.create(
        **kwargs, stream=True, stream_options={"include_usage": True}
    ):
        for part in chunk.choices:
            texts[part.index] += part.delta.content or ""
            finishes[part.index] = part.finish_reason or finishes[part.index]
        usage = chunk.usage or usage
    assert texts == [c.message.content for c in whole.choices]
    assert finishes == [c.finish_reason for c in whole.choices]
    assert usage is not None and usage.completion_tokens == whole.usage.completion_tokens


@pytest.mark.model
def test_completion_logprobs_and_choices(sdk: openai.OpenAI) -> None:
    reply = sdk.completions.create(
        model="default",
        prompt="The capital of France is",
        max_tokens=5,
        temperature=0,
        logprobs=2,
        n=2,
    )
    assert [c.index for c in reply.choices] == [0, 1]
    for choice in reply.choices:
        logprobs = choice.logprobs
        assert logprobs is not None and logprobs.tokens and logprobs.top_logprobs
        assert "".join(logprobs.tokens) == choice.text
        assert all(len(top) == 2 for top in logprobs.top_logprobs)
        assert logprobs.text_offset is not None and logprobs.text_offset[0] == 0
    assert reply.choices[0].text == reply.choices[1].text  # greedy: the same reply twice


@pytest.mark.model
@pytest.mark.parametrize(
    ("extra", "param"),
    [({"logit_bias": {"99999999": 1}}, "logit_bias"), ({"n": 5}, "n")],
)
def test_invalid_choice_fields_are_400s(
    sdk: openai.OpenAI, extra: dict[str, Any], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(model="default", messages=QUESTION, max_tokens=4, **extra)
    assert caught.value.status_code == 400
    assert caught.value.body["param"] == param  # type: ignore[index]


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "maxLength": 30},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}
WEATHER_QUESTION = [{"role": "user", "content": "What is the weather in Paris?"}]
TOOL_CHOICES = ["required", {"type": "function", "function": {"name": "get_weather"}}]


def valid_weather_call(name: str, arguments: str) -> None:
    assert name == "get_weather"
    schema = WEATHER_TOOL["function"]["parameters"]  # type: ignore[index]
    assert jsonschema_rs.validator_for(schema).is_valid(json.loads(arguments)), arguments


@pytest.mark.model
@pytest.mark.parametrize("tool_choice", TOOL_CHOICES)
def test_the_embedded_engine_calls_tools(sdk: openai.OpenAI, tool_choice: Any) -> None:
    completion = sdk.chat.completions.create(
        model="default",
        messages=WEATHER_QUESTION,  # type: ignore[arg-type]
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        tool_choice=tool_choice,
        parallel_tool_calls=False,
        max_tokens=80,
        temperature=0,
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    (call,) = choice.message.tool_calls or []
    assert call.id.startswith("call_") and call.type == "function"
    valid_weather_call(call.function.name, call.function.arguments)
    assert completion.usage is not None and completion.usage.completion_tokens > 0


@pytest.mark.model
@pytest.mark.parametrize("tool_choice", TOOL_CHOICES)
def test_the_embedded_engine_streams_tool_calls(sdk: openai.OpenAI, tool_choice: Any) -> None:
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in sdk.chat.completions.create(
        model="default",
        messages=WEATHER_QUESTION,  # type: ignore[arg-type]
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        tool_choice=tool_choice,
        parallel_tool_calls=False,
        max_tokens=80,
        temperature=0,
        stream=True,
    ):
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for delta in choice.delta.tool_calls or ():
                call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
                call["id"] += delta.id or ""
                if delta.function is not None:
                    call["name"] += delta.function.name or ""
                    call["arguments"] += delta.function.arguments or ""
    assert finish == "tool_calls"
    (call,) = calls.values()
    assert call["id"].startswith("call_")
    valid_weather_call(call["name"], call["arguments"])
