"""A finished (or partial) session as one value, and its rows for the CSV files."""

from __future__ import annotations

import json
import platform
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from carbontop import __version__, boards
from carbontop.carbon import CarbonIntensity
from carbontop.meter import WindowTotals
from carbontop.model import FinalStatus, SourceInfo
from carbontop.subphases import SubphaseReport
from carbontop.units import J_PER_KWH


def iso_utc(t_unix_s: float) -> str:
    return datetime.fromtimestamp(t_unix_s, tz=timezone.utc).isoformat(timespec="microseconds")


MIN_WINDOW_SAMPLE_PERIODS = 2
"""A measured window shorter than this many sample periods gives no per-unit figures."""


def too_short_note(duration_s: float, sample_period_s: float) -> str | None:
    """Why a window of ``duration_s`` is too short to measure at ``sample_period_s``; else None.

    Shorter than two sample periods, a window holds at most one sample, so its energy is an
    interpolation between samples taken outside it: a rate or J per unit from it is not a
    measurement (a 0.3 s window once gave "247155 sample/s, 8.4e-05 J/sample").
    """
    if sample_period_s <= 0 or duration_s >= MIN_WINDOW_SAMPLE_PERIODS * sample_period_s:
        return None
    return (f"window too short to measure ({duration_s:.3g} s < "
            f"{MIN_WINDOW_SAMPLE_PERIODS} sample periods of {sample_period_s:.2g} s)")


@dataclass(frozen=True)
class Efficiency:
    """Energy per unit of work over the measured window (docs/measurement.md rule 7).

    ``too_short`` says why the figures are empty when the window was shorter than two sample
    periods (:func:`too_short_note`); None otherwise.
    """

    units: float | None
    unit: str | None
    throughput_per_s: float | None
    energy_per_unit_j: float | None
    units_per_j: float | None
    units_per_s_per_w: float | None
    gflop_per_j: float | None
    too_short: str | None = None

    @staticmethod
    def compute(units: float | None, unit: str | None, flops: float | None,
                window: WindowTotals | None, sample_period_s: float | None = None) -> Efficiency:
        """The window's figures; none of them when it lasted under two ``sample_period_s``."""
        if window is not None and sample_period_s is not None:
            note = too_short_note(window.duration_s, sample_period_s)
            if note is not None:
                return Efficiency(units, unit, None, None, None, None, None, too_short=note)
        if window is None or not units or window.duration_s <= 0:
            return Efficiency(units, unit, None, None, None, None, None)
        throughput = units / window.duration_s
        energy_j = window.total_kwh * J_PER_KWH if window.total_kwh is not None else None
        per_unit = energy_j / units if energy_j is not None else None  # a real 0 J stays 0
        per_j = units / energy_j if energy_j else None
        mean_w = window.mean_total_w
        per_s_per_w = throughput / mean_w if mean_w else None
        gflop_j = (flops / 1e9) / energy_j if flops and energy_j else None
        return Efficiency(units, unit, throughput, per_unit, per_j, per_s_per_w, gflop_j)


@dataclass(frozen=True)
class Baseline:
    """Idle power measured before the workload (docs/measurement.md rule 8)."""

    duration_s: float
    idle_w: float
    samples: int

    def net_kwh(self, window: WindowTotals | None) -> float | None:
        """Window energy above idle: gross minus idle power over the window's length."""
        if window is None or window.total_kwh is None:
            return None
        return max(0.0, window.total_kwh - self.idle_w * window.duration_s / J_PER_KWH)


@dataclass(frozen=True)
class SessionSummary:
    run_id: str
    status: FinalStatus
    workload: str
    params: dict[str, Any]
    source: SourceInfo
    intensity: CarbonIntensity
    whole: WindowTotals
    window: WindowTotals | None
    efficiency: Efficiency
    failure_reason: str | None = None
    cpu_mode: str = ""
    cpu_provenance: str = "estimated"
    child_info: dict[str, str] = field(default_factory=dict)
    hardware: dict[str, str] = field(default_factory=dict)
    baseline: Baseline | None = None
    experiment_id: str | None = None  # shared by the trials of one --repeat
    trial: str | None = None  # "2/5"
    board: dict[str, object] = field(default_factory=dict)  # board_state.BOARD_STATE_COLUMNS
    subphases: SubphaseReport | None = None  # the window's sub-phases (prefill, decode...)

    def __post_init__(self) -> None:
        # The source's sample period decides whether the window could be measured at all. The
        # rule is applied here as well, so that every summary follows it whoever computed the
        # efficiency (and whether or not they passed the period to Efficiency.compute).
        if self.window is None or self.efficiency.too_short is not None:
            return
        note = too_short_note(self.window.duration_s, self.source.interval_s)
        if note is not None:
            e = self.efficiency
            object.__setattr__(self, "efficiency", Efficiency(
                e.units, e.unit, None, None, None, None, None, too_short=note))

    def co2_kg(self, kwh: float | None) -> float | None:
        return None if kwh is None else kwh * self.intensity.g_per_kwh / 1000.0

    def emissions_row(self) -> dict[str, object]:
        w, win, e, s = self.whole, self.window, self.efficiency, self.source
        cpu_ram_kwh = (w.cpu_kwh + w.ram_kwh) if w.cpu_kwh is not None and w.ram_kwh is not None \
            else None
        return {
            "gpu_energy_kwh": w.gpu_kwh,
            "cpu_ram_co2_kg": self.co2_kg(cpu_ram_kwh),
            "gpu_co2_kg": self.co2_kg(w.gpu_kwh),
            "total_co2_kg": self.co2_kg(w.total_kwh),
            "gpu_count": s.gpu_count,
            "gpu_name": s.device_name,
            "run_id": self.run_id,
            "status": self.status.value,
            "start_time": iso_utc(w.start_unix_s),
            "end_time": iso_utc(w.end_unix_s),
            "duration_s": round(w.duration_s, 3),
            "workload": self.workload,
            "params": json.dumps(self.params, sort_keys=True),
            "cpu_energy_kwh": w.cpu_kwh,
            "ram_energy_kwh": w.ram_kwh,
            "cpu_rail_energy_kwh": w.cpu_rail_kwh,
            "board_energy_kwh": w.board_kwh,
            "board_basis": _board_basis_text(s),
            "total_energy_kwh": w.total_kwh,
            "total_basis": w.total_basis,
            "original_total_co2_kg": self.co2_kg(w.original_total_kwh),
            "window_duration_s": round(win.duration_s, 3) if win else None,
            "window_gpu_energy_kwh": win.gpu_kwh if win else None,
            "window_total_energy_kwh": win.total_kwh if win else None,
            "window_total_co2_kg": self.co2_kg(win.total_kwh) if win else None,
            "window_gpu_samples": win.gpu_samples if win else None,
            "gpu_samples": w.gpu_samples,
            "cpu_ram_readings": w.cpu_ram_readings,
            "unmeasured_s": round(w.unmeasured_s, 3),
            "units": e.units,
            "unit": e.unit,
            "throughput_per_s": e.throughput_per_s,
            "energy_per_unit_j": e.energy_per_unit_j,
            "units_per_j": e.units_per_j,
            "units_per_s_per_w": e.units_per_s_per_w,
            "gflop_per_j": e.gflop_per_j,
            "gross_energy_kwh": win.total_kwh if win and self.baseline else None,
            "net_energy_kwh": self.baseline.net_kwh(win) if self.baseline else None,
            "net_co2_kg": self.co2_kg(self.baseline.net_kwh(win)) if self.baseline else None,
            "idle_power_w": self.baseline.idle_w if self.baseline else None,
            "net_energy_per_unit_j": self._net_per_unit(),
            "window_gpu_energy_per_unit_j": self._gpu_per_unit(),
            **self.subphase_columns(),
            "requests": _number(self.child_info.get("requests")),
            "ttft_median_s": _number(self.child_info.get("ttft_median_s")),
            "experiment_id": self.experiment_id,
            "trial": self.trial,
            "carbon_intensity_g_per_kwh": self.intensity.g_per_kwh,
            "carbon_intensity_origin": self.intensity.origin,
            "country_iso_code": self.intensity.country_iso3,
            "region": self.intensity.region,
            "gpu_source": s.kind,
            "gpu_rail": s.gpu_rail,
            "gpu_scope": s.gpu_scope.value if s.gpu_scope else None,
            "cpu_provenance": self.cpu_provenance,
            **self.board,
            "failure_reason": self.failure_reason,
            "device": self.child_info.get("device"),
            "carbontop_version": __version__,
            "jetson_stats_version": s.jetson_stats_version,
            "jetpack": s.jetpack,
            "l4t": s.l4t,
            # torch_info() reports the version as "torch"
            "torch_version": self.child_info.get("torch_version") or self.child_info.get("torch"),
            "cuda_version": self.child_info.get("cuda_version"),
            # The child's own Python (CodeCarbon's python_version in total_summary.csv is the
            # monitor's); a plain command's interpreter is its own business, so none there.
            "workload_python_version": self.child_info.get("python"),
        }

    def total_summary_row(self) -> dict[str, object]:
        """CodeCarbon's columns, GPU fields carrying carbontop's measurement.

        ``cpu_energy + gpu_energy + ram_energy == energy_consumed``: the total is split on its
        basis (carbontop/attribution.py), and ``total_basis`` names what each part holds.
        """
        w, hw = self.whole, self.hardware
        duration = w.duration_s
        emissions = self.co2_kg(w.total_kwh)
        parts = w.components
        gpu_kwh = parts.gpu_kwh if parts else w.gpu_kwh
        cpu_kwh = parts.cpu_kwh if parts else w.cpu_kwh
        ram_kwh = parts.ram_kwh if parts else w.ram_kwh
        basis = f"{w.total_basis}; {parts.note}" if parts and parts.note else w.total_basis

        def mean_w(kwh: float | None) -> float | None:
            return kwh * J_PER_KWH / duration if kwh is not None and duration else None

        return {
            "timestamp": iso_utc(w.end_unix_s),
            "project_name": f"carbontop:{self.workload}",
            "run_id": self.run_id,
            "experiment_id": self.experiment_id or self.workload,
            "duration": duration,
            "emissions": emissions,
            "emissions_rate": emissions / duration if emissions is not None and duration else None,
            "cpu_power": mean_w(cpu_kwh),
            "gpu_power": mean_w(gpu_kwh),
            "ram_power": mean_w(ram_kwh),
            "cpu_energy": cpu_kwh,
            "gpu_energy": gpu_kwh,
            "ram_energy": ram_kwh,
            "energy_consumed": w.total_kwh,
            "water_consumed": None,
            # CodeCarbon's readers expect a code in every row: "WLD" (World Bank's code for the
            # world) when the world average applies.
            "country_name": self.intensity.country_name or "World",
            "country_iso_code": self.intensity.country_iso3 or "WLD",
            "region": self.intensity.region,
            "cloud_provider": "",
            "cloud_region": "",
            "os": hw.get("os", platform.platform()),
            "python_version": hw.get("python_version", platform.python_version()),
            "codecarbon_version": hw.get("codecarbon_version"),
            "cpu_count": hw.get("cpu_count"),
            "cpu_model": hw.get("cpu_model"),
            "gpu_count": self.source.gpu_count,
            "gpu_model": self.source.device_name,
            "longitude": None,
            "latitude": None,
            "ram_total_size": hw.get("ram_total_size"),
            "tracking_mode": "machine",
            "on_cloud": "N",
            "pue": 1.0,
            "wue": 0.0,
            "status": self.status.value,
            "workload": self.workload,
            "total_basis": basis,
            "gpu_source": self.source.kind,
            "gpu_scope": self.source.gpu_scope.value if self.source.gpu_scope else None,
            "carbon_intensity_g_per_kwh": self.intensity.g_per_kwh,
            "carbon_intensity_origin": self.intensity.origin,
        }

    def _gpu_per_unit(self) -> float | None:
        """The window's GPU energy per unit (the total's is energy_per_unit_j)."""
        win, e = self.window, self.efficiency
        if win is None or win.gpu_kwh is None or not e.units or e.too_short:
            return None
        return win.gpu_kwh * J_PER_KWH / e.units

    def subphase_columns(self) -> dict[str, object]:
        """The flat columns of the sub-phases named ``prefill`` and ``decode`` and of "other"; every
        sub-phase, whatever its name, is in the ``subphases`` JSON column."""
        report = self.subphases
        out: dict[str, object] = {}
        for name in SUBPHASE_COLUMNS_FOR:
            p = report.get(name) if report else None
            out.update({
                f"{name}_energy_j": p.energy_j if p else None,
                f"{name}_gpu_energy_j": p.gpu_energy_j if p else None,
                f"{name}_units": p.units if p else None,
                f"{name}_energy_per_unit_j": p.energy_per_unit_j if p else None,
                f"{name}_gpu_energy_per_unit_j": p.gpu_energy_per_unit_j if p else None,
                f"{name}_units_per_s": p.units_per_s if p else None,
                f"{name}_samples": p.samples if p else None,
                f"{name}_method": p.method if p else None,
            })
        other = report.other if report else None
        out["other_energy_j"] = other.energy_j if other else None
        out["other_duration_s"] = round(other.duration_s, 6) if other else None
        out["subphase_note"] = report.note if report and report.note else None
        out["subphases"] = json.dumps(report.to_json()["phases"], sort_keys=True) \
            if report else None
        return out

    def _net_per_unit(self) -> float | None:
        if self.baseline is None or not self.efficiency.units or self.efficiency.too_short:
            return None
        net = self.baseline.net_kwh(self.window)
        return net * J_PER_KWH / self.efficiency.units if net is not None else None

    def to_json(self) -> dict[str, object]:
        row = self.emissions_row()
        row["whole"] = asdict(self.whole)
        row["window"] = asdict(self.window) if self.window else None
        row["cpu_mode"] = self.cpu_mode
        # Each measured component's own gaps (unmeasured_s is the union for the total's basis).
        for name in ("gpu", "board", "cpu_rail"):
            row[f"{name}_unmeasured_s"] = round(getattr(self.whole, f"{name}_unmeasured_s"), 3)
        row["window_too_short"] = self.efficiency.too_short
        # The edges on the session clock (CLOCK_MONOTONIC), for comparing with other tools.
        row["session_start_s"], row["session_end_s"] = self.whole.start_s, self.whole.end_s
        row["window_start_s"] = self.window.start_s if self.window else None
        row["window_end_s"] = self.window.end_s if self.window else None
        row["sample_interval_s"] = self.source.interval_s  # the pace the source kept
        row["sample_pace_note"] = self.source.pace_note or None
        row["subphases"] = self.subphases.to_json() if self.subphases else None
        return row


SUBPHASE_COLUMNS_FOR = ("prefill", "decode")
"""Sub-phases with their own emissions.csv columns (llm-generate's, and any program's of the same
names)."""


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def _board_basis_text(s: SourceInfo) -> str | None:
    return boards.board_label(s.board_basis, s.board_rail)
