"""Power into energy: traces of one channel each, integrated over the session clock.

docs/measurement.md rules 1-3: integrate raw samples (trapezoid) over the times they were taken,
never a fixed interval and never a smoothed average; drop repeated samples; clamp negative power
to zero; read a hardware energy counter where there is one; and do not bridge a gap: a step
longer than the gap rule (:class:`GapRule`) is not integrated but counted as unmeasured time.

A trace keeps the cumulative energy at each of its recent points, so the energy between any two
instants (a window's edges, wherever they fall between samples) is ``energy_at(b) -
energy_at(a)``: edges are placed by their own timestamps, whatever order the events arrive in, and
every window takes each joule once.
"""

from __future__ import annotations

import bisect
import statistics
from collections import deque
from dataclasses import dataclass

from carbontop.units import J_PER_KWH

GAP_FACTOR = 3.0  # a step longer than this many typical steps is a gap
GAP_HISTORY = 20  # steps the typical step is the median of
GAP_CEILING_S = 5.0  # a stalling source cannot widen its own threshold beyond this
TRACE_POINTS = 4096  # a trace keeps at least this many recent points to place edges between
TRACE_KEEP_S = 300.0  # ... and at least this many seconds of them (an edge may come this late)


class GapRule:
    """When a step between two readings is a gap rather than a measurement.

    A step is a gap when it is longer than 3 x the median of the last 20 observed steps, never
    less than 3 x the asked interval and never more than 5 s (so a stalling source cannot widen
    its own threshold), unless 3 x the asked interval is itself longer. A source that delivers
    slower than asked (jtop on a busy board) is judged by the pace it keeps; :meth:`reset` after a
    reconnect forgets the old pace.
    """

    def __init__(self, asked_interval_s: float) -> None:
        if asked_interval_s <= 0:
            raise ValueError("asked_interval_s must be positive")
        self.asked_interval_s = asked_interval_s
        self._steps: deque[float] = deque(maxlen=GAP_HISTORY)
        self._threshold_s = GAP_FACTOR * asked_interval_s

    def threshold_s(self) -> float:
        return self._threshold_s

    def is_gap(self, step_s: float) -> bool:
        return step_s > self._threshold_s

    def observe(self, step_s: float) -> None:
        """Records one step between consecutive readings (after it was judged)."""
        if step_s <= 0:
            return
        self._steps.append(step_s)
        floor = GAP_FACTOR * self.asked_interval_s
        typical = GAP_FACTOR * statistics.median(self._steps)
        self._threshold_s = max(floor, min(typical, GAP_CEILING_S))

    def typical_step_s(self) -> float:
        """The pace the source keeps: the median of the steps seen, else the asked interval."""
        return statistics.median(self._steps) if self._steps else self.asked_interval_s

    def reset(self, asked_interval_s: float | None = None) -> None:
        if asked_interval_s is not None and asked_interval_s > 0:
            self.asked_interval_s = asked_interval_s
        self._steps.clear()
        self._threshold_s = GAP_FACTOR * self.asked_interval_s


@dataclass(frozen=True)
class Mark:
    """A trace's running figures at one instant: what a window edge freezes."""

    energy_j: float
    measured_s: float
    samples: int


@dataclass(frozen=True)
class EnergyReading:
    """Energy integrated between two instants, and what it rests on."""

    energy_j: float
    samples: int
    measured_s: float
    unmeasured_s: float

    @property
    def energy_kwh(self) -> float:
        return self.energy_j / J_PER_KWH

    @property
    def mean_w(self) -> float | None:
        return self.energy_j / self.measured_s if self.measured_s > 0 else None


Interval = tuple[float, float]


def clipped(intervals: list[Interval], start: float, end: float) -> list[Interval]:
    """The parts of ``intervals`` inside ``[start, end]``."""
    out = []
    for a, b in intervals:
        lo, hi = max(a, start), min(b, end)
        if hi > lo:
            out.append((lo, hi))
    return out


def union_length(intervals: list[Interval]) -> float:
    """The length of the union of ``intervals`` (overlaps counted once)."""
    total, reach = 0.0, float("-inf")
    for a, b in sorted(intervals):
        if b <= reach:
            continue
        total += b - max(a, reach)
        reach = b
    return total


class PowerTrace:
    """One power channel (watts) on the session clock: the trapezoid between consecutive readings.

    ``add(t, None)`` is a missing reading: nothing is recorded, and the next reading bridges it
    when the step is no gap (one failed tick costs nothing). :meth:`mark_gap` (the source was lost)
    makes the next step a gap whatever its length.
    """

    def __init__(self, rule: GapRule) -> None:
        self.rule = rule
        self._t: list[float] = []
        self._w: list[float] = []
        self._energy: list[float] = []  # cumulative joules at each point
        self._measured: list[float] = []  # cumulative integrated seconds at each point
        self._samples: list[int] = []  # cumulative readings at each point
        self._bridged: list[bool] = []  # whether the step ending at this point was integrated
        # Every gap of the trace (never trimmed: a long session keeps its unmeasured time), in
        # order, so the gaps inside a window are found by bisection.
        self._gap_starts: list[float] = []
        self._gap_ends: list[float] = []
        self._first_t: float | None = None
        self._trimmed = False  # points older than self._t[0] were dropped
        self._broken = False

    # -- feeding --------------------------------------------------------------------------------

    @property
    def last_t(self) -> float | None:
        return self._t[-1] if self._t else None

    def add(self, t_s: float, power_w: float | None) -> None:
        """Adds one reading taken at ``t_s`` (session clock)."""
        if power_w is None or (self._t and t_s <= self._t[-1]):
            return  # a missing reading, or a repeated / out-of-order one
        self._append(t_s, max(0.0, power_w))

    def _append(self, t_s: float, value: float) -> None:
        if not self._t:
            self._first_t = t_s
            self._push(t_s, value, 0.0, 0.0, 1, False)
            return
        t0 = self._t[-1]
        step = t_s - t0
        if self._broken or self.rule.is_gap(step):
            self._add_gap(t0, t_s)
            self._push(t_s, value, self._energy[-1], self._measured[-1],
                       self._samples[-1] + 1, False)
        else:
            self._push(t_s, value, self._energy[-1] + self._step_j(value, step),
                       self._measured[-1] + step, self._samples[-1] + 1, True)
        self._broken = False

    def _add_gap(self, start: float, end: float) -> None:
        self._gap_starts.append(start)
        self._gap_ends.append(end)

    def _step_j(self, value: float, step_s: float) -> float:
        return 0.5 * (self._w[-1] + value) * step_s

    def _push(self, t: float, w: float, e: float, m: float, n: int, bridged: bool) -> None:
        self._t.append(t)
        self._w.append(w)
        self._energy.append(e)
        self._measured.append(m)
        self._samples.append(n)
        self._bridged.append(bridged)
        # Memory stays flat: a window's edges are placed (settled) as soon as a reading past
        # them arrives, so only the last TRACE_KEEP_S seconds of points are ever needed.
        if len(self._t) > 2 * TRACE_POINTS and t - self._t[TRACE_POINTS] > TRACE_KEEP_S:
            for column in (self._t, self._w, self._energy, self._measured, self._samples,
                           self._bridged):
                del column[:TRACE_POINTS]
            self._trimmed = True

    def mark_gap(self) -> None:
        """The source was lost: the next reading starts a new chain instead of bridging."""
        self._broken = True

    # -- reading --------------------------------------------------------------------------------

    def resolves(self, t_s: float) -> bool:
        """Whether the trace already holds a reading at or after ``t_s`` (the edge is placed)."""
        return bool(self._t) and self._t[-1] >= t_s

    def mark_at(self, t_s: float) -> Mark:
        """Cumulative figures at ``t_s``, interpolated between the readings that bracket it.

        Before the first reading: nothing. After the last reading: the last reading's figures
        (nothing is extrapolated; see :meth:`held_mark_at`).
        """
        if not self._t or t_s < self._t[0]:
            if not self._trimmed:
                return Mark(0.0, 0.0, 0)  # before the first reading: nothing yet
            # Older than the points kept (an edge placed more than TRACE_KEEP_S after it
            # passed): figures from the oldest point kept, the time before it unmeasured.
            return Mark(self._energy[0], self._measured[0], self._samples[0] - 1)
        i = bisect.bisect_right(self._t, t_s) - 1
        e, m, n = self._energy[i], self._measured[i], self._samples[i]
        if i + 1 < len(self._t) and self._bridged[i + 1] and t_s > self._t[i]:
            part = t_s - self._t[i]
            e += self._partial_j(i, part)
            m += part
        return Mark(e, m, n)

    def _partial_j(self, i: int, part_s: float) -> float:
        """Energy from point ``i`` to ``part_s`` later, within the bridged step after it."""
        span = self._t[i + 1] - self._t[i]
        w_at = self._w[i] + (self._w[i + 1] - self._w[i]) * part_s / span
        return 0.5 * (self._w[i] + w_at) * part_s

    def holds_to(self, t_s: float) -> bool:
        """Whether the last reading may be held up to ``t_s`` (a closing edge after it): only
        when the step to the edge is no gap and the trace has a value to hold."""
        last = self.last_t
        return (last is not None and t_s > last and not self._broken
                and not self.rule.is_gap(t_s - last) and self._hold_w() is not None)

    def held_mark_at(self, t_s: float) -> Mark:
        """Like :meth:`mark_at`, but a ``t_s`` after the last reading holds that reading up to
        ``t_s`` when :meth:`holds_to` allows; otherwise nothing past the last reading."""
        if not self.holds_to(t_s):
            return self.mark_at(t_s)
        held = t_s - self._t[-1]
        return Mark(self._energy[-1] + (self._hold_w() or 0.0) * held,
                    self._measured[-1] + held, self._samples[-1])

    def _hold_w(self) -> float | None:
        return self._w[-1] if self._w else None

    def gaps_within(self, start: float, end: float) -> list[Interval]:
        """The gaps between readings inside ``[start, end]``."""
        lo = bisect.bisect_right(self._gap_ends, start)
        hi = bisect.bisect_left(self._gap_starts, end)
        found = zip(self._gap_starts[lo:hi], self._gap_ends[lo:hi], strict=True)
        return clipped(list(found), start, end)

    def uncovered(self, start: float, end: float) -> list[Interval]:
        """The time in ``[start, end]`` not integrated, up to the last reading: gaps, and the
        time before the first reading. What lies after the last reading is the window's to
        judge (:meth:`tail_uncovered`), and so is an edge older than the points kept
        (:meth:`kept_from`)."""
        if self._first_t is None:
            return [(start, end)] if end > start else []  # never read: nothing measured
        out = self.gaps_within(start, end)
        if start < self._first_t:
            out.append((start, min(end, self._first_t)))
        return out

    def kept_from(self, t_s: float) -> float | None:
        """The oldest point kept when ``t_s`` is older than it (points were dropped): an edge
        placed there now cannot be interpolated, and the time before it is unmeasured."""
        if self._trimmed and self._t and t_s < self._t[0]:
            return self._t[0]
        return None

    def tail_uncovered(self, end: float, held: bool) -> list[Interval]:
        """The time from the last reading to ``end`` that is not integrated: all of it unless
        ``held`` and :meth:`holds_to` allow the hold (a closed window); for an open window,
        only once it has grown past the gap rule (a stalled source)."""
        last = self.last_t
        if last is None:
            return []
        if end <= last:
            return []
        covered = self.holds_to(end) if held else not self.rule.is_gap(end - last)
        return [] if covered else [(last, end)]

    def reading(self) -> EnergyReading:
        """Everything integrated from the first reading to the last."""
        if not self._t or self._first_t is None:
            return EnergyReading(0.0, 0, 0.0, 0.0)
        first, last = self._first_t, self._t[-1]
        end = self.mark_at(last)
        return EnergyReading(end.energy_j, end.samples, end.measured_s,
                             union_length(self.gaps_within(first, last)))


class CounterTrace(PowerTrace):
    """A cumulative hardware energy counter (NVML ``TotalEnergyConsumption``, joules).

    The counter keeps counting while the source is lost, so a step between two reads is always
    measured, however long; a counter that goes backwards (driver reload) leaves that step
    unmeasured. Between reads the energy is interpolated linearly in time; after the last read it
    is held at the last power only as far as the gap rule allows.
    """

    def __init__(self, rule: GapRule) -> None:
        super().__init__(rule)
        self._last_counter_j: float | None = None
        self._last_power_w: float | None = None

    def add_counter(self, t_s: float, counter_j: float | None, power_w: float | None) -> None:
        if counter_j is None or (self._t and t_s <= self._t[-1]):
            return
        previous, self._last_counter_j = self._last_counter_j, counter_j
        # The hold past the last read needs a power to hold at: none when its read failed.
        self._last_power_w = max(0.0, power_w) if power_w is not None else None
        if not self._t:
            self._first_t = t_s
            self._push(t_s, counter_j, 0.0, 0.0, 1, False)
            return
        t0 = self._t[-1]
        if previous is None or counter_j < previous:
            self._add_gap(t0, t_s)
            self._push(t_s, counter_j, self._energy[-1], self._measured[-1],
                       self._samples[-1] + 1, False)
        else:
            self._push(t_s, counter_j, self._energy[-1] + counter_j - previous,
                       self._measured[-1] + (t_s - t0), self._samples[-1] + 1, True)
        self._broken = False

    def add(self, t_s: float, power_w: float | None) -> None:
        raise TypeError("a counter trace takes counter readings: add_counter()")

    def mark_gap(self) -> None:
        """A lost source does not break a hardware counter."""

    def _partial_j(self, i: int, part_s: float) -> float:
        span = self._t[i + 1] - self._t[i]
        return (self._energy[i + 1] - self._energy[i]) * part_s / span

    def _hold_w(self) -> float | None:
        return self._last_power_w


@dataclass(frozen=True)
class IntervalMark:
    cpu_j: float
    ram_j: float
    readings_ended: int  # readings whose interval ended at or before the instant
    readings_started: int  # readings whose interval started before the instant


class IntervalTrace:
    """CodeCarbon's readings: CPU and RAM energy over intervals that end when each arrives.

    Each reading's energy is spread evenly over its interval; a window takes the part of each
    interval that lies inside it, and a reading is taken once however many windows it spans.
    """

    def __init__(self) -> None:
        self._start: list[float] = []
        self._end: list[float] = []
        self._cpu: list[float] = []  # cumulative joules at each interval's end
        self._ram: list[float] = []
        self._cpu_before = 0.0  # cumulative joules before the first interval kept
        self._ram_before = 0.0
        self._dropped = 0  # intervals dropped from the front

    @property
    def last_t(self) -> float | None:
        return self._end[-1] if self._end else None

    def add(self, end_s: float, duration_s: float, cpu_j: float, ram_j: float) -> None:
        if duration_s <= 0 or (self._end and end_s <= self._end[-1]):
            return
        start = end_s - duration_s
        if self._end:
            start = max(start, self._end[-1])  # arrival jitter: intervals never overlap
        base_cpu = self._cpu[-1] if self._cpu else 0.0
        base_ram = self._ram[-1] if self._ram else 0.0
        self._start.append(start)
        self._end.append(end_s)
        self._cpu.append(base_cpu + max(0.0, cpu_j))
        self._ram.append(base_ram + max(0.0, ram_j))
        if len(self._end) > 2 * TRACE_POINTS and end_s - self._end[TRACE_POINTS] > TRACE_KEEP_S:
            self._cpu_before = self._cpu[TRACE_POINTS - 1]
            self._ram_before = self._ram[TRACE_POINTS - 1]
            self._dropped += TRACE_POINTS
            for column in (self._start, self._end, self._cpu, self._ram):
                del column[:TRACE_POINTS]

    def resolves(self, t_s: float) -> bool:
        return bool(self._end) and self._end[-1] >= t_s

    def mark_at(self, t_s: float) -> IntervalMark:
        """CPU and RAM energy up to ``t_s`` (the part of the interval spanning it included)."""
        if not self._end:
            return IntervalMark(0.0, 0.0, 0, 0)
        ended = bisect.bisect_right(self._end, t_s)
        started = self._dropped + bisect.bisect_left(self._start, t_s)
        if ended == len(self._end):
            return IntervalMark(self._cpu[-1], self._ram[-1], self._dropped + ended, started)
        i = ended  # the first interval ending after t_s
        base_cpu = self._cpu[i - 1] if i > 0 else self._cpu_before
        base_ram = self._ram[i - 1] if i > 0 else self._ram_before
        lo, hi = self._start[i], self._end[i]
        share = 0.0 if t_s <= lo else (t_s - lo) / (hi - lo)
        return IntervalMark(base_cpu + (self._cpu[i] - base_cpu) * share,
                            base_ram + (self._ram[i] - base_ram) * share,
                            self._dropped + ended, started)


class TrapezoidIntegrator:
    """A whole stream integrated from first reading to last (benchmarks and comparisons).

    It owns its gap rule and feeds it each step, as the engine does for a live source.
    """

    def __init__(self, interval_s: float) -> None:
        self.rule = GapRule(interval_s)
        self.trace = PowerTrace(self.rule)

    def add(self, t_s: float, power_w: float | None) -> None:
        last = self.trace.last_t
        self.trace.add(t_s, power_w)
        if power_w is not None and last is not None and t_s > last:
            self.rule.observe(t_s - last)

    def mark_gap(self) -> None:
        self.trace.mark_gap()

    def reading(self) -> EnergyReading:
        return self.trace.reading()


class CounterIntegrator:
    """A hardware energy counter read from first reading to last (benchmarks and comparisons)."""

    def __init__(self, interval_s: float = 1.0) -> None:
        self.trace = CounterTrace(GapRule(interval_s))

    def add(self, t_s: float, counter_j: float | None, power_w: float | None = None) -> None:
        self.trace.add_counter(t_s, counter_j, power_w)

    def mark_gap(self) -> None:
        """A lost source does not break a hardware counter."""

    def reading(self) -> EnergyReading:
        return self.trace.reading()


def rectangle_1s_energy_j(powers_w: list[float]) -> float:
    """The original script's method: each sample taken as exactly one second (comparison only)."""
    return float(sum(powers_w))
