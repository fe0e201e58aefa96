"""Budget totals per key, in memory and in Redis: UTC days and months, rollover at midnight."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
import redis

from modelyard.guard.ledger import (
    BudgetLedger,
    MemoryBudgetLedger,
    RedisBudgetLedger,
    Spend,
    open_budget_ledger,
)

pytestmark = pytest.mark.anyio

NOTHING = Spend(0, 0.0)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture(params=["memory", "redis"])
async def ledger(request: pytest.FixtureRequest) -> AsyncIterator[BudgetLedger]:
    opened: BudgetLedger
    if request.param == "memory":
        opened = MemoryBudgetLedger()
    else:
        url, prefix = request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")
        opened = RedisBudgetLedger(url, prefix)
    yield opened
    await opened.aclose()


async def test_charges_add_up_per_key(ledger: BudgetLedger) -> None:
    now = utc("2024-03-14T10:00:00")
    await ledger.charge("k1", 100, 0.1, now)
    await ledger.charge("k1", 50, 0.2, now)
    await ledger.charge("k2", 7, 1.0, now)
    today, month = await ledger.spent("k1", now)
    assert today == month
    assert today.tokens == 150
    assert today.cost == pytest.approx(0.3)
    assert await ledger.spent("k2", now) == (Spend(7, 1.0), Spend(7, 1.0))
    assert await ledger.spent("k3", now) == (NOTHING, NOTHING)


async def test_the_day_rolls_over_at_utc_midnight_the_month_keeps_counting(
    ledger: BudgetLedger,
) -> None:
    await ledger.charge("k1", 10, 1.0, utc("2024-03-14T23:59:59.999"))
    midnight = utc("2024-03-15T00:00:00")
    assert await ledger.spent("k1", midnight) == (NOTHING, Spend(10, 1.0))
    await ledger.charge("k1", 5, 0.5, midnight)
    assert await ledger.spent("k1", utc("2024-03-15T23:00:00")) == (Spend(5, 0.5), Spend(15, 1.5))


async def test_the_month_rolls_over_at_the_first_utc_midnight(ledger: BudgetLedger) -> None:
    await ledger.charge("k1", 100, 2.0, utc("2024-02-29T12:00:00"))
    march = utc("2024-03-01T00:00:00")
    assert await ledger.spent("k1", march) == (NOTHING, NOTHING)
    await ledger.charge("k1", 7, 0.25, march)
    assert await ledger.spent("k1", march) == (Spend(7, 0.25), Spend(7, 0.25))


async def test_other_time_zones_count_in_the_utc_day(ledger: BudgetLedger) -> None:
    athens_1am_march_1 = datetime(2024, 3, 1, 1, 0, tzinfo=timezone(timedelta(hours=2)))
    await ledger.charge("k1", 3, 0.0, athens_1am_march_1)  # 23:00 UTC on February 29
    assert await ledger.spent("k1", utc("2024-02-29T23:30:00")) == (Spend(3, 0.0), Spend(3, 0.0))
    assert await ledger.spent("k1", utc("2024-03-01T00:30:00")) == (NOTHING, NOTHING)


async def test_a_naive_datetime_is_refused(ledger: BudgetLedger) -> None:
    with pytest.raises(ValueError, match="aware datetime"):
        await ledger.charge("k1", 1, 0.0, datetime(2024, 3, 1, 12, 0))


async def test_memory_totals_start_from_the_seed() -> None:
    ledger = MemoryBudgetLedger()
    now = utc("2024-03-14T10:00:00")
    ledger.seed("k1", Spend(1000, 1.0), Spend(5000, 5.0), now)
    await ledger.charge("k1", 10, 0.5, now)
    assert await ledger.spent("k1", now) == (Spend(1010, 1.5), Spend(5010, 5.5))
    tomorrow = now + timedelta(days=1)
    assert await ledger.spent("k1", tomorrow) == (NOTHING, Spend(5010, 5.5))


async def test_memory_ignores_a_late_charge_for_a_day_already_over() -> None:
    ledger = MemoryBudgetLedger()
    await ledger.charge("k1", 5, 0.0, utc("2024-03-15T00:00:01"))
    await ledger.charge("k1", 3, 0.0, utc("2024-03-14T23:59:59"))  # started before midnight
    assert await ledger.spent("k1", utc("2024-03-15T01:00:00")) == (Spend(5, 0.0), Spend(8, 0.0))


async def test_redis_totals_are_shared_and_expire_after_their_period(
    redis_url: str, redis_prefix: str, redis_client: redis.Redis
) -> None:
    replicas = [RedisBudgetLedger(redis_url, redis_prefix) for _ in range(2)]
    now = utc("2024-03-14T10:00:00")
    try:
        await replicas[0].charge("k1", 10, 0.5, now)
        await replicas[1].charge("k1", 20, 0.25, now)
        assert await replicas[0].spent("k1", now) == (Spend(30, 0.75), Spend(30, 0.75))
    finally:
        for replica in replicas:
            await replica.aclose()
    day_ttl = redis_client.ttl(f"{redis_prefix}:ledger:k1:day:2024-03-14")
    month_ttl = redis_client.ttl(f"{redis_prefix}:ledger:k1:month:2024-03")
    assert 2 * 86400 - 60 < day_ttl <= 2 * 86400
    assert 32 * 86400 - 60 < month_ttl <= 32 * 86400


async def test_the_factory_opens_a_memory_or_a_redis_ledger(
    redis_url: str, redis_prefix: str
) -> None:
    now = utc("2024-03-14T10:00:00")
    memory = open_budget_ledger("memory", redis_url, redis_prefix)
    shared = [open_budget_ledger("redis", redis_url, redis_prefix) for _ in range(2)]
    try:
        await memory.charge("k1", 1, 0.0, now)
        await shared[0].charge("k1", 10, 0.0, now)
        assert (await shared[1].spent("k1", now))[0] == Spend(10, 0.0)
        assert (await memory.spent("k1", now))[0] == Spend(1, 0.0)
    finally:
        for ledger in (memory, *shared):
            await ledger.aclose()
