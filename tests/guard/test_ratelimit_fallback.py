"""What the limiter does when Redis is stopped or hung: deny, allow or count locally, fast,
and back to Redis once it answers."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

import pytest

from modelyard.guard.ratelimit import (
    FallbackMode,
    FallbackRateLimiter,
    Limits,
    MemoryRateLimiter,
    RedisRateLimiter,
    RedisUnavailable,
    open_rate_limiter,
)
from tests.guard.conftest import FakeClock
from tests.guard.redis_server import RedisServer

pytestmark = pytest.mark.anyio

Opener = Callable[[FallbackMode], FallbackRateLimiter]
SCOPES = [("key:a", Limits(requests_per_minute=2, tokens_per_minute=60))]


@pytest.fixture
async def open_fallback(private_redis: RedisServer, clock: FakeClock) -> AsyncIterator[Opener]:
    """Fallback limiters over the private Redis, their breaker on the fake clock."""
    opened: list[FallbackRateLimiter] = []

    def open_one(mode: FallbackMode) -> FallbackRateLimiter:
        limiter = FallbackRateLimiter(
            RedisRateLimiter(private_redis.url, "test"), mode, MemoryRateLimiter(), clock=clock
        )
        opened.append(limiter)
        return limiter

    yield open_one
    for limiter in opened:
        await limiter.aclose()


async def test_deny_refuses_while_redis_is_down(
    open_fallback: Opener, private_redis: RedisServer
) -> None:
    limiter = open_fallback("deny")
    private_redis.stop()
    for _ in range(3):
        decision = await limiter.admit(SCOPES)
        assert (decision.allowed, decision.fallback, decision.retry_after_s) == (False, "deny", 1)
    assert limiter.fallback_counts() == {"deny": 3}


async def test_allow_admits_while_redis_is_down(
    open_fallback: Opener, private_redis: RedisServer
) -> None:
    limiter = open_fallback("allow")
    private_redis.stop()
    decisions = [await limiter.admit(SCOPES) for _ in range(5)]
    assert [(d.allowed, d.fallback) for d in decisions] == [(True, "allow")] * 5
    assert limiter.fallback_counts() == {"allow": 5}


async def test_local_counts_in_this_process_while_redis_is_down(
    open_fallback: Opener, private_redis: RedisServer, clock: FakeClock
) -> None:
    limiter = open_fallback("local")
    assert (await limiter.admit(SCOPES)).fallback is None
    private_redis.stop()
    decisions = [await limiter.admit(SCOPES) for _ in range(3)]
    assert [(d.allowed, d.fallback) for d in decisions] == [
        (True, "local"),
        (True, "local"),
        (False, "local"),
    ]
    assert decisions[-1].refused_by == "key:a"
    clock.advance(60)
    await limiter.charge_tokens(SCOPES, 120)  # to the local token bucket: now in debt
    refused = await limiter.admit(SCOPES)
    assert (refused.allowed, refused.states[0].remaining_tokens) == (False, -60)
    assert limiter.fallback_counts() == {"local": 4, "charge_tokens": 1}


async def test_redis_is_used_again_once_it_is_back(
    open_fallback: Opener, private_redis: RedisServer, clock: FakeClock
) -> None:
    limiter = open_fallback("deny")
    private_redis.stop()
    assert (await limiter.admit(SCOPES)).fallback == "deny"
    assert not limiter.redis_reachable
    private_redis.start()  # a new process: the script must be loaded again
    assert (await limiter.admit(SCOPES)).fallback == "deny"  # the breaker is still open
    clock.advance(1.0)
    decision = await limiter.admit(SCOPES)
    assert (decision.allowed, decision.fallback) == (True, None)
    assert limiter.redis_reachable
    assert limiter.fallback_counts() == {"deny": 2}


async def test_a_hung_redis_fails_within_the_timeout(private_redis: RedisServer) -> None:
    limiter = RedisRateLimiter(private_redis.url, "test", timeout_s=0.25)
    try:
        await limiter.admit(SCOPES)  # a pooled connection to the soon hung server
        private_redis.freeze()
        for _ in range(2):  # on the pooled connection, then on a new one
            started = time.monotonic()
            with pytest.raises(RedisUnavailable):
                await limiter.admit(SCOPES)
            assert time.monotonic() - started < 0.8
    finally:
        await limiter.aclose()


async def test_the_breaker_spares_requests_the_timeout_of_a_hung_redis(
    open_fallback: Opener, private_redis: RedisServer, clock: FakeClock
) -> None:
    limiter = open_fallback("allow")
    await limiter.admit(SCOPES)
    private_redis.freeze()
    started = time.monotonic()
    assert (await limiter.admit(SCOPES)).fallback == "allow"
    assert time.monotonic() - started < 0.8
    started = time.monotonic()
    for _ in range(50):
        assert (await limiter.admit(SCOPES)).fallback == "allow"
        await limiter.charge_tokens(SCOPES, 10)
    assert time.monotonic() - started < 0.25  # no call waited for Redis
    private_redis.thaw()
    clock.advance(1.0)
    assert (await limiter.admit(SCOPES)).fallback is None


async def test_the_factory_opens_a_memory_or_a_redis_limiter(
    redis_url: str, redis_prefix: str
) -> None:
    memory = open_rate_limiter("memory", redis_url, "deny", redis_prefix)
    shared = open_rate_limiter("redis", redis_url, "deny", redis_prefix)
    other_replica = open_rate_limiter("redis", redis_url, "deny", redis_prefix)
    one_request = [("key:a", Limits(requests_per_minute=1))]
    try:
        assert isinstance(memory, MemoryRateLimiter)
        assert (await shared.admit(one_request)).allowed
        refused = await other_replica.admit(one_request)
        assert (refused.allowed, refused.fallback) == (False, None)  # counted in Redis
    finally:
        for limiter in (memory, shared, other_replica):
            await limiter.aclose()
