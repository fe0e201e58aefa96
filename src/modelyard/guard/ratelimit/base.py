"""The rate limiter contract and the values it exchanges.

A scope (``"key:abc123"``, ``"route:chat"``) has two token buckets: requests and tokens.
Each holds at most its per-minute limit, starts full and refills at limit/60 per second.
A request is admitted when every scope's request bucket holds at least one request and its
token bucket more than zero tokens; tokens are charged after the response, with the actual
count, so a token bucket can go negative and then refuses until it has refilled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

FallbackMode = Literal["deny", "allow", "local"]


@dataclass(frozen=True)
class Limits:
    """Per-minute limits of one scope; ``None`` is unlimited."""

    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None

    def __post_init__(self) -> None:
        for name in ("requests_per_minute", "tokens_per_minute"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive or None (unlimited), not {value}")


@dataclass(frozen=True)
class ScopeState:
    """One scope's buckets after a decision. ``remaining_tokens`` can be negative."""

    scope: str
    limit_requests: int | None
    remaining_requests: int | None
    reset_requests_s: float | None  # until the bucket is full again
    limit_tokens: int | None
    remaining_tokens: int | None
    reset_tokens_s: float | None


@dataclass(frozen=True)
class Decision:
    allowed: bool
    states: tuple[ScopeState, ...]
    retry_after_s: float | None  # when refused: time until the refusing buckets admit again
    refused_by: str | None  # the first scope that refused
    fallback: FallbackMode | None = None  # set when the shared backend was unreachable


class RateLimiter(Protocol):
    async def admit(self, scopes: Sequence[tuple[str, Limits]]) -> Decision:
        """Admit one request in all ``scopes`` (distinct names) or in none of them."""
        ...

    async def charge_tokens(self, scopes: Sequence[tuple[str, Limits]], tokens: int) -> None:
        """Take the tokens a finished request used from each scope's token bucket."""
        ...

    async def aclose(self) -> None: ...

    def fallback_counts(self) -> dict[str, int]:
        """Decisions made without the shared backend, by fallback mode (empty without one)."""
        ...
