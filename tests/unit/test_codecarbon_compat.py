"""carbontop's total_summary.csv, loaded by CodeCarbon's own dashboard code (carbonboard).

CodeCarbon 3.x ships ``codecarbon/viz``: ``carbonboard.viz(filepath)`` loads the file with
``pd.read_csv`` and ``render_app(df)`` feeds it through ``codecarbon.viz.data.Data`` and
``codecarbon.viz.units``. The Dash app itself needs the ``codecarbon[carbonboard]`` extra (dash,
dash_bootstrap_components, fire); without it ``dash`` is stubbed here (only its DataTable, which
``Data.get_project_data`` wraps the rows in), so the loading and the figures CodeCarbon computes
from the file always run, and the full app is built only where the extra is installed.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from carbontop.carbon import CarbonIntensity, resolve_intensity
from carbontop.config import Settings
from carbontop.engine_api import SessionRequest
from carbontop.meter import WindowTotals
from carbontop.model import FinalStatus, Scope, SourceInfo
from carbontop.results import schema
from carbontop.results.csv_files import CsvAppender
from carbontop.session_factory import build_engine
from carbontop.summary import Efficiency, SessionSummary
from carbontop.units import J_PER_KWH

pd = pytest.importorskip("pandas")  # a dependency of CodeCarbon itself

INFO = SourceInfo(kind="sim", device_name="Simulated Jetson AGX Orin (64GB)", gpu_count=1,
                  gpu_rail="VDD_GPU_SOC", gpu_scope=Scope.GPU_SOC_SHARED, interval_s=0.5)
T0 = 1_714_564_800.0
HARDWARE = {"os": "Linux-6.1", "python_version": "3.11.2", "codecarbon_version": "3.3.2",
            "cpu_count": "12", "cpu_model": "ARMv8 Processor rev 1 (v8l)",
            "ram_total_size": "61.4"}
HAS_CARBONBOARD = all(importlib.util.find_spec(m) is not None
                      for m in ("dash", "dash_bootstrap_components", "plotly"))


def france() -> CarbonIntensity:
    return resolve_intensity("FRA", None, None)


def summary(run_id: str, workload: str, start: float, joules: float,
            intensity: CarbonIntensity) -> SessionSummary:
    kwh = joules / J_PER_KWH
    whole = WindowTotals(start, start + 60, start, start + 60, kwh * 0.7, None, None,
                         kwh * 0.2, kwh * 0.1, kwh,
                         "GPU + CPU + RAM", kwh, 100, 0, 60, 0.0)
    return SessionSummary(run_id=run_id, status=FinalStatus.FINISHED, workload=workload,
                          params={}, source=INFO, intensity=intensity, whole=whole, window=whole,
                          efficiency=Efficiency.compute(None, None, None, whole),
                          hardware=HARDWARE)


def write_total_summary(directory: Path, *summaries: SessionSummary) -> Path:
    """Appends total_summary rows exactly as carbontop's ResultStore does."""
    appender = CsvAppender(directory, schema.TOTAL_SUMMARY, schema.total_summary_columns(),
                           fallback_dir=directory / "fallback", durable=True)
    assert appender.append([s.total_summary_row() for s in summaries])
    return appender.path


@pytest.fixture
def cc_viz(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """codecarbon.viz.data, with dash stubbed where the carbonboard extra is not installed."""
    if importlib.util.find_spec("dash") is None:
        table = types.ModuleType("dash.dash_table")

        class DataTable:  # what Data.get_project_data builds: dt.DataTable(data=, columns=)
            def __init__(self, data: list[dict[str, Any]], columns: list[dict[str, str]]
                         ) -> None:
                self.data, self.columns = data, columns

        table.DataTable = DataTable  # type: ignore[attr-defined]
        dash = types.ModuleType("dash")
        dash.dash_table = table  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "dash", dash)
        monkeypatch.setitem(sys.modules, "dash.dash_table", table)
    saved = sys.modules.pop("codecarbon.viz.data", None)
    try:
        yield importlib.import_module("codecarbon.viz.data")
    finally:
        sys.modules.pop("codecarbon.viz.data", None)
        if saved is not None:
            sys.modules["codecarbon.viz.data"] = saved


def check_carbonboard_reads(path: Path, data_module: Any, project: str,
                            expected: list[SessionSummary]) -> Any:
    """What carbonboard does with the file, step by step, with CodeCarbon's own code."""
    from codecarbon.viz.units import extends_emissions_units, get_emissions_unit

    df = pd.read_csv(path)  # carbonboard.viz(filepath)
    cc_columns = list(schema.codecarbon_columns())
    assert list(df.columns[: len(cc_columns)]) == cc_columns
    for column in ("duration", "emissions", "energy_consumed", "cpu_energy", "gpu_energy",
                   "ram_energy", "cpu_power", "gpu_power", "ram_power", "emissions_rate"):
        assert pd.api.types.is_float_dtype(df[column]), column
    assert sorted(df["project_name"].unique()) == sorted({f"carbontop:{s.workload}"
                                                          for s in expected})

    data = data_module.Data()
    # update_project_data
    table = data.get_project_data(df, project)
    rows = [s for s in expected if f"carbontop:{s.workload}" == project]
    assert [r["run_id"] for r in table.data] == [s.run_id for s in rows]  # by timestamp
    project_summary = data.get_project_summary(table.data)
    total_kwh = sum(s.whole.total_kwh or 0.0 for s in rows)
    assert project_summary["total"]["energy_consumed"] == pytest.approx(total_kwh)
    assert project_summary["total"]["emissions"] == pytest.approx(
        sum(s.co2_kg(s.whole.total_kwh) or 0.0 for s in rows))
    assert project_summary["total"]["duration"] == pytest.approx(
        sum(s.whole.duration_s for s in rows))
    # each row's components add up to its total (carbontop/attribution.py), as CodeCarbon's
    # own rows do
    parts = df["cpu_energy"].fillna(0) + df["gpu_energy"].fillna(0) + df["ram_energy"].fillna(0)
    for got, total in zip(parts, df["energy_consumed"], strict=True):
        assert got == pytest.approx(total, rel=1e-9)
    # the file's totals, every project together
    assert sum(df["energy_consumed"]) == pytest.approx(
        sum(s.whole.total_kwh or 0.0 for s in expected))
    assert sum(df["emissions"]) == pytest.approx(
        sum(s.co2_kg(s.whole.total_kwh) or 0.0 for s in expected))
    # update_exemplary_equivalents: figures, not "nan" (the exact ones: check_equivalents)
    emissions = project_summary["total"]["emissions"]
    assert re.fullmatch(r"\d+", data.get_car_miles(emissions))
    assert re.fullmatch(r"\d+ (minutes|hours|days)", data.get_tv_time(emissions))
    assert re.fullmatch(r"\d+\.\d\d", data.get_household_fraction(emissions))
    # update_show_regional_comparison, update_on_cloud
    assert project_summary["country_iso_code"].upper() not in ("USA", "CAN")
    assert project_summary["on_cloud"] == "N"
    # update_global_comparisons (every country's figure for this project's energy)
    choropleth = data.get_global_emissions_choropleth_data(
        project_summary["total"]["energy_consumed"])
    fra = next(c for c in choropleth if c["iso_code"] == "FRA")
    assert fra["emissions"] == pytest.approx(rows[0].co2_kg(total_kwh), rel=1e-6)
    # update_cloud_emissions_barchart (on_cloud is "N")
    name, _ = data.get_cloud_emissions_barchart_data(
        project_summary["total"]["energy_consumed"], project_summary["on_cloud"],
        project_summary["cloud_provider"], project_summary["cloud_region"])
    assert name == ""
    # update_project_bar_chart
    frame = extends_emissions_units(pd.DataFrame(table.data))
    assert get_emissions_unit(frame).value in ("g", "kg", "t")
    return df


def test_hand_built_summaries_load_in_carbonboard(tmp_path: Path, cc_viz: Any) -> None:
    intensity = france()
    sessions = [summary("r1", "matmul", T0, 5.4e6, intensity),
                summary("r2", "idle", T0 + 100, 3.6e5, intensity),
                summary("r3", "matmul", T0 + 200, 1.8e6, intensity)]
    path = write_total_summary(tmp_path, *sessions)
    df = check_carbonboard_reads(path, cc_viz, "carbontop:matmul", sessions)
    assert df.loc[0, "country_iso_code"] == "FRA" and df.loc[0, "country_name"] == "France"
    # matmul: 5.4 MJ + 1.8 MJ = 2.0 kWh at France's 56.039 g/kWh = 0.112078 kg CO2e; the whole
    # file adds idle's 0.1 kWh: 2.1 kWh, 0.1176819 kg.
    assert sum(df["energy_consumed"]) == pytest.approx(2.1, rel=1e-9)
    assert sum(df["emissions"]) == pytest.approx(0.1176819, rel=1e-9)
    data = cc_viz.Data()
    project = data.get_project_summary(data.get_project_data(df, "carbontop:matmul").data)
    assert project["total"]["emissions"] == pytest.approx(0.112078, rel=1e-9)
    # CodeCarbon's equivalents of 0.112078 kg: 0.112078 / 0.409 kg per mile = 0.27 miles;
    # 0.112078 / 0.097 kg per TV hour = 1.16 h; 0.112078 / 160.58 kg per household week = 0.07 %
    assert data.get_car_miles(project["total"]["emissions"]) == "0"
    assert data.get_tv_time(project["total"]["emissions"]) == "1 hours"
    assert data.get_household_fraction(project["total"]["emissions"]) == "0.07"
    assert df.loc[0, "gpu_model"] == INFO.device_name and df.loc[0, "cpu_count"] == 12


def test_a_real_session_loads_in_carbonboard(tmp_path: Path, cc_viz: Any,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARBONTOP_LOCK_DIR", str(tmp_path / "locks"))
    settings = Settings(gpu_source="sim", interval_s=0.2, output_dir=tmp_path / "out",
                        duration_s=2, country="FRA")
    engine = build_engine(settings, cpu_ram=False)
    engine.open()
    try:
        engine.start_session(SessionRequest("idle", {"warmup_s": "0.2"}, 2))
        done = engine.wait_session(20)
    finally:
        engine.close()
    assert done is not None and done.status is FinalStatus.FINISHED
    df = check_carbonboard_reads(engine.store.total_summary.path, cc_viz, "carbontop:idle",
                                 [done])
    assert df.loc[0, "run_id"] == done.run_id
    assert df.loc[0, "gpu_energy"] == pytest.approx(done.whole.gpu_kwh)


@pytest.mark.skipif(not HAS_CARBONBOARD,
                    reason="CodeCarbon's dashboard needs pip install 'codecarbon[carbonboard]'")
def test_carbonboard_app_builds_on_the_file(tmp_path: Path) -> None:
    from codecarbon.viz.carbonboard import render_app

    intensity = france()
    path = write_total_summary(tmp_path, summary("r1", "matmul", T0, 5.4e6, intensity),
                               summary("r2", "idle", T0 + 100, 3.6e5, intensity))
    app = render_app(pd.read_csv(path))
    assert app.layout is not None and len(app.callback_map) >= 8


def test_world_average_row_has_a_country_code_for_carbonboard(tmp_path: Path,
                                                              cc_viz: Any) -> None:
    world = resolve_intensity(None, None, None)
    path = write_total_summary(tmp_path, summary("r1", "matmul", T0, 3.6e6, world))
    df = pd.read_csv(path)
    project_summary = cc_viz.Data.get_project_summary(
        cc_viz.Data.get_project_data(df, "carbontop:matmul").data)
    assert project_summary["country_iso_code"].upper() not in ("USA", "CAN")
