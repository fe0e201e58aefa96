"""Keeps the routing table in step with the registry without touching the request path."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError

from modelyard.registry import Registry
from modelyard.routing.policies import TrafficPolicies
from modelyard.routing.table import RoutingTable

log = logging.getLogger(__name__)


class RoutingRefresher:
    """Reloads the table now (after a local change) or when the registry's marker moves."""

    def __init__(
        self,
        table: RoutingTable,
        registry: Registry,
        policies: TrafficPolicies,
        on_change: Callable[[RoutingTable], None] = lambda _table: None,
    ) -> None:
        self._table = table
        self._registry = registry
        self._policies = policies
        self._on_change = on_change
        self._lock = asyncio.Lock()

    async def refresh_now(self) -> None:
        async with self._lock:
            state = await asyncio.to_thread(self._registry.routing_state)
            policies = await asyncio.to_thread(self._policies.load)
            self._table.replace(state, policies.policies, policies.marker)
        self._on_change(self._table)

    async def watch(self, interval_s: float) -> None:
        """Poll the registry's change marker forever (run as a background task)."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                marker = await asyncio.to_thread(self._marker)
                if marker != self._table.marker:
                    log.info("registry changed (marker %s); reloading routes", marker)
                    await self.refresh_now()
            except SQLAlchemyError as error:
                log.warning("routing refresh failed, keeping the current table: %s", error)

    def _marker(self) -> tuple[int, int, int]:
        return (*self._registry.change_marker(), self._policies.marker())
