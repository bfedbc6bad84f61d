"""carbontop report: sessions read back from CSVs written by carbontop's own writer."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from carbontop.carbon import CarbonIntensity
from carbontop.config import Settings
from carbontop.engine_api import SessionRequest
from carbontop.errors import BadInput
from carbontop.meter import WindowTotals
from carbontop.model import FinalStatus, Scope, SourceInfo
from carbontop.report import (
    SessionRow,
    load_sessions,
    render_table,
    report_main,
    sort_rows,
    to_csv,
    to_json,
)
from carbontop.results import schema
from carbontop.results.csv_files import CsvAppender
from carbontop.session_factory import build_engine
from carbontop.summary import Efficiency, SessionSummary
from carbontop.units import J_PER_KWH

INFO = SourceInfo(kind="sim", device_name="Simulated Jetson AGX Orin (64GB)", gpu_count=1,
                  gpu_rail="VDD_GPU_SOC", gpu_scope=Scope.GPU_SOC_SHARED, interval_s=0.5)
INTENSITY = CarbonIntensity(g_per_kwh=56.0, origin="test", source="override")
T0 = 1_714_564_800.0  # 2024-05-01 12:00:00 UTC


def summary(run_id: str, workload: str, start: float, duration: float, joules: float,
            status: FinalStatus = FinalStatus.FINISHED, units: float | None = None,
            unit: str | None = None) -> SessionSummary:
    kwh = joules / J_PER_KWH
    whole = WindowTotals(start, start + duration, start, start + duration, kwh * 0.6, None,
                         None, None, None, kwh,
                         "GPU only (measured)", None, 10, 0, 0, 0.0)
    return SessionSummary(run_id=run_id, status=status, workload=workload, params={},
                          source=INFO, intensity=INTENSITY, whole=whole, window=whole,
                          efficiency=Efficiency.compute(units, unit, None, whole))


def write(directory: Path, *summaries: SessionSummary) -> Path:
    """Appends emissions rows exactly as carbontop does; returns the file they went to."""
    appender = CsvAppender(directory, schema.EMISSIONS, schema.names(schema.EMISSIONS_COLUMNS),
                           fallback_dir=directory / "fallback")
    assert appender.append([s.emissions_row() for s in summaries])
    return appender.path


def test_the_last_row_of_each_run_wins(tmp_path: Path) -> None:
    write(tmp_path, summary("a", "matmul", T0, 10, 50.0, FinalStatus.PARTIAL, 100, "GFLOP"))
    write(tmp_path, summary("b", "idle", T0 + 100, 30, 300.0, units=30, unit="second"))
    write(tmp_path, summary("a", "matmul", T0, 20, 120.0, units=400, unit="GFLOP"))
    rows = load_sessions(tmp_path)
    assert [r.run_id for r in rows] == ["b", "a"]  # file order of each run's last row
    a = {r.run_id: r for r in rows}["a"]
    assert a.status == "finished" and a.duration_s == 20
    assert a.energy_kwh == pytest.approx(120.0 / J_PER_KWH)
    assert a.co2_kg == pytest.approx(120.0 / J_PER_KWH * 56.0 / 1000)
    assert a.throughput_per_s == pytest.approx(20.0) and a.unit == "GFLOP"
    assert a.energy_per_unit_j == pytest.approx(0.3)
    assert a.start is not None and a.start.timestamp() == T0
    assert a.file == "emissions.csv"
    # Default order: start time.
    assert [r.run_id for r in sort_rows(rows)] == ["a", "b"]


def test_foreign_files_are_skipped_and_siblings_read(tmp_path: Path) -> None:
    # Another tool's emissions.csv: carbontop's writer goes beside it.
    (tmp_path / "emissions.csv").write_text("timestamp,project_name,run_id,emissions\n"
                                            "2024-05-01T00:00:00,x,zzz,0.1\n")
    path = write(tmp_path, summary("a", "matmul", T0, 10, 50.0))
    assert path.name == "emissions.carbontop-2.csv"
    # A later sibling that is foreign too, and one more of carbontop's.
    (tmp_path / "emissions.carbontop-3.csv").write_text("a,b\n1,2\n")
    (tmp_path / "emissions.carbontop-10.csv").write_text(
        (tmp_path / "emissions.carbontop-2.csv").read_text().splitlines()[0] + "\n")
    write_to = CsvAppender(tmp_path, "emissions.carbontop-10.csv",
                           schema.names(schema.EMISSIONS_COLUMNS))
    assert write_to.append([summary("c", "idle", T0 + 5, 10, 20.0).emissions_row()])
    rows = load_sessions(tmp_path)
    assert [(r.run_id, r.file) for r in rows] == [("a", "emissions.carbontop-2.csv"),
                                                  ("c", "emissions.carbontop-10.csv")]
    assert "zzz" not in {r.run_id for r in rows}


def test_an_older_carbontop_header_is_still_read(tmp_path: Path) -> None:
    # A file from a carbontop with fewer columns: the writer treats it as foreign and goes
    # beside it, the reader reads both.
    old_columns = [c for c in schema.names(schema.EMISSIONS_COLUMNS)
                   if c not in ("experiment_id", "trial", "net_co2_kg")][:-5]
    old = CsvAppender(tmp_path, schema.EMISSIONS, old_columns)
    assert old.append([summary("old", "matmul", T0, 10, 50.0).emissions_row()])
    assert write(tmp_path, summary("new", "idle", T0 + 60, 10, 20.0)).name == \
        "emissions.carbontop-2.csv"
    rows = load_sessions(tmp_path)
    assert [(r.run_id, r.file) for r in rows] == [("old", "emissions.csv"),
                                                  ("new", "emissions.carbontop-2.csv")]
    assert rows[0].energy_kwh == pytest.approx(50.0 / J_PER_KWH)


def test_codecarbon_backups_of_carbontop_files_are_read(tmp_path: Path) -> None:
    # CodeCarbon writing its own emissions.csv here renamed carbontop's (twice) to .bak files.
    write(tmp_path, summary("first", "matmul", T0, 10, 50.0))
    (tmp_path / "emissions.csv").rename(tmp_path / "emissions.csv.bak")
    write(tmp_path, summary("second", "idle", T0 + 60, 10, 20.0))
    (tmp_path / "emissions.csv").rename(tmp_path / "emissions.csv_0.bak")
    (tmp_path / "emissions.csv").write_text("timestamp,project_name,run_id,emissions\n")
    write(tmp_path, summary("third", "idle", T0 + 120, 10, 20.0))  # goes beside it
    (tmp_path / "emissions.csv_1.bak").write_text("timestamp,run_id\n1,zzz\n")  # CodeCarbon's
    rows = load_sessions(tmp_path)
    assert [(r.run_id, r.file) for r in rows] == [
        ("first", "emissions.csv.bak"), ("second", "emissions.csv_0.bak"),
        ("third", "emissions.carbontop-2.csv")]


def test_only_foreign_files_is_bad_input(tmp_path: Path) -> None:
    (tmp_path / "emissions.csv").write_text("timestamp,project_name,run_id,emissions\n")
    with pytest.raises(BadInput, match="other columns") as err:
        load_sessions(tmp_path)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("make", ["missing", "file", "empty"])
def test_missing_directory_or_emissions_is_one_line_bad_input(tmp_path: Path, make: str) -> None:
    target = tmp_path / "results"
    if make == "file":
        target.write_text("")
    elif make == "empty":
        target.mkdir()
    with pytest.raises(BadInput) as err:
        load_sessions(target)
    message = str(err.value)
    assert "\n" not in message and str(target) in message
    assert err.value.exit_code == 2
    if make == "empty":
        assert "no emissions.csv" in message and "carbontop run" in message


def many(tmp_path: Path) -> list[SessionRow]:
    write(tmp_path,
          summary("1", "transformer-inference-with-a-long-name", T0, 3725, 4.2e6,
                  FinalStatus.INTERRUPTED, 123456, "token"),
          summary("2", "idle", T0 + 7200, 30, 40.0, units=30, unit="second"),
          summary("3", "=cmd|' /C calc'!A0", T0 + 60, 5, 0.5, FinalStatus.FAILED),
          summary("4", "cnn-inference", T0 + 30, 120, 9000.0, FinalStatus.RECOVERED, 2400,
                  "image"),
          summary("5", "training", T0 + 90, 600, 1.2e8, units=50, unit="iteration"))
    return load_sessions(tmp_path)


def test_table_fits_80_columns_with_human_units(tmp_path: Path) -> None:
    rows = many(tmp_path)
    text = render_table(rows, "start")
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines), "\n" + text
    assert lines[0].split()[:2] == ["workload", "start"]
    body = lines[2:-1]
    assert len(body) == 5
    assert body[0].startswith("transfor")  # the longest name is cut to fit, not wrapped
    assert "~" in body[0].split()[0]
    assert "1.167 kWh" in body[0] and "65.33 g" in body[0] and " 1:02:05 " in body[0]
    assert "interrupted" in body[0] and "tok/s" in body[0]
    idle = next(line for line in body if line.startswith("idle"))
    assert "40.0 J" in idle and "0.6 mg" in idle and "1.00 s/s" in idle
    assert "1.33 J" in idle  # J per unit
    failed = next(line for line in body if "failed" in line)
    assert failed.startswith("=cmd")  # the writer's apostrophe is not shown
    assert "n/a" in failed  # no throughput: not measured, not zero
    training = next(line for line in body if line.startswith("training"))
    assert "33.333 kWh" in training and "1.867 kg" in training and "2.40 MJ" in training
    assert lines[-1].startswith("5 sessions:")


def test_short_table_keeps_the_year(tmp_path: Path) -> None:
    write(tmp_path, summary("a", "idle", T0, 10, 50.0))
    text = render_table(load_sessions(tmp_path))
    assert "2024-05-01 12:00" in text and "1 session:" in text
    assert render_table([]) == "no sessions"


@pytest.mark.parametrize(("sort", "order"), [
    ("start", ["1", "4", "3", "5", "2"]),
    ("-start", ["2", "5", "3", "4", "1"]),
    ("energy", ["3", "2", "4", "1", "5"]),
    ("-kwh", ["5", "1", "4", "2", "3"]),
    ("workload", ["3", "4", "2", "5", "1"]),
    ("duration", ["3", "2", "4", "5", "1"]),
    ("throughput", ["5", "2", "4", "1", "3"]),  # no throughput: last either way
    ("-throughput", ["1", "4", "2", "5", "3"]),
    ("j_per_unit", ["2", "4", "1", "5", "3"]),
    ("status", ["3", "5", "2", "1", "4"]),  # ties: by start time
])
def test_sort(tmp_path: Path, sort: str, order: list[str]) -> None:
    assert [r.run_id for r in sort_rows(many(tmp_path), sort)] == order


def test_unknown_sort_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="choose one of start, workload"):
        sort_rows([], "watts")
    write(tmp_path, summary("a", "idle", T0, 10, 50.0))
    with pytest.raises(BadInput):
        report_main(tmp_path, "nope", "table")
    with pytest.raises(BadInput):
        report_main(tmp_path, "start", "yaml")


def test_json_and_csv_carry_raw_figures(tmp_path: Path) -> None:
    rows = many(tmp_path)
    data = json.loads(to_json(rows, "-energy"))
    assert [d["run_id"] for d in data] == ["5", "1", "4", "2", "3"]
    assert data[0]["energy_kwh"] == pytest.approx(1.2e8 / J_PER_KWH)
    assert data[0]["workload"] == "training" and data[0]["unit"] == "iteration"
    assert data[4]["throughput_per_s"] is None
    parsed = list(csv.DictReader(io.StringIO(to_csv(rows))))
    assert [r["run_id"] for r in parsed] == ["1", "4", "3", "5", "2"]
    assert float(parsed[0]["energy_kwh"]) == pytest.approx(4.2e6 / J_PER_KWH)
    assert parsed[2]["throughput_per_s"] == ""
    assert set(parsed[0]) >= {"workload", "start_time", "duration_s", "co2_kg", "status"}


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_report_main_prints_to_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      fmt: str) -> None:
    many(tmp_path)
    assert report_main(tmp_path, "start", fmt) == 0
    out = capsys.readouterr().out
    assert out.endswith("\n") and "training" in out
    if fmt == "json":
        assert len(json.loads(out)) == 5


# -- rows written by a real engine --------------------------------------------------------------

@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("CARBONTOP_LOCK_DIR", str(tmp_path / "locks"))
    settings = Settings(gpu_source="sim", interval_s=0.2, output_dir=tmp_path / "out",
                        duration_s=2)
    eng = build_engine(settings, cpu_ram=False)
    eng.open()
    try:
        yield eng
    finally:
        eng.close()


def test_partial_export_is_superseded_by_the_final_row(engine: Any) -> None:
    run_id = engine.start_session(SessionRequest("idle", {"warmup_s": "0.2"}, 2))
    deadline = time.monotonic() + 10
    while engine.snapshot().session is None or engine.snapshot().session.phase.value != \
            "measuring":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.5)
    engine.export()  # a partial row while it runs
    summary_ = engine.wait_session(20)
    assert summary_ is not None
    out = engine.settings.output_dir
    with (out / schema.EMISSIONS).open(newline="") as f:
        statuses = [r["status"] for r in csv.DictReader(f) if r["run_id"] == run_id]
    assert statuses == ["partial", "finished"]
    rows = load_sessions(out)
    assert [r.run_id for r in rows] == [run_id]
    row = rows[0]
    assert row.status == "finished" and row.workload == "idle" and row.unit == "second"
    assert row.energy_kwh == pytest.approx(summary_.whole.total_kwh)
    assert row.throughput_per_s is not None and row.throughput_per_s > 0
    assert "finished" in render_table(rows)
