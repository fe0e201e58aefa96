"""OpenAI's ``x-ratelimit-*`` response headers for a decision."""

from __future__ import annotations

import math

from modelyard.guard.ratelimit.base import Decision, ScopeState


def format_duration(seconds: float) -> str:
    """A duration as OpenAI writes it (Go's format, to the millisecond, rounded up):
    ``20ms``, ``1s``, ``1m30.5s``, ``6m0s``, ``1h0m0s``."""
    millis = math.ceil(seconds * 1000 - 1e-6) if seconds > 0 else 0
    if millis == 0:
        return "0s"
    if millis < 1000:
        return f"{millis}ms"
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    whole, fraction = divmod(rest, 1000)
    text = f"{whole}.{fraction:03d}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{hours}h{minutes}m{text}"
    if minutes:
        return f"{minutes}m{text}"
    return text


def _pair(
    limit: int | None, remaining: int | None, reset_s: float | None, kind: str
) -> dict[str, str]:
    if limit is None or remaining is None or reset_s is None:
        return {}
    return {
        f"x-ratelimit-limit-{kind}": str(limit),
        f"x-ratelimit-remaining-{kind}": str(max(0, remaining)),
        f"x-ratelimit-reset-{kind}": format_duration(reset_s),
    }


def _tightest(states: list[ScopeState], remaining: list[int | None]) -> ScopeState | None:
    limited = [(left, i) for i, left in enumerate(remaining) if left is not None]
    return states[min(limited)[1]] if limited else None


def openai_headers(decision: Decision) -> dict[str, str]:
    """Requests and tokens headers, each from the scope with the fewest remaining;
    a pair is left out when no scope limits it."""
    states = list(decision.states)
    headers: dict[str, str] = {}
    by_requests = _tightest(states, [s.remaining_requests for s in states])
    if by_requests is not None:
        headers |= _pair(
            by_requests.limit_requests,
            by_requests.remaining_requests,
            by_requests.reset_requests_s,
            "requests",
        )
    by_tokens = _tightest(states, [s.remaining_tokens for s in states])
    if by_tokens is not None:
        headers |= _pair(
            by_tokens.limit_tokens, by_tokens.remaining_tokens, by_tokens.reset_tokens_s, "tokens"
        )
    return headers
