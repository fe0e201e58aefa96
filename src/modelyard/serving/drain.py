"""A replica being drained: told to stop (SIGTERM), it first says it is not ready
(``/readyz`` answers 503) while it still serves, so that a load balancer's health check
takes it out before it stops accepting connections; the server then lets requests and
streams in flight finish and flushes the request log (``modelyard serve`` drives this)."""

from __future__ import annotations

import time


class Drain:
    """Whether this replica is draining, and since when (monotonic seconds)."""

    def __init__(self) -> None:
        self.since: float | None = None

    @property
    def draining(self) -> bool:
        return self.since is not None

    def begin(self) -> None:
        """Start draining (again: no change). Safe in a signal handler: one assignment."""
        if self.since is None:
            self.since = time.monotonic()
