"""Where workloads are registered: the entry-point group, the built-ins, and their lookup.

A package offers workloads by naming them in its ``pyproject.toml``::

    [project.entry-points."carbontop.workloads"]
    my-model = "my_package.work:MyModel"

The monitor (:mod:`carbontop.registry`, which reads each class without importing it) and the
workload child (:mod:`carbontop.child.loading`, which imports the one it runs) both look them up
here. This module runs in the child, whatever its Python: standard library only, and 3.8's.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import Any

GROUP = "carbontop.workloads"

BUILTIN_WORKLOADS: dict[str, str] = {
    "gpu-stress": "workloads.stress:GpuStress",
    "cpu-stress": "workloads.stress:CpuStress",
    "ram-stress": "workloads.stress:RamStress",
    "stress-all": "workloads.stress:StressAll",
    "matmul": "workloads.matmul:Matmul",
    "cnn-inference": "workloads.cnn:CnnInference",
    "transformer-inference": "workloads.transformer:TransformerInference",
    "llm-generate": "workloads.llm:LlmGenerate",
    "training": "workloads.training:Training",
    "idle": "workloads.idle:Idle",
}
"""The built-ins, as pyproject.toml's entry points list them (a test keeps the two equal). An
editable install made before a built-in was added lacks its entry point until ``pip install -e .``
runs again; this table lists it meanwhile."""


def workload_entry_points() -> list[EntryPoint]:
    """The installed entry points of group ``carbontop.workloads``, plus any built-in the
    installed metadata does not list (yet, or at all: carbontop's sources on ``PYTHONPATH``
    under another Python).

    ``entry_points(group=...)`` exists from 3.10; 3.8 and 3.9 return a dict of groups.
    """
    every: Any = entry_points()
    if hasattr(every, "select"):
        found = list(every.select(group=GROUP))
    else:  # pragma: no cover - Python 3.8 and 3.9
        found = list(every.get(GROUP, ()))
    named = {ep.name for ep in found}
    found += [EntryPoint(name, target, GROUP) for name, target in BUILTIN_WORKLOADS.items()
              if name not in named]
    return found
