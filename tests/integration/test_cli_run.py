"""`carbontop run` end to end: the real child, the simulated board, real CodeCarbon, three CSVs."""

from __future__ import annotations

import csv
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from carbontop.results import schema


def carbontop(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CARBONTOP_LOG_FILE": str(cwd / "carbontop.log"),
           "CARBONTOP_CONFIG": str(cwd / "no-config.toml")}
    return subprocess.run([sys.executable, "-m", "carbontop.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def two_sessions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict], list]:
    out = tmp_path_factory.mktemp("results")
    summaries = []
    procs = []
    for workload in ("matmul", "idle"):
        proc = carbontop("run", workload, "--demo", "--seed", "3", "--duration", "3",
                         "--interval", "0.2", "--country", "FRA", "--output-dir", str(out),
                         "--param", "warmup_s=0.5", "--json", cwd=out)
        procs.append(proc)
        assert proc.returncode == 0, proc.stderr
        summaries.append(json.loads(proc.stdout))
    return out, summaries, procs


def test_json_summary_is_complete(two_sessions: tuple) -> None:
    _, summaries, _ = two_sessions
    s = summaries[0]
    assert s["status"] == "finished"
    assert s["gpu_source"] == "sim"
    assert s["gpu_rail"] == "VDD_GPU_SOC" and s["gpu_scope"] == "GPU+SOC shared"
    assert s["total_basis"].startswith("sum of all board rails")
    assert s["carbon_intensity_origin"].startswith("CodeCarbon data")
    assert s["window_gpu_samples"] > 5
    assert s["units"] > 0 and s["throughput_per_s"] > 0 and s["energy_per_unit_j"] > 0
    assert s["gflop_per_j"] > 0
    assert s["workload_python_version"] == platform.python_version()  # the child's: carbontop's
    # A few watts to tens of watts over a few seconds: joules, not kilowatt-hours per second.
    assert 1e-7 < s["gpu_energy_kwh"] < 1e-3
    assert s["total_co2_kg"] == pytest.approx(s["total_energy_kwh"]
                                              * s["carbon_intensity_g_per_kwh"] / 1000)


def test_three_csvs_appended_with_run_ids(two_sessions: tuple) -> None:
    out, summaries, _ = two_sessions
    emissions = rows(out / schema.EMISSIONS)
    assert [r["run_id"] for r in emissions] == [s["run_id"] for s in summaries]
    assert tuple(emissions[0]) == schema.names(schema.EMISSIONS_COLUMNS)
    total = rows(out / schema.TOTAL_SUMMARY)
    assert list(total[0])[: len(schema.codecarbon_columns())] == list(schema.codecarbon_columns())
    assert float(total[0]["gpu_energy"]) == pytest.approx(float(emissions[0]["gpu_energy_kwh"]))
    log = rows(out / schema.GPU_LOG)
    first = [r for r in log if r["run_id"] == summaries[0]["run_id"]]
    assert len(first) >= int(emissions[0]["gpu_samples"]) - 1
    watts = [float(r["gpu_power_w"]) for r in first]
    assert all(0 <= w < 100 for w in watts), "watts, not milliwatts"
    energies = [float(r["gpu_energy_kwh"]) for r in first]
    assert energies == sorted(energies), "cumulative"
    assert {r["phase"] for r in first} >= {"loading", "measuring"}


def test_gpu_log_energy_is_trapezoid_of_its_own_rows(two_sessions: tuple) -> None:
    """From one row to the next the session's cumulative GPU energy grows by the trapezoid of
    their watts over their sensor times; the step across the session's end (the workload's exit)
    holds the last watts up to that edge; after it the figure stays put (rows go on, phase
    ``done``, until CodeCarbon's reading past the edge arrives); the session's GPU energy is the
    last row's, or that plus the held tail when no row came after the edge."""
    out, summaries, _ = two_sessions
    summary = summaries[0]
    first = [r for r in rows(out / schema.GPU_LOG) if r["run_id"] == summary["run_id"]]
    t = [float(r["sensor_time_s"]) for r in first]
    w = [float(r["gpu_power_w"]) for r in first]
    e = [float(r["gpu_energy_kwh"]) * 3.6e6 for r in first]  # joules
    last_growth = max(i for i in range(1, len(e)) if e[i] > e[i - 1])
    gapless = summary["unmeasured_s"] == 0  # a gap > 3 intervals is not integrated
    for i in range(1, last_growth):
        trapezoid = (t[i] - t[i - 1]) * (w[i] + w[i - 1]) / 2
        step = e[i] - e[i - 1]
        assert step == pytest.approx(trapezoid, rel=1e-6, abs=1e-9) or \
            (not gapless and step == 0), (i, step, trapezoid)
    crossing = e[last_growth] - e[last_growth - 1]
    held_whole_step = w[last_growth - 1] * (t[last_growth] - t[last_growth - 1])
    trapezoid = (t[last_growth] - t[last_growth - 1]) * (w[last_growth] + w[last_growth - 1]) / 2
    assert 0 < crossing <= held_whole_step * (1 + 1e-6) or \
        crossing == pytest.approx(trapezoid, rel=1e-6), (crossing, held_whole_step, trapezoid)
    assert all(x == e[last_growth] for x in e[last_growth:])
    assert {r["phase"] for r in first[last_growth + 1:]} <= {"done"}
    # The session's figure: the last row's, plus the last watts held from the last row to the
    # end edge when no sample came between the edge and the session's close (at most the 3
    # intervals after which a gap is unmeasured).
    held_tail = summary["gpu_energy_kwh"] * 3.6e6 - e[-1]
    assert -1e-9 <= held_tail <= w[-1] * 3 * 0.2 + 1e-9, (held_tail, w[-1])


def test_nothing_from_libraries_reaches_the_terminal(two_sessions: tuple) -> None:
    _, _, procs = two_sessions
    for proc in procs:
        assert "codecarbon" not in proc.stderr.lower()
        assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("args, fragment", [
    (["run", "no-such-workload", "--demo"], "unknown workload"),
    (["run", "idle", "--demo", "--interval", "0"], "--interval"),
    (["run", "idle", "--demo", "--duration", "-3"], "--duration"),
    (["run", "idle", "--demo", "--country", "XYZ"], "XYZ"),
    (["run", "idle", "--demo", "--carbon-intensity", "abc"], "carbon-intensity"),
    (["run", "idle", "--demo", "--carbon-intensity", "-4"], "carbon-intensity"),
    (["run", "idle", "--gpu-source", "cuda"], "--gpu-source"),
    (["run", "idle", "--gpu-source", "nvml"], "NVML"),
    (["run", "idle", "--demo", "--sim-board", "nope"], "nope"),
    (["run", "idle", "--demo", "--workload-file", "missing.py"], "missing.py"),
    (["run", "idle", "--demo", "--param", "novalue"], "novalue"),
    (["run", "idle", "--demo", "--min-throughput", "5"], "give --power-modes too"),
    (["run", "idle", "--demo", "--power-modes", "MAXN", "--min-throughput", "0"],
     "--min-throughput must be a positive"),
    (["run", "idle", "--demo", "--power-modes", "MAXN", "--min-throughput", "nan"],
     "--min-throughput must be a positive"),
])
def test_bad_input_is_one_line_and_exit_2(args: list[str], fragment: str, tmp_path: Path) -> None:
    proc = carbontop(*args, "--output-dir", str(tmp_path), cwd=tmp_path, timeout=60)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert fragment in lines[0]
    assert "Traceback" not in proc.stderr


def test_unusable_output_dir_below_a_regular_file(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    proc = carbontop("run", "idle", "--demo", "--output-dir", str(blocker / "results"),
                     cwd=tmp_path, timeout=60)
    assert proc.returncode == 2
    assert "--output-dir" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_list_and_version(tmp_path: Path) -> None:
    proc = carbontop("list", cwd=tmp_path)
    assert proc.returncode == 0
    names = [line.split()[0] for line in proc.stdout.splitlines()]
    for name in ("gpu-stress", "cpu-stress", "ram-stress", "stress-all", "matmul",
                 "cnn-inference", "transformer-inference", "training", "idle"):
        assert name in names
    assert carbontop("--version", cwd=tmp_path).stdout.startswith("carbontop ")


PROGRAM = """
import time
from carbontop import progress
progress.phase("warmup")
time.sleep(0.6)
progress.phase("measure")
for _ in range(8):
    time.sleep(0.15)
    progress.units(32, "sample")
print("program output goes to the workload log")
"""


def test_any_command_with_the_progress_protocol(tmp_path: Path) -> None:
    (tmp_path / "prog.py").write_text(PROGRAM)
    proc = carbontop("run", "--demo", "--interval", "0.2", "--output-dir", str(tmp_path),
                     "--json", "--", sys.executable, "prog.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    s = json.loads(proc.stdout)
    assert s["workload"].startswith("command: ")
    assert s["units"] == 8 * 32 and s["unit"] == "sample"
    assert 0.9 < s["window_duration_s"] < s["duration_s"]  # warm-up excluded
    assert s["energy_per_unit_j"] > 0
    logs = list((tmp_path / ".carbontop" / "logs").glob("*.log"))
    assert "program output goes to the workload log" in logs[0].read_text()
    assert "program output" not in proc.stdout + proc.stderr


TIMED_PROGRAM = """
import os, sys, time
from carbontop import progress
progress.phase("warmup")
time.sleep(0.3)
progress.phase("measure")
time.sleep(float(sys.argv[1]))
progress.units(74, "sample")
os._exit(0)
"""


def test_a_programs_window_is_its_measured_phase_and_a_short_one_gives_no_figure(
    tmp_path: Path,
) -> None:
    """2.0 s measured by the program is a 2.0 s window; 0.3 s is under two 0.5 s sample periods."""
    (tmp_path / "timed.py").write_text(TIMED_PROGRAM)
    results = {}
    for measured in ("2.0", "0.3"):
        proc = carbontop("run", "--demo", "--interval", "0.5", "--output-dir", str(tmp_path),
                         "--json", "--", sys.executable, "timed.py", measured, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        results[measured] = json.loads(proc.stdout)
    long, short = results["2.0"], results["0.3"]
    assert 2.0 <= long["window_duration_s"] <= 2.05
    assert long["window_too_short"] is None
    # (the JSON's window_duration_s is rounded to the millisecond)
    assert long["throughput_per_s"] == pytest.approx(74 / long["window_duration_s"], rel=1e-3)
    assert 0.3 <= short["window_duration_s"] <= 0.35
    assert short["units"] == 74 and short["throughput_per_s"] is None
    assert short["energy_per_unit_j"] is None and short["units_per_j"] is None
    note = short["window_too_short"]
    assert note.startswith("window too short to measure (0.3")
    assert note.endswith(" s < 2 sample periods of 0.5 s)")


def test_a_failing_command_fails_the_session(tmp_path: Path) -> None:
    proc = carbontop("run", "--demo", "--interval", "0.2", "--output-dir", str(tmp_path),
                     "--", sys.executable, "-c", "raise SystemExit(3)", cwd=tmp_path)
    assert proc.returncode == 1
    assert rows(tmp_path / schema.EMISSIONS)[0]["failure_reason"].endswith("code 3")


def trapezoid_mean_w(times: list[float], watts: list[float]) -> float:
    """The time-weighted mean of sampled watts (trapezoids between consecutive samples)."""
    joules = sum((times[i] - times[i - 1]) * (watts[i] + watts[i - 1]) / 2
                 for i in range(1, len(times)))
    return joules / (times[-1] - times[0])


def test_baseline_and_repeat_give_net_energy_and_spread(tmp_path: Path) -> None:
    proc = carbontop("run", "cpu-stress", "--demo", "--interval", "0.2", "--duration", "1.5",
                     "--baseline", "1", "--repeat", "2", "--cooldown-max", "2",
                     "--param", "warmup_s=0.2", "--param", "size=128",
                     "--output-dir", str(tmp_path), "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    trials = result["trials"]
    assert [t["trial"] for t in trials] == ["1/2", "2/2"]
    assert len({t["experiment_id"] for t in trials}) == 1
    emissions = rows(tmp_path / schema.EMISSIONS)
    assert [r["trial"] for r in emissions] == ["1/2", "2/2"]
    assert [r["run_id"] for r in emissions] == [t["run_id"] for t in trials]
    log = rows(tmp_path / schema.GPU_LOG)
    for row in emissions:
        # The idle watts: the board's mean over the baseline's own samples in gpu_log.csv (the
        # simulated board's total is the sum of its rails; edges interpolated, hence 2 %).
        baseline = [r for r in log if r["run_id"] == row["run_id"] and r["phase"] == "baseline"]
        assert len(baseline) >= 4, "one second of baseline at 0.2 s"
        idle_w = float(row["idle_power_w"])
        assert idle_w == pytest.approx(
            trapezoid_mean_w([float(r["sensor_time_s"]) for r in baseline],
                             [float(r["board_power_w"]) for r in baseline]), rel=0.02)
        # net = gross - idle watts x the window's seconds; per unit: net / units
        gross_j = float(row["gross_energy_kwh"]) * 3.6e6
        assert gross_j == pytest.approx(float(row["window_total_energy_kwh"]) * 3.6e6)
        window_s = float(row["window_duration_s"])  # written to the millisecond
        net_j = float(row["net_energy_kwh"]) * 3.6e6
        assert net_j == pytest.approx(gross_j - idle_w * window_s, abs=idle_w * 6e-4)
        assert 0 < net_j < gross_j
        assert float(row["net_energy_per_unit_j"]) == pytest.approx(net_j / float(row["units"]),
                                                                     rel=1e-9)
        assert float(row["energy_per_unit_j"]) == pytest.approx(gross_j / float(row["units"]),
                                                                 rel=1e-9)
        assert float(row["net_co2_kg"]) == pytest.approx(
            net_j / 3.6e6 * float(row["carbon_intensity_g_per_kwh"]) / 1000, rel=1e-9)
    # The spread over the trials, by hand from the rows: for two values a and b the mean is
    # (a + b) / 2 and the sample standard deviation |a - b| / sqrt(2).
    stats = result["stats"]
    assert stats["trials"] == 2 and stats["finished"] == 2 and stats["unit"] == "iteration"
    for key, per_trial in (
            ("energy_per_unit_j", [float(r["energy_per_unit_j"]) for r in emissions]),
            ("throughput_per_s", [float(r["throughput_per_s"]) for r in emissions]),
            ("window_energy_j", [float(r["window_total_energy_kwh"]) * 3.6e6
                                 for r in emissions])):
        a, b = per_trial
        assert stats[key]["n"] == 2, key
        assert stats[key]["mean"] == pytest.approx((a + b) / 2, rel=1e-9), key
        assert stats[key]["stdev"] == pytest.approx(abs(a - b) / 2 ** 0.5, rel=1e-9), key


def test_gpu_source_none_is_a_cpu_and_ram_session(tmp_path: Path) -> None:
    """No GPU figure anywhere (empty, never 0), and every total rests on CodeCarbon's CPU + RAM."""
    proc = carbontop("run", "idle", "--gpu-source", "none", "--duration", "2", "--interval",
                     "0.5", "--param", "warmup_s=0.2", "--country", "FRA", "--output-dir",
                     str(tmp_path), "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    s = json.loads(proc.stdout)
    assert s["status"] == "finished" and s["gpu_source"] == "none"
    assert s["gpu_count"] == 0 and s["gpu_name"] == "no GPU measured"
    for key in ("gpu_energy_kwh", "gpu_co2_kg", "gpu_rail", "gpu_scope", "board_energy_kwh",
                "board_basis", "cpu_rail_energy_kwh", "window_gpu_energy_kwh"):
        assert s[key] is None, key
    assert s["gpu_samples"] == 0 and s["window_gpu_samples"] == 0
    assert s["total_basis"] == "CPU + RAM (CodeCarbon); no GPU measured"
    # CodeCarbon read about once a second over the ~2.4 s session
    assert s["cpu_ram_readings"] >= 2 and s["cpu_energy_kwh"] > 0 and s["ram_energy_kwh"] > 0
    total = s["cpu_energy_kwh"] + s["ram_energy_kwh"]
    assert s["total_energy_kwh"] == pytest.approx(total, rel=1e-12)
    # France, 56.039 g/kWh; with no GPU the original script's total is CPU + RAM too
    co2 = total * 56.039 / 1000
    for key in ("total_co2_kg", "cpu_ram_co2_kg", "original_total_co2_kg"):
        assert s[key] == pytest.approx(co2, rel=1e-9), key
    assert s["window_total_co2_kg"] == pytest.approx(
        s["window_total_energy_kwh"] * 56.039 / 1000, rel=1e-9)
    assert 0 < s["window_total_energy_kwh"] < s["total_energy_kwh"]
    assert s["energy_per_unit_j"] == pytest.approx(
        s["window_total_energy_kwh"] * 3.6e6 / s["units"], rel=1e-9)

    (row,) = rows(tmp_path / schema.EMISSIONS)
    assert row["run_id"] == s["run_id"]
    for key in ("gpu_energy_kwh", "gpu_co2_kg", "gpu_rail", "gpu_scope", "board_energy_kwh",
                "board_basis", "window_gpu_energy_kwh", "gpu_freq_mhz_start"):
        assert row[key] == "", key  # empty cells: not measured, not zero
    assert row["gpu_samples"] == "0" and row["gpu_source"] == "none"
    for key in ("cpu_energy_kwh", "ram_energy_kwh", "total_energy_kwh", "total_co2_kg"):
        assert float(row[key]) == pytest.approx(s[key], rel=1e-12), key
    (total_row,) = rows(tmp_path / schema.TOTAL_SUMMARY)
    assert total_row["gpu_energy"] == "" and total_row["gpu_power"] == ""
    assert total_row["gpu_count"] == "0" and total_row["gpu_model"] == "no GPU measured"
    assert float(total_row["energy_consumed"]) == pytest.approx(
        float(total_row["cpu_energy"]) + float(total_row["ram_energy"]), rel=1e-12)
    assert float(total_row["energy_consumed"]) == pytest.approx(total, rel=1e-12)
    assert float(total_row["emissions"]) == pytest.approx(co2, rel=1e-9)
    # CodeCarbon's power columns: the session's mean watts
    assert float(total_row["cpu_power"]) == pytest.approx(
        s["cpu_energy_kwh"] * 3.6e6 / s["duration_s"], rel=0.01)
    assert float(total_row["ram_power"]) == pytest.approx(
        s["ram_energy_kwh"] * 3.6e6 / s["duration_s"], rel=0.01)
    log = tmp_path / schema.GPU_LOG
    assert not log.exists() or [r for r in rows(log) if r["run_id"] == s["run_id"]] == []
