"""Budget totals in Redis, shared by all replicas: one hash (tokens, cost) per key and UTC
day, one per key and UTC month, each expiring after its period is over."""

from __future__ import annotations

from datetime import datetime

from modelyard.guard.ledger.base import Spend, day_of, month_of
from modelyard.guard.ratelimit.redis_link import call_redis, connect

DAY_TTL_S = 2 * 24 * 3600
MONTH_TTL_S = 32 * 24 * 3600


class RedisBudgetLedger:
    """Totals under ``<prefix>:ledger:``. Raises ``RedisUnavailable`` when Redis does not
    answer within about twice ``timeout_s``."""

    def __init__(self, url: str, prefix: str = "modelyard", *, timeout_s: float = 0.25) -> None:
        self._redis = connect(url, timeout_s)
        self._prefix = prefix
        self._timeout_s = timeout_s

    async def spent(self, key_id: str, now: datetime) -> tuple[Spend, Spend]:
        day_key, month_key = self._keys(key_id, now)

        async def read() -> list[list[str | None]]:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.hmget(day_key, ["tokens", "cost"])
                pipe.hmget(month_key, ["tokens", "cost"])
                return list(await pipe.execute())

        day, month = await call_redis(read, self._timeout_s)
        return _spend(day), _spend(month)

    async def charge(self, key_id: str, tokens: int, cost: float, now: datetime) -> None:
        day_key, month_key = self._keys(key_id, now)

        async def write() -> None:
            async with self._redis.pipeline(transaction=True) as pipe:
                for key, ttl_s in ((day_key, DAY_TTL_S), (month_key, MONTH_TTL_S)):
                    pipe.hincrby(key, "tokens", tokens)
                    pipe.hincrbyfloat(key, "cost", cost)
                    pipe.expire(key, ttl_s)
                await pipe.execute()

        await call_redis(write, self._timeout_s)

    def seed(self, key_id: str, day: Spend, month: Spend, now: datetime) -> None:
        """Nothing to do: Redis holds the totals of every replica."""

    def fallback_counts(self) -> dict[str, int]:
        return {}  # no fallback: it raises ``RedisUnavailable``

    async def aclose(self) -> None:
        await self._redis.aclose()

    def _keys(self, key_id: str, now: datetime) -> tuple[str, str]:
        base = f"{self._prefix}:ledger:{key_id}"
        return f"{base}:day:{day_of(now)}", f"{base}:month:{month_of(now)}"


def _spend(fields: list[str | None]) -> Spend:
    tokens, cost = fields
    return Spend(tokens=int(tokens or 0), cost=float(cost or 0.0))
