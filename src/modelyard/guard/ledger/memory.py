"""Budget totals in this process: one record per key, holding its current day and month."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from modelyard.guard.ledger.base import NOTHING, Spend, day_of, month_of


@dataclass
class _Totals:
    day: str
    today: Spend
    month: str
    this_month: Spend


class MemoryBudgetLedger:
    """Per-process totals; start them from the store with ``seed``. Periods only move
    forward: a charge dated in an earlier day (or month) than the latest seen is not
    counted in that earlier period."""

    def __init__(self) -> None:
        self._totals: dict[str, _Totals] = {}

    async def spent(self, key_id: str, now: datetime) -> tuple[Spend, Spend]:
        totals = self._totals.get(key_id)
        if totals is None:
            return NOTHING, NOTHING
        day, month = day_of(now), month_of(now)
        return (
            totals.today if totals.day == day else NOTHING,
            totals.this_month if totals.month == month else NOTHING,
        )

    async def charge(self, key_id: str, tokens: int, cost: float, now: datetime) -> None:
        spend = Spend(tokens, cost)
        day, month = day_of(now), month_of(now)
        totals = self._totals.setdefault(key_id, _Totals(day, NOTHING, month, NOTHING))
        if month > totals.month:
            totals.month, totals.this_month = month, NOTHING
        if day > totals.day:
            totals.day, totals.today = day, NOTHING
        if month == totals.month:
            totals.this_month += spend
        if day == totals.day:
            totals.today += spend

    def seed(self, key_id: str, day: Spend, month: Spend, now: datetime) -> None:
        self._totals[key_id] = _Totals(day_of(now), day, month_of(now), month)

    def fallback_counts(self) -> dict[str, int]:
        return {}

    async def aclose(self) -> None:
        self._totals.clear()
