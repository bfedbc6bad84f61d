"""A plugin written against ``workloads.base`` (the plugin API's old home) under `carbontop run`:
it is measured as before, and both the terminal and the workload's log say what to change."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from carbontop.workload import LEGACY_MESSAGE

LEGACY = Path(__file__).resolve().parents[1] / "data" / "legacy_plugin.py"


def test_an_old_style_plugin_runs_with_one_visible_warning(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONWARNINGS"}
    env.update(CARBONTOP_LOG_FILE=str(tmp_path / "carbontop.log"),
               CARBONTOP_CONFIG=str(tmp_path / "no-config.toml"))
    proc = subprocess.run(
        [sys.executable, "-m", "carbontop.cli", "run", "legacy", "--workload-file", str(LEGACY),
         "--gpu-source", "none", "--duration", "5", "--output-dir", str(tmp_path), "--json"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["status"] == "finished" and summary["workload"] == "legacy"
    assert summary["units"] == 6  # its three steps of two units: it ran as it always did
    line = LEGACY.read_text().splitlines().index("from workloads.base import Step, Workload") + 1
    warning = f"{LEGACY}:{line}: FutureWarning: {LEGACY_MESSAGE}"
    # on the terminal, once, before the session (its status lines follow, with --json on
    # stderr): where, what and the fix, then the line itself
    lines = proc.stderr.splitlines()
    assert lines[:2] == [warning, "  from workloads.base import Step, Workload"]
    assert proc.stderr.count("FutureWarning") == 1
    # and in the workload's log, from the child that imported it
    log = next((tmp_path / ".carbontop" / "logs").glob("workload-*.log")).read_text()
    assert log.count(warning) == 1
