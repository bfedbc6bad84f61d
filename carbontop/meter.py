"""Measuring windows over one source's traces: the whole session, the measured window, idle time.

A session has two windows (docs/measurement.md rule 11): the whole session, and the measured window
(warm-up excluded). Between sessions the dashboard keeps an idle window. Every window is two
edges on the session clock over the same :class:`Traces`; its energy is the traces' cumulative
energy at its end edge minus that at its start edge, interpolated between the readings that
bracket each edge. So an edge is placed by its own timestamp whatever order the events arrive
in, nothing past the end edge is counted, and each CodeCarbon reading is taken once.
"""

from __future__ import annotations

from dataclasses import dataclass

from carbontop.attribution import Components, attribute, total_and_basis
from carbontop.energy import (
    CounterTrace,
    GapRule,
    Interval,
    IntervalMark,
    IntervalTrace,
    Mark,
    PowerTrace,
    union_length,
)
from carbontop.model import CpuRamReading, PowerSample, Scope, SourceInfo
from carbontop.units import J_PER_KWH


class Traces:
    """One source's channels on the session clock (GPU, board, CPU rail) and CodeCarbon's CPU
    and RAM, fed by the engine as readings arrive and shared by every window."""

    def __init__(self, info: SourceInfo) -> None:
        self.info = info
        self.rule = GapRule(info.interval_s)
        self.gpu: PowerTrace = (CounterTrace(self.rule) if info.has_energy_counter
                                else PowerTrace(self.rule))
        self.board = PowerTrace(self.rule)
        self.cpu_rail = PowerTrace(self.rule)
        self.cpu_ram = IntervalTrace()
        self.last_sample: PowerSample | None = None
        self._lost = False  # the source was lost since the last sample

    def channels(self) -> dict[str, PowerTrace]:
        """The power channels this source measures, by name."""
        out: dict[str, PowerTrace] = {}
        if self.info.measures_gpu:
            out["gpu"] = self.gpu
        if self.info.board_basis is not None:
            out["board"] = self.board
        if self.info.cpu_rail is not None:
            out["cpu_rail"] = self.cpu_rail
        return out

    def add_sample(self, s: PowerSample) -> bool:
        """Adds one reading of the source; False for a repeated or out-of-order one."""
        last = self.last_sample
        if last is not None and s.t_s <= last.t_s:
            return False
        if isinstance(self.gpu, CounterTrace):
            self.gpu.add_counter(s.t_s, s.gpu_counter_j, s.gpu_w)
        else:
            self.gpu.add(s.t_s, s.gpu_w)
        # A board figure whose basis changed for one tick (input read failed, jtop fell back to
        # the sum) is not the same quantity: that tick is a missing reading.
        board_w = s.board_w if s.board_basis is self.info.board_basis else None
        self.board.add(s.t_s, board_w)
        self.cpu_rail.add(s.t_s, s.cpu_rail_w)
        if last is not None and not self._lost:
            self.rule.observe(s.t_s - last.t_s)  # judged above, observed after; a loss is no pace
        self._lost = False
        self.last_sample = s
        return True

    def add_cpu_ram(self, r: CpuRamReading) -> None:
        self.cpu_ram.add(r.t_s, r.duration_s, r.cpu_energy_kwh * J_PER_KWH,
                         r.ram_energy_kwh * J_PER_KWH)

    def mark_gap(self) -> None:
        """The source was lost: no step across the loss is bridged."""
        self._lost = True
        for trace in (self.gpu, self.board, self.cpu_rail):
            trace.mark_gap()

    def reconnected(self, interval_s: float) -> None:
        """The source is back, perhaps at another pace: the gap rule forgets the old one."""
        self.rule.reset(interval_s)


@dataclass(frozen=True)
class WindowTotals:
    """Energy of one window, in kWh, with what each figure rests on. ``None``: not measured.

    ``start_s``/``end_s`` are the edges on the session clock (durations come from them);
    ``start_unix_s``/``end_unix_s`` only label them.
    """

    start_s: float
    end_s: float
    start_unix_s: float
    end_unix_s: float
    gpu_kwh: float | None
    board_kwh: float | None
    cpu_rail_kwh: float | None
    cpu_kwh: float | None  # CodeCarbon
    ram_kwh: float | None  # CodeCarbon
    total_kwh: float | None
    total_basis: str
    original_total_kwh: float | None  # GPU + CodeCarbon CPU + RAM, the original script's formula
    gpu_samples: int
    board_samples: int
    cpu_ram_readings: int
    unmeasured_s: float  # union of the gaps of the channels the total rests on
    gpu_unmeasured_s: float = 0.0
    board_unmeasured_s: float = 0.0
    cpu_rail_unmeasured_s: float = 0.0
    components: Components | None = None  # the total split into GPU, CPU, RAM (adds up)

    @property
    def duration_s(self) -> float:
        return max(0.0, self.end_s - self.start_s)

    @property
    def measured_s(self) -> float:
        """The seconds the total rests on: the window less its unmeasured time."""
        return max(0.0, self.duration_s - self.unmeasured_s)

    @property
    def mean_total_w(self) -> float | None:
        """Mean power over the time measured (a gap's seconds hold no energy, so they do not
        dilute the mean)."""
        if self.total_kwh is None or self.measured_s <= 0:
            return None
        return self.total_kwh * J_PER_KWH / self.measured_s


@dataclass(frozen=True)
class _Edge:
    power: dict[str, Mark]
    cpu_ram: IntervalMark | None


class WindowMeter:
    """One window: a start edge, an end edge once closed, over the engine's :class:`Traces`.

    Not thread-safe: the engine holds its lock around every call. ``settle()`` after each new
    reading freezes an edge's figures as soon as the readings that bracket it are in, so a
    window of any length needs only the traces' recent points.
    """

    def __init__(self, traces: Traces, start_s: float, start_unix_s: float) -> None:
        self.traces = traces
        self.info = traces.info
        self.start_s = start_s
        self.start_unix_s = start_unix_s
        self.end_s: float | None = None
        self.end_unix_s: float | None = None
        self.finished = False  # end edge frozen for good (held where the readings stop)
        self._start_power: dict[str, Mark] = {}
        self._start_cpu_ram: IntervalMark | None = None
        self._end_power: dict[str, Mark] = {}
        self._end_cpu_ram: IntervalMark | None = None
        self._tails: dict[str, list[Interval]] = {}  # frozen by finish(): after the last reading
        self._late_start: dict[str, list[Interval]] = {}  # start older than the points kept
        self.settle()

    @property
    def is_open(self) -> bool:
        return self.end_s is None

    def close(self, end_s: float, end_unix_s: float) -> None:
        """Places the end edge (it may lie before readings already taken: they are cut off)."""
        if self.is_open:
            self.end_s = max(end_s, self.start_s)
            self.end_unix_s = end_unix_s
            self.settle()

    def settle(self) -> None:
        """Freezes each edge's figures for every trace that already has readings past it."""
        for name, trace in self.traces.channels().items():
            if name not in self._start_power and trace.resolves(self.start_s):
                self._start_power[name] = trace.mark_at(self.start_s)
                kept = trace.kept_from(self.start_s)
                if kept is not None:  # placed later than the points kept: before them, unknown
                    self._late_start[name] = [(self.start_s, kept)]
            if self.end_s is not None and name not in self._end_power \
                    and trace.resolves(self.end_s):
                self._end_power[name] = trace.mark_at(self.end_s)
        cc = self.traces.cpu_ram
        if self._start_cpu_ram is None and cc.resolves(self.start_s):
            self._start_cpu_ram = cc.mark_at(self.start_s)
        if self.end_s is not None and self._end_cpu_ram is None and cc.resolves(self.end_s):
            self._end_cpu_ram = cc.mark_at(self.end_s)

    def waiting_for(self, power: bool = True, cpu_ram: bool = True) -> bool:
        """Whether a closed window still waits for a power reading (``power``) or a CodeCarbon
        reading (``cpu_ram``) past its end edge."""
        if self.end_s is None or self.finished:
            return False
        last = self.traces.last_sample
        missing_power = bool(self.traces.channels()) and (last is None or last.t_s < self.end_s)
        return (power and missing_power) or (cpu_ram and self._end_cpu_ram is None)

    def finish(self) -> None:
        """Freezes the end edge for good: a channel with no reading past it holds its last
        reading up to the edge when that step is no gap (the rest is unmeasured)."""
        if self.end_s is None or self.finished:
            return
        self.settle()
        for name, trace in self.traces.channels().items():
            if name not in self._end_power:
                self._end_power[name] = trace.held_mark_at(self.end_s)
            # Judged once, now: a loss or a reconnect after this must not change the figures.
            self._tails[name] = trace.tail_uncovered(self.end_s, held=True)
        if self._end_cpu_ram is None:
            self._end_cpu_ram = self.traces.cpu_ram.mark_at(self.end_s)
        self.finished = True

    # -- figures -------------------------------------------------------------------------------

    def _start_mark(self, name: str, trace: PowerTrace) -> Mark:
        return self._start_power.get(name) or trace.mark_at(self.start_s)

    def _end_mark(self, name: str, trace: PowerTrace, now_s: float) -> Mark:
        if name in self._end_power:
            return self._end_power[name]
        end = self.end_s if self.end_s is not None else now_s
        return trace.mark_at(end)

    def _uncovered(self, name: str, trace: PowerTrace, end_s: float) -> list[Interval]:
        tail = self._tails[name] if self.finished else trace.tail_uncovered(end_s, held=False)
        return trace.uncovered(self.start_s, end_s) + tail + self._late_start.get(name, [])

    def totals(self, now_s: float, now_unix_s: float | None = None) -> WindowTotals:
        """The window's figures: up to its end edge, or up to ``now_s`` while it is open."""
        end_s = self.end_s if self.end_s is not None else max(now_s, self.start_s)
        end_unix = self.end_unix_s if self.end_unix_s is not None else (
            now_unix_s if now_unix_s is not None else self.start_unix_s + end_s - self.start_s)
        kwh: dict[str, float | None] = {"gpu": None, "board": None, "cpu_rail": None}
        samples: dict[str, int] = {"gpu": 0, "board": 0, "cpu_rail": 0}
        gaps: dict[str, list[Interval]] = {"gpu": [], "board": [], "cpu_rail": []}
        for name, trace in self.traces.channels().items():
            a, b = self._start_mark(name, trace), self._end_mark(name, trace, end_s)
            measured = b.measured_s - a.measured_s
            # Nothing integrated is "not measured", never 0; a real 0 J stays 0.
            kwh[name] = (b.energy_j - a.energy_j) / J_PER_KWH if measured > 0 else None
            samples[name] = max(0, b.samples - a.samples)
            gaps[name] = self._uncovered(name, trace, end_s)
        cpu, ram, readings = self._cpu_ram(end_s)
        att = attribute(self.info, kwh["gpu"], kwh["board"], cpu, ram, kwh["cpu_rail"])
        original = (kwh["gpu"] or 0.0) + cpu + ram if cpu is not None and ram is not None \
            else None
        unmeasured = union_length([g for name in att.rests_on for g in gaps[name]])
        return WindowTotals(
            start_s=self.start_s, end_s=end_s, start_unix_s=self.start_unix_s,
            end_unix_s=end_unix, gpu_kwh=kwh["gpu"], board_kwh=kwh["board"],
            cpu_rail_kwh=kwh["cpu_rail"], cpu_kwh=cpu, ram_kwh=ram, total_kwh=att.total_kwh,
            total_basis=att.basis, original_total_kwh=original, gpu_samples=samples["gpu"],
            board_samples=samples["board"], cpu_ram_readings=readings,
            unmeasured_s=unmeasured, gpu_unmeasured_s=union_length(gaps["gpu"]),
            board_unmeasured_s=union_length(gaps["board"]),
            cpu_rail_unmeasured_s=union_length(gaps["cpu_rail"]), components=att.components)

    def _cpu_ram(self, end_s: float) -> tuple[float | None, float | None, int]:
        cc = self.traces.cpu_ram
        a = self._start_cpu_ram or cc.mark_at(self.start_s)
        b = self._end_cpu_ram or cc.mark_at(end_s)
        readings = max(0, b.readings_started - a.readings_ended)
        if readings == 0:  # nothing integrated is "not measured", never 0
            return None, None, 0
        return ((b.cpu_j - a.cpu_j) / J_PER_KWH, (b.ram_j - a.ram_j) / J_PER_KWH, readings)

    def gpu_energy_kwh(self, now_s: float) -> float | None:
        """The GPU energy so far (cumulative, for each gpu_log row)."""
        if not self.info.measures_gpu:
            return None
        trace = self.traces.gpu
        a = self._start_mark("gpu", trace)
        b = self._end_mark("gpu", trace, now_s)
        return (b.energy_j - a.energy_j) / J_PER_KWH


__all__ = ["Traces", "WindowMeter", "WindowTotals", "total_and_basis", "Scope"]
