"""Redis on the request path: short timeouts, no retries, and a breaker that stops calling
a dead server for a moment, so an outage costs one timeout per second, not one per request.

The redis package is imported by the functions that talk to Redis: a server with the
memory backends never loads it (issue 8)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    import redis.asyncio as aioredis

T = TypeVar("T")


class RedisUnavailable(Exception):
    """Redis did not answer in time, refused the connection, or the breaker is open."""


def unreachable() -> tuple[type[Exception], ...]:
    """What "Redis is unreachable" looks like; a replica answering READONLY after a
    failover too."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import ReadOnlyError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return (RedisConnectionError, RedisTimeoutError, ReadOnlyError, TimeoutError, OSError)


def connect(url: str, timeout_s: float) -> aioredis.Redis:
    """A client that fails within ``timeout_s`` per socket operation and never retries."""
    import redis.asyncio as aioredis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    return aioredis.Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
        decode_responses=True,
    )


async def call_redis(operation: Callable[[], Awaitable[T]], timeout_s: float) -> T:
    """Run ``operation`` within twice ``timeout_s`` (connect, then the command), mapping
    every way of not reaching Redis to ``RedisUnavailable``."""
    try:
        async with asyncio.timeout(2 * timeout_s):
            return await operation()
    except unreachable() as error:
        raise RedisUnavailable(f"Redis unreachable: {error!r}") from error


class Breaker:
    """Closed: calls go through. After a failure it opens for ``cooldown_s``; then one call
    probes, and its success closes the breaker."""

    def __init__(self, cooldown_s: float = 1.0, clock: Callable[[], float] = time.monotonic):
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._open_until: float | None = None
        self._probing = False

    @property
    def is_open(self) -> bool:
        return self._open_until is not None

    async def call(self, operation: Callable[[], Awaitable[T]]) -> T:
        if self._open_until is not None:
            if self._probing or self._clock() < self._open_until:
                raise RedisUnavailable("Redis breaker open after a recent failure")
            self._probing = True
        try:
            result = await operation()
        except RedisUnavailable:
            self._open_until = self._clock() + self._cooldown_s
            raise
        finally:
            self._probing = False
        self._open_until = None
        return result
