"""The response cache through the API: a repeated deterministic request is answered from
the cache (the engine does not run, the guard and accounting still do), one key never gets
another key's answer, streams are answered and stored, and a new version starts empty."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from modelyard.config import Settings
from modelyard.registry import Registry
from modelyard.store.tables import RequestLogRow
from tests.conftest import AppClient, app_client, bearer, new_key, register_scripted

pytestmark = pytest.mark.anyio
REPLIES = ["first answer", "second answer", "third answer", "fourth answer"]


@pytest.fixture(autouse=True)
def quick_log(modelyard_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYARD_LOG_FLUSH_INTERVAL_S", "0.05")


async def cached_route(
    api: AppClient, registry: Registry, cache: dict[str, Any] | None = None, **scripted: Any
) -> None:
    """``chat`` on a scripted engine that answers each request with the next of REPLIES,
    with a response cache."""
    register_scripted(registry, "chat", replies=REPLIES, **scripted)
    await api.reload_routes()
    response = await api.put("/api/routes/chat", json={"policy": {"cache": cache or {}}})
    assert response.status_code == 200, response.text


async def chat(
    api: httpx.AsyncClient, text: str = "hello", key: str | None = None, **body: Any
) -> httpx.Response:
    response = await api.post(
        "/v1/chat/completions",
        json={"model": "chat", "messages": [{"role": "user", "content": text}], **body},
        headers=bearer(key) if key else None,
    )
    assert response.status_code == 200, response.text
    return response


def answer(response: httpx.Response) -> str:
    content: str = response.json()["choices"][0]["message"]["content"]
    return content


def logged(api: AppClient) -> list[RequestLogRow]:
    with api.services.store.session() as session:
        rows = session.scalars(select(RequestLogRow).order_by(RequestLogRow.at)).all()
        for row in rows:
            session.expunge(row)
        return list(rows)


def samples(metrics: str, name: str, *labels: str) -> dict[tuple[str, ...], float]:
    return {
        tuple(sample.labels[label] for label in labels): sample.value
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
        if sample.name == name
    }


async def test_a_repeated_deterministic_request_is_answered_from_the_cache(
    api: AppClient, home_registry: Registry
) -> None:
    await cached_route(
        api, home_registry, price={"input_per_million": 1e6, "output_per_million": 1e6}
    )
    first = await chat(api, temperature=0)
    again = await chat(api, temperature=0)
    assert answer(first) == answer(again) == "first answer"  # the engine would say "second"
    assert first.headers["x-modelyard-cache"] == "miss"
    assert again.headers["x-modelyard-cache"] == "hit"
    assert again.headers["x-modelyard-version"] == "chat@1"
    assert again.json()["usage"] == first.json()["usage"]
    assert again.json()["id"] != first.json()["id"]
    other = await chat(api, "something else", temperature=0)
    assert answer(other) == "second answer"  # another request goes to the engine
    await api.logged()
    rows = logged(api)
    assert [row.cache_hit for row in rows] == [False, True, False]
    assert rows[1].cost == 0 and rows[0].cost > 0  # a hit spends nothing...
    assert rows[1].prompt_tokens == rows[0].prompt_tokens  # ...but is logged and charged
    listed = (await api.get("/api/requests", params={"route": "chat"})).json()["data"]
    assert sorted(row["cache_hit"] for row in listed) == [False, False, True]
    metrics = (await api.get("/metrics")).text
    lookups = samples(metrics, "modelyard_cache_lookups_total", "route", "result")
    assert lookups[("chat", "hit")] == 1 and lookups[("chat", "miss")] == 2
    saved = samples(metrics, "modelyard_cache_saved_cost_total", "route")[("chat",)]
    assert saved == pytest.approx(rows[0].cost)
    route = (await api.get("/api/routes/chat")).json()
    assert route["cache"] == {
        "hits": 1,
        "misses": 2,
        "bypassed": 0,
        "hit_rate": pytest.approx(1 / 3),
        "entries": 2,
    }


async def test_a_request_sampled_without_a_seed_is_not_cached_unless_the_route_opts_in(
    api: AppClient, home_registry: Registry
) -> None:
    await cached_route(api, home_registry)
    sampled = [answer(await chat(api, temperature=0.7)) for _ in range(2)]
    assert sampled == ["first answer", "second answer"]
    seeded = [answer(await chat(api, temperature=0.7, seed=3)) for _ in range(2)]
    assert seeded == ["third answer", "third answer"]
    response = await api.put(
        "/api/routes/chat", json={"policy": {"cache": {"nondeterministic": True}}}
    )
    assert response.status_code == 200
    opted = [answer(await chat(api, "again", temperature=0.7)) for _ in range(2)]
    assert opted == ["fourth answer", "fourth answer"]
    assert (await chat(api, temperature=0.7)).headers.get("x-modelyard-cache") == "miss"


async def test_a_key_never_gets_another_keys_answer(
    api: AppClient, home_registry: Registry
) -> None:
    await cached_route(api, home_registry)
    alice, bob = await new_key(api), await new_key(api)
    assert answer(await chat(api, key=alice, temperature=0)) == "first answer"
    bobs = await chat(api, key=bob, temperature=0)
    assert answer(bobs) == "second answer"
    assert bobs.headers["x-modelyard-cache"] == "miss"
    assert answer(await chat(api, key=alice, temperature=0)) == "first answer"
    assert answer(await chat(api, key=bob, temperature=0)) == "second answer"


async def test_a_route_may_share_its_cache_between_keys(
    api: AppClient, home_registry: Registry
) -> None:
    await cached_route(api, home_registry, {"shared": True})
    alice, bob = await new_key(api), await new_key(api)
    assert answer(await chat(api, key=alice, temperature=0)) == "first answer"
    assert answer(await chat(api, key=bob, temperature=0)) == "first answer"


async def test_streams_are_stored_when_complete_and_replayed_as_a_stream(
    api: AppClient, home_registry: Registry
) -> None:
    await cached_route(api, home_registry)

    async def streamed() -> tuple[str, str | None]:
        body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
        body |= {"stream": True, "temperature": 0, "stream_options": {"include_usage": True}}
        async with api.stream("POST", "/v1/chat/completions", json=body) as response:
            assert response.status_code == 200
            events = [line async for line in response.aiter_lines() if line.startswith("data:")]
        assert events[-1] == "data: [DONE]"
        chunks = [json.loads(event[5:]) for event in events[:-1]]
        text = "".join(
            c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]
        )
        assert chunks[-1]["usage"]["completion_tokens"] == 2
        return text, response.headers.get("x-modelyard-cache")

    assert await streamed() == ("first answer", "miss")
    assert await streamed() == ("first answer", "hit")
    # a stream's stored answer serves the same request unstreamed, and the reverse
    assert answer(await chat(api, "hi", temperature=0)) == "first answer"


async def test_a_new_version_starts_with_an_empty_cache(
    api: AppClient, home_registry: Registry
) -> None:
    await cached_route(api, home_registry)
    assert answer(await chat(api, temperature=0)) == "first answer"
    register_scripted(home_registry, "chat", replies=["from version 2"])
    await api.reload_routes()
    changed = await chat(api, temperature=0)
    assert (answer(changed), changed.headers["x-modelyard-version"]) == ("from version 2", "chat@2")
    assert changed.headers["x-modelyard-cache"] == "miss"
    assert (await api.get("/api/routes/chat")).json()["cache"]["entries"] == 1


async def test_a_redacted_request_is_kept_redacted_and_restored_per_request(
    api: AppClient, home_registry: Registry
) -> None:
    """The route redacts e-mail addresses: both requests reach the engine (and the cache)
    as the same redacted text, and each gets its own address back."""
    register_scripted(home_registry, "chat")  # echoes the last user message
    await api.reload_routes()
    assert (await api.put("/api/routes/chat", json={"policy": {"cache": {}}})).status_code == 200
    policy = {"pii": "redact", "pii_restore": True}
    assert (await api.put("/api/policies/chat", json=policy)).status_code == 200
    first = await chat(api, "write to ann@example.com", temperature=0)
    second = await chat(api, "write to bob@example.org", temperature=0)
    assert second.headers["x-modelyard-cache"] == "hit"
    # the stored answer is the redacted echo; each request restores its own address
    assert answer(first) == "echo: write to ann@example.com"
    assert answer(second) == "echo: write to bob@example.org"
    kept = api.services.cache.stats("chat")
    assert kept.entries == 1


async def test_what_the_answer_cannot_hold_is_not_cached(
    api: AppClient, home_registry: Registry
) -> None:
    await cached_route(api, home_registry)
    response = await api.post(
        "/v1/chat/completions",
        json={"model": "chat", "messages": [{"role": "user", "content": "x"}], "logprobs": True},
    )
    assert response.status_code == 400  # the scripted kind has no logprobs: refused as ever
    assert "x-modelyard-cache" not in response.headers


async def test_replicas_share_a_redis_cache(
    api: AppClient, home_registry: Registry, redis_url: str, redis_prefix: str
) -> None:
    """Two replicas over one store and one Redis: the second answers from what the first
    stored."""
    settings = Settings(redis_url=redis_url, redis_prefix=redis_prefix)
    async with app_client(settings) as one, app_client(settings) as two:
        await cached_route(one, home_registry, {"backend": "redis"})
        await two.reload_routes()
        assert answer(await chat(one, temperature=0)) == "first answer"
        await one.services.cache.redis.drain()
        replica = await chat(two, temperature=0)
        assert (answer(replica), replica.headers["x-modelyard-cache"]) == ("first answer", "hit")
        assert two.services.cache.stats("chat").entries == 0  # it is in Redis, not in memory


async def test_a_hit_still_passes_the_guard(api: AppClient, home_registry: Registry) -> None:
    """A key at its rate limit is refused although the answer is kept; a hit's tokens count
    towards the key's limits."""
    await cached_route(api, home_registry)
    limited = await new_key(api, limits={"requests_per_minute": 2})
    assert answer(await chat(api, key=limited, temperature=0)) == "first answer"
    assert (await chat(api, key=limited, temperature=0)).headers["x-modelyard-cache"] == "hit"
    refused = await api.post(
        "/v1/chat/completions",
        json={
            "model": "chat",
            "messages": [{"role": "user", "content": "hello"}],
            "temperature": 0,
        },
        headers=bearer(limited),
    )
    assert refused.status_code == 429
    assert "x-modelyard-cache" not in refused.headers
    await api.logged()
    assert [row.status for row in logged(api)] == [200, 200, 429]


async def test_a_long_request_is_keyed_off_the_event_loop_alike(
    api: AppClient, home_registry: Registry
) -> None:
    await cached_route(api, home_registry, context_length=100_000)
    long = "a long document. " * 3000  # past LONG_REQUEST_CHARS: keyed on a worker thread
    assert answer(await chat(api, long, temperature=0)) == "first answer"
    again = await chat(api, long, temperature=0)
    assert (answer(again), again.headers["x-modelyard-cache"]) == ("first answer", "hit")
    assert answer(await chat(api, long + ".", temperature=0)) == "second answer"
