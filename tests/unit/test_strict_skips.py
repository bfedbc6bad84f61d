"""``CARBONTOP_STRICT_SKIPS=1`` (set by .ci/run) fails skips for want of root or Prometheus.

A throw-away test file with one skip of each kind runs in a child pytest with the plugin loaded,
with and without the flag; the child's exit status and its per-test outcomes are checked.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.jtop_harness import skip_reason
from tests.strict_skips import NEEDS_ROOT, NO_PROMETHEUS, STRICT_ENV

ROOT = Path(__file__).resolve().parents[2]

SKIPPING = f'''
import sys
import pytest

@pytest.mark.skipif(True, reason="the jtop service {NEEDS_ROOT} (it reads /fake_sys)")
def test_root_by_marker():
    pass

def test_prometheus_in_the_body():
    pytest.skip("{NO_PROMETHEUS} on PATH: apt-get install -y prometheus")

@pytest.fixture
def service():
    pytest.skip("the jtop service {NEEDS_ROOT}")

def test_root_by_fixture(service):
    pass

@pytest.mark.skipif(True, reason="no CUDA device here")
def test_gpu():
    pass

@pytest.mark.skipif(sys.version_info < (9, 0), reason="needs Python 9")
def test_old_python():
    pass

def test_passes():
    pass
'''


def run_child(tmp_path: Path, strict: bool) -> tuple[int, str]:
    (tmp_path / "test_skipping.py").write_text(SKIPPING)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop(STRICT_ENV, None)
    if strict:
        env[STRICT_ENV] = "1"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "tests.strict_skips",
         "-p", "no:cacheprovider", "-o", "addopts=", str(tmp_path / "test_skipping.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout + proc.stderr


def tally(output: str) -> dict[str, int]:
    """pytest -q's last line, e.g. '1 failed, 3 passed, 2 skipped, 1 error in 0.1s'."""
    last = output.strip().splitlines()[-1]
    return {word: int(n) for n, word in re.findall(r"(\d+) (\w+)", last)}


def test_without_the_flag_every_skip_stays_a_skip(tmp_path: Path) -> None:
    code, output = run_child(tmp_path, strict=False)
    assert code == 0, output
    assert tally(output) == {"passed": 1, "skipped": 5}, output
    assert "SKIPPED" in output and NO_PROMETHEUS in output  # -rs prints the reasons


@pytest.mark.skipif(os.geteuid() != 0, reason="strict skips apply only to a root run")
def test_as_root_the_flag_fails_root_and_prometheus_skips(tmp_path: Path) -> None:
    code, output = run_child(tmp_path, strict=True)
    assert code == 1, output
    # the marker and fixture skips fail in setup (errors), the body's skip fails the test
    assert tally(output) == {"failed": 1, "passed": 1, "skipped": 2, "errors": 2}, output
    assert "test_prometheus_in_the_body" in output and STRICT_ENV in output
    for kept in ("no CUDA device here", "needs Python 9"):
        assert kept in output


def test_not_root_the_flag_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    from tests import strict_skips

    monkeypatch.setenv(STRICT_ENV, "1")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert not strict_skips.strict()
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert strict_skips.strict()
    monkeypatch.setenv(STRICT_ENV, "0")
    assert not strict_skips.strict()


def test_the_harness_reasons_are_the_strict_ones() -> None:
    """The jtop service's skip reason, where it applies, is one the strict mode fails on."""
    from tests.strict_skips import ci_required

    assert ci_required(f"the jtop service {NEEDS_ROOT} (it reads /fake_sys)")
    assert not ci_required("no CUDA device here")
    reason = skip_reason()
    assert reason is None or ci_required(reason)


def test_ci_runs_the_readme_command_strictly() -> None:
    script = (ROOT / ".ci" / "run").read_text().splitlines()
    commands = [line for line in script if "pytest" in line and not line.startswith("#")]
    assert commands == [f"{STRICT_ENV}=1 python -m pytest -q -rs"]
    assert "apt-get install" in "\n".join(script) and "prometheus" in "\n".join(script)
    assert script[1].startswith("#") and "set -euo pipefail" in script
