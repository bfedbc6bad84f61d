"""The code's promises about itself: import boundaries and no shell."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORE_MODULES = [
    "carbontop.engine", "carbontop.cli", "carbontop.meter", "carbontop.energy",
    "carbontop.summary", "carbontop.results.store", "carbontop.results.recovery",
    "carbontop.sources.detect", "carbontop.sources.jtop", "carbontop.sources.sim",
    "carbontop.sources.nvml", "carbontop.sources.none", "carbontop.cpu_ram", "carbontop.carbon",
    "carbontop.runner", "carbontop.registry", "carbontop.config",
]


def test_measuring_core_imports_neither_textual_nor_torch() -> None:
    code = (
        "import sys\n"
        f"for m in {CORE_MODULES!r}: __import__(m)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'torch'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout.strip()
    assert out == ""


def test_no_shell_anywhere() -> None:
    offenders = []
    sources = [*(ROOT / "carbontop").rglob("*.py"), *(ROOT / "workloads").rglob("*.py")]
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text())):
            shell_false = isinstance(node, ast.keyword) and isinstance(
                node.value, ast.Constant) and node.value.value is False
            if isinstance(node, ast.keyword) and node.arg == "shell" and not shell_false:
                offenders.append(f"{path}:{node.value.lineno}")
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("system", "popen")
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "os"):
                offenders.append(f"{path}:{node.lineno}")
    assert offenders == []
