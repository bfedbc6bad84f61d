"""The progress protocol (carbontop.progress): its lines, its parser, its writer on Python 3.8."""

from __future__ import annotations

import glob
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from carbontop import progress
from carbontop.progress import ProgressLine, encode_line, parse_line

ROOT = Path(__file__).resolve().parents[2]


def test_lines_as_written() -> None:
    line = encode_line(phase="measure", t_s=12345.6789014)
    assert line == "carbontop:phase=measure t=12345.678901"
    assert encode_line(units=32, unit="sample") == "carbontop:units=32 unit=sample"
    assert encode_line(units=2.5, t_s=1.0) == "carbontop:units=2.5 t=1.000000"


@pytest.mark.parametrize(("line", "parsed"), [
    ("carbontop:phase=measure t=12345.678901",
     ProgressLine(phase="measuring", t_s=12345.678901)),
    ("carbontop:phase=warmup", ProgressLine(phase="warm-up")),  # no stamp: None
    ("  carbontop:phase=WARM-UP  \r", ProgressLine(phase="warm-up")),
    ("carbontop:phase=loading", ProgressLine(phase="loading")),
    ("carbontop:units=32 unit=sample", ProgressLine(units=32.0, unit="sample")),
    ("carbontop:units=1e3 t=7", ProgressLine(units=1000.0, t_s=7.0)),
    ("epoch 1 loss 0.3", None),  # the program's own output
    ("", None),
])
def test_parse_line(line: str, parsed: ProgressLine | None) -> None:
    assert parse_line(line) == parsed


@pytest.mark.parametrize(("line", "problem"), [
    ("carbontop:phase=train", "unknown phase 'train': use one of loading, warmup, measure"),
    ("carbontop:units=many", "units='many' is not a number"),
    ("carbontop:units=nan", "units='nan' is not a finite number"),
    ("carbontop:phase=measure t=soon", "t='soon' is not a number"),
    ("carbontop:hello", "a progress line needs phase=, subphase= or units="),
    ("carbontop:subphase=pre/fill", "sub-phase 'pre/fill' is not a name: use up to 32 letters, "
     "digits, '_', '-' or '.' (e.g. prefill, decode)"),
])
def test_a_malformed_line_names_its_problem(line: str, problem: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_line(line)
    assert str(caught.value) == problem


@pytest.fixture
def progress_pipe(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    read_fd, write_fd = os.pipe()
    monkeypatch.setenv(progress.PROGRESS_FD_ENV, str(write_fd))
    yield read_fd
    os.close(read_fd)
    os.close(write_fd)


def test_the_writer_stamps_each_line_on_the_session_clock(progress_pipe: int) -> None:
    before = time.monotonic()
    progress.phase("measure")
    progress.units(32, "sample")
    after = time.monotonic()
    lines = os.read(progress_pipe, 4096).decode().splitlines()
    parsed = [parse_line(line) for line in lines]
    assert [(p.phase, p.units, p.unit) for p in parsed if p] == [
        ("measuring", None, None), (None, 32.0, "sample")]
    for p in parsed:
        assert p is not None and p.t_s is not None
        assert before - 1e-6 <= p.t_s <= after + 1e-6  # 6 decimals: rounding by 0.5 us


def test_without_carbontop_the_calls_do_nothing(monkeypatch: pytest.MonkeyPatch,
                                                capfd: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv(progress.PROGRESS_FD_ENV, raising=False)
    assert progress.phase("measure") is None
    assert progress.units(1) is None
    monkeypatch.setenv(progress.PROGRESS_FD_ENV, "987")  # a closed descriptor: still no error
    assert progress.phase("measure") is None
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # nothing written anywhere the program would see


def python38() -> str | None:
    """A working Python 3.8 interpreter (a program's Python may be older than carbontop's)."""
    candidates = [os.environ.get("CARBONTOP_TEST_PYTHON38", ""), "python3.8",
                  *sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.8*/bin/python3.8")))]
    for candidate in filter(None, candidates):
        try:
            done = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2])"],
                                  capture_output=True, text=True, timeout=30)
        except OSError:
            continue
        if done.returncode == 0 and done.stdout.strip() == "(3, 8)":
            return candidate
    return None


WRITER = """
import os, sys, time
r, w = os.pipe()
os.environ["CARBONTOP_PROGRESS_FD"] = str(w)
from carbontop import progress
before = time.monotonic()
progress.phase("warmup")
progress.units(3, "image")
after = time.monotonic()
os.close(w)
sys.stdout.write(os.read(r, 4096).decode())
print(before, after)
print(sorted(name for name in sys.modules if name.startswith("carbontop")))
"""


def test_the_writer_runs_on_python_3_8() -> None:
    interpreter = python38()
    if interpreter is None:
        pytest.skip("no Python 3.8 interpreter here (set CARBONTOP_TEST_PYTHON38 to one)")
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([interpreter, "-c", WRITER], capture_output=True, text=True,
                          env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    *lines, stamps, modules = done.stdout.splitlines()
    before, after = map(float, stamps.split())
    parsed = [parse_line(line) for line in lines]
    assert [(p.phase, p.units, p.unit) for p in parsed if p] == [
        ("warm-up", None, None), (None, 3.0, "image")]
    assert all(p and p.t_s is not None and before - 1e-6 <= p.t_s <= after + 1e-6
               for p in parsed)
    # stdlib only: importing it brings no other part of carbontop than the clock
    assert modules == "['carbontop', 'carbontop.clock', 'carbontop.progress']"


def test_the_child_uses_the_same_protocol() -> None:
    """One definition: the workload child reads with carbontop.progress; it keeps no copy."""
    from carbontop.child import command, progress_reader

    assert progress_reader.parse_line is progress.parse_line
    assert command.PROGRESS_FD_ENV is progress.PROGRESS_FD_ENV
    others = [path for path in (ROOT / "carbontop").rglob("*.py") if path.name != "progress.py"]
    others += list((ROOT / "workloads").rglob("*.py"))
    assert len(others) > 40
    copies = re.compile(r"""["']carbontop:(phase|subphase|units)=|startswith\(["']carbontop:"""
                        r"""|environ\b.*CARBONTOP_PROGRESS_FD""")
    for path in others:  # nobody else writes, parses or finds protocol lines
        assert not copies.search(path.read_text()), path
    assert copies.search("if text.startswith('carbontop:'):")  # what a copy would look like
