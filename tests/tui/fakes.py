"""A stand-in for the Engine that shows one fixed moment, for snapshot tests.

Everything it returns is built from the real value types (views.Snapshot, SessionView,
LiveFigures, HistoryPoint, meter.WindowTotals, summary.Efficiency), so a change in their shape
breaks these tests as it would break the app. It has every member of the faces' protocol
(carbontop.engine_api.EngineFace).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from carbontop.carbon import CarbonIntensity
from carbontop.engine_api import SessionRequest
from carbontop.meter import WindowTotals
from carbontop.model import BoardBasis, FinalStatus, Phase, Scope, SourceInfo
from carbontop.registry import WorkloadEntry
from carbontop.subphases import OTHER, SubphaseFigures, SubphaseReport
from carbontop.summary import Efficiency
from carbontop.units import J_PER_KWH
from carbontop.views import HistoryPoint, LiveFigures, SessionView, Snapshot

T0 = 1_750_000_000.0  # a fixed wall clock: 2025-06-15 15:06:40 UTC

SIM_INFO = SourceInfo(
    kind="sim", device_name="Simulated Jetson AGX Orin (64GB)", gpu_count=1,
    gpu_rail="VDD_GPU_SOC", gpu_scope=Scope.GPU_SOC_SHARED, board_basis=BoardBasis.SUM_OF_RAILS,
    cpu_rail="VDD_CPU_CV", interval_s=0.5, jetpack="6.0", l4t="36.3.0",
    note="board = sum of jtop's rails (this board has no module input rail)")

WORKLOADS = [
    WorkloadEntry("gpu-stress", "NxN float32 matmul + ReLU + sum, synchronized each iteration",
                  "iteration", "workloads.stress:GpuStress"),
    WorkloadEntry("cpu-stress", "numpy NxN randn + dot + max(0) + sum on the CPU", "iteration",
                  "workloads.stress:CpuStress"),
    WorkloadEntry("matmul", "Square GEMM (fp16 on CUDA, fp32 on CPU); unit GFLOP", "GFLOP",
                  "workloads.matmul:Matmul"),
    WorkloadEntry("idle", "Does nothing (sleeps): the idle power baseline; unit second",
                  "second", "workloads.idle:Idle"),
    WorkloadEntry("yolo-plugin", "", "", "yolo_bench:Yolo",
                  error="cannot import yolo_bench: No module named 'ultralytics'", source="plugin"),
]


def intensity() -> CarbonIntensity:
    return CarbonIntensity(g_per_kwh=56.0, origin="CodeCarbon data: France (FRA)",
                           source="country", country_iso3="FRA", country_name="France")


def totals(start: float, end: float, gpu_w: float, board_w: float, cpu_rail_w: float,
           cpu_w: float, ram_w: float) -> WindowTotals:
    hours = (end - start) / 3600.0
    gpu, board, cpu_rail = gpu_w * hours / 1000, board_w * hours / 1000, cpu_rail_w * hours / 1000
    cpu, ram = cpu_w * hours / 1000, ram_w * hours / 1000
    samples = int((end - start) / SIM_INFO.interval_s)
    return WindowTotals(
        start_s=start, end_s=end, start_unix_s=start, end_unix_s=end, gpu_kwh=gpu,
        board_kwh=board, cpu_rail_kwh=cpu_rail,
        cpu_kwh=cpu, ram_kwh=ram, total_kwh=board,
        total_basis="sum of all board rails (measured)", original_total_kwh=gpu + cpu + ram,
        gpu_samples=samples, board_samples=samples, cpu_ram_readings=int(end - start),
        unmeasured_s=0.0)


def measuring_snapshot() -> Snapshot:
    """matmul, 18 s into a 30 s measured window after 4 s of loading and warm-up."""
    now = T0 + 22.0
    live = LiveFigures(gpu_w=18.4, board_w=31.7, cpu_rail_w=6.2, gpu_load_pct=97.0, cpu_w=9.8,
                       ram_w=3.0, sample_age_s=0.2)
    whole = totals(T0, now, 15.0, 27.5, 5.9, 9.1, 3.0)
    window = totals(T0 + 4.0, now, 18.0, 31.0, 6.1, 9.6, 3.0)
    units = 18.0 * 42.7
    energy_j = (window.total_kwh or 0.0) * J_PER_KWH
    eff = Efficiency(units=units, unit="GFLOP", throughput_per_s=units / 18.0,
                     energy_per_unit_j=energy_j / units, units_per_j=units / energy_j,
                     units_per_s_per_w=(units / 18.0) / 31.0, gflop_per_j=units / energy_j)
    session = SessionView(
        run_id="0f1e2d3c-0000-4000-8000-000000000000", workload="matmul",
        params={"size": "1024"}, phase=Phase.MEASURING, started_unix_s=T0, elapsed_s=22.0,
        duration_s=30.0, measuring_elapsed_s=18.0, whole=whole, window=window, efficiency=eff)
    return Snapshot(
        t_unix_s=now, source=SIM_INFO, source_connected=True, source_message=SIM_INFO.note,
        intensity=intensity(), live=live, cpu_ram_error=None,
        cpu_mode="TDP model: Intel Xeon E5-2690 v4, 135 W x load (estimated)",
        cpu_provenance="estimated",
        session=session, last_summary=None, idle=totals(T0 - 60, T0, 4.0, 9.0, 2.0, 5.0, 3.0))


LLM_WORKLOADS = [*WORKLOADS[:4], WorkloadEntry(
    "llm-generate", "Decoder-only LM generation with a KV cache (random weights); unit token",
    "token", "workloads.llm:LlmGenerate"), WORKLOADS[4]]
LLM_REQUESTS, LLM_NEW_TOKENS = 17, 128
PREFILL_S, DECODE_S = 0.061, 1.95  # per request
SAMPLE_S = 0.01  # sysfs at 0.01 s: 6 samples per prefill (too few), 195 per decode


def llm_snapshot() -> Snapshot:
    """llm-generate, 36 s into a 60 s window sampled every 0.01 s: 17 requests finished; decode
    resolved (195 samples per interval), prefill not (6 per interval, 10 needed)."""
    now = T0 + 40.0
    info = dataclasses.replace(SIM_INFO, interval_s=SAMPLE_S)
    live = LiveFigures(gpu_w=18.4, board_w=31.7, cpu_rail_w=6.2, gpu_load_pct=97.0, cpu_w=9.8,
                       ram_w=3.0, sample_age_s=0.005)
    whole = totals(T0, now, 16.0, 29.0, 5.9, 9.1, 3.0)
    window = totals(T0 + 4.0, now, 18.0, 31.0, 6.1, 9.6, 3.0)
    prefill_units = LLM_REQUESTS
    decode_units = LLM_REQUESTS * (LLM_NEW_TOKENS - 1)
    units = prefill_units + decode_units
    energy_j = (window.total_kwh or 0.0) * J_PER_KWH
    eff = Efficiency(units=units, unit="token", throughput_per_s=units / 36.0,
                     energy_per_unit_j=energy_j / units, units_per_j=units / energy_j,
                     units_per_s_per_w=(units / 36.0) / 31.0, gflop_per_j=None)
    prefill_s, decode_s = LLM_REQUESTS * PREFILL_S, LLM_REQUESTS * DECODE_S
    per_interval = round(PREFILL_S / SAMPLE_S), round(DECODE_S / SAMPLE_S)
    note = ("prefill: its intervals last 0.061 s and hold 6 samples each at 0.01 s sampling; "
            "per-phase energy needs >= 10 per interval: sample every 0.0061 s or faster")
    prefill = SubphaseFigures("prefill", LLM_REQUESTS, prefill_s, prefill_units, "token", None,
                              None, LLM_REQUESTS * per_interval[0], 1.0, "not resolved", note)
    decode = SubphaseFigures("decode", LLM_REQUESTS, decode_s, decode_units, "token",
                             31.0 * decode_s, 18.0 * decode_s, LLM_REQUESTS * per_interval[1],
                             1.0, f"samples ({per_interval[1]} per interval)")
    other = SubphaseFigures(OTHER, 0, 36.0 - prefill_s - decode_s, None, "token", None, None, 0,
                            None, "not resolved", note)
    report = SubphaseReport((prefill, decode), other, window.total_basis, note)
    session = SessionView(
        run_id="1a2b3c4d-0000-4000-8000-000000000000", workload="llm-generate",
        params={"preset": "small"}, phase=Phase.MEASURING, started_unix_s=T0, elapsed_s=40.0,
        duration_s=60.0, measuring_elapsed_s=36.0, whole=whole, window=window, efficiency=eff,
        subphases=report)
    return Snapshot(
        t_unix_s=now, source=info, source_connected=True, source_message=info.note,
        intensity=intensity(), live=live, cpu_ram_error=None,
        cpu_mode="TDP model: Intel Xeon E5-2690 v4, 135 W x load (estimated)",
        cpu_provenance="estimated",
        session=session, last_summary=None, idle=totals(T0 - 60, T0, 4.0, 9.0, 2.0, 5.0, 3.0))


def history(now: float, seconds: float = 240.0, step: float = 0.5) -> list[HistoryPoint]:
    """Idle, then loading, then the matmul plateau: a smooth, fixed shape."""
    points = []
    n = int(seconds / step)
    for i in range(n + 1):
        t = now - seconds + i * step
        busy = t >= now - 22.0
        wave = math.sin(i / 9.0)
        gpu = (17.5 + 0.8 * wave) if busy else (3.8 + 0.3 * wave)
        points.append(HistoryPoint(t_unix_s=t, gpu_w=gpu, board_w=gpu + 12.5 + 0.5 * wave,
                                   cpu_rail_w=5.9 if busy else 2.1, cpu_w=9.7 if busy else 5.0,
                                   ram_w=3.0))
    return points


class FakeEngine:
    """Answers like an opened Engine at one fixed moment. Records what the app asked of it.

    No power source (no board screen) and no store (results go to the settings' directory).
    """

    closes_while_opening = False
    source = None
    store = None

    def __init__(self, snap: Snapshot | None = None) -> None:
        self.snap = snap or measuring_snapshot()
        self._history = history(self.snap.t_unix_s)
        self.listeners: list[Callable[[str, str], None]] = []
        self.calls: list[tuple[str, Any]] = []
        self.closed = False

    @property
    def built(self) -> FakeEngine:
        return self

    def open(self) -> None:
        self.calls.append(("open", None))

    def close(self) -> None:
        self.calls.append(("close", None))
        self.closed = True

    def add_listener(self, listener: Callable[[str, str], None]) -> None:
        self.listeners.append(listener)

    @property
    def session_running(self) -> bool:
        return self.snap.session is not None

    def snapshot(self) -> Snapshot:
        return self.snap

    def history(self) -> list[HistoryPoint]:
        return list(self._history)

    def start_session(self, request: SessionRequest) -> str:
        self.calls.append(("start_session", request.workload))
        return "run"

    def stop_session(self, status: FinalStatus = FinalStatus.STOPPED) -> None:
        self.calls.append(("stop_session", status))

    def export(self) -> list[Path]:
        self.calls.append(("export", None))
        return [Path("gpu_log.csv"), Path("emissions.csv"), Path("total_summary.csv")]

    def wait_session(self, timeout: float | None = None) -> None:
        return None
