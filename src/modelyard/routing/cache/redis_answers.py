"""Answers in Redis, shared by replicas. A lookup is one GET bounded by a timeout (a miss
when Redis is slow or gone); after a failure Redis is skipped for a second, so an outage
costs one timeout per second, not one per request. Stores run in the background.

The redis package is imported when a route first uses this backend."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from modelyard.routing.cache.answer import CachedAnswer

if TYPE_CHECKING:
    import redis.asyncio as aioredis

log = logging.getLogger(__name__)
COOLDOWN_S = 1.0
MAX_PENDING_STORES = 64  # beyond this, answers are not stored (never queued)

# KEYS: the answer's key, the index of its version's answers (a sorted set by time).
# ARGV: the answer, its TTL in ms, the most answers kept. The oldest beyond are deleted.
STORE_SCRIPT = """
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], now, KEYS[1])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
local extra = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[3])
if extra > 0 then
  local old = redis.call('ZRANGE', KEYS[2], 0, extra - 1)
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, extra - 1)
  redis.call('DEL', unpack(old))
end
return extra
"""


def _unreachable() -> tuple[type[Exception], ...]:
    """Every way of not getting an answer from Redis, a timeout included."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import ReadOnlyError, ResponseError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return (
        RedisConnectionError,
        RedisTimeoutError,
        ReadOnlyError,
        ResponseError,
        TimeoutError,
        OSError,
    )


class RedisAnswers:
    """Answers under ``<prefix>:cache:<route>:<version>:``."""

    def __init__(
        self,
        url: str,
        prefix: str,
        timeout_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self._prefix = prefix
        self._timeout_s = timeout_s
        self._clock = clock
        self._client: aioredis.Redis | None = None
        self._skip_until = 0.0
        self._pending: set[asyncio.Task[None]] = set()

    def key(self, route: str, version: str, key: str) -> str:
        return f"{self._prefix}:cache:{route}:{version}:{key}"

    def index(self, route: str, version: str) -> str:
        return f"{self._prefix}:cache:{route}:{version}:index"

    async def get(
        self, route: str, version: str, key: str, timeout_s: float
    ) -> CachedAnswer | None:
        """The stored answer; None when there is none or Redis did not answer in time."""
        if self._clock() < self._skip_until:
            return None
        try:
            async with asyncio.timeout(timeout_s):
                raw = await self._redis().get(self.key(route, version, key))
        except _unreachable() as error:
            self._failed(error)
            return None
        return None if raw is None else CachedAnswer.loads(raw)

    def put(
        self, route: str, version: str, key: str, answer: CachedAnswer, ttl_s: float, most: int
    ) -> None:
        """Store in the background (dropped when too many stores are pending)."""
        if len(self._pending) >= MAX_PENDING_STORES or self._clock() < self._skip_until:
            return
        keys = [self.key(route, version, key), self.index(route, version)]
        args = [answer.dumps(), str(max(1, round(ttl_s * 1000))), str(most)]
        task = asyncio.create_task(self._store(keys, args))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _store(self, keys: list[str], args: list[str]) -> None:
        try:
            async with asyncio.timeout(2 * self._timeout_s):
                await self._redis().eval(STORE_SCRIPT, 2, *keys, *args)
        except _unreachable() as error:
            self._failed(error)

    def _failed(self, error: BaseException) -> None:
        log.info("response cache: Redis unreachable, skipping it for %ss: %r", COOLDOWN_S, error)
        self._skip_until = self._clock() + COOLDOWN_S

    def _redis(self) -> aioredis.Redis:
        if self._client is None:
            import redis.asyncio as aioredis
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff

            self._client = aioredis.Redis.from_url(
                self._url,
                socket_timeout=self._timeout_s,
                socket_connect_timeout=self._timeout_s,
                retry=Retry(NoBackoff(), 0),
                decode_responses=True,
            )
        return self._client

    async def drain(self) -> None:
        """Wait for the pending stores (tests, shutdown)."""
        while self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    async def aclose(self) -> None:
        await self.drain()
        if self._client is not None:
            await self._client.aclose()
            self._client = None
