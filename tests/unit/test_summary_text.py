"""The human-readable summary of ``carbontop run``: exact text for summaries worked out by hand.

Every figure below is chosen so that its rendering can be written down without running the code:
joules below 1 Wh print as ``N.N J``, Wh below 1 kWh as ``N.NNN Wh``; CO2 below 1 g as ``N.N mg``.
"""

from __future__ import annotations

from pathlib import Path

from carbontop.carbon import CarbonIntensity
from carbontop.cli import format_summary, format_trial_stats, trial_stats
from carbontop.meter import WindowTotals
from carbontop.model import FinalStatus, Scope, SourceInfo
from carbontop.summary import Baseline, Efficiency, SessionSummary

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


def test_power_mode_comparison_names_the_best_mode() -> None:
    from carbontop.cli import best_modes, format_mode_comparison

    def stats(per_unit: float, rate: float) -> dict[str, object]:
        return {"trials": 2, "finished": 2, "unit": "image",
                "energy_per_unit_j": {"n": 2, "mean": per_unit, "stdev": 0.01},
                "throughput_per_s": {"n": 2, "mean": rate, "stdev": 1.0},
                "window_energy_j": {"n": 2, "mean": 100.0, "stdev": 1.0}}

    # 15W: 0.25 J per image at 40 images/s; MAXN: 0.5 J at 90/s; 30W: 0.3 J at 60/s
    modes = {"15W": stats(0.25, 40.0), "MAXN": stats(0.5, 90.0), "30W": stats(0.3, 60.0)}
    assert best_modes(modes) == {"least_energy_per_unit": "15W", "highest_throughput": "MAXN"}
    assert format_mode_comparison(modes).splitlines() == [
        "power mode        energy per unit        throughput",
        "15W               0.25 J/image           40 image/s",
        "MAXN              0.5 J/image            90 image/s",
        "30W               0.3 J/image            60 image/s",
        "least energy per unit: 15W; highest throughput: MAXN",
    ]
