"""One measuring window: GPU, board and CPU-rail energy from samples, CPU and RAM from CodeCarbon.

A session has two windows (measurement.md rule 11): the whole session, and the measured window
(warm-up excluded). Between sessions the dashboard keeps an idle window. Totals follow one rule:
never count a joule twice (rule 5); every figure carries how many samples it rests on (rule 9).
"""

from __future__ import annotations

from dataclasses import dataclass

from carbontop.energy import CounterIntegrator, EnergyReading, TrapezoidIntegrator
from carbontop.model import BoardBasis, CpuRamReading, PowerSample, Scope, SourceInfo

J_PER_KWH = 3.6e6


@dataclass(frozen=True)
class WindowTotals:
    """Energy of one window, in kWh, with what each figure rests on. ``None``: not measured."""

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
    unmeasured_s: float

    @property
    def duration_s(self) -> float:
        return max(0.0, self.end_unix_s - self.start_unix_s)

    @property
    def mean_total_w(self) -> float | None:
        if self.total_kwh is None or self.duration_s <= 0:
            return None
        return self.total_kwh * J_PER_KWH / self.duration_s


def total_and_basis(info: SourceInfo, gpu_kwh: float | None, board_kwh: float | None,
                    cpu_kwh: float | None, ram_kwh: float | None,
                    cpu_rail_kwh: float | None = None) -> tuple[float | None, str]:
    """The session total and what it is. Never adds a figure that another already contains."""
    if board_kwh is not None and info.board_basis is BoardBasis.INPUT_RAIL:
        return board_kwh, f"board input rail {info.board_rail} (measured)"
    if board_kwh is not None and info.board_basis is BoardBasis.SUM_OF_RAILS:
        return board_kwh, "sum of all board rails (measured)"
    if gpu_kwh is not None and info.gpu_scope is Scope.GPU_SOC_SHARED:
        # AGX Orin's GPU+SOC rail holds no CPU: add the CPU (its rail where measured) and RAM.
        cpu = cpu_rail_kwh if cpu_rail_kwh is not None else cpu_kwh
        if cpu is None or ram_kwh is None:
            return gpu_kwh, "GPU+SOC rail (measured); CPU or RAM unavailable"
        source = "CPU rail (measured)" if cpu_rail_kwh is not None else "CPU (CodeCarbon)"
        return gpu_kwh + cpu + ram_kwh, f"GPU+SOC rail (measured) + {source} + RAM (CodeCarbon)"
    if gpu_kwh is not None and info.gpu_scope is not None and info.gpu_scope.is_shared:
        # A shared GPU rail already contains the CPU: add only RAM.
        if ram_kwh is None:
            return gpu_kwh, f"GPU rail ({info.gpu_scope.value}, measured); RAM unavailable"
        return gpu_kwh + ram_kwh, (
            f"GPU rail ({info.gpu_scope.value}, measured) + RAM (CodeCarbon, estimated)"
        )
    if gpu_kwh is not None:
        if cpu_kwh is None or ram_kwh is None:
            return gpu_kwh, "GPU only (measured); CPU and RAM unavailable"
        return gpu_kwh + cpu_kwh + ram_kwh, "GPU (measured) + CPU + RAM (CodeCarbon)"
    if cpu_kwh is not None and ram_kwh is not None:
        return cpu_kwh + ram_kwh, "CPU + RAM (CodeCarbon); no GPU measured"
    return None, "nothing measured"


class WindowMeter:
    """Accumulates one window. Not thread-safe: the engine holds its lock around every call."""

    def __init__(self, info: SourceInfo, start_unix_s: float, cpu_ram_available: bool = True
                 ) -> None:
        self.info = info
        self.start_unix_s = start_unix_s
        self.end_unix_s: float | None = None
        interval = info.interval_s
        self._gpu: TrapezoidIntegrator | CounterIntegrator = (
            CounterIntegrator() if info.has_energy_counter else TrapezoidIntegrator(interval))
        self._board = TrapezoidIntegrator(interval)
        self._cpu_rail = TrapezoidIntegrator(interval)
        self._cpu_kwh = 0.0
        self._ram_kwh = 0.0
        self._readings = 0
        self.cpu_ram_available = cpu_ram_available
        self.last_sample: PowerSample | None = None
        self._before_edge: PowerSample | None = None

    @property
    def is_open(self) -> bool:
        return self.end_unix_s is None

    def add_sample(self, s: PowerSample, counted: bool = True) -> None:
        """Adds a sensor sample (``counted=False``: a point held or interpolated at an edge)."""
        if not self.is_open:
            return
        before, self._before_edge = self._before_edge, None
        if before is not None and counted:
            edge = _interpolated_at(before, s, self.start_unix_s)
            if edge is not None:
                self.add_sample(edge, counted=False)
        if self.info.has_energy_counter:
            self._gpu.add(s.t_s, s.gpu_counter_j, counted)
        else:
            self._gpu.add(s.t_s, s.gpu_w, counted)
        # A board figure whose basis changed for one tick (input read failed, jtop fell back to
        # the sum) is not the same quantity: count that tick as unmeasured.
        board_w = s.board_w if s.board_basis is self.info.board_basis else None
        if self.info.board_basis is not None:
            self._board.add(s.t_s, board_w, counted)
        if self.info.cpu_rail is not None:
            self._cpu_rail.add(s.t_s, s.cpu_rail_w, counted)
        self.last_sample = s

    def start_from(self, previous: PowerSample | None) -> None:
        """Remembers the sample just before the window's edge: when the first sample inside
        arrives, a point interpolated at the edge itself starts the integration."""
        self._before_edge = previous

    def mark_gap(self) -> None:
        for integ in (self._gpu, self._board, self._cpu_rail):
            integ.mark_gap()

    def add_cpu_ram(self, r: CpuRamReading) -> None:
        """Adds the part of a CodeCarbon interval that overlaps this window."""
        if r.duration_s <= 0:
            return
        r_start, r_end = r.t_unix_s - r.duration_s, r.t_unix_s
        end = self.end_unix_s if self.end_unix_s is not None else float("inf")
        overlap = min(r_end, end) - max(r_start, self.start_unix_s)
        if overlap <= 0:
            return
        share = min(1.0, overlap / r.duration_s)
        self._cpu_kwh += r.cpu_energy_kwh * share
        self._ram_kwh += r.ram_energy_kwh * share
        self._readings += 1

    def close(self, end_unix_s: float) -> None:
        if self.is_open:
            if self.last_sample is not None:
                # Hold the last reading up to the edge, so the window's energy spans its length.
                held = _held_at(self.last_sample, end_unix_s)
                if held is not None:
                    self.add_sample(held, counted=False)
            self.end_unix_s = end_unix_s

    def totals(self, now_unix_s: float) -> WindowTotals:
        end = self.end_unix_s if self.end_unix_s is not None else now_unix_s
        gpu = self._reading_kwh(self._gpu.reading()) if self.info.measures_gpu else None
        board = (self._reading_kwh(self._board.reading())
                 if self.info.board_basis is not None else None)
        cpu_rail = (self._reading_kwh(self._cpu_rail.reading())
                    if self.info.cpu_rail is not None else None)
        cc_ok = self.cpu_ram_available or self._readings > 0
        cpu = self._cpu_kwh if cc_ok else None
        ram = self._ram_kwh if cc_ok else None
        total, basis = total_and_basis(self.info, gpu, board, cpu, ram, cpu_rail)
        original = None
        if cpu is not None and ram is not None:
            original = (gpu or 0.0) + cpu + ram
        unmeasured = max(self._gpu.reading().unmeasured_s, self._board.reading().unmeasured_s)
        return WindowTotals(
            start_unix_s=self.start_unix_s, end_unix_s=end, gpu_kwh=gpu, board_kwh=board,
            cpu_rail_kwh=cpu_rail, cpu_kwh=cpu, ram_kwh=ram, total_kwh=total, total_basis=basis,
            original_total_kwh=original, gpu_samples=self._gpu.reading().samples,
            board_samples=self._board.reading().samples, cpu_ram_readings=self._readings,
            unmeasured_s=unmeasured,
        )

    def gpu_energy_kwh(self) -> float | None:
        return self._gpu.reading().energy_kwh if self.info.measures_gpu else None

    @staticmethod
    def _reading_kwh(r: EnergyReading) -> float | None:
        return r.energy_kwh if r.samples > 0 else None


def _held_at(s: PowerSample, t_unix_s: float) -> PowerSample | None:
    """The last reading held to a window's end edge (a counter advances at the last power)."""
    dt = t_unix_s - s.t_unix_s
    if dt <= 0:
        return None
    counter = None
    if s.gpu_counter_j is not None:
        counter = s.gpu_counter_j + max(0.0, s.gpu_w or 0.0) * dt
    return PowerSample(
        t_s=s.t_s + dt, t_sensor_s=(s.t_sensor_s or 0.0) + dt, t_unix_s=t_unix_s,
        gpu_w=s.gpu_w, board_w=s.board_w,
        board_basis=s.board_basis, board_rail=s.board_rail, cpu_rail_w=s.cpu_rail_w,
        gpu_load_pct=s.gpu_load_pct, gpu_counter_j=counter, rails_w=s.rails_w,
    )


def _lerp(a: float | None, b: float | None, f: float) -> float | None:
    return None if a is None or b is None else a + (b - a) * f


def _interpolated_at(a: PowerSample, b: PowerSample, t_unix_s: float) -> PowerSample | None:
    """A point at a window's start edge, linear between the samples either side of it."""
    span = b.t_unix_s - a.t_unix_s
    if span <= 0 or not a.t_unix_s < t_unix_s < b.t_unix_s:
        return None
    f = (t_unix_s - a.t_unix_s) / span
    a_sensor, b_sensor = a.t_sensor_s or 0.0, b.t_sensor_s or 0.0
    t_sensor = a_sensor + f * (b_sensor - a_sensor)
    if not a_sensor < t_sensor < b_sensor:
        return None
    same_basis = a.board_basis is b.board_basis
    return PowerSample(
        t_s=a.t_s + f * (b.t_s - a.t_s), t_sensor_s=t_sensor, t_unix_s=t_unix_s,
        gpu_w=_lerp(a.gpu_w, b.gpu_w, f),
        board_w=_lerp(a.board_w, b.board_w, f) if same_basis else None,
        board_basis=b.board_basis, board_rail=b.board_rail,
        cpu_rail_w=_lerp(a.cpu_rail_w, b.cpu_rail_w, f), gpu_load_pct=b.gpu_load_pct,
        gpu_counter_j=_lerp(a.gpu_counter_j, b.gpu_counter_j, f), rails_w=b.rails_w,
    )


__all__ = ["WindowMeter", "WindowTotals", "total_and_basis", "Scope"]
