"""Token-bucket arithmetic shared by the backends (the Redis script mirrors it in Lua).

A bucket's level is a float: requests or tokens available now. A missing bucket is full.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from modelyard.guard.ratelimit.base import Decision, Limits, ScopeState

WINDOW_S = 60.0
# Float slack, so a bucket refilled to exactly one request is not refused by rounding.
EPSILON = 1e-9
# A token bucket admits above zero: a retry this long after it reaches zero is admitted.
TOKEN_RETRY_MARGIN_S = 0.001

Levels = tuple[float | None, float | None]  # (requests, tokens); None where unlimited


def refill(level: float, limit: int, elapsed_s: float) -> float:
    return min(float(limit), level + max(0.0, elapsed_s) * limit / WINDOW_S)


def seconds_to_full(level: float, limit: int) -> float:
    return max(0.0, (limit - level) * WINDOW_S / limit)


def refuses(levels: Levels) -> bool:
    requests, tokens = levels
    return (requests is not None and requests < 1 - EPSILON) or (tokens is not None and tokens <= 0)


def _wait_s(limits: Limits, levels: Levels) -> float:
    """How long until a scope whose buckets are at ``levels`` admits a request."""
    requests, tokens = levels
    wait = TOKEN_RETRY_MARGIN_S
    if requests is not None and limits.requests_per_minute is not None:
        wait = max(wait, (1 - requests) * WINDOW_S / limits.requests_per_minute)
    if tokens is not None and limits.tokens_per_minute is not None and tokens <= 0:
        wait = max(wait, -tokens * WINDOW_S / limits.tokens_per_minute + TOKEN_RETRY_MARGIN_S)
    return math.ceil(wait * 1000 - EPSILON) / 1000


def scope_state(scope: str, limits: Limits, levels: Levels) -> ScopeState:
    requests, tokens = levels
    rpm, tpm = limits.requests_per_minute, limits.tokens_per_minute
    return ScopeState(
        scope=scope,
        limit_requests=rpm,
        remaining_requests=None
        if requests is None or rpm is None
        else max(0, math.floor(requests + EPSILON)),
        reset_requests_s=None
        if requests is None or rpm is None
        else seconds_to_full(requests, rpm),
        limit_tokens=tpm,
        remaining_tokens=None if tokens is None or tpm is None else math.floor(tokens + EPSILON),
        reset_tokens_s=None if tokens is None or tpm is None else seconds_to_full(tokens, tpm),
    )


def build_decision(
    scopes: Sequence[tuple[str, Limits]], levels: Sequence[Levels], refused_index: int | None
) -> Decision:
    """The decision for ``levels`` (after consumption when admitted, untouched when refused)."""
    states = tuple(
        scope_state(scope, limits, lv) for (scope, limits), lv in zip(scopes, levels, strict=True)
    )
    if refused_index is None:
        return Decision(allowed=True, states=states, retry_after_s=None, refused_by=None)
    refusing = {refused_index} | {i for i, lv in enumerate(levels) if refuses(lv)}
    return Decision(
        allowed=False,
        states=states,
        retry_after_s=max(_wait_s(scopes[i][1], levels[i]) for i in refusing),
        refused_by=scopes[refused_index][0],
    )
