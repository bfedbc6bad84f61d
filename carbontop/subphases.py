"""Sub-phases of the measured window (prefill, decode...): their energy, and whether it can be told.

A program marks sub-phases inside its measured window (``progress.subphase("prefill")``); every
interval between a sub-phase's start edge and the next edge belongs to it, the rest of the window is
"other" (time between requests, a request unfinished at the window's end). Each interval's energy
is the traces' cumulative energy at its end minus that at its start, exactly as a window's
(:mod:`carbontop.meter`): the sub-phases and "other" add up to the window, no joule twice.

Memory stays flat however many intervals there are: an interval is kept only until the readings
that bracket its end edge are in, then folded into its sub-phase's running sums.

An energy figure is reported only where the sampling resolves the intervals (issue "Energy per
token"): a hardware energy counter read at the edges (NVML), or at least
:data:`MIN_SAMPLES_PER_INTERVAL` readings per interval on average on the channels the total rests
on. Otherwise the figure is empty and a note says which sampling interval or mode would resolve it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from carbontop.attribution import attribute
from carbontop.meter import Traces, WindowTotals
from carbontop.units import J_PER_KWH

MIN_SAMPLES_PER_INTERVAL = 10
CPU_RAM_WAIT_S = 3.0  # how long an interval waits for CodeCarbon's reading past its end
OTHER = "other"
CHANNELS = ("gpu", "board", "cpu_rail")


@dataclass
class _Sums:
    """One sub-phase's intervals, folded."""

    intervals: int = 0
    duration_s: float = 0.0
    energy_j: dict[str, float] = field(default_factory=dict)
    measured_s: dict[str, float] = field(default_factory=dict)
    samples: dict[str, int] = field(default_factory=dict)
    cpu_j: float = 0.0
    ram_j: float = 0.0
    cpu_ram_readings: int = 0

    def channel_kwh(self, name: str) -> float | None:
        if self.measured_s.get(name, 0.0) <= 0:
            return None
        return self.energy_j.get(name, 0.0) / J_PER_KWH


@dataclass(frozen=True)
class SubphaseFigures:
    """One sub-phase (or "other") over the window, and what its figures rest on.

    ``energy_j`` is on the window total's basis, ``gpu_energy_j`` the GPU figure; both None where
    the sampling does not resolve the intervals (``method`` "not resolved", ``note`` says why).
    ``samples`` are readings inside the intervals on the channels the total rests on;
    ``coverage`` the share of the intervals' time those channels integrated.
    """

    name: str
    intervals: int
    duration_s: float
    units: float | None
    unit: str | None
    energy_j: float | None
    gpu_energy_j: float | None
    samples: int
    coverage: float | None
    method: str
    note: str = ""

    @property
    def samples_per_interval(self) -> float:
        return self.samples / self.intervals if self.intervals else 0.0

    @property
    def energy_per_unit_j(self) -> float | None:
        return self.energy_j / self.units if self.energy_j is not None and self.units else None

    @property
    def gpu_energy_per_unit_j(self) -> float | None:
        return (self.gpu_energy_j / self.units if self.gpu_energy_j is not None and self.units
                else None)

    @property
    def units_per_s(self) -> float | None:
        return self.units / self.duration_s if self.units and self.duration_s > 0 else None

    def to_json(self) -> dict[str, object]:
        return {
            "intervals": self.intervals, "duration_s": round(self.duration_s, 6),
            "units": self.units, "unit": self.unit, "energy_j": self.energy_j,
            "gpu_energy_j": self.gpu_energy_j, "energy_per_unit_j": self.energy_per_unit_j,
            "gpu_energy_per_unit_j": self.gpu_energy_per_unit_j, "units_per_s": self.units_per_s,
            "samples": self.samples, "samples_per_interval": round(self.samples_per_interval, 3),
            "coverage": self.coverage, "method": self.method, "note": self.note,
        }


@dataclass(frozen=True)
class SubphaseReport:
    """Every sub-phase of the window in order of first appearance, then "other"."""

    phases: tuple[SubphaseFigures, ...]
    other: SubphaseFigures | None
    basis: str  # the total's basis the energies are on
    note: str = ""

    def get(self, name: str) -> SubphaseFigures | None:
        if name == OTHER:
            return self.other
        return next((p for p in self.phases if p.name == name), None)

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {p.name: p.to_json() for p in self.phases}
        if self.other is not None:
            out[OTHER] = self.other.to_json()
        return {"basis": self.basis, "note": self.note, "phases": out}


class SubphaseMeter:
    """The sub-phase intervals of one measured window over the engine's :class:`Traces`.

    Not thread-safe: the engine holds its lock around every call. Edges arrive in order of
    emission, each stamped on the session clock; an edge closes the open interval and opens the
    next (``None`` or ``"other"`` opens none). The interval still open when the window ends goes
    to "other", and the units counted in it are not counted.
    """

    def __init__(self, traces: Traces, start_s: float) -> None:
        self.traces = traces
        self.start_s = start_s
        self.end_s: float | None = None
        self._open: tuple[str, float] | None = None
        self._pending: deque[tuple[str, float, float, float]] = deque()  # with units at its end
        self._sums: dict[str, _Sums] = {}
        self._units: dict[str, float] = {}  # cumulative, as the program reports them
        self._committed: dict[str, float] = {}  # as of each sub-phase's last closed interval
        self._folded: dict[str, float] = {}  # ...last folded one: what its energy so far covers
        self.unit: str | None = None

    @property
    def current(self) -> str | None:
        return self._open[0] if self._open else None

    def names(self) -> list[str]:
        seen = dict.fromkeys([*self._sums, *self._units])
        if self._open:
            seen.setdefault(self._open[0])
        return list(seen)

    def edge(self, name: str | None, t_s: float, units: dict[str, float] | None = None) -> None:
        """The sub-phase ``name`` starts at ``t_s`` (None or "other": none does)."""
        if self.end_s is not None:
            return
        t_s = max(t_s, self._open[1] if self._open else self.start_s, self.start_s)
        if units:
            self.set_units(units)
        if self._open is not None:
            open_name, open_start = self._open
            if t_s > open_start:
                self._pending.append((open_name, open_start, t_s,
                                      self._units.get(open_name, 0.0)))
                self._sums.setdefault(open_name, _Sums())
            self._committed[open_name] = self._units.get(open_name, 0.0)
        self._open = None if name is None or name == OTHER else (name, t_s)
        if self._open is not None:
            self._sums.setdefault(name or OTHER, _Sums())

    def set_units(self, units: dict[str, float]) -> None:
        """The program's cumulative units per sub-phase so far."""
        self._units.update({k: float(v) for k, v in units.items()})

    def close(self, end_s: float) -> None:
        """The window ends at ``end_s``: an interval still open goes to "other"."""
        if self.end_s is None:
            self.end_s = end_s
            self._open = None

    def settle(self, now_s: float) -> None:
        """Folds every interval whose end edge the readings have placed."""
        while self._pending:
            name, start, end, units = self._pending[0]
            if not self._resolved(end, now_s):
                return
            self._fold(name, start, end, held=False)
            self._folded[name] = units
            self._pending.popleft()

    def finish(self) -> None:
        """The window is over: folds what is left (an edge past the last reading is held)."""
        while self._pending:
            name, start, end, units = self._pending.popleft()
            self._fold(name, start, end, held=True)
            self._folded[name] = units

    def _resolved(self, end_s: float, now_s: float) -> bool:
        if not all(t.resolves(end_s) for t in self.traces.channels().values()):
            return False
        cc = self.traces.cpu_ram
        return cc.resolves(end_s) or cc.last_t is None or now_s - end_s > CPU_RAM_WAIT_S

    def _fold(self, name: str, start: float, end: float, held: bool) -> None:
        sums = self._sums.setdefault(name, _Sums())
        sums.intervals += 1
        sums.duration_s += end - start
        for channel, trace in self.traces.channels().items():
            a = trace.mark_at(start)
            b = trace.held_mark_at(end) if held else trace.mark_at(end)
            sums.energy_j[channel] = sums.energy_j.get(channel, 0.0) + b.energy_j - a.energy_j
            sums.measured_s[channel] = sums.measured_s.get(channel, 0.0) + b.measured_s \
                - a.measured_s
            sums.samples[channel] = sums.samples.get(channel, 0) + max(0, b.samples - a.samples)
        cc = self.traces.cpu_ram
        ca, cb = cc.mark_at(start), cc.mark_at(end)
        sums.cpu_j += cb.cpu_j - ca.cpu_j
        sums.ram_j += cb.ram_j - ca.ram_j
        sums.cpu_ram_readings += max(0, cb.readings_started - ca.readings_ended)

    # -- figures -------------------------------------------------------------------------------

    def report(self, window: WindowTotals | None, final: bool) -> SubphaseReport | None:
        """The sub-phases' figures against the window's; None when the program marked none.

        ``final``: units are those of closed intervals only (an interval open at the window's
        end is not counted); otherwise (the live view) those of the intervals folded so far, the
        ones the energies cover, so that J per unit never divides one interval's joules by
        another's units.
        """
        names = self.names()
        if not names or window is None:
            return None
        phases: list[SubphaseFigures] = []
        for name in names:
            sums = self._sums.get(name, _Sums())
            units = self._committed.get(name) if final else self._folded.get(name, 0.0)
            phases.append(self._figures(name, sums, units))
        basis = window.total_basis
        other = None
        note = ""
        unresolved = [p for p in phases if p.energy_j is None and p.intervals]
        if unresolved:
            note = unresolved[0].note
        if window.total_kwh is not None and phases and not unresolved:
            window_j = window.total_kwh * J_PER_KWH
            window_gpu_j = window.gpu_kwh * J_PER_KWH if window.gpu_kwh is not None else None
            used = sum(p.energy_j or 0.0 for p in phases)
            used_gpu = sum(p.gpu_energy_j or 0.0 for p in phases)
            duration = max(0.0, window.duration_s - sum(p.duration_s for p in phases))
            other = SubphaseFigures(
                OTHER, 0, duration, None, self.unit, max(0.0, window_j - used),
                max(0.0, window_gpu_j - used_gpu) if window_gpu_j is not None else None,
                0, None, "window minus sub-phases",
                "time outside every sub-phase: between requests, an unfinished request")
        elif phases:
            duration = max(0.0, window.duration_s - sum(p.duration_s for p in phases))
            other = SubphaseFigures(OTHER, 0, duration, None, self.unit, None, None, 0, None,
                                    "not resolved", note or "the window's total is not measured")
        return SubphaseReport(tuple(phases), other, basis, note)

    def _figures(self, name: str, sums: _Sums, units: float | None) -> SubphaseFigures:
        info = self.traces.info
        gpu_kwh, board_kwh, rail_kwh = (sums.channel_kwh(c) for c in CHANNELS)
        cc = sums.cpu_ram_readings > 0
        att = attribute(info, gpu_kwh, board_kwh, sums.cpu_j / J_PER_KWH if cc else None,
                        sums.ram_j / J_PER_KWH if cc else None, rail_kwh)
        rests_on = [c for c in att.rests_on if c in self.traces.channels()]
        samples = min((sums.samples.get(c, 0) for c in rests_on), default=0)
        coverage = None
        if rests_on and sums.duration_s > 0:
            coverage = min(sums.measured_s.get(c, 0.0) for c in rests_on) / sums.duration_s
        per_interval = samples / sums.intervals if sums.intervals else 0.0
        counter = info.has_energy_counter and rests_on == ["gpu"]
        if not sums.intervals:
            method, note = "no interval", f"{name}: no interval closed inside the window"
        elif counter:
            method, note = "energy counter at the edges", ""
            if att.components.cpu_kwh is not None:
                note = "CPU and RAM (CodeCarbon) spread evenly over their 1 s readings"
        elif rests_on and per_interval >= MIN_SAMPLES_PER_INTERVAL:
            method, note = f"samples ({per_interval:.0f} per interval)", ""
        else:
            method, note = "not resolved", self._unresolved_note(name, sums, per_interval,
                                                                  bool(rests_on))
        resolved = method not in ("not resolved", "no interval")
        total_j = att.total_kwh * J_PER_KWH if resolved and att.total_kwh is not None else None
        gpu_j = gpu_kwh * J_PER_KWH if resolved and gpu_kwh is not None else None
        return SubphaseFigures(name, sums.intervals, sums.duration_s, units, self.unit, total_j,
                               gpu_j, samples, coverage, method, note)

    def _unresolved_note(self, name: str, sums: _Sums, per_interval: float,
                         measured: bool) -> str:
        mean_s = sums.duration_s / sums.intervals
        if not measured:
            return (f"{name}: no power channel resolves {mean_s:.3g} s intervals (CodeCarbon reads"
                    " once a second); measure the sub-phases apart (llm-generate: mode=prefill, "
                    "mode=decode)")
        needed = mean_s / MIN_SAMPLES_PER_INTERVAL
        return (f"{name}: its intervals last {mean_s:.3g} s and hold {per_interval:.2g} samples "
                f"each at {self.traces.info.interval_s:g} s sampling; per-phase energy needs >= "
                f"{MIN_SAMPLES_PER_INTERVAL} per interval: sample every {needed:.2g} s or faster "
                "(e.g. --gpu-source sysfs --interval 0.01), read an energy counter (NVML), or "
                "measure it alone (llm-generate: mode=prefill, mode=decode)")
