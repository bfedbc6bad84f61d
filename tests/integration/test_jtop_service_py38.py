"""The jtop service under another Python than carbontop's client (JetPack 5).

On JetPack 5 the service runs in the system's Python 3.8 while carbontop (CodeCarbon 3) needs
3.10 or newer. Here the real service runs under ``~/.pyenv/versions/3.8.18`` (with the same
jetson-stats as this venv, installed there by .ci/run) on the emulated Orin NX, and carbontop's
JtopSource reads it from this interpreter. Skipped, with the reason, where that Python or its
jetson-stats is absent.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from carbontop.model import BoardBasis, Scope
from carbontop.sources.jtop import JtopSource
from carbontop.sources.jtop_connect import jetson_stats_version
from tests.jtop_harness import JtopService, skip_reason
from tests.recorder import Recorder

pytestmark = pytest.mark.jtop_service

PY38 = Path.home() / ".pyenv" / "versions" / "3.8.18" / "bin" / "python"
INTERVAL = 0.25


def py38_jetson_stats() -> str | None:
    if not PY38.exists():
        return None
    done = subprocess.run(
        [str(PY38), "-c", "import importlib.metadata as m; print(m.version('jetson-stats'))"],
        capture_output=True, text=True, env={k: v for k, v in os.environ.items()
                                             if k != "PYTHONPATH"})
    return done.stdout.strip() if done.returncode == 0 else None


def why_skip() -> str | None:
    reason = skip_reason()
    if reason:
        return reason
    if not PY38.exists():
        return f"no Python 3.8 at {PY38}"
    version = py38_jetson_stats()
    if version != jetson_stats_version():
        return (f"jetson-stats {jetson_stats_version()} is not installed in {PY38} (found "
                f"{version}): {PY38} -m pip install 'jetson-stats=={jetson_stats_version()}'")
    return None


def test_a_service_in_python_38_serves_a_client_in_this_python() -> None:
    reason = why_skip()
    if reason:
        pytest.skip(reason)
    assert sys.version_info >= (3, 10)
    with JtopService("orin-nx", python=str(PY38)) as service:
        assert "serving under Python 3.8.18" in service.log_text()
        source = JtopSource(INTERVAL, client_factory=service.client_factory)
        rec = Recorder()
        info = source.open()
        try:
            assert info.kind == "jtop" and info.jetson_stats_version == jetson_stats_version()
            assert (info.gpu_rail, info.gpu_scope) == ("VDD_CPU_GPU_CV",
                                                       Scope.CPU_GPU_CV_SHARED)
            assert (info.board_basis, info.board_rail) == (BoardBasis.INPUT_RAIL, "VDD_IN")
            source.start(rec)
            # 5000 mV x 1234 mA = 6170 mW, 5100 mV x 2000 mA = 10200 mW, read through 3.8.
            assert service.set_rail_raw("VDD_CPU_GPU_CV", 5000, 1234) == 6170
            assert service.set_rail_raw("VDD_IN", 5100, 2000) == 10200
            rec.wait_sample(lambda s: s.gpu_w == 6.17 and s.board_w == 10.2)
            rec.wait_for(lambda r: len(r.samples) >= 4)
        finally:
            source.close()
    assert not rec.statuses
