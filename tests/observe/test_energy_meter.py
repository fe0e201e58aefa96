"""The CPU meter: CPU and wall time attributed to requests, by work, without double counting."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from typing import NoReturn

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelyard.observe.energy import CpuMeter


class Counter:
    """A clock or CPU counter the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def meter() -> tuple[CpuMeter, Counter, Counter]:
    clock, cpu = Counter(), Counter()
    return CpuMeter(clock=clock, cpu_seconds=cpu), clock, cpu


def test_a_request_gets_the_cpu_time_between_its_start_and_finish() -> None:
    m, clock, cpu = meter()
    cpu.now += 5.0  # before the request: idle
    m.start("a")
    cpu.now += 2.0
    clock.now += 3.0
    usage = m.finish("a")
    cpu.now += 4.0  # after it
    m.tick()
    assert (usage.cpu_seconds, usage.wall_share_seconds, usage.wall_seconds) == (2.0, 3.0, 3.0)
    assert m.idle_cpu_seconds == 9.0
    assert m.active == 0


def test_overlapping_requests_share_each_interval_by_their_work() -> None:
    m, _, cpu = meter()
    m.start("a")
    cpu.now += 1.0  # a alone
    m.start("b")
    m.work("a", 30)
    m.work("b", 10)
    cpu.now += 4.0  # 3 : 1
    m.tick()
    m.work("a", 5)
    m.work("b", 15)
    cpu.now += 2.0  # 1 : 3
    a = m.finish("a")
    cpu.now += 3.0  # b alone, no work reported
    b = m.finish("b")
    assert a.cpu_seconds == pytest.approx(1.0 + 3.0 + 0.5)
    assert b.cpu_seconds == pytest.approx(1.0 + 1.5 + 3.0)


def test_an_interval_without_reported_work_is_shared_equally() -> None:
    m, _, cpu = meter()
    for name in "abc":
        m.start(name)
    cpu.now += 3.0
    usages = [m.finish(name).cpu_seconds for name in "abc"]
    # a finishes first: the 3 s split three ways; then nothing more is consumed.
    assert usages == pytest.approx([1.0, 1.0, 1.0])


def test_a_waiting_request_gets_nothing_while_others_report_work() -> None:
    m, _, cpu = meter()
    m.start("decoding")
    m.start("queued")
    m.work("decoding", 8)
    cpu.now += 2.0
    m.tick()
    cpu.now += 1.0  # nobody reports work in this one: equal shares
    assert m.finish("queued").cpu_seconds == pytest.approx(0.5)
    assert m.finish("decoding").cpu_seconds == pytest.approx(2.5)


def test_work_counts_only_in_the_interval_it_was_reported_in() -> None:
    m, _, cpu = meter()
    m.start("a")
    m.start("b")
    m.work("a", 100)
    cpu.now += 1.0
    m.tick()
    m.work("b", 1)
    cpu.now += 1.0
    assert m.finish("a").cpu_seconds == pytest.approx(1.0)
    assert m.finish("b").cpu_seconds == pytest.approx(1.0)


def test_the_tail_since_the_last_tick_is_counted_at_finish() -> None:
    m, _, cpu = meter()
    m.start("a")
    cpu.now += 1.0
    m.tick()
    cpu.now += 0.25
    assert m.finish("a").cpu_seconds == pytest.approx(1.25)


def test_wall_time_is_shared_equally_and_latency_is_kept() -> None:
    m, clock, _ = meter()
    m.start("a")
    clock.now += 2.0
    m.start("b")
    m.work("b", 50)  # work weighs CPU, not the RAM held over time
    clock.now += 4.0
    a = m.finish("a")
    clock.now += 1.0
    b = m.finish("b")
    assert (a.wall_share_seconds, a.wall_seconds) == (4.0, 6.0)
    assert (b.wall_share_seconds, b.wall_seconds) == (3.0, 5.0)


def test_misuse_is_reported_and_late_work_ignored() -> None:
    m, _, cpu = meter()
    m.start("a")
    with pytest.raises(ValueError, match="already"):
        m.start("a")
    with pytest.raises(ValueError, match="negative"):
        m.work("a", -1)
    m.finish("a")
    m.work("a", 10)  # an engine thread reporting after the request ended
    m.start("b")
    cpu.now += 1.0
    assert m.finish("b").cpu_seconds == 1.0
    with pytest.raises(KeyError):
        m.finish("a")


# (what, request, amount, wall): spend moves the CPU counter by amount and the clock by wall.
operation = st.tuples(
    st.sampled_from(["start", "finish", "work", "tick", "spend"]),
    st.integers(0, 4),
    st.floats(0, 20),
    st.floats(0, 10),
)


@given(st.lists(operation, max_size=60))
def test_attributed_time_adds_up_to_the_time_consumed_while_requests_were_active(
    operations: list[tuple[str, int, float, float]],
) -> None:
    m, clock, cpu = meter()
    active: set[str] = set()
    attributed_cpu = attributed_wall = busy_cpu = busy_wall = idle_cpu = 0.0
    for what, number, amount, wall in operations:
        request = str(number)
        if what == "start" and request not in active:
            m.start(request)
            active.add(request)
        elif what == "finish" and request in active:
            usage = m.finish(request)
            active.discard(request)
            assert usage.cpu_seconds >= 0 and usage.wall_share_seconds >= 0
            attributed_cpu += usage.cpu_seconds
            attributed_wall += usage.wall_share_seconds
        elif what == "work":
            m.work(request, amount)
        elif what == "tick":
            m.tick()
        elif what == "spend":
            cpu.now += amount
            clock.now += wall
            if active:
                busy_cpu += amount
                busy_wall += wall
            else:
                idle_cpu += amount
    for request in sorted(active):
        usage = m.finish(request)
        attributed_cpu += usage.cpu_seconds
        attributed_wall += usage.wall_share_seconds
    assert attributed_cpu == pytest.approx(busy_cpu, abs=1e-9)
    assert attributed_wall == pytest.approx(busy_wall, abs=1e-9)
    m.tick()
    assert m.idle_cpu_seconds == pytest.approx(idle_cpu, abs=1e-9)


def test_threads_and_a_ticker_lose_and_duplicate_nothing() -> None:
    readings: list[float] = []

    def cpu_seconds() -> float:
        readings.append(time.process_time())
        return readings[-1]

    m = CpuMeter(cpu_seconds=cpu_seconds)
    attributed: list[float] = []
    stop = threading.Event()

    def serve(worker: int) -> None:
        for i in range(300):
            request = f"{worker}-{i}"
            m.start(request)
            for _ in range(5):
                sum(range(200))
                m.work(request, 3)
            attributed.append(m.finish(request).cpu_seconds)

    def tick() -> None:
        while not stop.is_set():
            m.tick()

    ticker = threading.Thread(target=tick)
    ticker.start()
    workers = [threading.Thread(target=serve, args=(w,)) for w in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    stop.set()
    ticker.join()
    m.tick()
    assert len(attributed) == 1200
    consumed = readings[-1] - readings[0]
    assert sum(attributed) + m.idle_cpu_seconds == pytest.approx(consumed, rel=1e-9, abs=1e-9)
    assert sum(attributed) > 0


@pytest.mark.anyio
async def test_run_ticks_in_the_background() -> None:
    m, _, cpu = meter()
    cpu.now += 3.0
    task = asyncio.create_task(m.run(interval_s=0.01))
    try:
        for _ in range(100):
            await asyncio.sleep(0.01)
            if m.idle_cpu_seconds:
                break
    finally:
        task.cancel()
    assert m.idle_cpu_seconds == 3.0


def test_with_a_minimum_interval_short_requests_still_get_their_share() -> None:
    clock, cpu = Counter(), Counter()
    m = CpuMeter(clock=clock, cpu_seconds=cpu, min_interval_s=0.005)
    m.start("a")  # within 5 ms of construction: joins the first interval
    clock.now += 0.001
    cpu.now += 0.0008
    m.start("b")  # within 5 ms of the last boundary: joins the current interval
    clock.now += 0.001
    cpu.now += 0.0008
    b = m.finish("b")  # a finish always closes
    a = m.finish("a")
    assert b.cpu_seconds == pytest.approx(0.0008) and a.cpu_seconds == pytest.approx(0.0008)
    assert b.cpu_seconds + a.cpu_seconds + m.idle_cpu_seconds == pytest.approx(0.0016)


class ReferenceMeter:
    """The meter as it was before it became O(1): every boundary walks every share.
    The fast meter must attribute exactly what this one does."""

    class Share:
        def __init__(self, started_at: float) -> None:
            self.started_at = started_at
            self.cpu_seconds = self.wall_share_seconds = self.work = 0.0

    def __init__(self, clock: Counter, cpu: Counter, min_interval_s: float) -> None:
        self.clock, self.cpu, self.min_interval = clock, cpu, min_interval_s
        self.active: dict[str, ReferenceMeter.Share] = {}
        self.last_cpu, self.last_at, self.idle_cpu = cpu(), clock(), 0.0

    def start(self, request_id: str) -> None:
        self.close_interval(self.min_interval)
        self.active[request_id] = self.Share(started_at=self.last_at)

    def work(self, request_id: str, units: float) -> None:
        share = self.active.get(request_id)
        if share is not None:
            share.work += units

    def finish(self, request_id: str) -> tuple[float, float, float]:
        self.close_interval()
        share = self.active.pop(request_id)
        return share.cpu_seconds, share.wall_share_seconds, self.last_at - share.started_at

    def close_interval(self, unless_within_s: float = 0.0) -> None:
        now = self.clock()
        if unless_within_s and now - self.last_at < unless_within_s:
            return
        now_cpu = self.cpu()
        cpu = max(0.0, now_cpu - self.last_cpu)
        elapsed = max(0.0, now - self.last_at)
        self.last_cpu, self.last_at = now_cpu, now
        if not self.active:
            self.idle_cpu += cpu
            return
        shares = self.active.values()
        total_work = sum(share.work for share in shares)
        equal = 1.0 / len(shares)
        for share in shares:
            weight = share.work / total_work if total_work > 0 else equal
            share.cpu_seconds += cpu * weight
            share.wall_share_seconds += elapsed * equal
            share.work = 0.0


def check_against_the_reference(
    operations: list[tuple[str, int, float, float]], min_interval_s: float
) -> None:
    """Run the operations on both meters (sharing one clock and CPU counter) and compare
    every finish and the idle time; also check no price outlives the units it prices."""
    clock, cpu = Counter(), Counter()
    fast = CpuMeter(clock=clock, cpu_seconds=cpu, min_interval_s=min_interval_s)
    reference = ReferenceMeter(clock, cpu, min_interval_s)

    def finish(request: str) -> None:
        usage = fast.finish(request)
        expected = reference.finish(request)
        got = (usage.cpu_seconds, usage.wall_share_seconds, usage.wall_seconds)
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-9)
        assert min(got) >= 0

    for what, number, amount, wall in operations:
        request = str(number)
        if what == "start":
            if request in reference.active:
                with pytest.raises(ValueError, match="already"):
                    fast.start(request)
            else:
                fast.start(request)
                reference.start(request)
        elif what == "finish":
            if request in reference.active:
                finish(request)
            else:
                with pytest.raises(KeyError):
                    fast.finish(request)
        elif what == "work":
            fast.work(request, amount)
            reference.work(request, amount)
        elif what == "tick":
            fast.tick()
            reference.close_interval()
        elif what == "spend":
            cpu.now += amount
            clock.now += wall
        assert fast.active == len(reference.active)
        assert len(fast._prices) <= fast.active  # each request owes at most one price
        assert fast.idle_cpu_seconds == pytest.approx(reference.idle_cpu, rel=1e-9, abs=1e-9)
    for request in list(reference.active):
        finish(request)
    assert not fast._prices
    fast.tick()
    reference.close_interval()
    assert fast.idle_cpu_seconds == pytest.approx(reference.idle_cpu, rel=1e-9, abs=1e-9)


def random_operations(rng: random.Random, count: int) -> list[tuple[str, int, float, float]]:
    kinds = ["start", "finish", "work", "work", "work", "tick", "spend", "spend"]
    operations = []
    for _ in range(count):
        what = rng.choice(kinds)
        amount = rng.choice([0.0, rng.uniform(0, 20), float(rng.randint(1, 50))])
        # Short steps, so that starts often fall within a minimum interval.
        wall = rng.choice([0.0, rng.uniform(0, 0.01), rng.uniform(0, 10)])
        operations.append((what, rng.randrange(12), amount, wall))
    return operations


@pytest.mark.parametrize("min_interval_s", [0.0, 0.004, 1.0])
def test_attribution_is_the_same_as_walking_every_request_at_every_boundary(
    min_interval_s: float,
) -> None:
    for seed in range(200):
        rng = random.Random(seed)
        check_against_the_reference(random_operations(rng, 300), min_interval_s)


@given(st.lists(operation, max_size=80), st.sampled_from([0.0, 0.5, 3.0]))
def test_attribution_is_the_same_as_the_reference_for_any_operations(
    operations: list[tuple[str, int, float, float]], min_interval_s: float
) -> None:
    check_against_the_reference(operations, min_interval_s)


class UnwalkableDict(dict[str, object]):
    """The meter's table of active requests, made to fail if anything walks it."""

    def _walked(self, *args: object) -> NoReturn:
        raise AssertionError("the meter walked the requests in flight")

    __iter__ = values = items = keys = _walked


def test_no_call_walks_the_requests_in_flight_and_no_price_leaks() -> None:
    clock, cpu = Counter(), Counter()
    m = CpuMeter(clock=clock, cpu_seconds=cpu, min_interval_s=0.001)
    m._active = UnwalkableDict()  # type: ignore[assignment]
    in_flight = 200
    consumed = attributed = 0.0
    most_prices = 0
    for i in range(5_000):
        m.start(str(i))
        m.work(str(i - 3), 2)  # work on finished or unknown requests is ignored
        m.work(str(i - 7), 5)
        if i % 4:
            m.tick()
        cpu.now += 0.01
        clock.now += 0.002
        consumed += 0.01
        if i >= in_flight:
            attributed += m.finish(str(i - in_flight)).cpu_seconds
        assert m.active == min(i + 1, in_flight)
        # A request owes at most one price, until its next report or its finish.
        assert len(m._prices) <= m.active
        most_prices = max(most_prices, len(m._prices))
    for i in range(5_000 - in_flight, 5_000):
        attributed += m.finish(str(i)).cpu_seconds
    assert most_prices > 100  # prices were held, bounded by the requests in flight
    assert not m._prices
    assert attributed + m.idle_cpu_seconds == pytest.approx(consumed, rel=1e-9)
