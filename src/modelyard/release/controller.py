"""The release controller: a background loop that advances rollouts and analyses
experiments. One process at a time runs it, holding a lease in the store; the others wait
for the lease to lapse (a crashed holder's lease expires after three ticks)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from modelyard.registry.errors import RegistryError
from modelyard.release.errors import ReleaseError
from modelyard.release.experiments import Experiments
from modelyard.release.rollouts import Rollouts
from modelyard.routing.policies import PolicyRefused
from modelyard.store import Store
from modelyard.store.lease import acquire_lease, this_process

log = logging.getLogger(__name__)
LEASE = "release-controller"
SKIPPED_ERRORS = (SQLAlchemyError, ReleaseError, PolicyRefused, RegistryError, ValidationError)


class ReleaseController:
    def __init__(
        self,
        store: Store,
        rollouts: Rollouts,
        experiments: Experiments,
        on_change: Callable[[], Awaitable[None]],
    ) -> None:
        self._store = store
        self._rollouts = rollouts
        self._experiments = experiments
        self._on_change = on_change
        self.holder = f"{this_process()}:{id(self):x}"

    async def run(self, tick_s: float) -> None:
        while True:
            try:
                if await asyncio.to_thread(
                    acquire_lease, self._store, LEASE, self.holder, timedelta(seconds=3 * tick_s)
                ):
                    await self.tick()
            except SQLAlchemyError as error:
                log.warning("release controller: store unavailable, next tick: %s", error)
            await asyncio.sleep(tick_s)

    async def tick(self, now: datetime | None = None) -> None:
        """Advance every running rollout and analyse every running experiment once."""
        changed = False
        for rollout_id in await asyncio.to_thread(self._rollouts.active_ids):
            try:
                before = await asyncio.to_thread(self._rollouts.get, rollout_id)
                after = await asyncio.to_thread(self._rollouts.advance, rollout_id, now)
            except SKIPPED_ERRORS as error:
                log.warning("rollout %s: %s", rollout_id, error)
                continue
            changed |= (before.weight, before.status) != (after.weight, after.status)
        for name in await asyncio.to_thread(self._experiments.running):
            try:
                result = await asyncio.to_thread(self._experiments.analyse, name, now)
            except SKIPPED_ERRORS as error:
                log.warning("experiment %s: %s", name, error)
                continue
            changed |= result.status != "running"
        if changed:
            await self._on_change()
