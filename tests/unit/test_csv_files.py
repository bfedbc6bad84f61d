"""Appending CSV rows: never overwrite, never tear, never run a formula, never lose a row."""

from __future__ import annotations

import csv
import multiprocessing
from pathlib import Path

from carbontop.results.csv_files import CsvAppender, neutralise

COLUMNS = ("a", "b", "text")


def read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_appends_with_one_header(tmp_path: Path) -> None:
    first = CsvAppender(tmp_path, "x.csv", COLUMNS)
    first.append([{"a": 1, "b": 2.5, "text": "one"}])
    second = CsvAppender(tmp_path, "x.csv", COLUMNS)
    second.append([{"a": 2, "b": None, "text": "two"}])
    rows = read(tmp_path / "x.csv")
    assert [r["a"] for r in rows] == ["1", "2"]
    assert rows[1]["b"] == ""  # unmeasured is empty, never 0
    assert (tmp_path / "x.csv").read_text().count("a,b,text") == 1


def test_foreign_header_is_left_untouched(tmp_path: Path) -> None:
    foreign = tmp_path / "x.csv"
    foreign.write_text("timestamp,something_else\n2025,1\n")
    notices: list[str] = []
    app = CsvAppender(tmp_path, "x.csv", COLUMNS, notices.append)
    app.append([{"a": 1, "b": 2, "text": "t"}])
    assert foreign.read_text() == "timestamp,something_else\n2025,1\n"
    assert app.path == tmp_path / "x.carbontop-2.csv"
    assert read(app.path)[0]["a"] == "1"
    assert any("other columns" in n for n in notices)


def test_formulas_are_neutralised_numbers_are_not() -> None:
    assert neutralise("=HYPERLINK(\"x\")") == "'=HYPERLINK(\"x\")"
    assert neutralise("@SUM(A1)") == "'@SUM(A1)"
    assert neutralise("+cmd") == "'+cmd"
    assert neutralise("-5.5") == "-5.5"
    assert neutralise(-5.5) == "-5.5"
    assert neutralise(None) == ""


def test_unwritable_directory_keeps_rows_then_falls_back(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a regular file")
    notices: list[str] = []
    app = CsvAppender(blocker / "sub", "x.csv", COLUMNS, notices.append,
                      fallback_dir=tmp_path / "fallback")
    assert app.append([{"a": 1, "b": 1, "text": "kept"}]) is False
    assert app.pending_rows == 1
    target = app.flush_or_fallback()
    assert target == tmp_path / "fallback" / "x.csv"
    assert read(target)[0]["text"] == "kept"
    assert any("fallback" in n for n in notices)


def _writer(directory: str, worker: int) -> None:
    app = CsvAppender(Path(directory), "x.csv", COLUMNS)
    for i in range(200):
        app.append([{"a": worker, "b": i, "text": "x" * 500}])


def test_two_processes_never_interleave_rows(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), w)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    rows = read(tmp_path / "x.csv")
    assert len(rows) == 400
    assert all(r["text"] == "x" * 500 for r in rows)
    assert sorted(int(r["b"]) for r in rows if r["a"] == "0") == list(range(200))


def test_a_file_replaced_by_another_program_is_looked_at_again(tmp_path: Path) -> None:
    app = CsvAppender(tmp_path, "x.csv", COLUMNS)
    app.append([{"a": 1, "b": 1, "text": "first"}])
    # CodeCarbon renames a file it dislikes to .bak and writes its own under the name.
    (tmp_path / "x.csv").rename(tmp_path / "x.csv.bak")
    (tmp_path / "x.csv").write_text("timestamp,project_name\n2026,cc\n")
    app.append([{"a": 2, "b": 2, "text": "second"}])
    assert (tmp_path / "x.csv").read_text() == "timestamp,project_name\n2026,cc\n"
    assert read(tmp_path / "x.carbontop-2.csv")[0]["text"] == "second"
