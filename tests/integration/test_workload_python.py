"""`--workload-python`: the workload child in another interpreter (JetPack 5's Python 3.8).

The monitor runs here (carbontop's Python); the child runs under ``~/.pyenv/versions/3.8.18``
where this machine has it (CI builds it only where present; skipped with the reason elsewhere).
numpy for cpu-stress must come from that 3.8 interpreter, never from carbontop's venv.
"""

from __future__ import annotations

import csv
import fnmatch
import json
import os
import platform
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from carbontop.runner import WorkloadRunner
from carbontop.workload_python import ChildPath

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

PY38 = Path.home() / ".pyenv" / "versions" / "3.8.18" / "bin" / "python"
PY36 = Path.home() / ".pyenv" / "versions" / "3.6.15" / "bin" / "python"

needs_py38 = pytest.mark.skipif(not PY38.exists(), reason=f"no Python 3.8 at {PY38}")


def py38_has(module: str) -> bool:
    if not PY38.exists():
        return False
    found = subprocess.run([str(PY38), "-c", f"import {module}"], capture_output=True,
                           env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    return found.returncode == 0


def carbontop(*args: str, cwd: Path,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CARBONTOP_LOG_FILE": str(cwd / "carbontop.log"),
           "CARBONTOP_CONFIG": str(cwd / "no-config.toml"), **(env or {})}
    return subprocess.run([sys.executable, "-m", "carbontop.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def run_under_38(workload: str, tmp_path: Path, *params: str) -> dict[str, object]:
    proc = carbontop("run", workload, "--workload-python", str(PY38), "--gpu-source", "none",
                     "--duration", "1", "--param", "warmup_s=0", *params,
                     "--output-dir", str(tmp_path), "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert isinstance(summary, dict)
    return summary


@needs_py38
def test_idle_runs_under_python_38(tmp_path: Path) -> None:
    summary = run_under_38("idle", tmp_path)
    assert summary["status"] == "finished"
    assert summary["workload_python_version"] == "3.8.18"
    assert 0.9 <= float(summary["units"]) <= 1.3  # seconds slept in a 1 s window  # type: ignore[arg-type]
    emissions = rows(tmp_path / "emissions.csv")
    assert [r["workload_python_version"] for r in emissions] == ["3.8.18"]
    # CodeCarbon's python_version is the monitor's, not the child's.
    total = rows(tmp_path / "total_summary.csv")
    assert [r["python_version"] for r in total] == [platform.python_version()]
    log = next((tmp_path / ".carbontop" / "logs").glob("workload-*.log")).read_text()
    assert "'python': '3.8.18'" in log and "'target': 'workloads.idle:Idle'" in log


@needs_py38
@pytest.mark.skipif(not py38_has("numpy"), reason=f"numpy is not installed in {PY38} "
                    f"(CI: {PY38} -m pip install numpy)")
def test_cpu_stress_takes_numpy_from_python_38(tmp_path: Path) -> None:
    summary = run_under_38("cpu-stress", tmp_path, "--param", "size=64")
    assert summary["status"] == "finished" and float(summary["units"]) > 0  # type: ignore[arg-type]
    assert summary["workload_python_version"] == "3.8.18"


@needs_py38
def test_the_child_path_holds_carbontop_and_no_venv(tmp_path: Path) -> None:
    """Under the child's path, 3.8 finds carbontop's sources but not the venv's numpy."""
    bare = tmp_path / "bare38"  # a 3.8 without numpy, whatever the pyenv one has
    subprocess.run([str(PY38), "-m", "venv", "--without-pip", str(bare)], check=True)
    child_path = ChildPath()
    try:
        code = ("import sys, carbontop.child.main; import importlib.metadata as m; "
                "from carbontop.entry_points import BUILTIN_WORKLOADS, workload_entry_points; "
                "print(sys.version_info[:2]); "
                "print([d.metadata['Name'] for d in m.distributions()]); "
                "print({e.name: e.value for e in workload_entry_points()} == BUILTIN_WORKLOADS); "
                "import numpy")
        done = subprocess.run([str(bare / "bin" / "python"), "-c", code], capture_output=True,
                              text=True, env=child_path.env(os.environ))
        assert sorted(p.name for p in child_path.directory.iterdir()) == ["carbontop",
                                                                            "workloads"]
    finally:
        child_path.remove()
    # no carbontop installed in that 3.8 (nothing is), yet the built-ins are found by name
    assert done.stdout.split() == ["(3,", "8)", "[]", "True"], done.stderr
    assert "No module named 'numpy'" in done.stderr  # carbontop's venv has numpy: not seen
    assert not child_path.directory.exists()


@needs_py38
def test_a_plugin_is_handed_over_as_module_and_class(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "plugins" / "my_plugin"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "work.py").write_text(textwrap.dedent("""
        from workloads.base import Step, Workload  # the API's old home: works, with a warning

        class Three(Workload):
            name = "three"
            defaults = {"steps": 3}

            def step(self):
                self.left = getattr(self, "left", self.int_param("steps")) - 1
                return Step(units=2, last=self.left <= 0)
    """))
    monkeypatch.syspath_prepend(str(tmp_path / "plugins"))  # where the parent finds it
    runner = WorkloadRunner("three", target="my_plugin.work:Three", python=PY38,
                            params={"warmup_s": 0},
                            log_path=tmp_path / "w.log")
    runner.start()
    assert runner.wait(timeout=60) == 0, (tmp_path / "w.log").read_text()
    assert runner.info["python"] == "3.8.18"
    assert runner.info["target"] == "my_plugin.work:Three"
    assert runner.done is not None and runner.done.units == 6.0  # 3 steps of 2 units
    log = (tmp_path / "w.log").read_text()
    # (the child's path reaches the package through a link: the file's name, then the line)
    assert "/my_plugin/work.py:2: FutureWarning: workloads.base is deprecated" in log


@needs_py38
def test_the_child_imports_only_files_checked_for_38() -> None:
    """Every carbontop module the child imports is in pyproject's 3.8 list (ruff) that .ci/run
    also gives vermin; numpy and psutil are not imported until a workload needs them."""
    root = Path(__file__).resolve().parents[2]
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    globs = [g for g, v in pyproject["tool"]["ruff"]["per-file-target-version"].items()
             if v == "py38"]
    child_path = ChildPath()
    try:
        code = ("import sys, carbontop.child.main, workloads.idle, workloads.stress; "
                "print('\\n'.join(sorted(sys.modules)))")
        done = subprocess.run([str(PY38), "-c", code], capture_output=True, text=True,
                              env=child_path.env(os.environ), check=True)
    finally:
        child_path.remove()
    modules = done.stdout.split()
    assert "numpy" not in modules and "psutil" not in modules and "torch" not in modules
    ours = [m for m in modules if m.split(".")[0] in ("carbontop", "workloads")]
    assert {"carbontop.child.main", "carbontop.events", "carbontop.progress", "carbontop.model",
            "carbontop.workload"} <= set(ours)
    assert "workloads.base" not in ours  # the built-ins use carbontop.workload
    for module in ours:
        parts = module.split(".")
        is_package = (root.joinpath(*parts) / "__init__.py").exists()
        path = "/".join(parts) + ("/__init__.py" if is_package else ".py")
        assert any(fnmatch.fnmatch(path, g) for g in globs), f"{path} is not checked for 3.8"


def one_line_error(args: list[str], tmp_path: Path) -> str:
    proc = carbontop("run", *args, "--gpu-source", "none", "--duration", "1",
                     "--output-dir", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert not (tmp_path / "emissions.csv").exists()  # refused before any session
    return lines[0]


def test_a_missing_interpreter_is_one_line_and_exit_2(tmp_path: Path) -> None:
    line = one_line_error(["idle", "--workload-python", "/no/such/python3"], tmp_path)
    assert "/no/such/python3 does not exist" in line and "Python 3.8 or newer" in line


def test_the_dashboard_checks_its_workload_python_before_it_starts(tmp_path: Path) -> None:
    proc = carbontop("--demo", "--output-dir", str(tmp_path), cwd=tmp_path,
                     env={"CARBONTOP_WORKLOAD_PYTHON": "/no/such/python3"})
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "carbontop: --workload-python /no/such/python3 does not exist: give a Python 3.8 or "
        "newer, e.g. --workload-python /usr/bin/python3"]


@pytest.mark.skipif(not PY36.exists(), reason=f"no Python 3.6 at {PY36}")
def test_python_36_is_refused_with_the_command_route(tmp_path: Path) -> None:
    line = one_line_error(["idle", "--workload-python", str(PY36)], tmp_path)
    assert "is Python 3.6.15, older than the 3.8" in line
    assert "CARBONTOP_PROGRESS_FD" in line


@needs_py38
def test_an_interpreter_without_numpy_is_refused_for_cpu_stress(tmp_path: Path) -> None:
    bare = tmp_path / "bare38"
    subprocess.run([str(PY38), "-m", "venv", "--without-pip", str(bare)], check=True)
    python = bare / "bin" / "python"
    line = one_line_error(["cpu-stress", "--workload-python", str(python)], tmp_path)
    assert f"{python} (Python 3.8.18) cannot import numpy" in line
    assert "cpu-stress" in line and f"{python} -m pip install numpy" in line
