"""The per-process limiter, on a fake clock: exact counts, refill, token debt, atomicity."""

from __future__ import annotations

import pytest

from modelyard.guard.ratelimit import Limits, MemoryRateLimiter, openai_headers
from tests.guard.conftest import FakeClock

pytestmark = pytest.mark.anyio


@pytest.fixture
def limiter(clock: FakeClock) -> MemoryRateLimiter:
    return MemoryRateLimiter(clock)


async def test_admits_the_limit_then_refuses_until_one_request_has_refilled(
    limiter: MemoryRateLimiter, clock: FakeClock
) -> None:
    scopes = [("key:a", Limits(requests_per_minute=5))]
    decisions = [await limiter.admit(scopes) for _ in range(6)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert [d.states[0].remaining_requests for d in decisions] == [4, 3, 2, 1, 0, 0]
    refused = decisions[-1]
    assert refused.refused_by == "key:a"
    assert refused.retry_after_s == 12.0  # one request refills in 60/5 s
    clock.advance(11.999)
    assert not (await limiter.admit(scopes)).allowed
    clock.advance(0.001)
    assert (await limiter.admit(scopes)).allowed
    assert not (await limiter.admit(scopes)).allowed


async def test_an_idle_bucket_refills_to_its_limit_and_no_further(
    limiter: MemoryRateLimiter, clock: FakeClock
) -> None:
    scopes = [("key:a", Limits(requests_per_minute=3))]
    for _ in range(3):
        await limiter.admit(scopes)
    clock.advance(3600)
    decisions = [await limiter.admit(scopes) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]


async def test_state_reports_the_time_until_the_bucket_is_full(
    limiter: MemoryRateLimiter, clock: FakeClock
) -> None:
    scopes = [("key:a", Limits(requests_per_minute=60, tokens_per_minute=6000))]
    for _ in range(3):
        decision = await limiter.admit(scopes)
    state = decision.states[0]
    assert (state.limit_requests, state.remaining_requests) == (60, 57)
    assert state.reset_requests_s == pytest.approx(3.0)
    assert (state.limit_tokens, state.remaining_tokens, state.reset_tokens_s) == (6000, 6000, 0.0)
    clock.advance(1.5)
    state = (await limiter.admit(scopes)).states[0]
    assert state.remaining_requests == 57  # 57 + 1.5 refilled - 1 taken = 57.5
    assert state.reset_requests_s == pytest.approx(2.5)


async def test_admission_takes_no_tokens_charging_does_and_may_go_negative(
    limiter: MemoryRateLimiter, clock: FakeClock
) -> None:
    scopes = [("key:a", Limits(tokens_per_minute=600))]
    for _ in range(50):
        assert (await limiter.admit(scopes)).allowed
    await limiter.charge_tokens(scopes, 900)
    refused = await limiter.admit(scopes)
    assert not refused.allowed
    assert refused.states[0].remaining_tokens == -300
    assert refused.states[0].reset_tokens_s == pytest.approx(90.0)
    assert refused.retry_after_s == 30.001  # 300 tokens at 10/s, then just above zero
    clock.advance(30)
    assert not (await limiter.admit(scopes)).allowed  # exactly zero tokens left is not enough
    clock.advance(0.001)
    assert (await limiter.admit(scopes)).allowed


async def test_a_refusal_in_one_scope_takes_nothing_from_the_others(
    limiter: MemoryRateLimiter,
) -> None:
    key, route = ("key:a", Limits(requests_per_minute=5)), ("route:chat", Limits(1))
    assert (await limiter.admit([key, route])).allowed
    refused = await limiter.admit([key, route])
    assert not refused.allowed
    assert refused.refused_by == "route:chat"
    assert [s.remaining_requests for s in refused.states] == [4, 0]
    assert (await limiter.admit([key])).states[0].remaining_requests == 3


async def test_the_first_refusing_scope_is_named_and_the_longest_wait_returned(
    limiter: MemoryRateLimiter,
) -> None:
    key = ("key:a", Limits(requests_per_minute=1))
    route = ("route:chat", Limits(tokens_per_minute=60))
    await limiter.admit([key])
    await limiter.charge_tokens([route], 180)
    refused = await limiter.admit([key, route])
    assert refused.refused_by == "key:a"
    assert refused.retry_after_s == 120.001  # the route's 120-token debt at 1/s, not the key's 60 s


async def test_unlimited_scopes_always_admit_and_keep_no_buckets(
    limiter: MemoryRateLimiter,
) -> None:
    scopes = [("key:a", Limits())]
    for _ in range(1000):
        decision = await limiter.admit(scopes)
        assert decision.allowed
    await limiter.charge_tokens(scopes, 10**9)
    assert (await limiter.admit(scopes)).allowed
    state = decision.states[0]
    assert (state.remaining_requests, state.remaining_tokens) == (None, None)
    assert openai_headers(decision) == {}
    assert limiter.bucket_count() == 0
    assert limiter.fallback_counts() == {}


async def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="requests_per_minute"):
        Limits(requests_per_minute=0)


async def test_idle_buckets_are_evicted_once_full_again(
    limiter: MemoryRateLimiter, clock: FakeClock
) -> None:
    for i in range(100):
        scopes = [(f"key:{i}", Limits(requests_per_minute=2))]
        await limiter.admit(scopes)
        await limiter.admit(scopes)  # empty: full again in 60 s
    await limiter.charge_tokens([("key:debtor", Limits(tokens_per_minute=60))], 1000)
    hot = [("key:hot", Limits(requests_per_minute=100_000))]

    clock.advance(30)
    for _ in range(60):
        await limiter.admit(hot)
    assert limiter.bucket_count() == 102  # half refilled: kept

    clock.advance(31)
    for _ in range(60):
        await limiter.admit(hot)
    assert limiter.bucket_count() == 2  # the hot bucket and the one still in debt
    decision = await limiter.admit([("key:7", Limits(requests_per_minute=2))])
    assert decision.states[0].remaining_requests == 1  # an evicted bucket reads as full
