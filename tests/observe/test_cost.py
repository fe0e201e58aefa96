from __future__ import annotations

import pytest

from modelyard.observe.cost import cost_of


def test_token_prices_per_million() -> None:
    price = {"price": {"input_per_million": 0.15, "output_per_million": 0.60}}
    assert cost_of(price, 1_000_000, 0) == pytest.approx(0.15)
    assert cost_of(price, 2000, 500) == pytest.approx((2000 * 0.15 + 500 * 0.60) / 1e6)


def test_compute_time_prices_local_versions() -> None:
    price = {"price": {"per_cpu_hour": 0.36}}
    assert cost_of(price, 100, 100, cpu_seconds=10) == pytest.approx(0.001)
    both = {"price": {"per_cpu_hour": 3.6, "input_per_million": 1e6}}
    assert cost_of(both, 2, 0, cpu_seconds=1) == pytest.approx(2 + 0.001)


def test_no_price_costs_nothing() -> None:
    assert cost_of({}, 10, 10, cpu_seconds=5) == 0.0
    assert cost_of({"price": "free"}, 10, 10) == 0.0
