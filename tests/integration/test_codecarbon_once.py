"""The real CodeCarbon tracker through a whole `carbontop run`: each reading counted once.

CodeCarbon's RAM figure is a constant power estimate, so its mean over the whole session and
over the measured window must be the same number: the reading that spans the session's end was
counted twice before (whole-session RAM came out about 1.4 % above the window's).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.integration.test_cli_run import carbontop

J_PER_KWH = 3.6e6


@pytest.mark.slow
def test_constant_ram_estimate_has_one_mean_over_session_and_window(tmp_path: Path) -> None:
    proc = carbontop("run", "idle", "--gpu-source", "none", "--duration", "5",
                     "--param", "warmup_s=1.5", "--output-dir", str(tmp_path), "--json",
                     cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    whole, window = summary["whole"], summary["window"]
    whole_s = whole["end_s"] - whole["start_s"]
    window_s = window["end_s"] - window["start_s"]
    ram_w_whole = whole["ram_kwh"] * J_PER_KWH / whole_s
    ram_w_window = window["ram_kwh"] * J_PER_KWH / window_s
    assert ram_w_whole == pytest.approx(ram_w_window, rel=2e-3)
    # CodeCarbon measures once a second: a session of S seconds spans at most ceil(S) + 1
    # readings (the first and the last in part), never one per window it belongs to.
    assert whole["cpu_ram_readings"] <= math.ceil(whole_s) + 1
    # With no GPU measured the total is CodeCarbon's CPU + RAM, exactly.
    assert whole["total_kwh"] == pytest.approx(whole["cpu_kwh"] + whole["ram_kwh"], rel=1e-12)
