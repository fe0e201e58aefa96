"""A route's live-judge budget on this replica: judge calls started in the last minute and
what they cost this UTC day. Per replica on purpose (docs/observe.md#live-quality): N
replicas may spend N times a route's budget."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, date, datetime

from modelyard.routing.protocol import LiveJudging

MINUTE_S = 60.0


def utc_today() -> date:
    return datetime.now(UTC).date()


class JudgeBudget:
    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        today: Callable[[], date] = utc_today,
    ) -> None:
        self._clock = clock
        self._today = today
        self._calls: dict[str, deque[float]] = {}
        self._spent: dict[str, tuple[date, float]] = {}

    def allows(self, route: str, setting: LiveJudging) -> bool:
        """Whether one more judge call of ``route`` fits its budget now (reserves nothing)."""
        limit = setting.max_per_minute
        if limit is not None and self._recent(route) >= limit:
            return False
        if setting.max_cost_per_day is not None:
            return self.spent_today(route) < setting.max_cost_per_day
        return True

    def take(self, route: str, setting: LiveJudging) -> bool:
        """Reserve one judge call of ``route`` if it fits its budget."""
        if not self.allows(route, setting):
            return False
        self._calls.setdefault(route, deque()).append(self._clock())
        return True

    def spend(self, route: str, cost: float) -> None:
        """What a judge call of ``route`` cost (counted against today's budget)."""
        today = self._today()
        day, spent = self._spent.get(route, (today, 0.0))
        self._spent[route] = (today, (spent if day == today else 0.0) + cost)

    def spent_today(self, route: str) -> float:
        day, spent = self._spent.get(route, (self._today(), 0.0))
        return spent if day == self._today() else 0.0

    def _recent(self, route: str) -> int:
        calls = self._calls.get(route)
        if not calls:
            return 0
        horizon = self._clock() - MINUTE_S
        while calls and calls[0] <= horizon:
            calls.popleft()
        return len(calls)
