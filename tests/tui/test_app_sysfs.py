"""The dashboard measuring an emulated Jetson without the jtop service: the REAL app, its engine
built by the dashboard's own build function (carbontop.session_factory) in the app's opening
worker, ``$CARBONTOP_SYS_ROOT`` at an emulated tree (tests/sysfs_trees.py), real CodeCarbon, the
idle workload in a real child process, the real CSVs.

- sysfs on AGX Orin: GPU rail VDD_GPU_SOC (scope "GPU+SOC shared"), CPU rail VDD_CPU_CV, no input
  rail (the board figure is the sum of its four connected rails), two chips with NC channels.
  Every channel is at 5000 mV, so each rail's watts are its milliamps x 5 / 1000.
- tegrastats on Thor (the stand-in on PATH, JetPack 7's dated three-value lines): GPU rail
  VDD_GPU, CPU rail VDD_CPU_SOC_MSS, the carrier board's INA238 input VIN as the board figure.
  tegrastats prints whole milliwatts: 12040 mV x 640 mA = 7705.6 mW prints as 7705.

The figures below are worked out by hand from the millivolts and milliamps the trees hold.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from textual.widgets import Digits

from carbontop.config import Settings
from carbontop.deferred_engine import DeferredEngine
from carbontop.registry import list_workloads
from carbontop.results import schema
from carbontop.tui.app import CarbontopApp, build_dashboard_engine
from tests.sysfs_trees import SysfsTree, build
from tests.tui.test_app import rows, text, until

SIZE = (110, 32)
J_PER_KWH = 3.6e6


@pytest.fixture
def orin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[SysfsTree, Settings]]:
    tree = build("agx-orin", tmp_path / "sys")
    monkeypatch.setenv("CARBONTOP_SYS_ROOT", str(tree.root))
    monkeypatch.setenv("CARBONTOP_LOCK_DIR", str(tmp_path / "locks"))
    (tmp_path / "locks").mkdir()
    settings = Settings(gpu_source="sysfs", interval_s=0.1, country="FRA",
                        output_dir=tmp_path / "out", duration_s=1.5).validated()
    settings.output_dir.mkdir()
    yield tree, settings


async def test_dashboard_measures_an_emulated_orin_through_sysfs(
        orin: tuple[SysfsTree, Settings]) -> None:
    tree, settings = orin
    engine = DeferredEngine(partial(build_dashboard_engine, settings))
    app = CarbontopApp(engine, list_workloads(), settings,
                       params={"idle": {"nap_s": "0.05", "warmup_s": "0.3"}})
    try:
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.opened, what="the engine to open")
            assert app.open_error is None
            await until(pilot, lambda: app._snapshot is not None
                        and app._snapshot.live.gpu_w is not None, 15, "a GPU sample")
            await pilot.pause(0.3)
            # The rail and its scope, named where the user looks; the source is sysfs.
            source = text(app, "#status-source")
            assert "sysfs" in source and "GPU VDD_GPU_SOC (GPU+SOC shared)" in source, source
            assert "VDD_GPU_SOC (GPU+SOC shared)" in text(app, "#power-caption")
            # 800 mA x 5 V = 4.0 W on the GPU rail; the four rails sum to 9.0 W; CPU rail 1.5 W.
            assert app.query_one("#power-digits", Digits).value == "  4.0"
            power = text(app, "#power-rows").split("\n")
            board = next(line for line in power if line.startswith("board"))
            assert "9.0 W" in board and "sum of rails" in board, power
            cpu_rail = next(line for line in power if line.startswith("CPU rail"))
            assert "1.5 W" in cpu_rail and "VDD_CPU_CV" in cpu_rail, power
            # The screen follows the files: the GPU+SOC rail to 1200 mA = 6.0 W, board 11.0 W.
            tree.set_raw("VDD_GPU_SOC", 5000, 1200)
            await until(pilot, lambda: app.query_one("#power-digits", Digits).value == "  6.0",
                        10, "the new GPU watts on screen")
            await until(pilot, lambda: "11.0 W" in text(app, "#power-rows"), 10,
                        "the new board watts on screen")
            # A session, start to finish, on those rails.
            app.start_workload("idle")
            await until(pilot, lambda: app._snapshot.last_summary is not None, 40,
                        "the session to finish")
            await pilot.pause(0.3)
            assert "finished" in text(app, "#status-state")
            summary = app._snapshot.last_summary
    finally:
        app.close_engine()
    whole = summary.whole
    measured_s = whole.end_s - whole.start_s - whole.gpu_unmeasured_s
    assert whole.gpu_unmeasured_s == 0.0 and whole.board_unmeasured_s == 0.0
    assert whole.gpu_kwh * J_PER_KWH == pytest.approx(6.0 * measured_s, rel=1e-9)
    assert whole.board_kwh * J_PER_KWH == pytest.approx(11.0 * measured_s, rel=1e-9)
    assert whole.cpu_rail_kwh * J_PER_KWH == pytest.approx(1.5 * measured_s, rel=1e-9)
    assert whole.total_kwh == whole.board_kwh  # the sum of rails is the total
    out = settings.output_dir
    session = [r for r in rows(out / schema.EMISSIONS) if r["run_id"] == summary.run_id]
    assert len(session) == 1
    row = session[0]
    assert (row["status"], row["workload"], row["gpu_source"]) == ("finished", "idle", "sysfs")
    assert (row["gpu_rail"], row["gpu_scope"], row["board_basis"]) == (
        "VDD_GPU_SOC", "GPU+SOC shared", "sum of rails")
    assert row["total_basis"] == "sum of all board rails (measured)"
    assert float(row["gpu_energy_kwh"]) == pytest.approx(whole.gpu_kwh, rel=1e-9)
    assert float(row["board_energy_kwh"]) == pytest.approx(whole.board_kwh, rel=1e-9)
    log = [r for r in rows(out / schema.GPU_LOG) if r["run_id"] == summary.run_id]
    assert len(log) >= 10  # a row per 0.1 s sample over a session of more than 1.5 s
    assert {(r["gpu_rail"], r["gpu_scope"], r["board_basis"]) for r in log} == {
        ("VDD_GPU_SOC", "GPU+SOC shared", "sum of rails")}
    assert {float(r["gpu_power_w"]) for r in log} == {6.0}
    assert {float(r["board_power_w"]) for r in log} == {11.0}
    assert {float(r["cpu_rail_power_w"]) for r in log} == {1.5}
    totals = [r for r in rows(out / schema.TOTAL_SUMMARY) if r["run_id"] == summary.run_id]
    assert len(totals) == 1 and totals[0]["gpu_source"] == "sysfs"
    assert float(totals[0]["energy_consumed"]) == pytest.approx(whole.total_kwh, rel=1e-9)


async def test_dashboard_measures_an_emulated_thor_through_tegrastats(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tree = build("thor", tmp_path / "sys")
    stand_in = tree.install_tegrastats(tmp_path / "bin")
    monkeypatch.setenv("CARBONTOP_SYS_ROOT", str(tree.root))
    monkeypatch.setenv("PATH", f"{stand_in.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("CARBONTOP_LOCK_DIR", str(tmp_path / "locks"))
    (tmp_path / "locks").mkdir()
    settings = Settings(gpu_source="tegrastats", interval_s=0.1, country="FRA",
                        output_dir=tmp_path / "out", duration_s=1.0).validated()
    settings.output_dir.mkdir()
    app = CarbontopApp(DeferredEngine(partial(build_dashboard_engine, settings)),
                       list_workloads(), settings,
                       params={"idle": {"nap_s": "0.05", "warmup_s": "0.2"}})
    try:
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.opened, what="the engine to open")
            assert app.open_error is None
            await until(pilot, lambda: app._snapshot is not None
                        and app._snapshot.live.gpu_w is not None, 15, "a GPU sample")
            await pilot.pause(0.3)
            source = text(app, "#status-source")
            assert "tegrastats" in source and "GPU VDD_GPU (GPU only)" in source, source
            assert app.query_one("#power-digits", Digits).value == "  7.7"  # 7705 mW
            power = text(app, "#power-rows").split("\n")
            board = next(line for line in power if line.startswith("board"))
            # VIN: 19800 mV x 1400 mA = 27720 mW; CPU rail 12040 mV x 960 mA = 11558 mW.
            assert "27.7 W" in board and "carrier input VIN (INA238)" in board, power
            cpu_rail = next(line for line in power if line.startswith("CPU rail"))
            assert "11.6 W" in cpu_rail and "VDD_CPU_SOC_MSS" in cpu_rail, power
            app.start_workload("idle")
            await until(pilot, lambda: app._snapshot.last_summary is not None, 40,
                        "the session to finish")
            summary = app._snapshot.last_summary
    finally:
        app.close_engine()
    whole = summary.whole
    measured_s = whole.end_s - whole.start_s - whole.gpu_unmeasured_s
    assert whole.gpu_unmeasured_s == 0.0 and whole.board_unmeasured_s == 0.0
    assert whole.gpu_kwh * J_PER_KWH == pytest.approx(7.705 * measured_s, rel=1e-9)
    assert whole.board_kwh * J_PER_KWH == pytest.approx(27.72 * measured_s, rel=1e-9)
    assert whole.cpu_rail_kwh * J_PER_KWH == pytest.approx(11.558 * measured_s, rel=1e-9)
    out = settings.output_dir
    row = next(r for r in rows(out / schema.EMISSIONS) if r["run_id"] == summary.run_id)
    assert (row["status"], row["gpu_source"], row["gpu_rail"], row["gpu_scope"]) == (
        "finished", "tegrastats", "VDD_GPU", "GPU only")
    assert row["board_basis"] == "carrier input VIN (INA238)"
    assert float(row["total_energy_kwh"]) == pytest.approx(whole.board_kwh, rel=1e-9)
    log = [r for r in rows(out / schema.GPU_LOG) if r["run_id"] == summary.run_id]
    assert len(log) >= 8 and {float(r["gpu_power_w"]) for r in log} == {7.705}
    assert any(r["run_id"] == summary.run_id for r in rows(out / schema.TOTAL_SUMMARY))
    # tegrastats ends with the app's engine, never left running
    left = subprocess.run(["pgrep", "-f", str(stand_in.parent)], capture_output=True, text=True)
    assert left.stdout.strip() == "", "tegrastats left running"
