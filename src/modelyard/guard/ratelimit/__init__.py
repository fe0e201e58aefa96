"""Rate limits: requests and tokens per minute per scope, in this process or in Redis."""

from __future__ import annotations

from typing import Literal

from modelyard.guard.ratelimit.base import (
    Decision,
    FallbackMode,
    Limits,
    RateLimiter,
    ScopeState,
)
from modelyard.guard.ratelimit.fallback import FallbackRateLimiter
from modelyard.guard.ratelimit.headers import format_duration, openai_headers
from modelyard.guard.ratelimit.memory import MemoryRateLimiter
from modelyard.guard.ratelimit.redis_limiter import RedisRateLimiter
from modelyard.guard.ratelimit.redis_link import RedisUnavailable

__all__ = [
    "Decision",
    "FallbackMode",
    "FallbackRateLimiter",
    "Limits",
    "MemoryRateLimiter",
    "RateLimiter",
    "RedisRateLimiter",
    "RedisUnavailable",
    "ScopeState",
    "format_duration",
    "open_rate_limiter",
    "openai_headers",
]


def open_rate_limiter(
    backend: Literal["memory", "redis"],
    redis_url: str,
    fallback: FallbackMode,
    prefix: str,
    *,
    timeout_s: float = 0.25,
) -> RateLimiter:
    """The limiter a server uses: per process, or shared in Redis with ``fallback``."""
    if backend == "memory":
        return MemoryRateLimiter()
    return FallbackRateLimiter(
        RedisRateLimiter(redis_url, prefix, timeout_s=timeout_s), fallback, MemoryRateLimiter()
    )
