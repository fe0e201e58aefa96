"""A real `modelyard serve` process driven by the official openai SDK."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
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
