from __future__ import annotations

import gc

import pytest

from modelyard.config import Settings
from modelyard.registry import Registry
from tests.conftest import app_client

pytestmark = pytest.mark.anyio


async def test_the_collector_threshold_is_raised_while_serving_and_restored(
    home_registry: Registry,
) -> None:
    before = gc.get_threshold()
    async with app_client(Settings(gc_threshold=12_345)):
        assert gc.get_threshold() == (12_345, *before[1:])
    assert gc.get_threshold() == before


async def test_zero_keeps_the_interpreters_threshold(home_registry: Registry) -> None:
    before = gc.get_threshold()
    async with app_client(Settings(gc_threshold=0)):
        assert gc.get_threshold() == before
