"""The upstream engine against a real OpenAI-compatible server: another modelyard process."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterator
from typing import cast

import aiohttp
import httpx
import pytest

from modelyard.config import Settings
from modelyard.engines import EngineError, EngineSpec, GenerationRequest, Message, Need
from modelyard.engines.upstream import UpstreamEngine, _data_lines, _parse_answer
from modelyard.registry import Registry
from modelyard.registry.protocol import VersionCreate
from modelyard.store import open_store
from tests.conftest import admin_key, register_scripted
from tests.live import free_port, live_server

pytestmark = pytest.mark.anyio


# The upstream is another modelyard, so it wants a key: its admin key, passed by env name.
KEY_ENV = "UPSTREAM_TEST_KEY"


@pytest.fixture(scope="module")
def upstream_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    home = tmp_path_factory.mktemp("upstream")
    store = open_store(Settings(home=home).store_url)
    registry = Registry(store)
    register_scripted(registry, "tiny", replies=["alpha beta gamma delta"], token_delay_ms=2)
    register_scripted(registry, "angry", fail_when_prompt_contains="x", fail_status=503)
    store.close()
    with live_server(home) as base:
        yield f"{base}/v1", admin_key(home)


@pytest.fixture
def upstream(upstream_server: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    url, key = upstream_server
    monkeypatch.setenv(KEY_ENV, key)
    return url


async def started(base_url: str, model: str, **params: object) -> UpstreamEngine:
    spec = EngineSpec(
        "up", 1, "upstream", base_url, {"model": model, "api_key_env": KEY_ENV, **params}
    )
    engine = UpstreamEngine(spec, Settings())
    await engine.start()
    return engine


async def collect(chunks: AsyncIterator[object]) -> list[object]:
    return [chunk async for chunk in chunks]


async def test_streams_pass_through_with_usage(upstream: str) -> None:
    engine = await started(upstream, "tiny")
    try:
        chunks = await collect(engine.generate(GenerationRequest(messages=[Message("user", "q")])))
        texts = [c.text for c in chunks]  # type: ignore[attr-defined]
        assert len([t for t in texts if t]) == 4  # one chunk per upstream chunk
        assert "".join(texts) == "alpha beta gamma delta"
        last = chunks[-1]
        assert last.finish_reason == "stop"  # type: ignore[attr-defined]
        assert last.usage.completion_tokens == 4  # type: ignore[attr-defined]
        text = await collect(engine.generate(GenerationRequest(prompt="p", max_tokens=2)))
        assert "".join(c.text for c in text) == "alpha beta"  # type: ignore[attr-defined]
        assert text[-1].finish_reason == "length"  # type: ignore[attr-defined]
    finally:
        await engine.aclose()


async def test_a_non_streamed_request_is_answered_in_one_piece(upstream: str) -> None:
    engine = await started(upstream, "tiny")
    try:
        whole = GenerationRequest(messages=[Message("user", "q")], stream=False)
        chunks = await collect(engine.generate(whole))
        assert len(chunks) == 1
        (answer,) = chunks
        assert answer.text == "alpha beta gamma delta"  # type: ignore[attr-defined]
        assert answer.finish_reason == "stop"  # type: ignore[attr-defined]
        assert answer.usage.completion_tokens == 4  # type: ignore[attr-defined]
        cut = await collect(
            engine.generate(GenerationRequest(prompt="p", max_tokens=2, stream=False))
        )
        assert [(c.text, c.finish_reason) for c in cut] == [("alpha beta", "length")]  # type: ignore[attr-defined]
    finally:
        await engine.aclose()


@pytest.mark.parametrize(
    "raw", [b"not json", b"{}", b'{"choices": []}', b'{"choices": [{"message": 3}]}']
)
def test_an_answer_that_is_not_a_completion_is_a_502(raw: bytes) -> None:
    with pytest.raises(EngineError) as error:
        _parse_answer(raw, chat=True)
    assert error.value.status == 502 and error.value.code == "upstream_error"


async def test_upstream_errors_map_to_statuses(upstream: str) -> None:
    engine = await started(upstream, "missing-model")
    with pytest.raises(EngineError) as unknown:
        await collect(engine.generate(GenerationRequest(prompt="p")))
    assert unknown.value.status == 404 and "does not exist" in str(unknown.value)
    await engine.aclose()

    engine = await started(upstream, "angry")
    with pytest.raises(EngineError) as failing:
        await collect(engine.generate(GenerationRequest(prompt="x")))
    assert failing.value.status == 502 and failing.value.code == "upstream_error"
    await engine.aclose()

    engine = await started(f"http://127.0.0.1:{free_port()}/v1", "tiny")
    with pytest.raises(EngineError) as down:
        await collect(engine.generate(GenerationRequest(prompt="x")))
    assert down.value.status == 502 and down.value.code == "upstream_unreachable"
    await engine.aclose()


async def test_missing_api_key_env_fails_the_start(upstream: str) -> None:
    with pytest.raises(EngineError, match="NO_SUCH_KEY_VAR"):
        await started(upstream, "tiny", api_key_env="NO_SUCH_KEY_VAR")


async def test_modelyard_in_front_of_an_upstream(
    upstream: str, api: httpx.AsyncClient, home_registry: Registry
) -> None:
    version = home_registry.add_version(
        "remote",
        VersionCreate(
            engine_kind="upstream",
            artifact_uri=upstream,
            parameters={"model": "tiny", "api_key_env": KEY_ENV},
        ),
        actor="tests",
    )
    await api.put("/api/models/remote/aliases/production", json={"version": version.number})
    response = await api.post(
        "/v1/chat/completions",
        json={"model": "remote", "messages": [{"role": "user", "content": "q"}], "stream": True},
    )
    assert response.status_code == 200
    assert response.text.count("data: ") == 6  # 4 words (the first with the role), finish, [DONE]
    pinned = await api.post(
        "/v1/chat/completions",
        json={"model": "remote@1", "messages": [{"role": "user", "content": "q"}], "n": 1},
    )
    assert pinned.json()["usage"]["completion_tokens"] == 4
    await api.logged()  # type: ignore[attr-defined]
    rows = (await api.get("/api/requests", params={"route": "remote"})).json()["data"]
    timed = {row["streamed"]: row["ttft_ms"] for row in rows}
    assert timed[True] is not None and timed[True] > 0  # the stream's first token
    assert timed[False] is None  # a non-streamed answer came whole: nothing to time


class _Reads:
    """An aiohttp StreamReader stand-in delivering a body in the given pieces."""

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = pieces

    async def iter_any(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            yield piece


SSE = (
    b": keep-alive\r\n\r\n"
    b'data: {"a": 1}\r\n\r\n'
    b"event: message\n"
    b'data:{"b": "x y"}\n\n'
    b"data: [DONE]"  # no final newline
)


@pytest.mark.parametrize("seed", range(30))
async def test_data_lines_do_not_depend_on_how_the_bytes_arrive(seed: int) -> None:
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(SSE)), rng.randint(0, 12)))
    pieces = [SSE[a:b] for a, b in zip([0, *cuts], [*cuts, len(SSE)], strict=True)]
    lines = [line async for line in _data_lines(cast(aiohttp.StreamReader, _Reads(pieces)))]
    assert lines == [b'{"a": 1}', b'{"b": "x y"}', b"[DONE]"]


def test_extra_fields_go_through_as_the_version_says() -> None:
    needs = [Need("tools", "tools"), Need("top_k"), Need("messages.refusal")]
    assert UpstreamEngine.unable(needs, {"model": "m"}) is None
    assert UpstreamEngine.unable(needs, {"extra_fields": {"allow": ["top_k"]}}) is None
    refused = UpstreamEngine.unable(needs, {"extra_fields": {"deny": ["top_k"]}})
    assert refused is not None and refused[0] == Need("top_k")
    refused = UpstreamEngine.unable([Need("min_p")], {"extra_fields": {"allow": ["top_k"]}})
    assert refused is not None and refused[0].field == "min_p"


def test_a_relayed_answer_keeps_what_the_upstream_sent() -> None:
    raw = (
        b'{"id": "x", "choices": [{"index": 0, "message": {"content": null, "tool_calls": []},'
        b' "finish_reason": "tool_calls"}], "usage": {"prompt_tokens": 3, "completion_tokens": 2,'
        b' "prompt_tokens_details": {"cached_tokens": 2}}}'
    )
    chunk = _parse_answer(raw, chat=True)
    assert (chunk.text, chunk.finish_reason) == ("", "tool_calls")
    assert chunk.openai is not None and chunk.openai["choices"][0]["message"]["tool_calls"] == []
    assert chunk.usage is not None and chunk.usage.openai is not None
    assert chunk.usage.openai["prompt_tokens_details"] == {"cached_tokens": 2}
