"""Window edges, gaps and the session clock (issue "Measurement truth at the edges").

Every expected value here is worked out by hand from the scripted power trace: constant or
piecewise-constant watts times seconds. The engine runs for real; its power source is a replay
that the test pushes samples into, and the workload child is replaced by a scripted one so that
the order in which events reach the engine is the test's to choose (the real child cannot be
made to deliver a sample and a phase edge in a chosen order).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from carbontop.attribution import attribute
from carbontop.carbon import world_average
from carbontop.config import Settings
from carbontop.engine import Engine
from carbontop.engine_api import SessionRequest
from carbontop.meter import Traces, WindowMeter
from carbontop.model import (
    BoardBasis,
    CpuRamReading,
    FinalStatus,
    Phase,
    PowerSample,
    ProgressEvent,
    Scope,
    SourceInfo,
    SourceStatus,
)
from carbontop.summary import SessionSummary

J = 3.6e6  # joules per kWh

ORIN_NX = SourceInfo(kind="replay", device_name="Orin NX", gpu_count=1,
                     gpu_rail="VDD_CPU_GPU_CV", gpu_scope=Scope.CPU_GPU_CV_SHARED,
                     board_rail="VDD_IN", board_basis=BoardBasis.INPUT_RAIL, interval_s=0.5)
H200 = SourceInfo(kind="nvml", device_name="H200", gpu_count=1, gpu_rail="NVML energy counter",
                  gpu_scope=Scope.GPU_ONLY, interval_s=1.0, has_energy_counter=True)
THOR_NO_INPUT = SourceInfo(kind="replay", device_name="Thor", gpu_count=1, gpu_rail="VDD_GPU",
                           gpu_scope=Scope.GPU_ONLY, cpu_rail="VDD_CPU_SOC_MSS", interval_s=1.0)


def orin(t: float, gpu: float | None = 10.0, board: float | None = 20.0) -> PowerSample:
    return PowerSample(t_s=t, t_unix_s=1e9 + t, gpu_w=gpu, board_w=board,
                       board_basis=BoardBasis.INPUT_RAIL, board_rail="VDD_IN")


# -- the traces and a window, without the engine ---------------------------------------------------


def test_window_edges_between_samples_in_either_order() -> None:
    traces = Traces(ORIN_NX)
    for i in range(40):  # 0 .. 19.5 s at 0.5 s
        traces.add_sample(orin(i * 0.5))
    # The window's edges arrive after the samples around them: 3.3 s .. 8.3 s.
    window = WindowMeter(traces, 3.3, 0.0)
    window.close(8.3, 0.0)
    window.finish()
    totals = window.totals(20.0)
    assert totals.gpu_kwh * J == pytest.approx(50.0)  # 5 s x 10 W, nothing past the end edge
    assert totals.board_kwh * J == pytest.approx(100.0)
    assert totals.gpu_samples == 10  # 3.5, 4.0, ... 8.0
    assert totals.unmeasured_s == 0.0


def test_window_opened_before_its_samples_arrive() -> None:
    traces = Traces(ORIN_NX)
    traces.add_sample(orin(0.0))
    window = WindowMeter(traces, 0.2, 0.0)
    for i in range(1, 12):
        traces.add_sample(orin(i * 0.5))
        window.settle()
    window.close(5.2, 0.0)
    traces.add_sample(orin(6.0))
    window.finish()
    assert window.totals(6.0).gpu_kwh * J == pytest.approx(50.0)


def test_codecarbon_reading_is_taken_once_and_prorated_at_edges() -> None:
    # A constant 10 W CPU, CodeCarbon reading every 1.0 s from t = 0: a window from 0.04 s to
    # 10.12 s holds 10.08 s of it: 100.8 J, from 11 readings (the first and last in part).
    traces = Traces(ORIN_NX)
    whole = WindowMeter(traces, 0.04, 0.0)
    for k in range(1, 12):
        traces.add_cpu_ram(CpuRamReading(t_s=float(k), t_unix_s=0.0, duration_s=1.0,
                                         cpu_energy_kwh=10.0 / J, ram_energy_kwh=3.0 / J,
                                         cpu_w=10.0, ram_w=3.0))
        whole.settle()
        if k == 10:
            whole.close(10.12, 0.0)
    whole.finish()
    totals = whole.totals(11.0)
    assert totals.cpu_kwh * J == pytest.approx(100.8)
    assert totals.ram_kwh * J == pytest.approx(30.24)
    assert totals.cpu_ram_readings == 11


def test_one_missed_reading_is_bridged() -> None:
    # 20 W on the input rail every 1 s for 10 s; the read at 5 s failed: still 200 J.
    info = SourceInfo(kind="replay", device_name="x", board_rail="VDD_IN",
                      board_basis=BoardBasis.INPUT_RAIL, interval_s=1.0)
    traces = Traces(info)
    window = WindowMeter(traces, 0.0, 0.0)
    for t in range(11):
        traces.add_sample(orin(float(t), gpu=None, board=None if t == 5 else 20.0))
    window.close(10.0, 0.0)
    window.finish()
    totals = window.totals(10.0)
    assert totals.board_kwh * J == pytest.approx(200.0)
    assert totals.unmeasured_s == 0.0
    assert totals.board_samples == 9  # 1, 2, 3, 4, 6, 7, 8, 9, 10 s (0 s is the edge)


def test_a_basis_change_for_one_tick_is_a_missing_reading() -> None:
    traces = Traces(ORIN_NX)
    window = WindowMeter(traces, 0.0, 0.0)
    for i in range(13):
        s = orin(i * 0.5)
        if i == 6:  # the input read failed: jtop fell back to the sum of the rest
            s = PowerSample(t_s=3.0, t_unix_s=0.0, gpu_w=10.0, board_w=14.0,
                            board_basis=BoardBasis.SUM_OF_RAILS)
        traces.add_sample(s)
    window.close(6.0, 0.0)
    window.finish()
    assert window.totals(6.0).board_kwh * J == pytest.approx(120.0)  # 6 s x 20 W


def test_slow_source_is_judged_by_the_pace_it_keeps() -> None:
    # Asked 0.5 s, delivered every 2.0 s: only the first step (judged before any pace was seen)
    # is a gap; 9 steps of 2 s at 10 W are measured: 180 J of the 20 s, 2 s unmeasured.
    traces = Traces(ORIN_NX)
    window = WindowMeter(traces, 0.0, 0.0)
    for k in range(11):
        traces.add_sample(orin(2.0 * k))
    window.close(20.0, 0.0)
    window.finish()
    totals = window.totals(20.0)
    assert totals.gpu_kwh is not None
    assert totals.gpu_kwh * J == pytest.approx(180.0)
    assert totals.gpu_unmeasured_s == pytest.approx(2.0)


def test_a_stalling_source_cannot_widen_its_threshold_past_five_seconds() -> None:
    # Steps of 4 s (3 x 4 = 12 s, capped at 5 s): a 4 s step is bridged, a 6 s stall is a gap.
    info = SourceInfo(kind="replay", device_name="x", gpu_rail="GPU",
                      gpu_scope=Scope.GPU_ONLY, interval_s=1.0)
    traces = Traces(info)
    times = [0.0, 1.0, 2.0, 3.0, 7.0, 11.0, 15.0, 19.0, 25.0, 29.0]
    window = WindowMeter(traces, 0.0, 0.0)
    for t in times:
        traces.add_sample(PowerSample(t_s=t, t_unix_s=0.0, gpu_w=10.0))
    window.close(29.0, 0.0)
    window.finish()
    totals = window.totals(29.0)
    # 3->7 is judged against 3 x median(1, 1, 1) = 3 s: a gap; 7->11 against 3 x median(1,1,1,4)
    # = 3 s: a gap; 11->15 against 3 x median(1,1,1,4,4) = 3 s: a gap; 15->19 against
    # 3 x median(1,1,1,4,4,4) = 7.5 capped at 5: bridged; 19->25 (6 s): a gap; 25->29: bridged.
    assert totals.gpu_unmeasured_s == pytest.approx(4 + 4 + 4 + 6)
    assert totals.gpu_kwh * J == pytest.approx(10.0 * (3 + 4 + 4))


def test_nothing_integrated_is_empty_and_a_real_zero_stays_zero() -> None:
    traces = Traces(ORIN_NX)
    traces.add_sample(orin(0.0, gpu=0.0))
    traces.add_sample(orin(0.5, gpu=0.0))
    zero = WindowMeter(traces, 0.0, 0.0)
    zero.close(0.5, 0.0)
    zero.finish()
    assert zero.totals(0.5).gpu_kwh == 0.0
    traces.mark_gap()  # the source was lost
    traces.add_sample(orin(30.0))
    lost = WindowMeter(traces, 10.0, 0.0)
    lost.close(20.0, 0.0)
    lost.finish()
    totals = lost.totals(20.0)
    assert totals.gpu_kwh is None and totals.board_kwh is None and totals.total_kwh is None
    assert totals.unmeasured_s == pytest.approx(10.0)


def test_lost_energy_counter_is_not_extrapolated() -> None:
    # NVML counter at 300 W read every 1 s; the GPU is lost after t = 10 s of a 70 s window.
    traces = Traces(H200)
    window = WindowMeter(traces, 0.0, 0.0)
    for t in range(11):
        traces.add_sample(PowerSample(t_s=float(t), t_unix_s=0.0, gpu_w=300.0,
                                      gpu_counter_j=1000.0 + 300.0 * t))
    window.close(70.0, 0.0)
    window.finish()
    totals = window.totals(70.0)
    assert totals.gpu_kwh * J == pytest.approx(3000.0)
    assert totals.gpu_unmeasured_s == pytest.approx(60.0)
    assert totals.unmeasured_s == pytest.approx(60.0)


def test_counter_held_to_an_end_edge_within_the_gap_rule() -> None:
    traces = Traces(H200)
    window = WindowMeter(traces, 0.0, 0.0)
    for t in range(6):
        traces.add_sample(PowerSample(t_s=float(t), t_unix_s=0.0, gpu_w=100.0,
                                      gpu_counter_j=100.0 * t))
    window.close(6.5, 0.0)  # 1.5 s after the last read: within 3 x 1 s, held at 100 W
    window.finish()
    totals = window.totals(6.5)
    assert totals.gpu_kwh * J == pytest.approx(650.0)
    assert totals.gpu_unmeasured_s == 0.0


# -- what the total is ---------------------------------------------------------------------------


def test_measured_cpu_rail_replaces_codecarbon_when_no_board_figure() -> None:
    a = attribute(THOR_NO_INPUT, gpu_kwh=1.0, board_kwh=None, cpu_kwh=0.5, ram_kwh=0.2,
                  cpu_rail_kwh=0.3)
    assert a.total_kwh == pytest.approx(1.5)  # GPU 1.0 + CPU rail 0.3 + RAM 0.2
    assert "VDD_CPU_SOC_MSS" in a.basis and "CPU+SOC+MSS" in a.basis
    assert a.rests_on == ("gpu", "cpu_rail")
    assert a.components.cpu_kwh == pytest.approx(0.3)


@pytest.mark.parametrize("info, figures", [
    (ORIN_NX, dict(gpu_kwh=1.0, board_kwh=3.0, cpu_kwh=0.5, ram_kwh=0.2)),
    (ORIN_NX, dict(gpu_kwh=1.0, board_kwh=None, cpu_kwh=0.5, ram_kwh=0.2)),
    (THOR_NO_INPUT, dict(gpu_kwh=1.0, board_kwh=None, cpu_kwh=0.5, ram_kwh=0.2,
                         cpu_rail_kwh=0.3)),
    (H200, dict(gpu_kwh=1.0, board_kwh=None, cpu_kwh=0.5, ram_kwh=0.2)),
    (SourceInfo(kind="none", device_name="no GPU"),
     dict(gpu_kwh=None, board_kwh=None, cpu_kwh=0.5, ram_kwh=0.2)),
])
def test_components_add_up_to_the_total(info: SourceInfo, figures: dict[str, Any]) -> None:
    a = attribute(info, **figures)
    parts = [a.components.gpu_kwh, a.components.cpu_kwh, a.components.ram_kwh]
    assert a.total_kwh == pytest.approx(sum(p or 0.0 for p in parts))


# -- the engine: edges by their own timestamps, one clock ---------------------------------------


class ReplaySource:
    def __init__(self, info: SourceInfo) -> None:
        self.info = info
        self.sink: Callable[[Any], None] | None = None

    def open(self) -> SourceInfo:
        return self.info

    def start(self, sink: Callable[[Any], None]) -> None:
        self.sink = sink

    def close(self) -> None:
        pass

    def push(self, event: Any) -> None:
        assert self.sink is not None
        self.sink(event)


class ScriptedChild:
    """Stands in for the workload child: the test says when it reports and when it exits."""

    def __init__(self, on_event: Callable[[ProgressEvent], None]) -> None:
        self.on_event = on_event
        self.exited = threading.Event()
        self.failure_reason: str | None = None

    def start(self) -> None:
        pass

    def wait(self, timeout: float | None = None) -> int:
        if not self.exited.wait(timeout):
            raise TimeoutError
        return 0

    def stop(self) -> None:
        self.exited.set()

    def cpu_fraction(self) -> float:
        return 0.0


class Clocks:
    """A session clock the test advances, and a wall clock that NTP may step."""

    def __init__(self) -> None:
        self.mono = 100.0
        self.wall_offset = 1.7e9

    def wall(self) -> float:
        return self.mono + self.wall_offset


def run_scripted(tmp_path: Path, info: SourceInfo,
                 script: Callable[[ReplaySource, ScriptedChild, Clocks], None]) -> SessionSummary:
    clocks = Clocks()
    source = ReplaySource(info)
    children: list[ScriptedChild] = []

    def factory(workload: str, **kwargs: Any) -> ScriptedChild:
        children.append(ScriptedChild(kwargs["on_event"]))
        return children[-1]

    engine = Engine(Settings(gpu_source="none", output_dir=tmp_path), source, world_average(),
                    clock=clocks.wall, monotonic=lambda: clocks.mono, runner_factory=factory)
    engine.open()
    try:
        engine.start_session(SessionRequest("scripted", duration_s=1000.0))
        deadline = 200
        while not children and deadline:
            threading.Event().wait(0.01)
            deadline -= 1
        assert children, "the engine never started the child"
        script(source, children[0], clocks)
        children[0].exited.set()
        summary = engine.wait_session(30)
    finally:
        engine.close()
    assert summary is not None and summary.status is FinalStatus.FINISHED
    return summary


def phase_event(phase: Phase, t_s: float) -> ProgressEvent:
    return ProgressEvent(kind="phase", t_unix_s=0.0, phase=phase, t_s=t_s)


def done_event(t_s: float, units: float) -> ProgressEvent:
    return ProgressEvent(kind="done", t_unix_s=0.0, units=units, unit="item", t_s=t_s)


def test_engine_places_edges_by_timestamps_whatever_the_order(tmp_path: Path) -> None:
    # 10 W GPU / 20 W board every 0.5 s. The child's "measuring" edge (t = 102.2) reaches the
    # engine only after the samples up to 103.0, and its "done" edge (t = 107.2) only after the
    # samples up to 108.0: the window is 5 s, 50 J of GPU and 100 J of board, none unmeasured.
    def script(source: ReplaySource, child: ScriptedChild, clocks: Clocks) -> None:
        t = 100.0
        while t <= 103.0:
            clocks.mono = t
            source.push(orin(t))
            t += 0.5
        child.on_event(phase_event(Phase.MEASURING, 102.2))
        while t <= 108.0:
            clocks.mono = t
            source.push(orin(t))
            t += 0.5
        child.on_event(done_event(107.2, units=50.0))
        source.push(orin(108.5))

    summary = run_scripted(tmp_path, ORIN_NX, script)
    window = summary.window
    assert window is not None
    assert window.duration_s == pytest.approx(5.0)
    assert window.gpu_kwh * J == pytest.approx(50.0)
    assert window.board_kwh * J == pytest.approx(100.0)
    assert window.unmeasured_s == 0.0
    assert summary.efficiency.throughput_per_s == pytest.approx(10.0)  # 50 items / 5 s


def test_a_stepped_wall_clock_changes_no_duration(tmp_path: Path) -> None:
    # NTP steps the wall clock forward by an hour in the middle of the measured window.
    def script(source: ReplaySource, child: ScriptedChild, clocks: Clocks) -> None:
        for i in range(25):
            t = 100.0 + 0.5 * i
            clocks.mono = t
            if i == 12:
                clocks.wall_offset += 3600.0
            source.push(orin(t))
            if i == 4:
                child.on_event(phase_event(Phase.MEASURING, t))
            if i == 22:
                child.on_event(done_event(t, units=90.0))

    summary = run_scripted(tmp_path, ORIN_NX, script)
    assert summary.window is not None
    assert summary.window.duration_s == pytest.approx(9.0)  # 102.0 .. 111.0 on the session clock
    assert summary.efficiency.throughput_per_s == pytest.approx(10.0)
    assert summary.window.board_kwh * J == pytest.approx(180.0)
    assert summary.whole.duration_s < 20.0


def test_engine_refreshes_the_gap_rule_after_a_reconnect(tmp_path: Path) -> None:
    # Before the loss the source delivered every 0.5 s; it comes back delivering every 2 s.
    # After the reconnect only the first 2 s step is judged against the asked 0.5 s.
    def script(source: ReplaySource, child: ScriptedChild, clocks: Clocks) -> None:
        t = 100.0
        child.on_event(phase_event(Phase.MEASURING, 100.0))
        while t <= 105.0:
            clocks.mono = t
            source.push(orin(t))
            t += 0.5
        source.push(SourceStatus(t_unix_s=0.0, connected=False, message="lost"))
        source.push(SourceStatus(t_unix_s=0.0, connected=True, message="back"))
        for t in (110.0, 112.0, 114.0, 116.0, 118.0, 120.0):
            clocks.mono = t
            source.push(orin(t))
        child.on_event(done_event(120.0, units=1.0))

    summary = run_scripted(tmp_path, ORIN_NX, script)
    window = summary.window
    assert window is not None
    # measured: 100..105 (5 s) and 112..120 (8 s) at 10 W; unmeasured: 105..110, 110..112
    assert window.gpu_kwh * J == pytest.approx(130.0)
    assert window.unmeasured_s == pytest.approx(7.0)


# -- what an independent review found the tests above could not catch ---------------------------


def test_ramp_cut_at_uneven_edges() -> None:
    # P(t) = 2 t W every 0.5 s; edges 0.1 s and 0.4 s into their steps: E = 7.9^2 - 1.1^2.
    traces = Traces(ORIN_NX)
    for i in range(21):
        traces.add_sample(orin(i * 0.5, gpu=2 * i * 0.5, board=None))
    window = WindowMeter(traces, 1.1, 0.0)
    window.close(7.9, 0.0)
    window.finish()
    assert window.totals(10.0).gpu_kwh * J == pytest.approx(7.9**2 - 1.1**2)


def test_window_edges_placed_before_their_samples_arrive() -> None:
    # The other order: both edges are known before the samples around them are read.
    traces = Traces(ORIN_NX)
    window = WindowMeter(traces, 1.1, 0.0)
    window.close(7.9, 0.0)
    for i in range(21):
        traces.add_sample(orin(i * 0.5, gpu=2 * i * 0.5, board=None))
        window.settle()
    window.finish()
    totals = window.totals(10.0)
    assert totals.gpu_kwh * J == pytest.approx(7.9**2 - 1.1**2)
    assert totals.gpu_samples == 13  # 1.5, 2.0, ... 7.5


def test_a_lost_source_is_a_gap_even_for_a_short_step() -> None:
    traces = Traces(ORIN_NX)
    window = WindowMeter(traces, 0.0, 0.0)
    for i in range(11):
        traces.add_sample(orin(i * 0.5))
    traces.mark_gap()
    for i in range(12, 21):  # back 0.5 s later: a step the gap rule would bridge
        traces.add_sample(orin(i * 0.5))
    window.close(10.0, 0.0)
    window.finish()
    totals = window.totals(10.0)
    assert totals.gpu_unmeasured_s == pytest.approx(1.0)  # 5.0 .. 6.0
    assert totals.gpu_kwh * J == pytest.approx(10.0 * 9.0)


def test_the_gap_rule_never_falls_below_three_asked_intervals() -> None:
    # Asked 0.5 s but delivered every 0.01 s for a while: a 1.4 s step is still no gap.
    traces = Traces(ORIN_NX)
    times = [0.01 * i for i in range(30)] + [0.29 + 1.4]
    window = WindowMeter(traces, 0.0, 0.0)
    for t in times:
        traces.add_sample(orin(t))
    window.close(times[-1], 0.0)
    window.finish()
    totals = window.totals(times[-1])
    assert totals.gpu_unmeasured_s == 0.0
    assert totals.gpu_kwh * J == pytest.approx(10.0 * times[-1])


def test_a_counter_that_goes_backwards_leaves_that_step_unmeasured() -> None:
    traces = Traces(H200)
    window = WindowMeter(traces, 0.0, 0.0)
    counter = [0.0, 100.0, 200.0, 50.0, 150.0]  # the driver reloaded between 2 s and 3 s
    for t, c in enumerate(counter):
        traces.add_sample(PowerSample(t_s=float(t), t_unix_s=0.0, gpu_w=100.0, gpu_counter_j=c))
    window.close(4.0, 0.0)
    window.finish()
    totals = window.totals(4.0)
    assert totals.gpu_kwh * J == pytest.approx(300.0)
    assert totals.gpu_unmeasured_s == pytest.approx(1.0)


def test_a_counter_without_a_power_reading_is_not_held() -> None:
    traces = Traces(H200)
    window = WindowMeter(traces, 0.0, 0.0)
    for t in range(4):  # the power read failed on the last sample: nothing to hold at
        traces.add_sample(PowerSample(t_s=float(t), t_unix_s=0.0,
                                      gpu_w=None if t == 3 else 100.0, gpu_counter_j=100.0 * t))
    window.close(4.0, 0.0)
    window.finish()
    totals = window.totals(4.0)
    assert totals.gpu_kwh * J == pytest.approx(300.0)
    assert totals.gpu_unmeasured_s == pytest.approx(1.0)


def test_unmeasured_is_the_gaps_of_what_the_total_rests_on() -> None:
    # The GPU rail misses 3 s of readings; the board input (the total) reads throughout.
    traces = Traces(ORIN_NX)
    window = WindowMeter(traces, 0.0, 0.0)
    for i in range(21):
        t = i * 0.5
        traces.add_sample(orin(t, gpu=None if 3.0 < t < 6.5 else 10.0))
    window.close(10.0, 0.0)
    window.finish()
    totals = window.totals(10.0)
    assert totals.total_basis.startswith("board input rail VDD_IN")
    assert totals.unmeasured_s == 0.0
    assert totals.gpu_unmeasured_s == pytest.approx(3.5)  # 3.0 .. 6.5: a gap of 3.5 s
    assert totals.gpu_kwh * J == pytest.approx(10.0 * 6.5)


def test_unmeasured_is_the_union_over_gpu_and_cpu_rail() -> None:
    # Thor without its input: total = GPU + CPU rail + RAM; their gaps overlap in part.
    traces = Traces(THOR_NO_INPUT)
    window = WindowMeter(traces, 0.0, 0.0)
    for t in range(21):
        gpu = None if 4 < t < 9 else 10.0  # gap 4 .. 9
        cpu = None if 7 < t < 12 else 3.0  # gap 7 .. 12
        traces.add_sample(PowerSample(t_s=float(t), t_unix_s=0.0, gpu_w=gpu, cpu_rail_w=cpu))
    traces.add_cpu_ram(CpuRamReading(t_s=20.0, t_unix_s=0.0, duration_s=20.0,
                                     cpu_energy_kwh=0.0, ram_energy_kwh=40.0 / J,
                                     cpu_w=0.0, ram_w=2.0))
    window.close(20.0, 0.0)
    window.finish()
    totals = window.totals(20.0)
    assert totals.gpu_unmeasured_s == pytest.approx(5.0)
    assert totals.cpu_rail_unmeasured_s == pytest.approx(5.0)
    assert totals.unmeasured_s == pytest.approx(8.0)  # 4 .. 12
    assert totals.total_kwh * J == pytest.approx(10.0 * 15 + 3.0 * 15 + 40.0)
    assert totals.mean_total_w == pytest.approx(totals.total_kwh * J / 12.0)


def test_an_edge_older_than_the_points_kept_is_unmeasured_not_lost() -> None:
    from carbontop.energy import TRACE_KEEP_S, TRACE_POINTS

    traces = Traces(ORIN_NX)
    rate = 10.0
    n = int(max(3 * TRACE_POINTS, (TRACE_KEEP_S + 200) * rate))
    for i in range(n):
        traces.add_sample(orin(i / rate))
    last = (n - 1) / rate
    # A window whose start edge is only placed now, far older than the points kept.
    window = WindowMeter(traces, 1.0, 0.0)
    window.close(last, 0.0)
    window.finish()
    totals = window.totals(last)
    kept_from = last - totals.gpu_kwh * J / 10.0  # the seconds integrated, at 10 W
    assert kept_from > 1.0
    assert totals.gpu_unmeasured_s == pytest.approx(kept_from - 1.0)
    assert totals.gpu_unmeasured_s + totals.gpu_kwh * J / 10.0 == pytest.approx(last - 1.0)


def test_a_long_session_keeps_all_its_unmeasured_time() -> None:
    # 17,000 steps at 1 s with a 10 s stall after every other one: 8,499 gaps of 10 s.
    info = SourceInfo(kind="replay", device_name="x", gpu_rail="GPU", gpu_scope=Scope.GPU_ONLY,
                      interval_s=1.0)
    traces = Traces(info)
    whole = WindowMeter(traces, 0.0, 0.0)
    t, gaps = 0.0, 0
    for k in range(17_000):
        traces.add_sample(PowerSample(t_s=t, t_unix_s=0.0, gpu_w=10.0))
        whole.settle()
        if k % 2 and k < 16_999:
            t += 10.0
            gaps += 1
        else:
            t += 1.0
    totals = whole.totals(traces.last_sample.t_s)  # type: ignore[union-attr]
    assert totals.gpu_unmeasured_s == pytest.approx(10.0 * gaps)


def test_a_finished_window_is_not_judged_again() -> None:
    traces = Traces(ORIN_NX)
    window = WindowMeter(traces, 0.0, 0.0)
    for i in range(13):
        traces.add_sample(orin(i * 0.5))
    window.close(6.5, 0.0)  # 0.5 s after the last reading: held
    window.finish()
    before = window.totals(7.0)
    traces.mark_gap()  # lost after the window finished
    traces.reconnected(0.1)
    after = window.totals(8.0)
    assert before == after
    assert after.gpu_kwh * J == pytest.approx(65.0) and after.unmeasured_s == 0.0


def test_overlapping_codecarbon_intervals_are_taken_once() -> None:
    # Arrival jitter: the second reading says it covers 1.2 s but the first already covered
    # up to 1.0 s, so it covers 1.0 .. 2.05 s.
    traces = Traces(ORIN_NX)
    window = WindowMeter(traces, 0.0, 0.0)
    traces.add_cpu_ram(CpuRamReading(t_s=1.0, t_unix_s=0.0, duration_s=1.0,
                                     cpu_energy_kwh=10.0 / J, ram_energy_kwh=0.0,
                                     cpu_w=10.0, ram_w=0.0))
    traces.add_cpu_ram(CpuRamReading(t_s=2.05, t_unix_s=0.0, duration_s=1.2,
                                     cpu_energy_kwh=10.5 / J, ram_energy_kwh=0.0,
                                     cpu_w=10.0, ram_w=0.0))
    window.close(1.525, 0.0)
    window.finish()
    # 10 J of the first, and half of the second (1.0 .. 1.525 of 1.0 .. 2.05): 5.25 J
    assert window.totals(1.525).cpu_kwh * J == pytest.approx(15.25)


def test_attribution_keeps_a_measured_cpu_rail_without_codecarbon() -> None:
    a = attribute(THOR_NO_INPUT, gpu_kwh=1.0, board_kwh=None, cpu_kwh=None, ram_kwh=None,
                  cpu_rail_kwh=0.3)
    assert a.total_kwh == pytest.approx(1.3)
    assert "RAM unavailable" in a.basis
    lost = attribute(ORIN_NX, gpu_kwh=None, board_kwh=None, cpu_kwh=0.5, ram_kwh=0.2)
    assert lost.total_kwh is None
    assert (lost.components.gpu_kwh, lost.components.cpu_kwh, lost.components.ram_kwh) == (
        None, None, None)


def test_engine_edges_with_uneven_lateness_and_changing_power(tmp_path: Path) -> None:
    # GPU 10 W until t = 104.0, then 30 W (samples every 0.5 s, so the step ramps 104.0 ..
    # 104.5 in the trace). The measuring edge (102.2) reaches the engine 0.8 s late, the done
    # edge (106.9) 0.1 s late. Window 102.2 .. 106.9:
    #   10 W x (104.0 - 102.2) = 18 J; the ramp 104.0 .. 104.5 = 0.5 x 20 = 10 J;
    #   30 W x (106.9 - 104.5) = 72 J.  GPU 100 J.
    def gpu_w(t: float) -> float:
        return 10.0 if t <= 104.0 else 30.0

    def script(source: ReplaySource, child: ScriptedChild, clocks: Clocks) -> None:
        t = 100.0
        while t <= 107.5:
            clocks.mono = t
            source.push(orin(t, gpu=gpu_w(t)))
            if t == 103.0:
                child.on_event(phase_event(Phase.MEASURING, 102.2))
            if t == 107.0:
                child.on_event(done_event(106.9, units=47.0))
            t += 0.5

    summary = run_scripted(tmp_path, ORIN_NX, script)
    assert summary.window is not None
    assert summary.window.gpu_kwh * J == pytest.approx(100.0)
    assert summary.window.duration_s == pytest.approx(4.7)


def test_engine_waits_for_the_reading_past_the_end_edge(tmp_path: Path) -> None:
    # The child exits at 105.2 (the session's end edge); the next reading (at 105.5, now 50 W)
    # arrives 0.3 s later, from the source's thread. The whole session ends with the ramp
    # interpolated to the edge, not the last reading (10 W) held.
    def script(source: ReplaySource, child: ScriptedChild, clocks: Clocks) -> None:
        t = 100.0
        child.on_event(phase_event(Phase.MEASURING, 100.0))
        while t <= 105.0:
            clocks.mono = t
            source.push(orin(t))
            t += 0.5
        child.on_event(done_event(105.0, units=5.0))
        clocks.mono = 105.2

        def late() -> None:
            threading.Event().wait(0.3)
            source.push(orin(105.5, gpu=50.0))

        threading.Thread(target=late, daemon=True).start()

    summary = run_scripted(tmp_path, ORIN_NX, script)
    # 100 .. 105 at 10 W = 50 J; 105 .. 105.2 on the ramp 10 -> 50 W over 0.5 s:
    # w(105.2) = 26 W, 0.2 x (10 + 26) / 2 = 3.6 J.
    assert summary.whole.start_s == pytest.approx(100.0)
    assert summary.whole.gpu_kwh * J == pytest.approx(53.6)


def test_engine_restarts_the_window_at_a_second_measuring_edge(tmp_path: Path) -> None:
    def script(source: ReplaySource, child: ScriptedChild, clocks: Clocks) -> None:
        t = 100.0
        while t <= 106.5:
            clocks.mono = t
            source.push(orin(t))
            if t == 101.0:
                child.on_event(phase_event(Phase.MEASURING, 101.0))
            if t == 103.0:
                child.on_event(phase_event(Phase.MEASURING, 103.0))  # the program's own edge
            if t == 106.0:
                child.on_event(done_event(106.0, units=3.0))
            t += 0.5

    summary = run_scripted(tmp_path, ORIN_NX, script)
    assert summary.window is not None
    assert summary.window.duration_s == pytest.approx(3.0)
    assert summary.window.gpu_kwh * J == pytest.approx(30.0)


def test_a_measured_cpu_rail_is_carved_out_of_the_board_before_the_ram_estimate() -> None:
    # AGX Orin summed: board 10 kWh, GPU+SOC 4, CPU+CV rail 3, CodeCarbon's RAM estimate 5:
    # RAM gets only what is left after the two measured rails (3), CPU the rail and the rest (3).
    agx = SourceInfo(kind="jtop", device_name="AGX Orin", gpu_rail="VDD_GPU_SOC",
                     gpu_scope=Scope.GPU_SOC_SHARED, board_basis=BoardBasis.SUM_OF_RAILS,
                     cpu_rail="VDD_CPU_CV", interval_s=1.0)
    a = attribute(agx, gpu_kwh=4.0, board_kwh=10.0, cpu_kwh=0.5, ram_kwh=5.0, cpu_rail_kwh=3.0)
    parts = a.components
    assert (parts.gpu_kwh, parts.cpu_kwh, parts.ram_kwh) == (4.0, 3.0, 3.0)
    assert "CPU rail VDD_CPU_CV (measured)" in parts.note
    small_ram = attribute(agx, gpu_kwh=4.0, board_kwh=10.0, cpu_kwh=0.5, ram_kwh=1.0,
                          cpu_rail_kwh=3.0)
    assert (small_ram.components.cpu_kwh, small_ram.components.ram_kwh) == (5.0, 1.0)
