"""A route's live-judge budget on one replica: calls in a sliding minute, cost per UTC day."""

from __future__ import annotations

from datetime import date

import pytest

from modelyard.observe.quality.budget import JudgeBudget
from modelyard.routing.protocol import LiveJudging


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.day = date(2026, 12, 6)

    def __call__(self) -> float:
        return self.now


def test_calls_per_minute_slide_with_the_clock() -> None:
    clock = Clock()
    budget = JudgeBudget(clock, lambda: clock.day)
    setting = LiveJudging(judge="j", share=1, max_per_minute=2)
    assert [budget.take("chat", setting) for _ in range(3)] == [True, True, False]
    assert budget.take("other", setting)  # each route has its own
    clock.now += 59.9
    assert not budget.allows("chat", setting)
    clock.now += 0.2  # the first two calls are a minute old
    assert budget.take("chat", setting)


def test_cost_per_day_resets_at_the_next_utc_day() -> None:
    clock = Clock()
    budget = JudgeBudget(clock, lambda: clock.day)
    setting = LiveJudging(judge="j", share=1, max_per_minute=None, max_cost_per_day=1.0)
    assert budget.take("chat", setting)
    budget.spend("chat", 0.6)
    assert budget.take("chat", setting)
    budget.spend("chat", 0.5)
    assert budget.spent_today("chat") == pytest.approx(1.1)
    assert not budget.allows("chat", setting)
    clock.day = date(2026, 12, 7)
    assert budget.spent_today("chat") == 0.0
    assert budget.take("chat", setting)
