"""The registry lists workloads by reading their source, never by importing them."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from carbontop import entry_points, registry
from carbontop.entry_points import BUILTIN_WORKLOADS, GROUP
from carbontop.errors import BadInput
from carbontop.registry import (
    WorkloadEntry,
    entries_from_file,
    find_workload,
    list_workloads,
    parse_params,
)

DATA = Path(__file__).resolve().parents[1] / "data"
PLUGINS = DATA / "plugin_workloads.py"

BUILTINS = {
    "gpu-stress": ("workloads.stress:GpuStress", "iteration"),
    "cpu-stress": ("workloads.stress:CpuStress", "iteration"),
    "ram-stress": ("workloads.stress:RamStress", "MB"),
    "stress-all": ("workloads.stress:StressAll", "iteration"),
    "matmul": ("workloads.matmul:Matmul", "GFLOP"),
    "cnn-inference": ("workloads.cnn:CnnInference", "image"),
    "transformer-inference": ("workloads.transformer:TransformerInference", "token"),
    "llm-generate": ("workloads.llm:LlmGenerate", "token"),
    "training": ("workloads.training:Training", "sample"),
    "idle": ("workloads.idle:Idle", "second"),
}


def test_lists_all_builtins() -> None:
    entries = {entry.name: entry for entry in list_workloads()}
    assert set(BUILTINS) <= set(entries)
    for name, (target, unit) in BUILTINS.items():
        entry = entries[name]
        assert entry.error is None, entry.error
        assert (entry.target, entry.unit, entry.source) == (target, unit, "builtin")
        assert entry.description and "\n" not in entry.description
    assert ("size", "1024") in entries["cpu-stress"].params
    assert ("device", "auto") in entries["matmul"].params


LISTER = """
import json, sys
from carbontop.registry import list_workloads, find_workload
import carbontop.runner
entries = list_workloads()
find_workload("matmul")
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "numpy")
               or m.startswith("workloads."))
print(json.dumps({"names": [e.name for e in entries], "heavy": heavy}))
"""


def test_listing_imports_neither_torch_nor_workloads() -> None:
    out = subprocess.run(
        [sys.executable, "-c", LISTER], capture_output=True, text=True, check=True, timeout=60
    )
    result = json.loads(out.stdout)
    assert set(BUILTINS) <= set(result["names"])
    assert result["heavy"] == [], result["heavy"]


def test_file_workloads_are_read_not_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "imported"
    monkeypatch.setenv("CARBONTOP_TEST_IMPORT_MARKER", str(marker))
    [entry] = entries_from_file(DATA / "bad_entry_plugin.py")
    assert (entry.name, entry.unit, entry.source) == ("noisy", "bang", "file")
    assert entry.description == "Listed by reading its source."  # from the docstring
    assert entry.class_name == "Noisy" and entry.file == (DATA / "bad_entry_plugin.py").resolve()
    assert not marker.exists()


def test_builtin_table_is_pyprojects_entry_points() -> None:
    """BUILTIN_WORKLOADS lists what pyproject.toml declares: an install made before a built-in
    was added still finds it (the metadata lacks it until `pip install -e .` reruns)."""
    import tomllib

    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    declared = pyproject["project"]["entry-points"]["carbontop.workloads"]
    assert declared == BUILTIN_WORKLOADS
    assert {name: target for name, (target, _) in BUILTINS.items()} == declared


def test_entry_points_are_the_installed_ones_plus_missing_builtins(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The one lookup, used by the registry and by the workload child (under any Python): an
    installed entry point wins over the table; a built-in the metadata lacks is added."""
    from importlib.metadata import EntryPoints

    installed = [EntryPoint("idle", "my_fork.idle:Idle", GROUP),
                 EntryPoint("mine", "my_plugin.work:Mine", GROUP),
                 EntryPoint("other", "elsewhere:Thing", "another.group")]
    monkeypatch.setattr(entry_points, "entry_points", lambda: EntryPoints(installed))
    found = {ep.name: ep.value for ep in entry_points.workload_entry_points()}
    assert found == {**BUILTIN_WORKLOADS, "idle": "my_fork.idle:Idle",
                     "mine": "my_plugin.work:Mine"}


def test_plugin_file_lists_every_class() -> None:
    entries = {entry.name: entry for entry in list_workloads(PLUGINS)}
    assert {"counter", "failing", "hanging"} <= set(entries)
    assert entries["counter"].unit == "nap" and entries["failing"].unit == "iteration"
    assert entries["counter"].target.endswith("plugin_workloads.py:Counter")


def test_broken_file_is_listed_with_an_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("from carbontop.workload import Workload\nclass Broken(Workload:\n    pass\n")
    entries = list_workloads(broken)
    assert len(entries) == len(BUILTINS) + 1
    entry = entries[-1]
    assert entry.source == "file" and entry.name == "broken"
    assert entry.error is not None and "syntax error at line 2" in entry.error
    with pytest.raises(BadInput, match="broken"):
        find_workload("broken", broken)


def test_missing_file_and_file_without_workloads(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="does not exist"):
        list_workloads(tmp_path / "nope.py")
    plain = tmp_path / "plain.py"
    plain.write_text("class NotAWorkload:\n    pass\n")
    with pytest.raises(BadInput, match="defines no Workload subclass"):
        list_workloads(plain)


def test_subclass_of_builtin_in_file_inherits_facts(tmp_path: Path) -> None:
    file = tmp_path / "mine.py"
    file.write_text(
        "from workloads.cnn import CnnInference\n"
        "class Base(CnnInference):\n    unit = 'picture'\n"
        "class Mine(Base):\n    name = 'mine'\n"
    )
    entries = {entry.class_name: entry for entry in entries_from_file(file)}
    assert entries["Mine"].unit == "picture" and entries["Mine"].name == "mine"


def test_broken_entry_points_never_fatal(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bad_module = tmp_path / "carbontop_test_syntax_plugin.py"
    bad_module.write_text("def (:\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    group = GROUP
    fake = [
        EntryPoint("ok", "workloads.idle:Idle", group),
        EntryPoint("missing-module", "carbontop_no_such_module:Thing", group),
        EntryPoint("missing-class", "workloads.idle:Nope", group),
        EntryPoint("syntax", "carbontop_test_syntax_plugin:Thing", group),
        EntryPoint("not-a-class", "workloads.idle", group),
    ]
    monkeypatch.setattr(registry, "workload_entry_points", lambda: fake)
    entries = {entry.name: entry for entry in list_workloads()}
    assert entries["ok"].error is None and entries["ok"].unit == "second"
    assert "not found" in (entries["missing-module"].error or "")
    assert "class Nope not found" in (entries["missing-class"].error or "")
    assert "syntax error" in (entries["syntax"].error or "")
    assert "module:Class" in (entries["not-a-class"].error or "")
    assert entries["missing-module"].source == "plugin"
    with pytest.raises(BadInput, match="is broken"):
        find_workload("missing-class")


def test_unknown_workload_names_the_choices() -> None:
    with pytest.raises(BadInput) as caught:
        find_workload("nope")
    message = str(caught.value)
    assert message.startswith("unknown workload 'nope': choose one of cnn-inference, cpu-stress")
    assert message.endswith("(carbontop list)")


def test_find_workload_in_a_file() -> None:
    assert find_workload("counter", PLUGINS).class_name == "Counter"
    assert find_workload("Hanging", PLUGINS).name == "hanging"  # by class name too
    assert find_workload("matmul", PLUGINS).source == "builtin"
    with pytest.raises(BadInput, match="several workloads"):
        find_workload(None, PLUGINS)
    [single] = entries_from_file(DATA / "bad_entry_plugin.py")
    assert find_workload(None, DATA / "bad_entry_plugin.py") == single
    with pytest.raises(BadInput, match="no workload given"):
        find_workload(None)


def test_parse_params() -> None:
    assert parse_params(["size=1024", "device = cuda:1", "note=a=b", "empty="]) == {
        "size": "1024",
        "device": "cuda:1",
        "note": "a=b",
        "empty": "",
    }
    for bad in ("size", "=3", "si ze=3"):
        with pytest.raises(BadInput, match="KEY=VALUE"):
            parse_params([bad])


def test_entry_helpers() -> None:
    entry = WorkloadEntry("x", "d", "u", "pkg.mod:Cls", source="plugin")
    assert entry.ok and entry.class_name == "Cls" and entry.file is None
