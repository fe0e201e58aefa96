"""The semantic cache with the app's embedding model (all-MiniLM via ONNX, where its engine
runs): a question worded differently is a hit, another question is not, and neighbours
must share everything but the last user message."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from modelyard.config import Settings
from modelyard.registry import Registry
from tests.conftest import AppClient, app_client, register_scripted

pytestmark = pytest.mark.anyio
REPLIES = ["first answer", "second answer", "third answer", "fourth answer"]


@pytest.fixture
async def api(modelyard_home: Path) -> AsyncIterator[AppClient]:
    async with app_client(Settings(default_embedding_model="minilm")) as client:
        yield client


async def ask(api: httpx.AsyncClient, text: str, system: str = "be brief") -> httpx.Response:
    messages = [{"role": "system", "content": system}, {"role": "user", "content": text}]
    response = await api.post(
        "/v1/chat/completions", json={"model": "chat", "messages": messages, "temperature": 0}
    )
    assert response.status_code == 200, response.text
    return response


def said(response: httpx.Response) -> tuple[str, str]:
    return response.json()["choices"][0]["message"]["content"], response.headers[
        "x-modelyard-cache"
    ]


async def test_a_similar_question_is_a_hit_and_another_is_not(
    api: AppClient, home_registry: Registry
) -> None:
    register_scripted(home_registry, "chat", replies=REPLIES)
    await api.reload_routes()
    policy = {"cache": {"mode": "semantic", "lookup_timeout_s": 5}}  # a cold model loads
    assert (await api.put("/api/routes/chat", json={"policy": policy})).status_code == 200
    assert said(await ask(api, "How do I reset my password?")) == ("first answer", "miss")
    assert said(await ask(api, "How can I reset my password?")) == ("first answer", "hit")
    assert said(await ask(api, "How do I reset my password?")) == ("first answer", "hit")
    assert said(await ask(api, "What is the capital of France?")) == ("second answer", "miss")
    # the same question under another system prompt is another neighbourhood
    assert said(await ask(api, "How can I reset my password?", "be long")) == (
        "third answer",
        "miss",
    )
    assert api.services.cache.stats("chat").hits == 2


async def test_without_the_embedding_model_a_lookup_is_a_miss(
    api: AppClient, home_registry: Registry
) -> None:
    register_scripted(home_registry, "chat", replies=REPLIES)
    await api.reload_routes()
    policy = {"cache": {"mode": "semantic", "embedding_model": "chat"}}  # cannot embed
    assert (await api.put("/api/routes/chat", json={"policy": policy})).status_code == 200
    assert said(await ask(api, "hello")) == ("first answer", "miss")
    assert said(await ask(api, "hello")) == ("first answer", "hit")  # exact still works
    assert said(await ask(api, "hello there")) == ("second answer", "miss")
