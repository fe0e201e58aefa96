"""Answers in a real Redis: shared by replicas, bounded by TTL and count, and a lookup that
Redis does not answer in time is a miss that costs at most its timeout (then none for a
second), without holding up other requests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import redis

from modelyard.routing.cache.answer import CachedAnswer
from modelyard.routing.cache.redis_answers import COOLDOWN_S, RedisAnswers
from tests.guard.redis_server import RedisServer

pytestmark = pytest.mark.anyio
ANSWER = CachedAnswer("kept", "stop", 4, 1)


@pytest.fixture
async def answers(redis_url: str, redis_prefix: str) -> AsyncIterator[RedisAnswers]:
    opened = RedisAnswers(redis_url, redis_prefix, timeout_s=0.25)
    yield opened
    await opened.aclose()


async def test_a_stored_answer_is_found_by_another_replica(
    answers: RedisAnswers, redis_url: str, redis_prefix: str, redis_client: redis.Redis
) -> None:
    answers.put("chat", "chat@1", "k1", ANSWER, ttl_s=60, most=100)
    await answers.drain()
    other = RedisAnswers(redis_url, redis_prefix, timeout_s=0.25)
    try:
        assert await other.get("chat", "chat@1", "k1", 0.25) == ANSWER
        assert await other.get("chat", "chat@2", "k1", 0.25) is None  # another version
    finally:
        await other.aclose()
    ttl_ms = redis_client.pttl(answers.key("chat", "chat@1", "k1"))
    assert 0 < ttl_ms <= 60_000


async def test_the_oldest_answers_beyond_the_bound_are_deleted(
    answers: RedisAnswers, redis_client: redis.Redis
) -> None:
    for i in range(5):
        answers.put("chat", "chat@1", f"k{i}", ANSWER, ttl_s=60, most=3)
        await answers.drain()
    found = [await answers.get("chat", "chat@1", f"k{i}", 0.25) for i in range(5)]
    assert found == [None, None, ANSWER, ANSWER, ANSWER]
    assert redis_client.zcard(answers.index("chat", "chat@1")) == 3


async def test_an_answer_expires_after_its_ttl(answers: RedisAnswers) -> None:
    answers.put("chat", "chat@1", "k1", ANSWER, ttl_s=0.05, most=10)
    await answers.drain()
    await asyncio.sleep(0.1)
    assert await answers.get("chat", "chat@1", "k1", 0.25) is None


async def test_a_hung_redis_is_a_miss_within_the_timeout_then_skipped(
    private_redis: RedisServer,
) -> None:
    answers = RedisAnswers(private_redis.url, "t", timeout_s=0.1)
    try:
        answers.put("chat", "chat@1", "k1", ANSWER, ttl_s=60, most=10)
        await answers.drain()
        assert await answers.get("chat", "chat@1", "k1", 0.1) == ANSWER
        private_redis.freeze()
        ticks = 0

        async def ticking() -> None:  # the event loop stays free for other requests
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(ticking())
        started = time.perf_counter()
        assert await answers.get("chat", "chat@1", "k1", 0.1) is None
        waited = time.perf_counter() - started
        assert 0.09 < waited < 0.3
        assert ticks >= 5
        started = time.perf_counter()
        assert await answers.get("chat", "chat@1", "k1", 0.1) is None  # skipped: no wait
        assert time.perf_counter() - started < 0.01
        ticker.cancel()
        private_redis.thaw()
        await asyncio.sleep(COOLDOWN_S + 0.05)
        assert await answers.get("chat", "chat@1", "k1", 0.1) == ANSWER
    finally:
        await answers.aclose()


async def test_a_value_that_is_not_an_answer_is_a_miss(
    answers: RedisAnswers, redis_client: redis.Redis
) -> None:
    redis_client.set(answers.key("chat", "chat@1", "k1"), '{"text": "no finish"}')
    redis_client.set(answers.key("chat", "chat@1", "k2"), "not json")
    assert await answers.get("chat", "chat@1", "k1", 0.25) is None
    assert await answers.get("chat", "chat@1", "k2", 0.25) is None
    assert CachedAnswer.loads(ANSWER.dumps()) == ANSWER
