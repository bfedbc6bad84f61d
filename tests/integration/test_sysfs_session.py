"""`carbontop run` end to end measuring an emulated board through sysfs and through tegrastats:
the real workload child, real CodeCarbon, the three CSVs. The trees hold constant power, so
every energy is the rail's watts times the session's duration, worked out by hand."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from carbontop.results import schema
from tests.sysfs_trees import build

KWH = 3.6e6  # joules per kWh


def run(tmp_path: Path, *args: str, env: dict[str, str]) -> dict:
    out = tmp_path / "out"
    full_env = {**os.environ, **env, "CARBONTOP_LOG_FILE": str(tmp_path / "carbontop.log")}
    proc = subprocess.run(
        [sys.executable, "-m", "carbontop.cli", "run", "idle", "--duration", "1.5",
         "--country", "FRA", "--output-dir", str(out), "--json", *args],
        env=full_env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def gpu_log(tmp_path: Path) -> list[dict[str, str]]:
    with (tmp_path / "out" / schema.GPU_LOG).open(newline="") as f:
        return list(csv.DictReader(f))


def test_orin_nx_through_sysfs(tmp_path: Path) -> None:
    build("orin-nx", tmp_path / "sys")
    s = run(tmp_path, "--gpu-source", "sysfs", "--interval", "0.1",
            env={"CARBONTOP_SYS_ROOT": str(tmp_path / "sys")})
    assert (s["gpu_source"], s["gpu_rail"], s["gpu_scope"]) == (
        "sysfs", "VDD_CPU_GPU_CV", "CPU+GPU+CV shared")
    assert s["board_basis"] == "input rail VDD_IN"
    # VDD_CPU_GPU_CV 2.0 W and VDD_IN 7.0 W for the whole session.
    assert s["gpu_energy_kwh"] == pytest.approx(2.0 * s["duration_s"] / KWH, rel=0.03)
    assert s["board_energy_kwh"] == pytest.approx(7.0 * s["duration_s"] / KWH, rel=0.03)
    assert s["total_energy_kwh"] == pytest.approx(s["board_energy_kwh"])  # the input rail


def test_agx_orin_through_sysfs_at_50_ms_thins_the_log(tmp_path: Path) -> None:
    build("agx-orin", tmp_path / "sys")
    s = run(tmp_path, "--gpu-source", "sysfs", "--interval", "0.05",
            env={"CARBONTOP_SYS_ROOT": str(tmp_path / "sys")})
    assert s["gpu_rail"] == "VDD_GPU_SOC" and s["board_basis"] == "sum of rails"
    # 4.0 W GPU+SOC; 9.0 W summed over the four connected rails; CPU+CV rail 1.5 W.
    assert s["gpu_energy_kwh"] == pytest.approx(4.0 * s["duration_s"] / KWH, rel=0.03)
    assert s["board_energy_kwh"] == pytest.approx(9.0 * s["duration_s"] / KWH, rel=0.03)
    assert s["cpu_rail_energy_kwh"] == pytest.approx(1.5 * s["duration_s"] / KWH, rel=0.03)
    rows = [r for r in gpu_log(tmp_path) if r["run_id"] == s["run_id"]]
    # 20 samples/s integrated, about 10 rows/s written (plus each phase's last sample).
    assert s["gpu_samples"] > 1.5 * len(rows)
    # a row per 0.1 s, a timer's 5 ms of jitter allowed: under 11 rows a second
    assert len(rows) <= 11 * s["duration_s"] + 6
    assert float(rows[-1]["gpu_energy_kwh"]) == pytest.approx(s["gpu_energy_kwh"], rel=0.01)


def test_thor_through_tegrastats(tmp_path: Path) -> None:
    tree = build("thor", tmp_path / "sys")
    stand_in = tree.install_tegrastats(tmp_path / "bin")
    s = run(tmp_path, "--gpu-source", "tegrastats", "--interval", "0.1",
            env={"CARBONTOP_SYS_ROOT": str(tmp_path / "sys"),
                 "PATH": f"{stand_in.parent}{os.pathsep}{os.environ['PATH']}"})
    assert (s["gpu_source"], s["gpu_rail"], s["board_basis"]) == (
        "tegrastats", "VDD_GPU", "carrier input VIN (INA238)")
    # VDD_GPU 12040 mV x 640 mA = 7705 mW as tegrastats prints it; VIN 27720 mW.
    assert s["gpu_energy_kwh"] == pytest.approx(7.705 * s["duration_s"] / KWH, rel=0.05)
    assert s["board_energy_kwh"] == pytest.approx(27.72 * s["duration_s"] / KWH, rel=0.05)
    left = subprocess.run(["pgrep", "-f", str(tmp_path / "bin")], capture_output=True, text=True)
    assert left.stdout.strip() == "", "tegrastats left running"
