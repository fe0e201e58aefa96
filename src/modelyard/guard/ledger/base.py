"""The budget ledger contract: per-key token and cost totals of the UTC day and month."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol


@dataclass(frozen=True)
class Spend:
    tokens: int
    cost: float

    def __add__(self, other: Spend) -> Spend:
        return Spend(self.tokens + other.tokens, self.cost + other.cost)


NOTHING = Spend(tokens=0, cost=0.0)


class BudgetLedger(Protocol):
    async def spent(self, key_id: str, now: datetime) -> tuple[Spend, Spend]:
        """What ``key_id`` spent on the UTC day and in the UTC month of ``now``."""
        ...

    async def charge(self, key_id: str, tokens: int, cost: float, now: datetime) -> None: ...

    def seed(self, key_id: str, day: Spend, month: Spend, now: datetime) -> None:
        """Start from totals loaded from the store (per-process ledgers; shared ones ignore it)."""
        ...

    async def aclose(self) -> None: ...

    def fallback_counts(self) -> dict[str, int]:
        """Answers and charges made without the shared backend (empty without one)."""
        ...


def _utc(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("the ledger needs an aware datetime, e.g. datetime.now(UTC)")
    return now.astimezone(UTC)


def day_of(now: datetime) -> str:
    """The UTC calendar day of ``now``: ``2024-02-29``."""
    return _utc(now).strftime("%Y-%m-%d")


def month_of(now: datetime) -> str:
    """The UTC calendar month of ``now``: ``2024-02``."""
    return _utc(now).strftime("%Y-%m")
