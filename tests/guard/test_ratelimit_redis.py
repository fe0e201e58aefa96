"""The Redis limiter against a real Redis: the memory limiter's semantics, shared by replicas."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis

from modelyard.guard.ratelimit import Limits, RedisRateLimiter
from tests.guard.redis_server import RedisServer

pytestmark = pytest.mark.anyio


@pytest.fixture
async def limiter(redis_url: str, redis_prefix: str) -> AsyncIterator[RedisRateLimiter]:
    opened = RedisRateLimiter(redis_url, redis_prefix)
    yield opened
    await opened.aclose()


def _age_bucket(client: redis.Redis, key: str, seconds: float) -> None:
    """Make a bucket look ``seconds`` older (its ``at`` is in server microseconds)."""
    at = int(str(client.hget(key, "at")))
    client.hset(key, "at", str(at - int(seconds * 1_000_000)))


async def test_admits_the_limit_then_refuses_with_the_time_to_wait(
    limiter: RedisRateLimiter,
) -> None:
    scopes = [("key:a", Limits(requests_per_minute=3))]
    decisions = [await limiter.admit(scopes) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.states[0].remaining_requests for d in decisions] == [2, 1, 0, 0]
    refused = decisions[-1]
    assert refused.refused_by == "key:a"
    assert refused.retry_after_s is not None
    assert 19.0 < refused.retry_after_s <= 20.0


async def test_buckets_refill_with_server_time_up_to_their_limit(
    limiter: RedisRateLimiter, redis_client: redis.Redis, redis_prefix: str
) -> None:
    scopes = [("key:a", Limits(requests_per_minute=2))]
    key = f"{redis_prefix}:rl:key:a:requests"
    await limiter.admit(scopes)
    await limiter.admit(scopes)
    assert not (await limiter.admit(scopes)).allowed
    _age_bucket(redis_client, key, 30)  # one request refills in 30 s
    assert (await limiter.admit(scopes)).allowed
    assert not (await limiter.admit(scopes)).allowed
    _age_bucket(redis_client, key, 3600)
    assert (await limiter.admit(scopes)).states[0].remaining_requests == 1


async def test_charged_tokens_go_negative_and_refuse(limiter: RedisRateLimiter) -> None:
    scopes = [("key:a", Limits(tokens_per_minute=60))]
    for _ in range(20):
        assert (await limiter.admit(scopes)).allowed
    await limiter.charge_tokens(scopes, 360)
    refused = await limiter.admit(scopes)
    assert not refused.allowed
    assert refused.states[0].remaining_tokens in (-300, -299)
    assert refused.retry_after_s is not None
    assert 298 < refused.retry_after_s <= 300.001


async def test_a_refusal_in_one_scope_takes_nothing_from_the_others(
    limiter: RedisRateLimiter,
) -> None:
    key, route = ("key:a", Limits(requests_per_minute=5)), ("route:chat", Limits(1))
    assert (await limiter.admit([key, route])).allowed
    refused = await limiter.admit([key, route])
    assert (refused.allowed, refused.refused_by) == (False, "route:chat")
    assert [s.remaining_requests for s in refused.states] == [4, 0]
    assert (await limiter.admit([key])).states[0].remaining_requests == 3


async def test_the_first_refusing_scope_is_named_and_the_longest_wait_returned(
    limiter: RedisRateLimiter,
) -> None:
    key = ("key:a", Limits(requests_per_minute=1))
    route = ("route:chat", Limits(tokens_per_minute=60))
    await limiter.admit([key])
    await limiter.charge_tokens([route], 180)
    refused = await limiter.admit([key, route])
    assert refused.refused_by == "key:a"
    assert refused.retry_after_s is not None
    assert 119 < refused.retry_after_s <= 120.001  # the route's debt, not the key's 60 s


async def test_keys_expire_when_their_bucket_would_be_full(
    limiter: RedisRateLimiter, redis_client: redis.Redis, redis_prefix: str
) -> None:
    scopes = [("key:a", Limits(requests_per_minute=60, tokens_per_minute=60))]
    await limiter.admit(scopes)
    requests_ttl = redis_client.pttl(f"{redis_prefix}:rl:key:a:requests")
    assert 0 < requests_ttl <= 2000  # one request refills in 1 s, plus 1 s
    assert not redis_client.exists(f"{redis_prefix}:rl:key:a:tokens")  # untouched: full
    await limiter.charge_tokens(scopes, 600)
    tokens_ttl = redis_client.pttl(f"{redis_prefix}:rl:key:a:tokens")
    assert 599_000 < tokens_ttl <= 601_000  # 600 tokens at 1/s, plus 1 s


async def test_unlimited_scopes_write_nothing(
    limiter: RedisRateLimiter, redis_client: redis.Redis, redis_prefix: str
) -> None:
    scopes = [("key:a", Limits())]
    assert (await limiter.admit(scopes)).allowed
    await limiter.charge_tokens(scopes, 100)
    assert list(redis_client.scan_iter(match=f"{redis_prefix}:*")) == []


async def test_two_replicas_admit_no_more_than_the_limit_together(
    redis_url: str, redis_prefix: str
) -> None:
    replicas = [RedisRateLimiter(redis_url, redis_prefix) for _ in range(2)]
    scopes = [("key:shared", Limits(requests_per_minute=10))]
    try:
        decisions = await asyncio.gather(*(replicas[i % 2].admit(scopes) for i in range(50)))
    finally:
        for replica in replicas:
            await replica.aclose()
    assert sum(d.allowed for d in decisions) == 10
    assert {d.refused_by for d in decisions if not d.allowed} == {"key:shared"}


async def test_a_server_that_forgot_the_script_gets_it_again(
    private_redis: RedisServer,
) -> None:
    limiter = RedisRateLimiter(private_redis.url, "test")
    scopes = [("key:a", Limits(requests_per_minute=5))]
    try:
        assert (await limiter.admit(scopes)).allowed
        client = redis.Redis.from_url(private_redis.url)
        client.script_flush()
        client.close()
        assert (await limiter.admit(scopes)).states[0].remaining_requests == 3
    finally:
        await limiter.aclose()
