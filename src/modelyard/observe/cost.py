"""Cost of a request from its version's price (``parameters.price``), in the price's unit.

``{"price": {"input_per_million": 0.15, "output_per_million": 0.60}}`` — per million
tokens, like provider price lists (upstream versions carry their provider's prices);
``{"price": {"per_cpu_hour": 0.05}}`` prices a local version's compute time instead (the
CPU seconds the energy meter attributes to the request). Both may be given and add up. A
version without a price costs 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PER = 1_000_000


def cost_of(
    parameters: Mapping[str, Any],
    prompt_tokens: int,
    completion_tokens: int,
    cpu_seconds: float = 0.0,
) -> float:
    price = parameters.get("price")
    if not isinstance(price, Mapping):
        return 0.0
    input_price = float(price.get("input_per_million", 0.0))
    output_price = float(price.get("output_per_million", 0.0))
    per_cpu_hour = float(price.get("per_cpu_hour", 0.0))
    tokens = (prompt_tokens * input_price + completion_tokens * output_price) / PER
    return tokens + cpu_seconds * per_cpu_hour / 3600
