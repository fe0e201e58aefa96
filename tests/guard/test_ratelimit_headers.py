"""OpenAI's x-ratelimit-* headers: the tightest scope per pair, OpenAI's duration format."""

from __future__ import annotations

import pytest

from modelyard.guard.ratelimit import Decision, ScopeState, format_duration, openai_headers


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (-2.5, "0s"),
        (0.0004, "1ms"),
        (0.02, "20ms"),
        (0.0201, "21ms"),  # rounded up: the bucket is not full before that
        (0.999, "999ms"),
        (0.9995, "1s"),
        (1, "1s"),
        (8.64, "8.64s"),
        (59.9999, "1m0s"),
        (60, "1m0s"),
        (90.5, "1m30.5s"),
        (360, "6m0s"),
        (3600, "1h0m0s"),
        (3725.25, "1h2m5.25s"),
    ],
)
def test_durations_are_written_as_openai_does(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def _state(
    scope: str, requests: tuple[int, int, float] | None, tokens: tuple[int, int, float] | None
) -> ScopeState:
    return ScopeState(
        scope=scope,
        limit_requests=requests[0] if requests else None,
        remaining_requests=requests[1] if requests else None,
        reset_requests_s=requests[2] if requests else None,
        limit_tokens=tokens[0] if tokens else None,
        remaining_tokens=tokens[1] if tokens else None,
        reset_tokens_s=tokens[2] if tokens else None,
    )


def _decision(*states: ScopeState) -> Decision:
    return Decision(allowed=True, states=states, retry_after_s=None, refused_by=None)


def test_each_pair_comes_from_the_scope_with_the_fewest_remaining() -> None:
    decision = _decision(
        _state("key:a", (100, 7, 55.8), (10_000, 9_000, 6.0)),
        _state("route:chat", (1000, 900, 6.0), (40_000, 150, 0.02)),
    )
    assert openai_headers(decision) == {
        "x-ratelimit-limit-requests": "100",
        "x-ratelimit-remaining-requests": "7",
        "x-ratelimit-reset-requests": "55.8s",
        "x-ratelimit-limit-tokens": "40000",
        "x-ratelimit-remaining-tokens": "150",
        "x-ratelimit-reset-tokens": "20ms",
    }


def test_unlimited_pairs_are_left_out_and_token_debt_shows_as_zero() -> None:
    decision = _decision(_state("key:a", None, (600, -300, 90.0)), _state("route:chat", None, None))
    assert openai_headers(decision) == {
        "x-ratelimit-limit-tokens": "600",
        "x-ratelimit-remaining-tokens": "0",
        "x-ratelimit-reset-tokens": "1m30s",
    }


def test_a_decision_without_states_has_no_headers() -> None:
    assert openai_headers(_decision()) == {}
