from __future__ import annotations

import asyncio
import base64
import math
import struct
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest
from tokenizers import Tokenizer

from modelyard.app import build_app
from modelyard.bootstrap import minilm_dir
from modelyard.config import Settings
from modelyard.registry import Registry
from modelyard.store import open_store
from tests.conftest import admin_key, bearer, register_scripted

pytestmark = pytest.mark.anyio

MODEL = "default-embedding"
TEXTS = ["The cat sits on the mat.", "A kitten is sitting on a rug.", "Interest rates rose again."]


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[httpx.AsyncClient]:
    """One app per module (the model loads once): the default embedding model registered
    on first start, and a scripted chat model ``echo``."""
    settings = Settings(
        home=tmp_path_factory.mktemp("home"), default_model="none", default_embedding_model="minilm"
    )
    settings.ensure_home()
    store = open_store(settings.store_url)
    register_scripted(Registry(store), "echo")
    store.close()
    app = build_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://modelyard",
            headers=bearer(admin_key(settings.home)),
        ) as client:
            yield client


def token_count(texts: list[str]) -> int:
    """Tokens the model reads: the model's own tokenizer.json, truncated at 256 tokens."""
    tokenizer = Tokenizer.from_file(str(minilm_dir() / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=256)
    return sum(len(tokenizer.encode(text).ids) for text in texts)


async def embed(api: httpx.AsyncClient, **body: Any) -> httpx.Response:
    return await api.post("/v1/embeddings", json={"model": MODEL, **body})


async def test_floats_in_openai_shape(api: httpx.AsyncClient) -> None:
    response = await embed(api, input=TEXTS)
    assert response.status_code == 200
    assert response.headers["x-modelyard-version"] == f"{MODEL}@1"
    body = response.json()
    assert body["object"] == "list"
    assert body["model"] == MODEL
    assert [(d["object"], d["index"]) for d in body["data"]] == [("embedding", i) for i in range(3)]
    for item in body["data"]:
        assert len(item["embedding"]) == 384
        assert math.isclose(math.hypot(*item["embedding"]), 1.0, abs_tol=1e-5)
    tokens = token_count(TEXTS)
    assert body["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}


async def test_a_single_string_is_one_embedding(api: httpx.AsyncClient) -> None:
    single = (await embed(api, input=TEXTS[0], user="u-1")).json()
    listed = (await embed(api, input=TEXTS)).json()
    assert len(single["data"]) == 1
    first, again = single["data"][0]["embedding"], listed["data"][0]["embedding"]
    assert max(abs(a - b) for a, b in zip(first, again, strict=True)) < 1e-6
    assert single["usage"]["prompt_tokens"] == token_count(TEXTS[:1])


async def test_base64_decodes_to_the_same_floats(api: httpx.AsyncClient) -> None:
    floats = (await embed(api, input=TEXTS)).json()["data"]
    packed = (await embed(api, input=TEXTS, encoding_format="base64")).json()["data"]
    for as_floats, as_base64 in zip(floats, packed, strict=True):
        raw = base64.b64decode(as_base64["embedding"])
        decoded = struct.unpack(f"<{len(raw) // 4}f", raw)
        # JSON carries each float32 exactly, as the double it converts to.
        assert list(decoded) == as_floats["embedding"]


async def test_the_openai_sdk_reads_our_answer(api: httpx.AsyncClient) -> None:
    client = openai.AsyncOpenAI(
        base_url="http://modelyard/v1",
        api_key=api.headers["authorization"].removeprefix("Bearer "),
        http_client=api,
    )
    answer = await client.embeddings.create(model=MODEL, input=TEXTS)
    direct = (await embed(api, input=TEXTS)).json()["data"]
    assert [d.embedding for d in answer.data] == [d["embedding"] for d in direct]
    assert answer.usage.prompt_tokens == token_count(TEXTS)


async def test_concurrent_requests_are_batched_and_answered_separately(
    api: httpx.AsyncClient,
) -> None:
    async def passes() -> int:
        engines = (await api.get("/api/engines")).json()["data"]
        (engine,) = [e for e in engines if e["model"] == MODEL]
        count: int = engine["info"]["details"]["forward_passes"]
        return count

    alone = [(await embed(api, input=text)).json()["data"][0]["embedding"] for text in TEXTS]
    before = await passes()
    answers = await asyncio.gather(*(embed(api, input=text) for text in TEXTS * 4))
    assert await passes() - before < len(answers)
    for text, answer in zip(TEXTS * 4, answers, strict=True):
        got = answer.json()["data"][0]["embedding"]
        expected = alone[TEXTS.index(text)]
        assert max(abs(a - b) for a, b in zip(got, expected, strict=True)) < 1e-5


async def test_dimensions_equal_to_the_models_are_accepted(api: httpx.AsyncClient) -> None:
    assert (await embed(api, input="hi", dimensions=384)).status_code == 200


def assert_openai_error(response: httpx.Response, param: str | None, code: str) -> str:
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)
    message: str = error["message"]
    return message


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ([], "the list is empty"),
        ("", "the string is empty"),
        (["fine", ""], "item 1 is an empty string"),
        ([1, 2, 3], "token-id arrays are not supported"),
        ([[1, 2], [3]], "token-id arrays are not supported"),
        (["fine", None], "item 1 is not a string"),
        (5, "expected a string or a list of strings"),
        ({"text": "hi"}, "expected a string or a list of strings"),
        (["x"] * 2049, "at most 2048"),
    ],
)
async def test_bad_input_is_a_400(api: httpx.AsyncClient, value: object, says: str) -> None:
    message = assert_openai_error(await embed(api, input=value), "input", "invalid_request")
    assert says in message


async def test_missing_input_and_unknown_format_are_400s(api: httpx.AsyncClient) -> None:
    assert_openai_error(await embed(api), "input", "invalid_request")
    bad_format = await embed(api, input="hi", encoding_format="int8")
    assert_openai_error(bad_format, "encoding_format", "invalid_request")


async def test_other_dimensions_are_a_400(api: httpx.AsyncClient) -> None:
    message = assert_openai_error(
        await embed(api, input="hi", dimensions=128), "dimensions", "invalid_dimensions"
    )
    assert "384" in message


async def test_a_chat_model_cannot_embed(api: httpx.AsyncClient) -> None:
    response = await api.post("/v1/embeddings", json={"model": "echo", "input": "hi"})
    message = assert_openai_error(response, "model", "wrong_task")
    assert "chat model" in message


async def test_an_embedding_model_cannot_chat(api: httpx.AsyncClient) -> None:
    messages = [{"role": "user", "content": "hi"}]
    response = await api.post("/v1/chat/completions", json={"model": MODEL, "messages": messages})
    assert_openai_error(response, "model", "wrong_task")


async def test_an_unknown_model_is_a_404(api: httpx.AsyncClient) -> None:
    response = await api.post("/v1/embeddings", json={"model": "nope", "input": "hi"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"


async def test_the_default_model_is_listed_with_its_task(api: httpx.AsyncClient) -> None:
    listed = {m["id"]: m["task"] for m in (await api.get("/v1/models")).json()["data"]}
    assert listed == {"echo": "chat", MODEL: "embedding"}
