"""Circuit breakers on a fake clock: closed, open after N consecutive failures, one probe
after the cooldown, closed again on its success or open for another cooldown."""

from __future__ import annotations

import pytest

from modelyard.routing.breaker import Breakers
from modelyard.routing.protocol import BreakerSettings

SETTINGS = BreakerSettings(failures=3, cooldown_s=10.0)
TARGET = "chat@1"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def breakers(clock: Clock) -> Breakers:
    return Breakers(clock=clock)


def fail(breakers: Breakers, times: int, target: str = TARGET) -> None:
    for _ in range(times):
        assert breakers.allow(target, SETTINGS)
        breakers.failed(target, SETTINGS)


def open_breaker(breakers: Breakers, clock: Clock) -> float:
    fail(breakers, SETTINGS.failures)
    assert breakers.state(TARGET, SETTINGS) == "open"
    return clock.now


def test_a_new_target_is_closed(breakers: Breakers) -> None:
    assert breakers.state(TARGET, SETTINGS) == "closed"
    assert breakers.allow(TARGET, SETTINGS)
    assert breakers.describe(SETTINGS) == []


def test_it_opens_after_n_consecutive_failures(breakers: Breakers, clock: Clock) -> None:
    fail(breakers, SETTINGS.failures - 1)
    assert breakers.state(TARGET, SETTINGS) == "closed"
    assert breakers.allow(TARGET, SETTINGS)
    breakers.failed(TARGET, SETTINGS)
    assert breakers.state(TARGET, SETTINGS) == "open"
    assert not breakers.allow(TARGET, SETTINGS)
    # Other targets are not affected.
    assert breakers.allow("other@1", SETTINGS)
    assert breakers.state("other@1", SETTINGS) == "closed"


def test_a_success_resets_the_count(breakers: Breakers) -> None:
    fail(breakers, SETTINGS.failures - 1)
    breakers.succeeded(TARGET)
    fail(breakers, SETTINGS.failures - 1)
    assert breakers.state(TARGET, SETTINGS) == "closed"
    assert breakers.allow(TARGET, SETTINGS)
    breakers.failed(TARGET, SETTINGS)
    assert breakers.state(TARGET, SETTINGS) == "open"


def test_open_blocks_until_the_cooldown_then_allows_exactly_one_probe(
    breakers: Breakers, clock: Clock
) -> None:
    open_breaker(breakers, clock)
    for _ in range(4):
        clock.advance(2.375)
        assert not breakers.allow(TARGET, SETTINGS)  # 9.5 s of the 10 s cooldown
    clock.advance(0.5)
    assert breakers.state(TARGET, SETTINGS) == "half_open"
    assert breakers.allow(TARGET, SETTINGS)  # the probe
    assert breakers.state(TARGET, SETTINGS) == "half_open"
    for _ in range(3):
        assert not breakers.allow(TARGET, SETTINGS)  # others wait while it probes
    clock.advance(100)
    assert not breakers.allow(TARGET, SETTINGS)  # however long the probe takes


def test_a_successful_probe_closes(breakers: Breakers, clock: Clock) -> None:
    open_breaker(breakers, clock)
    clock.advance(SETTINGS.cooldown_s)
    assert breakers.allow(TARGET, SETTINGS)
    breakers.succeeded(TARGET)
    assert breakers.state(TARGET, SETTINGS) == "closed"
    assert all(breakers.allow(TARGET, SETTINGS) for _ in range(5))
    # Counting starts again from zero.
    fail(breakers, SETTINGS.failures - 1)
    assert breakers.state(TARGET, SETTINGS) == "closed"


def test_a_failed_probe_reopens_for_another_cooldown(breakers: Breakers, clock: Clock) -> None:
    open_breaker(breakers, clock)
    clock.advance(SETTINGS.cooldown_s + 5)
    assert breakers.allow(TARGET, SETTINGS)
    breakers.failed(TARGET, SETTINGS)  # one failure is enough while half-open
    reopened = clock.now
    assert breakers.state(TARGET, SETTINGS) == "open"
    clock.advance(SETTINGS.cooldown_s - 0.125)
    assert not breakers.allow(TARGET, SETTINGS)
    clock.advance(0.125)
    assert breakers.allow(TARGET, SETTINGS)  # the next probe
    assert not breakers.allow(TARGET, SETTINGS)
    [out] = breakers.describe(SETTINGS)
    assert out.opened_at == reopened


def test_released_frees_the_probe(breakers: Breakers, clock: Clock) -> None:
    open_breaker(breakers, clock)
    clock.advance(SETTINGS.cooldown_s)
    assert breakers.allow(TARGET, SETTINGS)
    assert not breakers.allow(TARGET, SETTINGS)
    breakers.released(TARGET)  # the probe was cancelled: no verdict
    assert breakers.state(TARGET, SETTINGS) == "half_open"
    assert breakers.allow(TARGET, SETTINGS)  # the next caller probes
    assert not breakers.allow(TARGET, SETTINGS)
    breakers.released("unknown@1")  # harmless on a target without a breaker
    assert breakers.state("unknown@1", SETTINGS) == "closed"


def test_describe_reports_each_target(breakers: Breakers, clock: Clock) -> None:
    opened = open_breaker(breakers, clock)
    fail(breakers, 1, "b@1")
    fail(breakers, SETTINGS.failures, "c@2")
    clock.advance(SETTINGS.cooldown_s)
    assert breakers.allow("c@2", SETTINGS)
    clock.advance(-1)  # TARGET: 1 s of its cooldown left
    rows = [
        (b.target, b.state, b.consecutive_failures, b.opened_at)
        for b in breakers.describe(SETTINGS)
    ]
    assert rows == [
        ("b@1", "closed", 1, None),
        ("c@2", "half_open", 3, opened),
        (TARGET, "open", 3, opened),
    ]
    breakers.succeeded("c@2")
    assert [b.target for b in breakers.describe(SETTINGS)] == ["b@1", TARGET]


def test_the_cooldown_is_read_from_the_settings_at_each_call(
    breakers: Breakers, clock: Clock
) -> None:
    open_breaker(breakers, clock)
    clock.advance(5)
    assert not breakers.allow(TARGET, SETTINGS)
    assert breakers.allow(TARGET, BreakerSettings(failures=3, cooldown_s=5))
