"""Which workloads exist, found without importing any of them.

Workloads import torch, which takes seconds and must never load in the monitoring process. So the
registry reads entry points of group ``carbontop.workloads``, finds each module's source file
without executing it, and reads the class's ``name``, ``description``, ``unit`` and ``defaults``
with :mod:`ast`. A broken entry becomes a :class:`WorkloadEntry` with ``error`` set, never a crash.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import importlib.machinery
import importlib.util
import logging
import warnings
from dataclasses import dataclass
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Literal

from carbontop.entry_points import workload_entry_points
from carbontop.errors import BadInput
from carbontop.workload import LEGACY_MESSAGE, LEGACY_MODULE, Workload, resolve_params

log = logging.getLogger(__name__)

BUILTIN_DISTRIBUTION = "carbontop"
BASE_CLASS = "Workload"

Source = Literal["builtin", "plugin", "file"]

_WARNED: set[tuple[str, int]] = set()  # (file, line) of legacy imports already warned about


@dataclass(frozen=True)
class WorkloadEntry:
    """One workload as ``carbontop list`` shows it.

    ``target`` is ``module:Class`` for entry points and ``path:Class`` for a workload file.
    ``params`` are the class's ``defaults`` as (key, text) pairs when they are plain literals.
    ``requires`` are the top-level modules the class declares it imports (``requires = ...``).
    """

    name: str
    description: str
    unit: str
    target: str
    error: str | None = None
    source: Source = "builtin"
    params: tuple[tuple[str, str], ...] = ()
    requires: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def class_name(self) -> str:
        return self.target.rpartition(":")[2]

    @property
    def file(self) -> Path | None:
        """The workload file, for ``source == "file"``."""
        return Path(self.target.rpartition(":")[0]) if self.source == "file" else None


@dataclass(frozen=True)
class _ClassFacts:
    name: str | None
    description: str
    unit: str
    params: tuple[tuple[str, str], ...]
    requires: tuple[str, ...] = ()


def list_workloads(workload_file: Path | None = None) -> list[WorkloadEntry]:
    """Entry-point workloads (built-ins first, then plugins, by name), then those of the file."""
    entries = sorted(
        (_entry_from_entry_point(ep) for ep in workload_entry_points()),
        key=lambda entry: (entry.source != "builtin", entry.name),
    )
    if workload_file is not None:
        entries += entries_from_file(workload_file)
    return entries


def find_workload(name: str | None, workload_file: Path | None = None) -> WorkloadEntry:
    """The workload to run. A workload file's classes win over entry points of the same name;
    ``name`` may be None when the file defines exactly one workload."""
    file_entries = entries_from_file(workload_file) if workload_file is not None else []
    if name is None:
        if len(file_entries) == 1:
            return _usable(file_entries[0])
        if file_entries:
            names = ", ".join(entry.name for entry in file_entries)
            raise BadInput(f"{workload_file} defines several workloads ({names}): name one of them")
        raise BadInput("no workload given: name one (carbontop list) or pass --workload-file")
    candidates = file_entries + list_workloads()
    for entry in candidates:
        if entry.name == name or (entry.source == "file" and entry.class_name == name):
            return _usable(entry)
    choices = ", ".join(sorted({entry.name for entry in candidates}))
    raise BadInput(f"unknown workload {name!r}: choose one of {choices} (carbontop list)")


def _usable(entry: WorkloadEntry) -> WorkloadEntry:
    if entry.error is not None:
        raise BadInput(f"workload {entry.name!r} ({entry.target}) is broken: {entry.error}")
    return entry


def check_builtin_params(entry: WorkloadEntry, params: dict[str, str]) -> None:
    """A built-in's params checked in this process before anything starts: unknown keys, types
    and the workload's own torch-free checks (``Workload.check_params``). BadInput: one line.

    Built-in modules import torch inside methods only, so importing one here is cheap; a
    plugin's module is never imported in the monitoring process.
    """
    if entry.source != "builtin":
        return
    module, _, attr = entry.target.partition(":")
    cls = getattr(importlib.import_module(module), attr, None)
    if isinstance(cls, type) and issubclass(cls, Workload):
        cls.check_params(resolve_params(cls, params))


def parse_params(items: list[str]) -> dict[str, str]:
    """``["size=1024", "device=cpu"]`` -> ``{"size": "1024", "device": "cpu"}``."""
    params: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key or not key.replace("_", "").replace("-", "").isalnum():
            raise BadInput(f"bad --param {item!r}: write KEY=VALUE, e.g. --param size=1024")
        params[key] = value.strip()
    return params


def entries_from_file(path: Path) -> list[WorkloadEntry]:
    """The Workload subclasses a ``--workload-file`` defines, read with ast (nothing runs)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise BadInput(f"workload file {path} does not exist: check the --workload-file path")
    target = str(path.resolve())
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (SyntaxError, ValueError, UnicodeDecodeError, OSError) as exc:
        return [
            WorkloadEntry(
                name=path.stem,
                description="",
                unit="",
                target=target,
                error=f"cannot read {path.name}: {_one_line(exc)}",
                source="file",
            )
        ]
    warn_legacy_imports(tree, path)
    classes = _workload_classes(tree)
    if not classes:
        raise BadInput(
            f"{path} defines no Workload subclass: "
            "write `class MyWork(Workload):` (from carbontop.workload import Workload) in it"
        )
    entries = []
    for node in classes:
        facts = _class_facts(tree, node)
        entries.append(
            WorkloadEntry(
                name=facts.name or node.name,
                description=facts.description,
                unit=facts.unit,
                target=f"{target}:{node.name}",
                source="file",
                params=facts.params,
                requires=facts.requires,
            )
        )
    return entries


def _entry_from_entry_point(ep: EntryPoint) -> WorkloadEntry:
    module_name, _, attr = ep.value.partition(":")
    module_name, attr = module_name.strip(), attr.strip()
    dist = getattr(ep, "dist", None)
    builtin = (dist is not None and dist.name == BUILTIN_DISTRIBUTION) or module_name.startswith(
        "workloads."
    )
    source: Source = "builtin" if builtin else "plugin"

    def broken(error: str) -> WorkloadEntry:
        return WorkloadEntry(ep.name, "", "", ep.value, error=error, source=source)

    if not attr or "." in attr:
        return broken(f"entry point {ep.value!r} must be 'module:Class'")
    try:
        path = find_source(module_name)
    except (ImportError, ValueError, OSError) as exc:
        return broken(f"module {module_name} not found: {_one_line(exc)}")
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (SyntaxError, ValueError, UnicodeDecodeError, OSError) as exc:
        return broken(f"cannot read {path}: {_one_line(exc)}")
    warn_legacy_imports(tree, path)
    node = _find_class(tree, attr)
    if node is None:
        return broken(f"class {attr} not found in {path}")
    facts = _class_facts(tree, node)
    return WorkloadEntry(
        name=ep.name,
        description=facts.description,
        unit=facts.unit,
        target=ep.value,
        source=source,
        params=facts.params,
        requires=facts.requires,
    )


def find_source(module_name: str) -> Path:
    """The ``.py`` file of a module, found without executing it or its parent packages."""
    parts = module_name.split(".")
    spec = importlib.util.find_spec(parts[0])  # a top-level lookup imports nothing
    for depth in range(1, len(parts)):
        if spec is None or not spec.submodule_search_locations:
            break
        fullname = ".".join(parts[: depth + 1])
        spec = importlib.machinery.PathFinder.find_spec(
            fullname, list(spec.submodule_search_locations)
        )
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        raise ImportError(f"no Python source for {module_name}")
    return Path(spec.origin)


def warn_legacy_imports(tree: ast.Module, path: Path) -> None:
    """A FutureWarning at each line of a plugin's source that imports ``workloads.base``, the
    plugin API's old home: shown on the terminal by ``carbontop run`` and ``carbontop list``
    (before the workload's own process, whose log gets the shim's warning), once per line."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            legacy = node.module == LEGACY_MODULE or (
                node.module == LEGACY_MODULE.partition(".")[0]
                and any(alias.name == LEGACY_MODULE.partition(".")[2] for alias in node.names))
        elif isinstance(node, ast.Import):
            legacy = any(alias.name == LEGACY_MODULE for alias in node.names)
        else:
            continue
        where = (str(path), node.lineno)
        if legacy and where not in _WARNED:
            _WARNED.add(where)
            warnings.warn_explicit(LEGACY_MESSAGE, FutureWarning, str(path), node.lineno)


def _find_class(tree: ast.Module, name: str) -> ast.ClassDef | None:
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return node
    return None


def _base_names(node: ast.ClassDef) -> list[str]:
    names = []
    for base in node.bases:
        if isinstance(base, ast.Name):
            names.append(base.id)
        elif isinstance(base, ast.Attribute):
            names.append(base.attr)
    return names


def _workload_classes(tree: ast.Module) -> list[ast.ClassDef]:
    """Top-level classes deriving from ``Workload``, from another class of the file that does, or
    from a class imported from the ``workloads`` package (``from workloads.cnn import ...``)."""
    known = {BASE_CLASS}
    found = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "workloads":
            known.update(alias.asname or alias.name for alias in node.names)
        if isinstance(node, ast.ClassDef) and known & set(_base_names(node)):
            known.add(node.name)
            found.append(node)
    return found


def _class_facts(tree: ast.Module, node: ast.ClassDef, depth: int = 0) -> _ClassFacts:
    """Literal class attributes, inherited from base classes of the same module when missing."""
    values: dict[str, object] = {}
    for item in node.body:
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(item, ast.Assign):
            targets, value = item.targets, item.value
        elif isinstance(item, ast.AnnAssign) and item.value is not None:
            targets, value = [item.target], item.value
        for target in targets:
            if isinstance(target, ast.Name) and value is not None:
                with contextlib.suppress(ValueError, TypeError, SyntaxError, RecursionError):
                    values[target.id] = ast.literal_eval(value)
    inherited = _ClassFacts(None, "", "iteration", ())
    if depth < 5:
        for base in _base_names(node):
            parent = _find_class(tree, base)
            if parent is not None and parent is not node:
                inherited = _class_facts(tree, parent, depth + 1)
                break
    name = values.get("name")
    description = values.get("description")
    unit = values.get("unit")
    defaults = values.get("defaults")
    requires = values.get("requires")
    docstring = (ast.get_docstring(node) or "").strip()
    if not isinstance(description, str) or not description:
        description = docstring.splitlines()[0] if docstring else inherited.description
    params = inherited.params
    if isinstance(defaults, dict):
        params = tuple(
            (str(key), value if isinstance(value, str) else repr(value))
            for key, value in defaults.items()
        )
    if isinstance(requires, (tuple, list)) and all(isinstance(m, str) for m in requires):
        required = tuple(str(module) for module in requires)
    else:
        required = inherited.requires
    return _ClassFacts(
        name=name if isinstance(name, str) and name else inherited.name,
        description=description,
        unit=unit if isinstance(unit, str) and unit else inherited.unit,
        params=params,
        requires=required,
    )


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        return f"syntax error at line {exc.lineno}: {exc.msg}"
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
