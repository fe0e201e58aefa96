"""Request limits, rate limits with OpenAI's headers, budgets with bounded overshoot."""

from __future__ import annotations

import asyncio

import pytest

from modelyard.config import Settings
from modelyard.registry import Registry
from tests.conftest import AppClient, app_client, bearer, new_key, register_scripted

pytestmark = pytest.mark.anyio
USER = [{"role": "user", "content": "one two three"}]


def error_of(response: object) -> dict[str, object]:
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"}
    error: dict[str, object] = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


@pytest.fixture
async def bot(api: AppClient, home_registry: Registry) -> AppClient:
    register_scripted(home_registry, "bot", replies=["a b c d e"])
    await api.reload_routes()
    return api


@pytest.mark.parametrize(
    ("body", "status", "code", "param"),
    [
        ({"max_tokens": 5000}, 400, "max_tokens_too_large", "max_tokens"),
        ({"max_completion_tokens": 5000}, 400, "max_tokens_too_large", "max_tokens"),
        ({"messages": USER * 300}, 400, "too_many_messages", "messages"),
        ({"n": 2}, 400, "invalid_request", "n"),
    ],
)
async def test_request_limits_are_clear_400s(
    bot: AppClient, body: dict[str, object], status: int, code: str, param: str
) -> None:
    response = await bot.post(
        "/v1/chat/completions", json={"model": "bot", "messages": USER, **body}
    )
    assert response.status_code == status
    error = error_of(response)
    assert (error["code"], error["param"]) == (code, param)
    assert error["type"] == "invalid_request_error"


async def test_a_body_over_the_limit_is_413(home_registry: Registry) -> None:
    register_scripted(home_registry, "bot")
    async with app_client(Settings(max_body_bytes=2000)) as api:
        big = {"model": "bot", "messages": [{"role": "user", "content": "x" * 5000}]}
        response = await api.post("/v1/chat/completions", json=big)
    assert response.status_code == 413
    assert error_of(response)["type"] == "invalid_request_error"


async def test_a_slow_generation_hits_the_request_timeout(home_registry: Registry) -> None:
    register_scripted(home_registry, "slow", replies=["a b c d e f g h"], token_delay_ms=200)
    async with app_client(Settings(request_timeout_s=0.5)) as api:
        whole = await api.post("/v1/chat/completions", json={"model": "slow", "messages": USER})
        assert whole.status_code == 504
        assert error_of(whole)["code"] == "request_timeout"
        streamed = await api.post(
            "/v1/chat/completions", json={"model": "slow", "messages": USER, "stream": True}
        )
        assert streamed.status_code == 200  # headers went out with the first token
        assert '"code":"request_timeout"' in streamed.text.replace(" ", "")
        await api.logged()
        rows = (await api.get("/api/requests?route=slow")).json()["data"]
    assert sorted((r["status"], r["error_code"]) for r in rows) == [
        (504, "request_timeout"),
        (504, "request_timeout"),
    ]


async def test_requests_per_minute_with_openai_headers(bot: AppClient) -> None:
    key = await new_key(bot, limits={"requests_per_minute": 3, "tokens_per_minute": 1000})
    ask = {"model": "bot", "messages": USER}
    answers = [
        await bot.post("/v1/chat/completions", json=ask, headers=bearer(key)) for _ in range(4)
    ]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    first = answers[0].headers
    assert first["x-ratelimit-limit-requests"] == "3"
    assert first["x-ratelimit-remaining-requests"] == "2"
    assert first["x-ratelimit-limit-tokens"] == "1000"
    assert first["x-ratelimit-reset-requests"].endswith("s")
    refused = answers[3]
    assert error_of(refused)["code"] == "rate_limit_exceeded"
    assert error_of(refused)["type"] == "rate_limit_error"
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    # Another key is not affected: the limit is per key.
    other = await new_key(bot)
    assert (await bot.post("/v1/chat/completions", json=ask, headers=bearer(other))).is_success


async def test_tokens_per_minute_count_what_was_used(bot: AppClient) -> None:
    key = await new_key(bot, limits={"tokens_per_minute": 12})
    ask = {"model": "bot", "messages": USER}
    first = await bot.post("/v1/chat/completions", json=ask, headers=bearer(key))
    used = first.json()["usage"]["total_tokens"]
    assert 0 < used < 12
    await bot.logged()
    second = await bot.post("/v1/chat/completions", json=ask, headers=bearer(key))
    assert second.status_code == 200
    assert int(second.headers["x-ratelimit-remaining-tokens"]) <= 12 - used
    await bot.logged()
    third = await bot.post("/v1/chat/completions", json=ask, headers=bearer(key))
    assert third.status_code == 429  # 2 * used > 12: the bucket is empty


async def test_a_route_limit_applies_to_every_key(bot: AppClient) -> None:
    policy = await bot.put("/api/policies/bot", json={"requests_per_minute": 2})
    assert policy.status_code == 200
    ask = {"model": "bot", "messages": USER}
    keys = [await new_key(bot) for _ in range(3)]
    codes = [
        (await bot.post("/v1/chat/completions", json=ask, headers=bearer(k))).status_code
        for k in keys
    ]
    assert codes == [200, 200, 429]


async def test_a_token_budget_refuses_the_next_request(bot: AppClient) -> None:
    key = await new_key(bot, limits={"daily_tokens": 20})
    ask = {"model": "bot", "messages": USER}
    spent = 0
    while spent < 20:
        answer = await bot.post("/v1/chat/completions", json=ask, headers=bearer(key))
        assert answer.status_code == 200
        spent += answer.json()["usage"]["total_tokens"]
        await bot.logged()
    refused = await bot.post("/v1/chat/completions", json=ask, headers=bearer(key))
    assert refused.status_code == 429
    error = error_of(refused)
    assert (error["code"], error["type"]) == ("insufficient_quota", "insufficient_quota")
    assert "daily token budget" in str(error["message"])


async def test_a_cost_budget_uses_the_versions_price(
    api: AppClient, home_registry: Registry
) -> None:
    # 1 unit per token both ways: each request costs its total tokens.
    price = {"input_per_million": 1_000_000, "output_per_million": 1_000_000}
    register_scripted(home_registry, "paid", replies=["a b c"], price=price)
    await api.reload_routes()
    key = await new_key(api, limits={"monthly_cost": 1})
    ask = {"model": "paid", "messages": USER}
    answer = await api.post("/v1/chat/completions", json=ask, headers=bearer(key))
    assert answer.status_code == 200
    await api.logged()
    refused = await api.post("/v1/chat/completions", json=ask, headers=bearer(key))
    assert error_of(refused)["code"] == "insufficient_quota"
    rows = (await api.get(f"/api/usage?key_id={key.split('_')[1]}")).json()["data"]
    assert [r["cost"] for r in rows] == [answer.json()["usage"]["total_tokens"]]


async def test_budget_overshoot_is_bounded_by_the_requests_in_flight(
    api: AppClient, home_registry: Registry
) -> None:
    """Charges land after completion, so concurrent requests admitted under the budget may
    all finish: the overshoot is at most what those in-flight requests use, never more."""
    register_scripted(home_registry, "slowbot", replies=["a b c d e"], token_delay_ms=30)
    await api.reload_routes()
    budget = 10
    key = await new_key(api, limits={"daily_tokens": budget})
    ask = {"model": "slowbot", "messages": USER}
    in_flight = 6
    burst = await asyncio.gather(
        *(api.post("/v1/chat/completions", json=ask, headers=bearer(key)) for _ in range(in_flight))
    )
    assert [r.status_code for r in burst] == [200] * in_flight  # all admitted at spend 0
    per_request = burst[0].json()["usage"]["total_tokens"]
    await api.logged()
    refused = await api.post("/v1/chat/completions", json=ask, headers=bearer(key))
    assert refused.status_code == 429
    rows = (await api.get(f"/api/usage?key_id={key.split('_')[1]}")).json()["data"]
    total = sum(r["total_tokens"] for r in rows)
    assert total == in_flight * per_request
    assert total - budget <= in_flight * per_request  # the bound
    # Sequentially, the budget stops requests as soon as it is reached.
    key2 = await new_key(api, limits={"daily_tokens": budget})
    used = 0
    while True:
        answer = await api.post("/v1/chat/completions", json=ask, headers=bearer(key2))
        await api.logged()
        if answer.status_code != 200:
            break
        used += answer.json()["usage"]["total_tokens"]
    assert used - budget < per_request  # overshoot below one request's use
