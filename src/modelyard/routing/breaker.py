"""Circuit breakers, one per target (version), kept in memory by each replica.

Closed: requests pass; ``failures`` consecutive failures open it. Open: the target is
skipped until ``cooldown_s`` has passed. Half-open: exactly one request probes the target;
its success closes the breaker, its failure opens it for another cooldown. State is
per replica on purpose: each replica learns about the targets it talks to (a shared
breaker would let one replica's network trouble close a target for all).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Literal

from modelyard.routing.protocol import BreakerOut, BreakerSettings

State = Literal["closed", "open", "half_open"]


@dataclass
class _Breaker:
    failures: int = 0
    opened_at: float | None = None
    probing: bool = False

    def state(self, now: float, cooldown_s: float) -> State:
        if self.opened_at is None:
            return "closed"
        if self.probing or now - self.opened_at >= cooldown_s:
            return "half_open"
        return "open"


class Breakers:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._breakers: dict[str, _Breaker] = {}

    def allow(self, target: str, settings: BreakerSettings) -> bool:
        """May a request go to ``target`` now? In half-open state only the first caller
        after the cooldown gets through (it becomes the probe)."""
        breaker = self._breakers.get(target)
        if breaker is None or breaker.opened_at is None:
            return True
        if breaker.probing:
            return False
        if self._clock() - breaker.opened_at >= settings.cooldown_s:
            breaker.probing = True
            return True
        return False

    def succeeded(self, target: str) -> None:
        self._breakers.pop(target, None)

    def failed(self, target: str, settings: BreakerSettings) -> None:
        breaker = self._breakers.setdefault(target, _Breaker())
        breaker.failures += 1
        if breaker.probing or breaker.failures >= settings.failures:
            breaker.opened_at = self._clock()
        breaker.probing = False

    def released(self, target: str) -> None:
        """The probe ended without telling (cancelled): let the next request probe."""
        breaker = self._breakers.get(target)
        if breaker is not None:
            breaker.probing = False

    def state(self, target: str, settings: BreakerSettings) -> State:
        breaker = self._breakers.get(target)
        return "closed" if breaker is None else breaker.state(self._clock(), settings.cooldown_s)

    def describe(
        self, settings: BreakerSettings, targets: Collection[str] | None = None
    ) -> list[BreakerOut]:
        """The breakers of ``targets`` (all when None) under ``settings``' cooldown."""
        now = self._clock()
        return [
            BreakerOut(
                target=target,
                state=b.state(now, settings.cooldown_s),
                consecutive_failures=b.failures,
                opened_at=b.opened_at,
            )
            for target, b in sorted(self._breakers.items())
            if targets is None or target in targets
        ]
