"""The CPU meter: CPU and wall time attributed to requests, by work, without double counting."""

from __future__ import annotations

import asyncio
import threading
import time

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
