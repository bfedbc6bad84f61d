"""The workload child's side of carbontop: what it may import, and the plugin API's old home.

The child, the plugin API and the two protocols run under the workload's Python (3.8 on JetPack
5, without carbontop's dependencies). pyproject.toml names them twice (ruff's 3.8 list, which
.ci/run gives to vermin, and an import-linter contract); these tests keep the two equal and
check, from the import graph, that those modules import the standard library and each other only.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import grimp
import pytest

import carbontop.workload
import carbontop.workload_torch
from carbontop import registry

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
LEGACY = DATA / "legacy_plugin.py"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
CONTRACT = "the workload child's side imports only the standard library (it runs on Python 3.8)"
TORCH_HELPERS = "carbontop.workload_torch"  # imports torch inside its functions, in the child


def py38_globs() -> list[str]:
    targets = PYPROJECT["tool"]["ruff"]["per-file-target-version"]
    return [pattern for pattern, target in targets.items() if target == "py38"]


def contract() -> dict[str, object]:
    found = [c for c in PYPROJECT["tool"]["importlinter"]["contracts"] if c["name"] == CONTRACT]
    assert len(found) == 1
    return found[0]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def child_side() -> set[str]:
    """Every carbontop module in ruff's 3.8 list, but the root package (carbontop/__init__.py,
    its version only), which stands for all of carbontop in a contract."""
    files = [path for pattern in py38_globs() for path in ROOT.glob(pattern)]
    modules = {module_name(path) for path in files}
    return {module for module in modules if module.startswith("carbontop.")}


def test_the_contract_names_the_files_checked_for_38() -> None:
    """The contract's modules (packages by name) are exactly the carbontop files of the 3.8 list."""
    sources = set(contract()["source_modules"])  # type: ignore[call-overload]
    side = child_side()
    covered = {module for module in side
               if any(module == source or module.startswith(source + ".") for source in sources)}
    assert covered == side
    assert sources <= side
    assert {"carbontop.child", "carbontop.child.main", "carbontop.events", "carbontop.workload",
            "carbontop.progress"} <= side
    # and .ci/run gives vermin that same list, read from pyproject.toml
    assert "per-file-target-version" in (ROOT / ".ci" / "run").read_text()


def test_the_child_side_imports_only_the_standard_library_and_itself() -> None:
    """From the import graph (function-level imports included): each child-side module imports
    only standard-library modules and other child-side modules; torch only in the torch helpers."""
    graph = grimp.build_graph("carbontop", include_external_packages=True, cache_dir=None)
    side = child_side()
    assert side <= graph.modules
    allowed_external = set(sys.stdlib_module_names) | {"__future__"}
    offenders = []
    for module in sorted(side):
        for imported in graph.find_modules_directly_imported_by(module):
            if imported in side or imported == "carbontop":
                continue
            if imported.split(".")[0] in allowed_external:
                continue
            if module == TORCH_HELPERS and imported == "torch":
                continue
            offenders.append(f"{module} -> {imported}")
    assert offenders == []
    # the check bites: the monitor's side of the same pipe is not child-side
    assert "psutil" in graph.find_modules_directly_imported_by("carbontop.runner")


def test_the_plugin_api_imports_no_torch_even_for_its_types() -> None:
    graph = grimp.build_graph("carbontop", include_external_packages=True, cache_dir=None)
    imported = graph.find_modules_directly_imported_by("carbontop.workload")
    assert "torch" not in imported and TORCH_HELPERS in imported


def test_the_old_home_reexports_the_api() -> None:
    with pytest.warns(FutureWarning, match="workloads.base is deprecated"):
        sys.modules.pop("workloads.base", None)
        import workloads.base as base
    assert base.Workload is carbontop.workload.Workload
    assert base.Step is carbontop.workload.Step
    assert base.Progress is carbontop.workload.Progress
    assert base.resolve_params is carbontop.workload.resolve_params
    assert base.pick_device is carbontop.workload_torch.pick_device
    assert sorted(base.__all__) == sorted(
        name for name in vars(base) if not name.startswith("_")
        and name not in ("annotations", "warnings", "LEGACY_MESSAGE"))


def test_an_old_style_plugin_loads_with_a_warning_at_its_import_line(tmp_path: Path) -> None:
    """As the child loads it, with Python's default warning filters: shown (a FutureWarning is,
    a DeprecationWarning would not be), pointing at the plugin's own line."""
    code = textwrap.dedent(f"""
        from carbontop.child.loading import load_workload_class
        cls, target = load_workload_class(None, {str(LEGACY)!r}, None)
        work = cls({{"steps": 2}})
        work.setup()
        print(cls.__name__, [work.step() for _ in range(2)][-1])
    """)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONWARNINGS"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          cwd=tmp_path, check=True)
    assert done.stdout == "Legacy Step(units=2, flops=None, last=True)\n"
    line = LEGACY.read_text().splitlines().index("from workloads.base import Step, Workload") + 1
    assert done.stderr.splitlines() == [
        f"{LEGACY}:{line}: FutureWarning: {carbontop.workload.LEGACY_MESSAGE}",
        "  from workloads.base import Step, Workload",
    ]


def test_the_registry_warns_once_at_each_legacy_import(tmp_path: Path) -> None:
    plugin = tmp_path / "old.py"
    plugin.write_text(textwrap.dedent("""
        import workloads.base
        from workloads import base
        from workloads.cnn import CnnInference
        from carbontop.workload import Workload

        class Old(workloads.base.Workload):
            name = "old"

        class New(Workload):
            name = "new"
    """))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        entries = registry.entries_from_file(plugin)
        registry.find_workload("old", plugin)  # read again: no second warning
    assert [entry.name for entry in entries] == ["old", "new"]
    assert [(w.category, w.filename, w.lineno) for w in caught] == [
        (FutureWarning, str(plugin), 2), (FutureWarning, str(plugin), 3)]
    assert str(caught[0].message) == carbontop.workload.LEGACY_MESSAGE


def test_builtins_and_the_test_plugins_use_the_new_home() -> None:
    sources = [*(ROOT / "workloads").glob("*.py"), *DATA.glob("*.py")]
    users = sorted(path.name for path in sources if "workloads.base" in path.read_text())
    assert users == ["legacy_plugin.py"]  # (workloads/base.py names itself by its parts)


# str methods newer than 3.8 that vermin cannot see on a value whose type it does not know
NEWER_THAN_38 = {"removeprefix": "3.9", "removesuffix": "3.9"}


def test_no_str_method_newer_than_38_in_the_child_side() -> None:
    """``str(x).removeprefix(...)`` crashed every torch workload under JetPack 5's Python 3.8,
    and vermin passes it (it cannot tell ``str(...)`` returns a str)."""
    found = []
    for pattern in py38_globs():
        for name in sorted(ROOT.glob(pattern)):
            tree = ast.parse(name.read_text(), str(name))
            for node in ast.walk(tree):
                if isinstance(node, ast.Attribute) and node.attr in NEWER_THAN_38:
                    found.append(f"{name.relative_to(ROOT)}:{node.lineno} .{node.attr}() "
                                 f"needs Python {NEWER_THAN_38[node.attr]}")
    assert not found, found
