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

Thread safety: every method takes one lock, so ``start``/``finish`` on the event loop,
``work`` from an engine's scheduler thread and ``tick`` from a background task or thread
may interleave freely. ``work`` is O(1); ``start``, ``finish`` and ``tick`` close the
current interval, O(active requests) float additions plus one CPU-clock read.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestUsage:
    cpu_seconds: float  # CPU time attributed to the request
    wall_share_seconds: float  # its share of the wall time the process served requests
    wall_seconds: float  # from start to finish


@dataclass
class _Share:
    started_at: float
    cpu_seconds: float = 0.0
    wall_share_seconds: float = 0.0
    work: float = 0.0  # units reported in the current interval


class CpuMeter:
    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        cpu_seconds: Callable[[], float] = time.process_time,
        min_interval_s: float = 0.0,
    ) -> None:
        """``min_interval_s``: a request starting within this long of the last boundary
        does not close the interval; it joins the current one. Closing costs time in
        proportion to the requests in flight, so at high request rates the server sets a
        few milliseconds. A finish always closes, so every request gets its share."""
        self._clock = clock
        self._min_interval = min_interval_s
        self._cpu_seconds = cpu_seconds
        self._lock = threading.Lock()
        self._active: dict[str, _Share] = {}
        self._last_cpu = cpu_seconds()
        self._last_at = clock()
        self._idle_cpu = 0.0

    def start(self, request_id: str) -> None:
        with self._lock:
            if request_id in self._active:
                raise ValueError(f"request {request_id} is already metered")
            self._close_interval(self._min_interval)
            self._active[request_id] = _Share(started_at=self._last_at)

    def work(self, request_id: str, units: float) -> None:
        """Report work a request did since its last report; ignored once it finished."""
        if units < 0:
            raise ValueError(f"work units must not be negative, not {units}")
        with self._lock:
            share = self._active.get(request_id)
            if share is not None:
                share.work += units

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
            finished_at = self._last_at
        return RequestUsage(
            cpu_seconds=share.cpu_seconds,
            wall_share_seconds=share.wall_share_seconds,
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
        if not self._active:
            self._idle_cpu += cpu
            return
        shares = self._active.values()
        total_work = sum(share.work for share in shares)
        equal = 1.0 / len(shares)
        for share in shares:
            weight = share.work / total_work if total_work > 0 else equal
            share.cpu_seconds += cpu * weight
            share.wall_share_seconds += elapsed * equal
            share.work = 0.0
