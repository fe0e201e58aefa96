"""Attribution of the process's CPU time (and wall time) to the requests it serves.

The meter reads one process-wide CPU counter (``time.process_time``: user + system time
of every thread, llama.cpp's included) and cuts time into intervals at every ``tick``,
``start`` and ``finish``. Each interval's CPU seconds go to the requests active in it:

- by the work each reported in that interval (``work(request_id, units)``, e.g. tokens
  prefilled or decoded), when any of them reported some; a request that reported none
  in such an interval was waiting and gets nothing for it;
- in equal shares when none of them reported work (all waiting, or engines that don't
  report work, such as upstream proxies).

The interval's wall time is shared equally by its active requests (the RAM is held for
all of them at once), so the shares add up to the time the process served requests and
concurrent requests don't each count the full RAM power. Intervals with no active
request go to ``idle_cpu_seconds``. Since every boundary closes an interval, the sum
attributed to requests is exactly the CPU time consumed while any was active.

Cost: every method is O(1), whatever the number of requests in flight. Closing an
interval touches no request: the equal parts (wall time, and CPU of intervals without
reported work) go into two running per-request sums, and a request gets the difference
between their values at its finish and at its start. The CPU of an interval with
reported work is kept with the units reported in it (its price); a request keeps the
units it reported in its latest interval and settles them at that interval's price the
next time it reports work in a later interval, or at its finish. A price is kept only
while some request still has units to settle at it, so at most one per request in flight.

Thread safety: every method takes one lock, so ``start``/``finish`` on the event loop,
``work`` from an engine's scheduler thread and ``tick`` from a background task or thread
may interleave freely. ``start``, ``finish`` and ``tick`` read the CPU clock once.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

# The running sums are compensated (Neumaier), so that a difference between two of their
# values is as precise as if it had been summed on its own, however long the server ran.
_Mark = tuple[float, float]


@dataclass(frozen=True)
class RequestUsage:
    cpu_seconds: float  # CPU time attributed to the request
    wall_share_seconds: float  # its share of the wall time the process served requests
    wall_seconds: float  # from start to finish


class _RunningSum:
    """A compensated sum of non-negative terms, read as marks to subtract."""

    __slots__ = ("compensation", "total")

    def __init__(self) -> None:
        self.total = 0.0
        self.compensation = 0.0

    def add(self, term: float) -> None:
        total = self.total + term
        if abs(self.total) >= abs(term):
            self.compensation += (self.total - total) + term
        else:
            self.compensation += (term - total) + self.total
        self.total = total

    def mark(self) -> _Mark:
        return self.total, self.compensation

    def since(self, mark: _Mark) -> float:
        """What was added since ``mark`` (never negative)."""
        return max(0.0, (self.total - mark[0]) + (self.compensation - mark[1]))


@dataclass(slots=True)
class _Share:
    started_at: float
    equal_cpu_mark: _Mark  # the running sums when the request started
    wall_mark: _Mark
    cpu_seconds: float = 0.0  # settled CPU time attributed by work
    units: float = 0.0  # reported in interval ``interval`` and not settled yet
    interval: int = -1  # the interval ``units`` belong to; -1 for none


class _Price:
    """A closed interval's CPU seconds and the work units reported in it. Kept apart, not
    as one price per unit, which would overflow for tiny (subnormal) unit counts."""

    __slots__ = ("cpu_seconds", "units", "unsettled")

    def __init__(self, cpu_seconds: float, units: float, unsettled: int) -> None:
        self.cpu_seconds = cpu_seconds
        self.units = units
        self.unsettled = unsettled  # requests that still have units to settle at it


class CpuMeter:
    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        cpu_seconds: Callable[[], float] = time.process_time,
        min_interval_s: float = 0.0,
    ) -> None:
        """``min_interval_s``: a request starting within this long of the last boundary
        does not close the interval; it joins the current one (and counts in it as if it
        had been active all along), saving a CPU-clock read at high request rates. A
        finish always closes, so every request gets its share."""
        self._clock = clock
        self._min_interval = min_interval_s
        self._cpu_seconds = cpu_seconds
        self._lock = threading.Lock()
        self._active: dict[str, _Share] = {}
        self._last_cpu = cpu_seconds()
        self._last_at = clock()
        self._idle_cpu = 0.0
        # Per active request: CPU of the intervals without reported work, and wall time.
        self._equal_cpu = _RunningSum()
        self._wall = _RunningSum()
        # The current interval: its number, the units reported in it, and by how many
        # requests.
        self._interval = 0
        self._interval_units = 0.0
        self._interval_reporters = 0
        # Prices of closed intervals with units still to settle, by interval number.
        self._prices: dict[int, _Price] = {}

    def start(self, request_id: str) -> None:
        with self._lock:
            if request_id in self._active:
                raise ValueError(f"request {request_id} is already metered")
            self._close_interval(self._min_interval)
            self._active[request_id] = _Share(
                started_at=self._last_at,
                equal_cpu_mark=self._equal_cpu.mark(),
                wall_mark=self._wall.mark(),
            )

    def work(self, request_id: str, units: float) -> None:
        """Report work a request did since its last report; ignored once it finished."""
        if units < 0:
            raise ValueError(f"work units must not be negative, not {units}")
        with self._lock:
            share = self._active.get(request_id)
            if share is None:
                return
            if share.interval != self._interval:
                self._settle(share)
                share.interval = self._interval
                self._interval_reporters += 1
            share.units += units
            self._interval_units += units

    def tick(self) -> None:
        """Attribute the CPU seconds consumed since the last boundary."""
        with self._lock:
            self._close_interval()

    def finish(self, request_id: str) -> RequestUsage:
        """Stop metering a request and return what it used, its last interval included.
        Raises KeyError for a request that isn't metered."""
        with self._lock:
            if request_id not in self._active:
                raise KeyError(f"request {request_id} is not metered")
            self._close_interval()
            share = self._active.pop(request_id)
            self._settle(share)
            cpu_seconds = share.cpu_seconds + self._equal_cpu.since(share.equal_cpu_mark)
            wall_share_seconds = self._wall.since(share.wall_mark)
            finished_at = self._last_at
            if not self._active:  # no mark is left to subtract from: start over
                self._equal_cpu = _RunningSum()
                self._wall = _RunningSum()
        return RequestUsage(
            cpu_seconds=cpu_seconds,
            wall_share_seconds=wall_share_seconds,
            wall_seconds=finished_at - share.started_at,
        )

    @property
    def active(self) -> int:
        with self._lock:
            return len(self._active)

    @property
    def idle_cpu_seconds(self) -> float:
        """CPU seconds consumed while no request was active, up to the last boundary."""
        with self._lock:
            return self._idle_cpu

    async def run(self, interval_s: float) -> None:
        """Tick every ``interval_s`` forever (run as one background task)."""
        while True:
            await asyncio.sleep(interval_s)
            self.tick()

    def _settle(self, share: _Share) -> None:
        """Credit a share the units it reported in a closed interval, at that interval's
        price (none if nobody reported any: it got its equal part instead). The caller
        holds the lock."""
        if share.interval < 0:
            return
        price = self._prices.get(share.interval)
        if price is not None:
            share.cpu_seconds += price.cpu_seconds * (share.units / price.units)
            price.unsettled -= 1
            if not price.unsettled:
                del self._prices[share.interval]
        share.units = 0.0
        share.interval = -1

    def _close_interval(self, unless_within_s: float = 0.0) -> None:
        """Share the interval since the last boundary out, unless it is shorter than
        ``unless_within_s``. The caller holds the lock."""
        now = self._clock()
        if unless_within_s and now - self._last_at < unless_within_s:
            return
        now_cpu = self._cpu_seconds()
        cpu = max(0.0, now_cpu - self._last_cpu)
        elapsed = max(0.0, now - self._last_at)
        self._last_cpu, self._last_at = now_cpu, now
        active = len(self._active)
        if not active:
            self._idle_cpu += cpu
        else:
            if self._interval_units > 0:
                self._prices[self._interval] = _Price(
                    cpu, self._interval_units, self._interval_reporters
                )
            else:
                self._equal_cpu.add(cpu / active)
            self._wall.add(elapsed / active)
        self._interval += 1
        self._interval_units = 0.0
        self._interval_reporters = 0
