"""The Redis ledger while Redis is down: this replica's view, and no charge lost."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from modelyard.guard.ledger import (
    FallbackBudgetLedger,
    MemoryBudgetLedger,
    RedisBudgetLedger,
    Spend,
)
from tests.guard.conftest import FakeClock
from tests.guard.redis_server import RedisServer

pytestmark = pytest.mark.anyio

NOW = datetime(2024, 3, 14, 10, 0, tzinfo=UTC)


@pytest.fixture
async def ledger(
    private_redis: RedisServer, clock: FakeClock
) -> AsyncIterator[FallbackBudgetLedger]:
    opened = FallbackBudgetLedger(
        RedisBudgetLedger(private_redis.url, "test"), MemoryBudgetLedger(), clock=clock
    )
    yield opened
    await opened.aclose()


async def test_while_redis_is_down_spent_is_this_replicas_view(
    ledger: FallbackBudgetLedger, private_redis: RedisServer
) -> None:
    ledger.seed("k1", Spend(1000, 1.0), Spend(9000, 9.0), NOW)
    await ledger.charge("k1", 10, 0.5, NOW)  # to Redis, and to the local view
    assert await ledger.spent("k1", NOW) == (Spend(10, 0.5), Spend(10, 0.5))  # Redis
    private_redis.stop()
    assert await ledger.spent("k1", NOW) == (Spend(1010, 1.5), Spend(9010, 9.5))
    await ledger.charge("k1", 5, 0.25, NOW)
    assert await ledger.spent("k1", NOW) == (Spend(1015, 1.75), Spend(9015, 9.75))
    assert ledger.fallback_counts() == {"spent": 2, "charge": 1}


async def test_charges_redis_missed_are_sent_once_it_is_back(
    ledger: FallbackBudgetLedger, private_redis: RedisServer, clock: FakeClock
) -> None:
    private_redis.stop()
    await ledger.charge("k1", 10, 0.5, NOW)
    await ledger.charge("k1", 20, 0.5, NOW)
    await ledger.charge("k2", 1, 0.0, NOW)
    assert ledger.unsent() == Spend(31, 1.0)
    private_redis.start()  # empty: it saves nothing
    clock.advance(1.0)
    assert await ledger.spent("k1", NOW) == (Spend(30, 1.0), Spend(30, 1.0))  # from Redis
    assert ledger.unsent() == Spend(0, 0.0)
    private_redis.stop()
    started = time.monotonic()
    await ledger.spent("k1", NOW)  # fails, and opens the breaker
    assert time.monotonic() - started < 0.8
    private_redis.start()
    assert await ledger.spent("k1", NOW) == (Spend(30, 1.0), Spend(30, 1.0))  # local, breaker open
    assert ledger.fallback_counts() == {"charge": 3, "spent": 2}
