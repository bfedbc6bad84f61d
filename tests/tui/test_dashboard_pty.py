"""``carbontop`` (the dashboard) as a user starts it: the real command on a pseudo-terminal.

The Pilot tests drive the app object; these go through ``carbontop.cli.main`` and
``run_dashboard``: the first frame, the engine built after it, bad input found while building
(one line after the app has left the screen, exit 2), and a clean quit.
"""

from __future__ import annotations

import csv
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks._common import PtyProcess
from benchmarks.startup import MENU_MARKER as MENU
from benchmarks.startup import READY_MARKER as READY

STARTING = "opening the power source"  # the status line while the engine is being built


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    import os

    locks = tmp_path / "locks"
    locks.mkdir()
    environment = dict(os.environ)
    environment.update(CARBONTOP_LOCK_DIR=str(locks), CARBONTOP_LOG_FILE=str(tmp_path / "log"),
                       CARBONTOP_COUNTRY="FRA")
    yield environment


def carbontop(*args: str) -> list[str]:
    return [sys.executable, "-m", "carbontop", *args]


def test_starts_draws_opens_and_quits(tmp_path: Path, env: dict[str, str]) -> None:
    out = tmp_path / "out"
    term = PtyProcess(carbontop("--demo", "--output-dir", str(out)), env=env,
                      markers=[MENU, STARTING, READY], cols=100, rows=30, keep_text=True)
    try:
        assert term.wait_marker(READY, 60) is not None, term.text[-2000:]
        # The menu and "opening…" were on screen before the source and CodeCarbon were open.
        assert term.marker_s[MENU] < term.marker_s[READY]
        assert term.marker_s[STARTING] < term.marker_s[READY]
        term.send(b"q")
        code = term.proc.wait(30)
    finally:
        term.close()
    assert code == 0, term.text[-2000:]
    assert "Traceback" not in term.text
    # Idle only, no session: nothing was measured for a session, so no summary rows.
    summary = out / "total_summary.csv"
    assert not summary.exists() or len(list(csv.DictReader(summary.open()))) == 0


def test_bad_input_found_after_the_first_frame_is_one_line_and_exit_2(
        tmp_path: Path, env: dict[str, str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        term = PtyProcess(carbontop("--demo", "--output-dir", str(tmp_path / "out"),
                                    "--prometheus-host", "127.0.0.1", "--prometheus-port", port),
                          env=env, cols=100, rows=30, keep_text=True)
        try:
            code = term.proc.wait(60)
        finally:
            term.close()
    assert code == 2, term.text[-2000:]
    # The screen's last frame has no newlines (cursor moves); the error follows it, on its own.
    said = term.text.rstrip()
    error = said[said.rindex("carbontop: "):]
    assert error.startswith(f"carbontop: cannot serve Prometheus metrics on 127.0.0.1:{port}")
    assert "\n" not in error and error.endswith("--prometheus-host"), error
    assert "Traceback" not in term.text
