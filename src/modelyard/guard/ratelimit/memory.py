"""The per-process rate limiter: buckets in a dict, updated without awaiting (so atomically
under asyncio). Each replica counts alone: N replicas admit up to N times the limit."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from modelyard.guard.ratelimit.base import Decision, Limits
from modelyard.guard.ratelimit.buckets import (
    Levels,
    build_decision,
    refill,
    refuses,
    seconds_to_full,
)

# Buckets examined for eviction per bucket written: keeps memory bounded at O(1) per call.
_EVICTION_SCAN_PER_WRITE = 2


@dataclass
class _Bucket:
    level: float
    at: float
    limit: int

    def full_at(self) -> float:
        return self.at + seconds_to_full(self.level, self.limit)


class MemoryRateLimiter:
    """Token buckets in this process. ``clock`` returns seconds (monotonic)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        # Rotated on every write: eviction walks it from the front, a few buckets per call.
        self._buckets: OrderedDict[tuple[str, str], _Bucket] = OrderedDict()

    async def admit(self, scopes: Sequence[tuple[str, Limits]]) -> Decision:
        now = self._clock()
        levels = [self._levels(scope, limits, now) for scope, limits in scopes]
        refused = next((i for i, lv in enumerate(levels) if refuses(lv)), None)
        if refused is None:
            for i, (scope, limits) in enumerate(scopes):
                requests, tokens = levels[i]
                if requests is not None and limits.requests_per_minute is not None:
                    requests -= 1
                    self._write((scope, "requests"), requests, limits.requests_per_minute, now)
                levels[i] = (requests, tokens)
        self._evict_some(now, 2 * len(scopes))
        return build_decision(scopes, levels, refused)

    async def charge_tokens(self, scopes: Sequence[tuple[str, Limits]], tokens: int) -> None:
        now = self._clock()
        for scope, limits in scopes:
            limit = limits.tokens_per_minute
            if limit is not None:
                level = self._level((scope, "tokens"), limit, now)
                self._write((scope, "tokens"), level - tokens, limit, now)
        self._evict_some(now, len(scopes))

    async def aclose(self) -> None:
        self._buckets.clear()

    def fallback_counts(self) -> dict[str, int]:
        return {}

    def bucket_count(self) -> int:
        """Buckets held in memory (full buckets are dropped; a missing bucket is full)."""
        return len(self._buckets)

    def _levels(self, scope: str, limits: Limits, now: float) -> Levels:
        rpm, tpm = limits.requests_per_minute, limits.tokens_per_minute
        return (
            None if rpm is None else self._level((scope, "requests"), rpm, now),
            None if tpm is None else self._level((scope, "tokens"), tpm, now),
        )

    def _level(self, key: tuple[str, str], limit: int, now: float) -> float:
        bucket = self._buckets.get(key)
        if bucket is None:
            return float(limit)
        return refill(bucket.level, limit, now - bucket.at)

    def _write(self, key: tuple[str, str], level: float, limit: int, now: float) -> None:
        self._buckets.pop(key, None)
        self._buckets[key] = _Bucket(level=level, at=now, limit=limit)

    def _evict_some(self, now: float, writes: int) -> None:
        for _ in range(min(len(self._buckets), _EVICTION_SCAN_PER_WRITE * writes + 1)):
            key, bucket = self._buckets.popitem(last=False)
            if bucket.full_at() > now:
                self._buckets[key] = bucket
