"""The Redis ledger with a local copy for when Redis is unreachable."""

from __future__ import annotations

import functools
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime

from modelyard.guard.ledger.base import NOTHING, Spend, day_of
from modelyard.guard.ledger.memory import MemoryBudgetLedger
from modelyard.guard.ledger.redis_ledger import RedisBudgetLedger
from modelyard.guard.ratelimit.redis_link import Breaker, RedisUnavailable


class FallbackBudgetLedger:
    """``primary`` while it answers. Every charge also goes to ``local``, which is seeded
    from the store, so while Redis is unreachable ``spent`` answers with this replica's
    view. Charges Redis missed are kept, summed per key and day, and sent once it answers.
    After a failure Redis is left alone for ``cooldown_s``."""

    def __init__(
        self,
        primary: RedisBudgetLedger,
        local: MemoryBudgetLedger,
        *,
        cooldown_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._primary = primary
        self._local = local
        self._breaker = Breaker(cooldown_s, clock)
        self._counts: Counter[str] = Counter()
        # (key_id, day) -> (a moment of that day, what Redis has not been told yet)
        self._unsent: dict[tuple[str, str], tuple[datetime, Spend]] = {}
        self._sending = False

    async def spent(self, key_id: str, now: datetime) -> tuple[Spend, Spend]:
        await self._send_unsent()
        try:
            return await self._breaker.call(lambda: self._primary.spent(key_id, now))
        except RedisUnavailable:
            self._counts["spent"] += 1
            return await self._local.spent(key_id, now)

    async def charge(self, key_id: str, tokens: int, cost: float, now: datetime) -> None:
        await self._local.charge(key_id, tokens, cost, now)
        await self._send_unsent()
        try:
            await self._breaker.call(lambda: self._primary.charge(key_id, tokens, cost, now))
        except RedisUnavailable:
            self._counts["charge"] += 1
            self._keep_unsent(key_id, now, Spend(tokens, cost))

    def seed(self, key_id: str, day: Spend, month: Spend, now: datetime) -> None:
        self._local.seed(key_id, day, month, now)

    async def aclose(self) -> None:
        await self._primary.aclose()
        await self._local.aclose()

    def fallback_counts(self) -> dict[str, int]:
        """``spent`` answers and charges made without Redis."""
        return dict(self._counts)

    def unsent(self) -> Spend:
        """The total of the charges Redis has yet to receive."""
        total = NOTHING
        for _, spend in self._unsent.values():
            total += spend
        return total

    def _keep_unsent(self, key_id: str, now: datetime, spend: Spend) -> None:
        period = (key_id, day_of(now))
        first, kept = self._unsent.get(period, (now, NOTHING))
        self._unsent[period] = (first, kept + spend)

    async def _send_unsent(self) -> None:
        if self._sending or not self._unsent:
            return
        self._sending = True  # one sender: a concurrent one would send the same charges twice
        try:
            while self._unsent:
                (key_id, _), (now, spend) = self._unsent.popitem()
                try:
                    send = functools.partial(
                        self._primary.charge, key_id, spend.tokens, spend.cost, now
                    )
                    await self._breaker.call(send)
                except RedisUnavailable:
                    self._keep_unsent(key_id, now, spend)
                    return
        finally:
            self._sending = False
