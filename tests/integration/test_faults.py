"""Nothing lost: real signals to a real carbontop, a real SIGKILL, a failing child."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from carbontop.results import schema
from tests.waiting import wait_until


def rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def start(out: Path, *args: str, lock_dir: Path | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, "CARBONTOP_LOG_FILE": str(out / "carbontop.log"),
           "CARBONTOP_CONFIG": str(out / "none.toml"),
           "CARBONTOP_LOCK_DIR": str(lock_dir or out)}
    return subprocess.Popen(
        [sys.executable, "-m", "carbontop.cli", "run", *args, "--demo", "--interval", "0.2",
         "--output-dir", str(out)], cwd=out, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)


def wait_for_measuring(out: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(r["phase"] == "measuring" for r in rows(out / schema.GPU_LOG)):
            return
        time.sleep(0.2)
    raise AssertionError("the session never reached its measured window")


def children_of(pid: int) -> list[int]:
    try:
        return [c.pid for c in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_signal_ends_session_as_interrupted(signum: int, tmp_path: Path) -> None:
    proc = start(tmp_path, "idle", "--duration", "60")
    wait_for_measuring(tmp_path)
    kids = children_of(proc.pid)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signum, err
    emissions = rows(tmp_path / schema.EMISSIONS)
    assert [r["status"] for r in emissions] == ["interrupted"]
    assert rows(tmp_path / schema.TOTAL_SUMMARY)[0]["status"] == "interrupted"
    assert len(rows(tmp_path / schema.GPU_LOG)) > 3
    time.sleep(0.5)
    assert not [k for k in kids if psutil.pid_exists(k) and
                psutil.Process(k).status() != psutil.STATUS_ZOMBIE]


def test_sigkill_keeps_samples_and_next_start_recovers(tmp_path: Path) -> None:
    proc = start(tmp_path, "idle", "--duration", "60")
    wait_for_measuring(tmp_path)
    # Until the journal holds CodeCarbon's first figures (its start takes a few seconds).
    def journal_has_cpu() -> bool:
        journals = list((tmp_path / ".carbontop").glob("session-*.json"))
        progress = json.loads(journals[0].read_text()).get("progress", {}) if journals else {}
        return bool((progress.get("cpu_kwh") or 0) > 0)

    wait_until(journal_has_cpu, 60, "CodeCarbon's first figures in the session's journal",
               poll_s=0.2)
    kids = children_of(proc.pid)
    assert kids, "the workload child should be running"
    before = len(rows(tmp_path / schema.GPU_LOG))
    proc.kill()
    proc.wait(10)
    assert len(rows(tmp_path / schema.GPU_LOG)) >= before > 3  # already on disk
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(psutil.pid_exists(k) for k in kids):
        time.sleep(0.1)
    assert not any(psutil.pid_exists(k) for k in kids), "the workload child lived on"
    assert rows(tmp_path / schema.EMISSIONS) == []
    # The next carbontop on that directory writes the unfinished session's summary.
    again = start(tmp_path, "idle", "--duration", "1")
    _, err = again.communicate(timeout=90)
    assert again.returncode == 0, err
    statuses = [r["status"] for r in rows(tmp_path / schema.EMISSIONS)]
    assert statuses == ["recovered", "finished"]
    recovered = rows(tmp_path / schema.EMISSIONS)[0]
    assert float(recovered["gpu_energy_kwh"]) > 0
    assert float(recovered["cpu_energy_kwh"]) > 0


def test_failing_workload_is_recorded_as_failed(tmp_path: Path) -> None:
    plugin = Path(__file__).parent.parent / "data" / "plugin_workloads.py"
    proc = start(tmp_path, "failing", "--workload-file", str(plugin), "--duration", "5")
    _, err = proc.communicate(timeout=90)
    assert proc.returncode == 1, err
    row = rows(tmp_path / schema.EMISSIONS)[0]
    assert row["status"] == "failed"
    assert row["failure_reason"]


def test_second_session_on_the_same_board_is_refused(tmp_path: Path) -> None:
    first = start(tmp_path, "idle", "--duration", "60")
    try:
        wait_for_measuring(tmp_path)
        other = tmp_path / "other"
        other.mkdir()
        second = start(other, "idle", "--duration", "1", lock_dir=tmp_path)
        _, err = second.communicate(timeout=60)
        assert second.returncode == 2
        assert "another carbontop session" in err
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=30)
