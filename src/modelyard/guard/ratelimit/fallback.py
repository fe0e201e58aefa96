"""The Redis limiter with a plan for when Redis is unreachable: refuse, admit, or count in
this process until Redis answers again."""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Callable, Sequence

from modelyard.guard.ratelimit.base import Decision, FallbackMode, Limits
from modelyard.guard.ratelimit.memory import MemoryRateLimiter
from modelyard.guard.ratelimit.redis_limiter import RedisRateLimiter
from modelyard.guard.ratelimit.redis_link import Breaker, RedisUnavailable

DENY_RETRY_AFTER_S = 1.0


class FallbackRateLimiter:
    """``primary`` while it answers. When it does not: ``deny`` refuses, ``allow`` admits,
    ``local`` asks ``local`` (per-replica limits). After a failure Redis is left alone for
    ``cooldown_s``, so an outage does not add a timeout to every request."""

    def __init__(
        self,
        primary: RedisRateLimiter,
        mode: FallbackMode,
        local: MemoryRateLimiter,
        *,
        cooldown_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._primary = primary
        self._mode: FallbackMode = mode
        self._local = local
        self._breaker = Breaker(cooldown_s, clock)
        self._counts: Counter[str] = Counter()

    async def admit(self, scopes: Sequence[tuple[str, Limits]]) -> Decision:
        try:
            return await self._breaker.call(lambda: self._primary.admit(scopes))
        except RedisUnavailable:
            self._counts[self._mode] += 1
            if self._mode == "deny":
                return Decision(
                    allowed=False,
                    states=(),
                    retry_after_s=DENY_RETRY_AFTER_S,
                    refused_by=None,
                    fallback="deny",
                )
            if self._mode == "allow":
                return Decision(
                    allowed=True, states=(), retry_after_s=None, refused_by=None, fallback="allow"
                )
            decision = await self._local.admit(scopes)
            return dataclasses.replace(decision, fallback="local")

    async def charge_tokens(self, scopes: Sequence[tuple[str, Limits]], tokens: int) -> None:
        try:
            await self._breaker.call(lambda: self._primary.charge_tokens(scopes, tokens))
        except RedisUnavailable:
            self._counts["charge_tokens"] += 1
            await self._local.charge_tokens(scopes, tokens)

    async def aclose(self) -> None:
        await self._primary.aclose()
        await self._local.aclose()

    def fallback_counts(self) -> dict[str, int]:
        """Decisions made without Redis, by fallback mode, and ``charge_tokens`` calls
        that went to the local limiter instead."""
        return dict(self._counts)

    @property
    def redis_reachable(self) -> bool:
        """False while the breaker keeps requests away from Redis."""
        return not self._breaker.is_open
