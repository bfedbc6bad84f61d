"""A CSV written by an earlier carbontop is upgraded in place; a foreign one is never touched.

tests/data/csv_bb5583e/ holds the three files exactly as carbontop at commit bb5583e wrote them
(`carbontop run idle --demo` then `carbontop run --demo -- python -c ...`, whose workload name
and params carry commas and quotes). The schema growing is simulated by adding columns to it;
the expected files are built here from the fixture's own text, not by the code under test.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import multiprocessing
import os
import shutil
import time
from pathlib import Path

import pytest

from carbontop.cli import main
from carbontop.results import schema
from carbontop.results.csv_files import CsvAppender
from carbontop.results.schema import Column
from carbontop.results.store import ResultStore
from carbontop.results.upgrade import Verdict, classify

FIXTURE = Path(__file__).parent.parent / "data" / "csv_bb5583e"
RUN_IDS = {"d5ad0a6b-d699-4514-a6ff-c8e75c28a8f4", "97488f99-0b3c-40b0-bae7-9b0f71a0b881"}


def parse(text: str) -> list[list[str]]:
    return [r for r in csv.reader(io.StringIO(text, newline="")) if r]


def fixture_dir(tmp_path: Path) -> Path:
    out = tmp_path / "results"
    shutil.copytree(FIXTURE, out)
    return out


# Columns added to emissions.csv since bb5583e, at its end.
# Columns added to emissions.csv since the fixture, by hand: none while bb5583e_schema pins the
# schema to the fixture's header (test_the_real_schema_upgrades_the_fixture checks today's).
ADDED_SINCE_FIXTURE: tuple[str, ...] = ()


def todays_dir(tmp_path: Path) -> Path:
    """The fixture with the columns added since, by hand: what today's carbontop writes."""
    out = fixture_dir(tmp_path)
    lines = (out / schema.EMISSIONS).read_text().splitlines(keepends=True)
    assert len(lines) == 3  # the header and two one-line rows (no quoted line breaks)
    tail = "".join("," + name for name in ADDED_SINCE_FIXTURE)
    lines = [lines[0].replace("\n", tail + "\n")] + [
        line.replace("\n", "," * len(ADDED_SINCE_FIXTURE) + "\n") for line in lines[1:]]
    (out / schema.EMISSIONS).write_text("".join(lines))
    return out


def insert_after(columns: tuple[Column, ...], after: str, new: str) -> tuple[Column, ...]:
    i = [c.name for c in columns].index(after)
    return columns[: i + 1] + (Column(new, "", "added by a later version"),) + columns[i + 1:]


@pytest.fixture(autouse=True)
def bb5583e_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    """The emissions.csv schema as the fixture's carbontop wrote it: the columns added since then
    (issue 12's sub-phase columns) are left out, so the fixture is "today's" file and the schema
    growing is simulated below; test_the_real_schema_upgrades_the_fixture uses today's."""
    header = (FIXTURE / schema.EMISSIONS).read_text().splitlines()[0].split(",")
    monkeypatch.setattr(schema, "EMISSIONS_COLUMNS",
                        tuple(c for c in schema.EMISSIONS_COLUMNS if c.name in header))
    assert schema.names(schema.EMISSIONS_COLUMNS) == tuple(header)


@pytest.fixture
def grown_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    """The next carbontop: one column more in each file (two in the middle, one at the end)."""
    monkeypatch.setattr(schema, "EMISSIONS_COLUMNS",
                        insert_after(schema.EMISSIONS_COLUMNS, "workload", "workload_env"))
    monkeypatch.setattr(schema, "GPU_LOG_COLUMNS",
                        schema.GPU_LOG_COLUMNS + (Column("phase_detail", "", "sub-phase"),))
    monkeypatch.setattr(schema, "TOTAL_SUMMARY_EXTRA",
                        insert_after(schema.TOTAL_SUMMARY_EXTRA, "status", "sub_phase"))
    # CodeCarbon's part as the fixture has it (CodeCarbon 3.3.2), whatever is installed here.
    cc_part = (FIXTURE / "total_summary.csv").read_text().splitlines()[0].split(",")[:38]
    assert cc_part[0] == "timestamp" and cc_part[-1] == "wue"
    monkeypatch.setattr(schema, "codecarbon_columns", lambda: tuple(cc_part))


def report_json(directory: Path, capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    capsys.readouterr()
    assert main(["report", str(directory), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert isinstance(data, list)
    return data


def test_todays_files_are_appended_to_as_they_are(tmp_path: Path) -> None:
    out = todays_dir(tmp_path)
    before = {p.name: p.read_bytes() for p in out.glob("*.csv")}
    inode = os.stat(out / schema.EMISSIONS).st_ino
    store = ResultStore(out, notify=lambda m: None)
    store.emissions.append([{"run_id": "r3", "status": "finished"}])
    text = (out / schema.EMISSIONS).read_bytes()
    assert text.startswith(before[schema.EMISSIONS])
    assert text[len(before[schema.EMISSIONS]):].count(b"\n") == 1
    assert os.stat(out / schema.EMISSIONS).st_ino == inode
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == sorted(before)


def test_an_earlier_carbontops_files_are_upgraded_in_place(
        tmp_path: Path, grown_schema: None, capsys: pytest.CaptureFixture[str]) -> None:
    out = fixture_dir(tmp_path)
    report_before = report_json(out, capsys)
    original = {name: (FIXTURE / name).read_text() for name in
                (schema.GPU_LOG, schema.EMISSIONS, schema.TOTAL_SUMMARY)}
    notices: list[str] = []
    store = ResultStore(out, notify=notices.append)
    assert store.paths() == [out / schema.GPU_LOG, out / schema.EMISSIONS,
                             out / schema.TOTAL_SUMMARY]
    store.gpu_log.append([{"timestamp": "2026-12-02T04:00:00+00:00", "run_id": "r3",
                           "phase_detail": "epoch 1"}])
    store.emissions.append([{"run_id": "r3", "status": "finished", "workload": "w",
                             "start_time": "2026-12-02T04:00:00+00:00", "total_energy_kwh": 1e-6,
                             "workload_env": "conda"}])
    store.total_summary.append([{"run_id": "r3", "status": "finished", "sub_phase": "x"}])

    # gpu_log.csv: the column added at the end. Byte for byte: every old line, then one comma.
    old_lines = original[schema.GPU_LOG].splitlines(keepends=True)
    expected = old_lines[0].replace("\n", ",phase_detail\n") + "".join(
        line.replace("\n", ",\n") for line in old_lines[1:])
    gpu_text = (out / schema.GPU_LOG).read_text()
    assert gpu_text.startswith(expected)
    assert gpu_text[len(expected):] == ("2026-12-02T04:00:00+00:00,,,,r3,,,,,,,,,,epoch 1\n")
    assert len(old_lines) == 11  # header and 10 samples, all kept

    # emissions.csv: the new column after `workload` (the 12th column), and those added since
    # the fixture at the end; every old cell kept.
    old = parse(original[schema.EMISSIONS])
    new = parse((out / schema.EMISSIONS).read_text())
    added = list(ADDED_SINCE_FIXTURE)
    assert old[0][11] == "workload"
    assert new[0] == old[0][:12] + ["workload_env"] + old[0][12:] + added
    assert len(new) == len(old) + 1 == 4
    for old_row, new_row in zip(old[1:], new[1:3], strict=True):
        assert new_row == old_row[:12] + [""] + old_row[12:] + [""] * len(added)
    assert new[2][11] == 'command: python -c import time; print("a,b \\"q\\""); time.sleep(1.2)'
    assert new[3][new[0].index("workload_env")] == "conda"
    assert new[3][new[0].index("run_id")] == "r3"

    # total_summary.csv: after `status`, which follows CodeCarbon's 38 columns.
    old = parse(original[schema.TOTAL_SUMMARY])
    new = parse((out / schema.TOTAL_SUMMARY).read_text())
    assert old[0][38] == "status"
    assert new[0] == old[0][:39] + ["sub_phase"] + old[0][39:]
    for old_row, new_row in zip(old[1:], new[1:3], strict=True):
        assert new_row == old_row[:39] + [""] + old_row[39:]
    assert new[3][39] == "x"

    # The originals are kept, byte for byte, and named to the user; no temporary file is left.
    for name, text in original.items():
        assert (out / f"{name}.pre-upgrade.bak").read_text() == text
        assert any(f"{out / name} upgraded in place" in n and f"{name}.pre-upgrade.bak" in n
                   for n in notices), notices
    assert not list(out.glob(".*.tmp"))
    assert not list(out.glob("*carbontop-2*"))

    # carbontop report reads the upgraded file: the old sessions as before, and the new one.
    after = report_json(out, capsys)
    assert {str(s["run_id"]) for s in report_before} == RUN_IDS
    assert [s for s in after if s["run_id"] != "r3"] == report_before
    assert [s["run_id"] for s in after if s["run_id"] == "r3"] == ["r3"]


def test_the_upgrade_happens_once(tmp_path: Path, grown_schema: None) -> None:
    out = fixture_dir(tmp_path)
    ResultStore(out, notify=lambda m: None).emissions.append([{"run_id": "r3"}])
    inode = os.stat(out / schema.EMISSIONS).st_ino
    ResultStore(out, notify=lambda m: None).emissions.append([{"run_id": "r4"}])
    assert os.stat(out / schema.EMISSIONS).st_ino == inode
    assert [r[6] for r in parse((out / schema.EMISSIONS).read_text())[1:]] == [
        "d5ad0a6b-d699-4514-a6ff-c8e75c28a8f4", "97488f99-0b3c-40b0-bae7-9b0f71a0b881", "r3", "r4"]
    assert not (out / f"{schema.EMISSIONS}.pre-upgrade-2.bak").exists()


def test_foreign_files_are_never_touched(tmp_path: Path) -> None:
    cc_header = (FIXTURE / "total_summary.csv").read_text().splitlines()[0].split(",")[:38]
    files = {
        # CodeCarbon's own emissions.csv, in the same directory.
        schema.EMISSIONS: ",".join(cc_header) + "\n" + "2026," * 37 + "x\n",
        # The original script's gpu_log.csv: its four columns, no run_id.
        schema.GPU_LOG: "timestamp,gpu_power_w,gpu_energy_kwh,gpu_co2_kg\n2025,1.0,2.0,3.0\n",
        # The original script's total_summary.csv: CodeCarbon's columns only.
        schema.TOTAL_SUMMARY: ",".join(cc_header) + "\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    notices: list[str] = []
    store = ResultStore(tmp_path, notify=notices.append)
    for appender in (store.gpu_log, store.emissions, store.total_summary):
        appender.append([{"run_id": "r1"}])
    for name, text in files.items():
        assert (tmp_path / name).read_text() == text
        stem, suffix = name.rsplit(".", 1)
        beside = parse((tmp_path / f"{stem}.carbontop-2.{suffix}").read_text())
        assert len(beside) == 2 and "r1" in beside[1]
    assert sum("other columns than carbontop's" in n for n in notices) == 3
    assert not list(tmp_path.glob("*.bak")) and not list(tmp_path.glob(".*.tmp"))


OLD = ("timestamp", "v", "run_id", "text")
NEW = ("timestamp", "v", "extra", "run_id", "text")
IDENTITY = ("timestamp", "run_id")
OLD_TEXT = "timestamp,v,run_id,text\n2025,1,r1,\"a,b\"\n2025,2,r1,'=1+1\n"


def test_rules_for_what_is_an_earlier_carbontops_header() -> None:
    assert classify(OLD, NEW, IDENTITY).verdict is Verdict.UPGRADE
    assert classify(OLD, NEW, IDENTITY).columns == NEW
    assert classify(NEW, OLD, IDENTITY) == classify(NEW, NEW, IDENTITY)  # newer: append as is
    assert classify(NEW, OLD, IDENTITY).verdict is Verdict.APPEND
    assert classify(("v", "timestamp", "run_id", "text"), NEW, IDENTITY).verdict is Verdict.FOREIGN
    assert classify(("timestamp", "v", "text"), NEW, IDENTITY).verdict is Verdict.FOREIGN
    assert classify(("timestamp", "v", "v", "run_id"), NEW, IDENTITY).verdict is Verdict.FOREIGN
    assert classify(("timestamp", "", "run_id"), NEW, IDENTITY).verdict is Verdict.FOREIGN
    assert classify(OLD, NEW, None).verdict is Verdict.FOREIGN  # no identity: exact header only
    gone = ("timestamp", "gone", "v", "run_id", "text")
    assert classify(gone, NEW, IDENTITY).columns == NEW + ("gone",)


@pytest.mark.parametrize("identity", [schema.GPU_LOG_IDENTITY, schema.EMISSIONS_IDENTITY,
                                      schema.TOTAL_SUMMARY_IDENTITY])
def test_identity_columns_stay_in_the_schema(identity: tuple[str, ...]) -> None:
    current = {schema.GPU_LOG_IDENTITY: schema.names(schema.GPU_LOG_COLUMNS),
               schema.EMISSIONS_IDENTITY: schema.names(schema.EMISSIONS_COLUMNS),
               schema.TOTAL_SUMMARY_IDENTITY: schema.total_summary_columns()}[identity]
    assert set(identity) <= set(current)


def test_a_column_the_schema_dropped_is_kept_at_the_end(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("timestamp,gone,v,run_id,text\n2025,kept,1,r1,t\n")
    CsvAppender(tmp_path, "x.csv", NEW, identity=IDENTITY).append(
        [{"timestamp": "2026", "v": 2, "run_id": "r2", "text": "u", "gone": "ignored"}])
    assert path.read_text() == ("timestamp,v,extra,run_id,text,gone\n"
                                "2025,1,,r1,t,kept\n"
                                "2026,2,,r2,u,ignored\n")


def test_a_newer_carbontops_file_is_appended_to_under_its_header(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("timestamp,v,extra,run_id,text\n2025,1,e,r1,t\n")
    inode = os.stat(path).st_ino
    CsvAppender(tmp_path, "x.csv", OLD, identity=IDENTITY).append(
        [{"timestamp": "2026", "v": 2, "run_id": "r2", "text": "u"}])
    assert path.read_text() == "timestamp,v,extra,run_id,text\n2025,1,e,r1,t\n2026,2,,r2,u\n"
    assert os.stat(path).st_ino == inode and not list(tmp_path.glob("*.bak"))


def test_cells_and_bytes_come_through_exactly(tmp_path: Path) -> None:
    old = CsvAppender(tmp_path, "x.csv", OLD, identity=IDENTITY)
    odd = [{"timestamp": "2025", "v": 1.5, "run_id": "r1", "text": 'two\nlines, "quoted"'},
           {"timestamp": "2025", "v": None, "run_id": "r1", "text": "=cmd|' /C calc'!A0"},
           {"timestamp": "2025", "v": -0.0, "run_id": "r1", "text": "caf\udcc3"}]
    old.append(odd)
    raw = (tmp_path / "x.csv").read_bytes()
    assert b"caf\\udcc3" in raw  # today's writer escapes what is not UTF-8
    (tmp_path / "x.csv").write_bytes(raw + b"2025,2,r1,latin-1 \xe9\n")  # a foreign editor's byte
    CsvAppender(tmp_path, "x.csv", NEW, identity=IDENTITY).append([{"run_id": "r2"}])
    assert (tmp_path / "x.csv").read_bytes() == (
        b'timestamp,v,extra,run_id,text\n'
        b'2025,1.5,,r1,"two\nlines, ""quoted"""\n'
        b"2025,,,r1,'=cmd|' /C calc'!A0\n"
        b'2025,-0.0,,r1,caf\\udcc3\n'
        b'2025,2,,r1,latin-1 \xe9\n'
        b',,,r2,\n')


@pytest.mark.parametrize("failing", ["replace", "fsync"])
def test_an_interrupted_upgrade_leaves_the_original_intact(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str) -> None:
    path = tmp_path / "x.csv"
    path.write_text(OLD_TEXT)
    (tmp_path / ".x.csv.upgrade.tmp").write_text("left by a crash\n")

    def disk_full(*args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, failing, disk_full)
    notices: list[str] = []
    app = CsvAppender(tmp_path, "x.csv", NEW, notices.append, identity=IDENTITY)
    assert app.append([{"timestamp": "2026", "v": 3, "run_id": "r2", "text": "new"}]) is False
    monkeypatch.undo()
    assert path.read_text() == OLD_TEXT
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.csv"]
    assert app.pending_rows == 1
    assert any("cannot write" in n and "No space left" in n and "kept in memory" in n
               for n in notices), notices
    # Once the disk has room again, the next flush upgrades and writes the kept row.
    assert app.flush() is True
    assert path.read_text() == ("timestamp,v,extra,run_id,text\n2025,1,,r1,\"a,b\"\n"
                                "2025,2,,r1,'=1+1\n2026,3,,r2,new\n")
    assert (tmp_path / "x.csv.pre-upgrade.bak").read_text() == OLD_TEXT


def test_a_row_that_does_not_fit_its_header_stops_the_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    torn = OLD_TEXT + "2025,3,r1,t2025,4,r1,extra-cell\n"  # a torn write, then the next row
    path.write_text(torn)
    notices: list[str] = []
    app = CsvAppender(tmp_path, "x.csv", NEW, notices.append, identity=IDENTITY)
    assert app.append([{"run_id": "r2"}]) is True
    assert path.read_text() == torn
    assert (tmp_path / "x.carbontop-2.csv").read_text() == "timestamp,v,extra,run_id,text\n,,,r2,\n"
    assert any("line 4" in n and "7 cells" in n and "left untouched" in n for n in notices)
    assert not list(tmp_path.glob("*.bak")) and not list(tmp_path.glob(".*.tmp"))


def _old_writer(directory: str, rows: int) -> None:
    app = CsvAppender(Path(directory), "x.csv", OLD, identity=IDENTITY)
    for i in range(rows):
        app.append([{"timestamp": "2026", "v": i, "run_id": "old", "text": "o"}])
        time.sleep(0.001)


def _new_writer(directory: str, rows: int) -> None:
    app = CsvAppender(Path(directory), "x.csv", NEW, identity=IDENTITY)
    for i in range(rows):
        app.append([{"timestamp": "2026", "v": i, "extra": "e", "run_id": "new", "text": "n"}])


def test_a_writer_busy_during_the_upgrade_loses_no_row(tmp_path: Path) -> None:
    history = 40_000  # long enough that the upgrade takes a while
    path = tmp_path / "x.csv"
    path.write_text("timestamp,v,run_id,text\n" + "2025,1,past,p\n" * history)
    ctx = multiprocessing.get_context("spawn")
    old = ctx.Process(target=_old_writer, args=(str(tmp_path), 1500))
    old.start()
    deadline = time.monotonic() + 60
    while path.stat().st_size < len(b"timestamp,v,run_id,text\n") + 14 * history + 200:
        assert time.monotonic() < deadline, "the old writer never started"
        time.sleep(0.01)
    new = ctx.Process(target=_new_writer, args=(str(tmp_path), 50))
    new.start()
    for p in (old, new):
        p.join(120)
        assert p.exitcode == 0
    rows = parse(path.read_text())
    assert rows[0] == list(NEW)
    assert [r for r in rows[1:history + 1]] == [["2025", "1", "", "past", "p"]] * history
    old_rows = [int(r[1]) for r in rows if r[3] == "old"]
    new_rows = [int(r[1]) for r in rows if r[3] == "new"]
    assert sorted(old_rows) == list(range(1500)) and old_rows == sorted(old_rows)
    assert new_rows == list(range(50))
    assert len(rows) == 1 + history + 1500 + 50
    # The upgrade really happened while the old writer was writing: some of its rows were in
    # the original before it, and some follow the new writer's first row after it.
    backup = parse((tmp_path / "x.csv.pre-upgrade.bak").read_text())
    assert any(r[2] == "old" for r in backup)
    first_new = next(i for i, r in enumerate(rows) if r[3] == "new")
    assert any(r[3] == "old" for r in rows[first_new:])


def test_without_hard_links_the_original_is_copied(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "x.csv"
    path.write_text(OLD_TEXT)
    path.chmod(0o640)
    (tmp_path / "x.csv.pre-upgrade.bak").write_text("an earlier upgrade's backup\n")

    def no_links(*args: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")  # what vfat answers

    monkeypatch.setattr(os, "link", no_links)
    assert CsvAppender(tmp_path, "x.csv", NEW, identity=IDENTITY).append([{"run_id": "r2"}])
    assert (tmp_path / "x.csv.pre-upgrade.bak").read_text() == "an earlier upgrade's backup\n"
    backup = tmp_path / "x.csv.pre-upgrade-2.bak"
    assert backup.read_text() == OLD_TEXT
    assert backup.stat().st_mode & 0o777 == 0o640 == path.stat().st_mode & 0o777
    assert path.read_text().startswith("timestamp,v,extra,run_id,text\n2025,1,,r1,\"a,b\"\n")


def test_a_file_csv_cannot_read_is_not_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    # A quote torn open: the rest of the file becomes one cell, beyond csv's field size limit.
    damaged = OLD_TEXT.encode() + b'2025,3,r1,"torn\n' + b"2025,4,r1,x\n" * 20_000
    path.write_bytes(damaged)
    notices: list[str] = []
    app = CsvAppender(tmp_path, "x.csv", NEW, notices.append, identity=IDENTITY)
    assert app.append([{"run_id": "r2"}]) is True
    assert path.read_bytes() == damaged
    assert app.path == tmp_path / "x.carbontop-2.csv"
    assert any("cannot be read as CSV" in n and "left untouched" in n for n in notices), notices


def test_the_real_schema_upgrades_the_fixture(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Today's emissions.csv has the sub-phase columns: bb5583e's file gets them, empty, in place,
    every old cell kept, and report reads old and new rows alike."""
    monkeypatch.undo()  # today's schema
    out = fixture_dir(tmp_path)
    old = parse((FIXTURE / schema.EMISSIONS).read_text())
    store = ResultStore(out, notify=lambda m: None)
    store.emissions.append([{"run_id": "r3", "status": "finished", "workload": "llm-generate",
                             "start_time": "2026-12-02T04:00:00+00:00", "unit": "token",
                             "decode_energy_per_unit_j": 0.25, "prefill_energy_per_unit_j": 2.0}])
    new = parse((out / schema.EMISSIONS).read_text())
    assert new[0] == list(schema.names(schema.EMISSIONS_COLUMNS))
    assert "decode_energy_per_unit_j" in new[0] and "decode_energy_per_unit_j" not in old[0]
    for old_row, new_row in zip(old[1:], new[1:len(old)], strict=True):
        assert {name: new_row[new[0].index(name)] for name in old[0]} == dict(
            zip(old[0], old_row, strict=True))
        assert new_row[new[0].index("decode_energy_per_unit_j")] == ""
    rows = {r["run_id"]: r for r in report_json(out, capsys)}
    assert set(rows) >= RUN_IDS
    assert rows["r3"]["decode_energy_per_unit_j"] == 0.25
