"""Budget ledger: per-key token and cost totals of the UTC day and month."""

from __future__ import annotations

from typing import Literal

from modelyard.guard.ledger.base import BudgetLedger, Spend, day_of, month_of
from modelyard.guard.ledger.fallback import FallbackBudgetLedger
from modelyard.guard.ledger.memory import MemoryBudgetLedger
from modelyard.guard.ledger.redis_ledger import RedisBudgetLedger

__all__ = [
    "BudgetLedger",
    "FallbackBudgetLedger",
    "MemoryBudgetLedger",
    "RedisBudgetLedger",
    "Spend",
    "day_of",
    "month_of",
    "open_budget_ledger",
]


def open_budget_ledger(
    backend: Literal["memory", "redis"], redis_url: str, prefix: str, *, timeout_s: float = 0.25
) -> BudgetLedger:
    """The ledger a server uses: per process, or shared in Redis with a local fallback."""
    if backend == "memory":
        return MemoryBudgetLedger()
    return FallbackBudgetLedger(
        RedisBudgetLedger(redis_url, prefix, timeout_s=timeout_s), MemoryBudgetLedger()
    )
