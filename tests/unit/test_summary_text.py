"""The human-readable summary of ``carbontop run``: exact text for summaries worked out by hand.

Every figure below is chosen so that its rendering can be written down without running the code:
joules below 1 Wh print as ``N.N J``, Wh below 1 kWh as ``N.NNN Wh``; CO2 below 1 g as ``N.N mg``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from carbontop.carbon import CarbonIntensity
from carbontop.comparison import Stat, TrialStats, trial_stats
from carbontop.meter import WindowTotals
from carbontop.model import FinalStatus, Scope, SourceInfo
from carbontop.summary import Baseline, Efficiency, SessionSummary
from carbontop.text import format_mode_comparison, format_summary, format_trial_stats

J_PER_KWH = 3.6e6  # written out here, not imported: the expected values are worked by hand
ORIN = SourceInfo(kind="sim", device_name="Simulated Jetson AGX Orin (64GB)", gpu_count=1,
                  gpu_rail="VDD_GPU_SOC", gpu_scope=Scope.GPU_SOC_SHARED, interval_s=0.5)
NO_GPU = SourceInfo(kind="none", device_name="no GPU measured")
INTENSITY = CarbonIntensity(g_per_kwh=100.0, origin="test intensity", source="override")
PATHS = [Path("out/emissions.csv"), Path("out/gpu_log.csv"), Path("out/total_summary.csv")]


def totals(start: float, end: float, *, gpu_j: float | None, board_j: float | None,
           cpu_j: float, ram_j: float, total_j: float, basis: str, gpu_samples: int,
           readings: int, unmeasured_s: float) -> WindowTotals:
    def kwh(j: float | None) -> float | None:
        return None if j is None else j / J_PER_KWH

    original = None if gpu_j is None else gpu_j + cpu_j + ram_j
    return WindowTotals(start_s=start, end_s=end, start_unix_s=start, end_unix_s=end,
                        gpu_kwh=kwh(gpu_j),
                        board_kwh=kwh(board_j), cpu_rail_kwh=None, cpu_kwh=kwh(cpu_j),
                        ram_kwh=kwh(ram_j), total_kwh=kwh(total_j), total_basis=basis,
                        original_total_kwh=kwh(original), gpu_samples=gpu_samples,
                        board_samples=gpu_samples, cpu_ram_readings=readings,
                        unmeasured_s=unmeasured_s)


def orin_summary(window_j: float = 2880.0, baseline: Baseline | None = None) -> SessionSummary:
    # 60 s session: GPU 1800 J, board 3600 J (= 1 Wh), CodeCarbon CPU 360 J and RAM 90 J.
    whole = totals(1000.0, 1060.0, gpu_j=1800.0, board_j=3600.0, cpu_j=360.0, ram_j=90.0,
                   total_j=3600.0, basis="sum of all board rails (measured)", gpu_samples=120,
                   readings=60, unmeasured_s=0.5)
    # its 40 s measured window; 400 samples of work, 2.88 TFLOP
    window = totals(1010.0, 1050.0, gpu_j=1500.0, board_j=window_j, cpu_j=240.0, ram_j=60.0,
                    total_j=window_j, basis="sum of all board rails (measured)",
                    gpu_samples=80, readings=40, unmeasured_s=0.0)
    return SessionSummary(run_id="r1", status=FinalStatus.FINISHED, workload="matmul",
                          params={}, source=ORIN, intensity=INTENSITY, whole=whole,
                          window=window,
                          efficiency=Efficiency.compute(400, "sample", 2.88e12, window),
                          baseline=baseline)


def test_a_jetson_session_with_a_baseline() -> None:
    summary = orin_summary(baseline=Baseline(duration_s=10.0, idle_w=30.0, samples=20))
    assert format_summary(summary, PATHS).splitlines() == [
        "matmul: finished",
        "  source      sim: Simulated Jetson AGX Orin (64GB), GPU rail VDD_GPU_SOC "
        "(GPU+SOC shared)",
        "  session     60.0 s, 120 samples, 60 CodeCarbon readings, 0.5 s unmeasured",
        # 1800 J = 0.0005 kWh; at 100 g/kWh 0.05 g = 50 mg
        "  GPU         1800.0 J  50.0 mg (measured)",
        "  CPU         360.0 J (estimated, CodeCarbon)",
        "  RAM         90.0 J (estimated, CodeCarbon)",
        "  board       1.000 Wh (measured)",
        # 3600 J = 1 Wh = 0.001 kWh: 0.1 g = 100 mg
        "  total       1.000 Wh  100.0 mg  [sum of all board rails (measured)]",
        # GPU + CPU + RAM = 2250 J = 0.000625 kWh: 62.5 mg
        "  original    GPU + CPU&RAM = 62.5 mg",
        "  window      40.0 s measured, 80 samples, 2880.0 J",
        # 2880 J - 30 W x 40 s = 1680 J
        "  above idle  1680.0 J net of 2880.0 J gross (idle 30.00 W over 10.0 s)",
        # 400 / 40 s = 10 /s; 2880 J / 400 = 7.2 J each; 2880 GFLOP / 2880 J = 1 GFLOP/J
        "  throughput  10.00 sample/s, 7.2 J/sample, 1 GFLOP/J",
        "  carbon      100 g/kWh (test intensity)",
        "  files       out/emissions.csv, out/gpu_log.csv, out/total_summary.csv",
    ]


def test_a_session_without_a_gpu_and_a_failure() -> None:
    whole = totals(0.0, 12.0, gpu_j=None, board_j=None, cpu_j=720.0, ram_j=180.0,
                   total_j=900.0, basis="CodeCarbon CPU + RAM", gpu_samples=0, readings=12,
                   unmeasured_s=0.0)
    summary = SessionSummary(run_id="r2", status=FinalStatus.FAILED, workload="training",
                             params={}, source=NO_GPU, intensity=INTENSITY, whole=whole,
                             window=None,
                             efficiency=Efficiency.compute(None, None, None, None),
                             failure_reason="exit code 3", cpu_provenance="measured")
    assert format_summary(summary, PATHS[:1]).splitlines() == [
        "training: failed (exit code 3)",
        "  source      none: no GPU measured",
        "  session     12.0 s, 0 samples, 12 CodeCarbon readings, 0.0 s unmeasured",
        "  GPU         not measured",
        "  CPU         720.0 J (measured, CodeCarbon)",
        "  RAM         180.0 J (estimated, CodeCarbon)",
        # 900 J = 0.00025 kWh: 25 mg; no GPU, so no "original" figure
        "  total       900.0 J  25.0 mg  [CodeCarbon CPU + RAM]",
        "  original    GPU + CPU&RAM = n/a",
        "  carbon      100 g/kWh (test intensity)",
        "  files       out/emissions.csv",
    ]


def test_repeat_statistics_text() -> None:
    # two trials of 400 samples in 40 s: 2800 J and 2960 J, i.e. 7.0 and 7.4 J per sample.
    # mean 7.2, sample sd |7.4 - 7.0| / sqrt(2) = 0.283; window energy 2880 +- 113.1 J;
    # throughput 10 and 10: sd 0
    summaries = [orin_summary(2800.0), orin_summary(2960.0)]
    stats = trial_stats(summaries)
    assert format_trial_stats(stats).splitlines() == [
        "2/2 trials finished (mean ± standard deviation):",
        "  energy per unit  7.2 ± 0.28 J/sample (n=2)",
        "  throughput       10 ± 0 sample/s (n=2)",
        "  window energy    2880 ± 1.1e+02 J (n=2)",
    ]
    # The GPU figure beside the total's: 1500 J of GPU in each window / 400 samples = 3.75 J.
    assert stats["gpu_energy_per_unit_j"]["n"] == 2
    assert stats["gpu_energy_per_unit_j"]["mean"] == pytest.approx(3.75, rel=1e-12)
    assert stats["gpu_energy_per_unit_j"]["stdev"] == pytest.approx(0.0, abs=1e-12)
    assert stats["total_basis"] == "sum of all board rails (measured)"


def mode(per_unit: float | None, rate: float | None, gpu: float | None,
         unit: str | None = "image") -> TrialStats:
    def stat(mean: float | None) -> Stat:
        return {"n": 0 if mean is None else 2, "mean": mean,
                "stdev": None if mean is None else 0.01}

    return {"trials": 2, "finished": 0 if rate is None else 2, "unit": unit,
            "total_basis": "sum of all board rails (measured)" if rate is not None else None,
            "energy_per_unit_j": stat(per_unit), "gpu_energy_per_unit_j": stat(gpu),
            "throughput_per_s": stat(rate), "window_energy_j": stat(100.0)}


def test_power_mode_comparison_is_a_pareto_table() -> None:
    # 15W: 0.25 J per image at 40 images/s; MAXN: 0.5 J at 90/s; 30W: 0.3 J at 60/s; 50W: 0.6 J
    # at 70/s, beaten on both by MAXN (faster and cheaper); 10W: every trial failed.
    modes = {"15W": mode(0.25, 40.0, 0.1), "MAXN": mode(0.5, 90.0, 0.3),
             "30W": mode(0.3, 60.0, 0.12), "50W": mode(0.6, 70.0, 0.35),
             "10W": mode(None, None, None)}
    # Slowest first, the failed mode last; columns 10, 18, 15 and 15 wide, two spaces between.
    assert format_mode_comparison(modes, 50.0).splitlines() == [
        "power mode  throughput          J/image total    J/image GPU      Pareto front",
        "15W         40 image/s          0.25             0.1              yes",
        "30W         60 image/s          0.3              0.12             yes",
        "50W         70 image/s          0.6              0.35             no (MAXN: faster, "
        "cheaper)",
        "MAXN        90 image/s          0.5              0.3              yes",
        "10W         n/a                 n/a              n/a              n/a",
        "J/image total: sum of all board rails (measured)",
        "least energy per unit: 15W; highest throughput: MAXN",
        # at least 50/s: 30W (0.3 J), 50W (0.6 J), MAXN (0.5 J): 30W is the cheapest
        "cheapest mode keeping 50 image/s: 30W (0.3 J/image at 60 image/s)",
    ]
    assert format_mode_comparison(modes, 100.0).splitlines()[-1] == "no mode keeps 100 image/s"
    assert "cheapest" not in format_mode_comparison(modes)
