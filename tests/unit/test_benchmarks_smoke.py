"""Each benchmark once, at a tiny size, so that they keep working, and their verdicts.

The figures a loaded test machine measures are not held to the targets; what is checked is that
each run's verdict line quotes the figure it measured and a verdict (met or MISSED), and, on
hand-built results either side of each target, that the verdict is the right one: a benchmark
whose verdicts came out MISSED whatever the figures would fail here.

The whole file takes about 25 s on 2 cores: most of it is starting carbontop and torch.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks import accuracy, cuda_check, harness, overhead, perturbation, pipeline, run_all
from benchmarks import startup as startup_bench
from benchmarks._common import ROOT, Sandbox, python_env, stats

IDLE = {"nap_s": "0.02"}  # no torch: the pair's mechanics without torch's import time


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    box = Sandbox()
    yield box
    box.cleanup()


def test_stats() -> None:
    s = stats([3.0, 1.0, 2.0, 4.0])
    assert s["median"] == 2.5 and s["min"] == 1.0 and s["max"] == 4.0 and s["n"] == 4
    assert stats([5.0])["q1"] == 5.0


def test_pipeline(tmp_path: Path, sandbox: Sandbox) -> None:
    rate = pipeline.throughput(2_000, tmp_path / "rate")
    # The first sample lies on the window's start edge: integrated from, not counted in it.
    assert rate["gpu_samples"] == 1_999 and rate["samples_per_s"] > 0
    assert rate["csv_bytes"] > 0
    parts = pipeline.parts(500, tmp_path)
    assert all(us > 0 for us in parts.values())
    day = pipeline.replay_in_child(3_000, sandbox, trace=True)
    assert day["samples"] == 3_000 and day["tracemalloc_peak_bytes"] > 0
    result = {"rate": {"samples_per_s": stats([rate["samples_per_s"]]),
                       "us_per_sample": stats([rate["us_per_sample"]])},
              "parts_us_per_sample": parts, "day": day, "day_traced": day}
    assert "samples/s" in pipeline.table(result)


def test_startup(sandbox: Sandbox) -> None:
    assert startup_bench.time_command([startup_bench.carbontop_exe(), "--help"], sandbox) > 0
    dash = startup_bench.time_dashboard(sandbox, timeout_s=20)
    assert dash["first_frame_s"] is not None, "the dashboard's menu never showed"
    stages = startup_bench.stages(sandbox)
    assert stages[0]["stage"] == "import carbontop.cli"
    prof = startup_bench.importtime(["-c", "import carbontop.cli"], sandbox)
    assert prof["top"] and prof["total_ms"] > 0
    result = {"summary": [{"what": "dashboard first frame", "target_s": 1.0,
                           "seconds": stats([dash["first_frame_s"]]), "missing": 0}],
              "profile": {"dashboard stages": stages, "cli": prof}}
    assert "dashboard first frame" in startup_bench.table(result)
    assert "import carbontop.cli" in startup_bench.profile_text(result)
    (line,) = startup_bench.verdicts(result)
    quoted = re.fullmatch(r"dashboard first frame: median (\d+\.\d{3}) s \(target 1 s\): "
                          r"(met|MISSED)", line)
    assert quoted, line
    assert float(quoted[1]) == pytest.approx(dash["first_frame_s"], abs=5e-4)
    assert (quoted[2] == "met") == (dash["first_frame_s"] <= 1.0)


def test_overhead_headless() -> None:
    result = overhead.run(only=["headless sim 1 s"], rounds=1, settle_s=0.5, window_s=0.5,
                          windows=1)
    (row,) = result["raw"]
    assert row["torch_mapped"] is False
    assert row["rss_bytes"] > 0 and row["children"] >= 1
    assert "headless sim 1 s" in overhead.table(result)
    lines = overhead.verdicts(result)
    assert len(lines) == 3, lines  # CPU, memory, torch in the monitor
    cpu = re.fullmatch(r"headless sim 1 s: (\d+\.\d\d) % of one core \(target <= 1 %\): "
                       r"(met|MISSED)", lines[0])
    assert cpu, lines[0]
    (summary,) = result["summary"]
    assert float(cpu[1]) == pytest.approx(summary["cpu_pct"]["median"], abs=5e-3)
    assert (cpu[2] == "met") == (summary["cpu_pct"]["median"] <= 1.0)
    assert lines[2] == "torch in the monitor: never mapped (met)"
    assert overhead.csv_rows(result)[0]["cpu_pct_windows"]


def test_perturbation_pair(sandbox: Sandbox) -> None:
    # 1.2 s: a window shorter than two sample periods (0.5 s) gives no throughput figure.
    bare = perturbation.run_bare("idle", 1.2, 0.0, sandbox, IDLE)
    under = perturbation.run_carbontop("idle", 1.2, 0.0, sandbox, IDLE)
    assert bare["throughput_per_s"] > 0 and under["throughput_per_s"] > 0
    assert under["summary"]["status"] == "finished"


def test_cpu_sampler_splits_the_monitor_from_its_child() -> None:
    from benchmarks._common import CpuSampler

    sampler = CpuSampler.__new__(CpuSampler)  # no thread: samples given here
    # (t, machine busy s, tree s, this process s, root alone s)
    sampler.samples = [(100.0, 50.0, 10.0, 1.0, 2.0), (101.0, 50.9, 10.6, 1.1, 2.01),
                       (102.0, 52.0, 11.9, 1.2, 2.02)]
    foreign, tree = sampler.cores(100.0, 102.0)
    assert tree == pytest.approx(0.95) and foreign == pytest.approx(0.0)
    assert sampler.root_cores(100.0, 102.0) == pytest.approx(0.01)
    assert sampler.root_cores(100.5, 101.5) is None  # one sample: no rate


def test_toggle_units_interpolation() -> None:
    log = perturbation.EventLog.__new__(perturbation.EventLog)  # no thread: events given here
    log.events = [{"kind": "phase", "phase": "measuring", "t_unix_s": 10.0},
                  {"kind": "units", "phase": "measuring", "t_unix_s": 11.0, "units": 4.0},
                  {"kind": "units", "phase": "measuring", "t_unix_s": 12.0, "units": 10.0}]
    assert log.measuring()
    assert log.units_at(10.5) == 2.0 and log.units_at(11.5) == 7.0
    assert log.units_at(13.0) is None


def test_harness() -> None:
    result = harness.run(quick=True, size=64, pairs=1, block_s=0.05)
    assert result["summary"]["ratio"]["n"] == 1
    assert "GFLOP/s" in harness.table(result)


def test_llm_harness() -> None:
    from benchmarks import llm_harness

    tiny = {"layers": "1", "d_model": "64", "heads": "2", "vocab": "256", "context": "64",
            "prompt_tokens": "8", "new_tokens": "4"}
    result = llm_harness.run(quick=True, pairs=1, block_s=0.05, params=tiny, threads=1)
    ratio = result["summary"]["ratio"]
    assert ratio["n"] == 1
    # the verdict quotes this run's own figure and the verdict that figure deserves
    (verdict,) = llm_harness.verdicts(result)
    assert f"{ratio['median']:.3f}" in verdict
    assert verdict.endswith("met" if ratio["median"] >= llm_harness.TARGET_RATIO else "MISSED")


def test_cuda_check_without_a_gpu() -> None:
    env = python_env()
    env["CUDA_VISIBLE_DEVICES"] = ""  # the no-device path even on a machine with a GPU
    done = subprocess.run([sys.executable, "-m", "benchmarks.cuda_check"], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert cuda_check.NO_CUDA in done.stdout


def test_run_all_writes_a_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(accuracy, "run", _accuracy_run)  # 5 s traces instead of 60 s
    assert run_all.main(["--quick", "--only", "accuracy", "--out", str(tmp_path)]) == 0
    report = (tmp_path / "report.md").read_text()
    assert "## accuracy" in report and "carbontop error" in report
    data = json.loads((tmp_path / "accuracy.json").read_text())
    assert data["results"] and os.path.exists(tmp_path / "accuracy.csv")


_REAL_ACCURACY_RUN = accuracy.run


def _accuracy_run(_seconds: float) -> list[dict[str, object]]:
    return _REAL_ACCURACY_RUN(5.0)


# -- the verdicts, on hand-built results either side of each target ------------------------------

def startup_result(median_s: float | None) -> dict[str, object]:
    seconds = None if median_s is None else stats([median_s])
    return {"summary": [{"what": "dashboard first frame", "target_s": 1.0, "seconds": seconds,
                         "missing": 0},
                        {"what": "no target here", "target_s": None, "seconds": stats([9.0]),
                         "missing": 0}]}


def test_startup_verdicts_either_side_of_the_target() -> None:
    assert startup_bench.verdicts(startup_result(0.412)) == [
        "dashboard first frame: median 0.412 s (target 1 s): met"]
    assert startup_bench.verdicts(startup_result(1.0)) == [
        "dashboard first frame: median 1.000 s (target 1 s): met"]
    assert startup_bench.verdicts(startup_result(1.25)) == [
        "dashboard first frame: median 1.250 s (target 1 s): MISSED"]
    assert startup_bench.verdicts(startup_result(None)) == [
        "dashboard first frame: no frame seen: MISSED"]


def overhead_summary(config: str, cpu_pct: float, peak_rss: float, torch: bool = False
                     ) -> dict[str, object]:
    return {"config": config, "mode": "carbontop", "cpu_pct": stats([cpu_pct]),
            "peak_rss_bytes_max": peak_rss, "torch_mapped": torch}


def test_overhead_verdicts_either_side_of_the_targets() -> None:
    met = {"summary": [overhead_summary("headless sim 1 s", 0.5, 80e6),
                       overhead_summary("dashboard sim 1 s", 2.9, 120e6)]}
    assert overhead.verdicts(met) == [
        "headless sim 1 s: 0.50 % of one core (target <= 1 %): met",
        "dashboard sim 1 s: 2.90 % of one core (target <= 3 %): met",
        "memory: peak RSS 120 MB at most (target < 150 MB): met",
        "torch in the monitor: never mapped (met)"]
    missed = {"summary": [overhead_summary("headless sim 1 s", 1.5, 80e6),
                          overhead_summary("dashboard sim 1 s", 3.2, 160e6, torch=True)]}
    assert overhead.verdicts(missed) == [
        "headless sim 1 s: 1.50 % of one core (target <= 1 %): MISSED",
        "dashboard sim 1 s: 3.20 % of one core (target <= 3 %): MISSED",
        "memory: peak RSS 160 MB at most (target < 150 MB): MISSED",
        "torch in the monitor: MAPPED in dashboard sim 1 s"]


def test_harness_and_perturbation_verdicts_either_side_of_the_target() -> None:
    assert harness.verdicts({"summary": {"ratio": stats([0.97])}}) == [
        "matmul harness / bare torch.matmul: 0.970 (target >= 0.95): met"]
    assert harness.verdicts({"summary": {"ratio": stats([0.93])}}) == [
        "matmul harness / bare torch.matmul: 0.930 (target >= 0.95): MISSED"]
    ratios = {"workload": "matmul", "ratio": stats([0.97, 0.99, 0.996, 1.0])}
    toggled = [{"workload": "matmul", "ratio": stats([0.985])},
               {"workload": "idle", "ratio": stats([0.9])}]
    assert perturbation.verdicts({"summary": [ratios], "toggled": toggled}) == [
        "matmul: throughput ratio 0.993 over 4 separate run pairs (IQR 0.985-0.997; "
        "target >= 0.98): met",
        "matmul: monitor on / off 0.985 in one process (target >= 0.98): met",
        "idle: monitor on / off 0.900 in one process (target >= 0.98): MISSED"]
