"""The life cycle every power source shares (carbontop.sources.base.ThreadedSource), and the
board-control seam the engine and the Board screen check for."""

from __future__ import annotations

import threading
import time

import pytest

from carbontop.model import PowerSample, SourceInfo
from carbontop.sources.base import BoardControl, SourceEvent, ThreadedSource
from carbontop.sources.none import NoneSource
from carbontop.sources.nvml import NvmlSource
from carbontop.sources.sim import make_sim_source
from carbontop.sources.sysfs import SysfsSource
from carbontop.sources.tegrastats import TegrastatsSource
from tests.recorder import Recorder

INTERVAL = 0.02


class Counting(ThreadedSource):
    """Polls every ``interval_s``; tick ``stall_at`` takes ``stall_s`` (a thread that fell
    behind)."""

    def __init__(self, interval_s: float = INTERVAL, stall_at: int = -1,
                 stall_s: float = 0.0) -> None:
        super().__init__()
        self.info = SourceInfo(kind="counting", device_name="test", interval_s=interval_s)
        self.opens = 0
        self.released = 0
        self.ticks: list[float] = []
        self.stall_at, self.stall_s = stall_at, stall_s

    def open(self) -> SourceInfo:
        self.opens += 1
        return self.info

    def _release(self) -> None:
        self.released += 1

    def _run(self) -> None:
        for due in self._ticks(self.info.interval_s):
            self.ticks.append(due)
            if len(self.ticks) == self.stall_at:
                time.sleep(self.stall_s)
            now = time.monotonic()
            if not self._emit(PowerSample(t_s=now, t_sensor_s=now, t_unix_s=time.time())):
                return


def test_start_runs_one_named_thread_and_close_ends_it_with_nothing_after() -> None:
    source, rec = Counting(), Recorder()
    source.start(rec)
    rec.wait_for(lambda r: len(r.samples) >= 3)
    assert [t.name for t in threading.enumerate()].count("carbontop-counting") == 1
    with pytest.raises(RuntimeError, match="already started"):
        source.start(rec)
    source.close()
    n = len(rec.events)
    time.sleep(INTERVAL * 5)
    assert len(rec.events) == n
    assert "carbontop-counting" not in [t.name for t in threading.enumerate()]
    assert source.released == 1 and source.opens == 1


def test_ticks_keep_their_grid_and_a_stalled_tick_starts_a_new_one() -> None:
    interval = 0.1  # wide enough that a busy machine's late wake-up stays on the grid
    stall = 3.5 * interval
    source, rec = Counting(interval, stall_at=4, stall_s=stall), Recorder()
    source.start(rec)
    rec.wait_for(lambda r: len(r.samples) >= 8)
    source.close()
    steps = [b - a for a, b in zip(source.ticks, source.ticks[1:], strict=False)]
    # On the grid: each due time exactly one interval after the last (the grid never drifts).
    assert steps[:3] == pytest.approx([interval] * 3, abs=1e-9)
    # After the stall: one tick an interval after the stall ended, not a burst of the missed
    # ones; then the new grid.
    assert steps[3] == pytest.approx(stall + interval, abs=interval / 2)
    assert steps[4:7] == pytest.approx([interval] * 3, abs=1e-9)


def test_a_sink_may_close_the_source_from_its_thread() -> None:
    source = Counting()
    got: list[SourceEvent] = []

    def sink(event: SourceEvent) -> None:
        got.append(event)
        source.close()  # from the source's own thread, inside the emit lock

    source.start(sink)
    deadline = time.monotonic() + 5
    while "carbontop-counting" in [t.name for t in threading.enumerate()]:
        assert time.monotonic() < deadline, "the thread did not end"
        time.sleep(INTERVAL)
    assert len(got) == 1 and source.released == 1


def test_a_closed_source_starts_again() -> None:
    source = Counting()
    for _ in range(2):
        rec = Recorder()
        source.start(rec)
        rec.wait_for(lambda r: len(r.samples) >= 2)
        source.close()
    assert source.released == 2


def test_board_control_is_what_jtop_and_the_simulator_offer_and_nothing_else() -> None:
    assert isinstance(make_sim_source(time_scale=100.0), BoardControl)
    for other in (NoneSource(), NvmlSource(), SysfsSource(), TegrastatsSource(), Counting()):
        assert not isinstance(other, BoardControl)


def test_a_sink_that_raises_does_not_end_the_thread() -> None:
    source, calls = Counting(), Recorder()

    def broken(event: SourceEvent) -> None:
        calls(event)
        raise RuntimeError("a consumer's bug")

    source.start(broken)
    try:
        calls.wait_for(lambda r: len(r.samples) >= 3)
    finally:
        source.close()
