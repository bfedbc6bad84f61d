"""Finding the Workload class the child runs: a ``module:Class``, an entry point, or a file.

The monitor resolves entry points itself and passes ``--target module:Class``: the child may run
in another interpreter (``--workload-python``) where carbontop is not installed. A bare name is
looked up among the entry points (:mod:`carbontop.entry_points`); a ``--workload-file`` is
executed as a module of its own.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

from carbontop.entry_points import workload_entry_points
from carbontop.errors import BadInput
from carbontop.workload import Workload


def load_workload_class(
    name: str | None,
    workload_file: str | None,
    class_name: str | None,
    target: str | None = None,
) -> tuple[type[Workload], str]:
    """The Workload subclass to run and its "module:Class" or "path:Class" target."""
    if workload_file:
        return _class_from_file(Path(workload_file), name, class_name)
    if target:
        return _class_from_target(target), target
    if not name:
        raise BadInput("no workload given: pass --workload NAME or --workload-file PATH")
    found = {ep.name: ep for ep in workload_entry_points()}
    if name not in found:
        raise BadInput(
            f"unknown workload {name!r}: choose one of {', '.join(sorted(found))} (carbontop list)"
        )
    loaded = found[name].load()
    if not (isinstance(loaded, type) and issubclass(loaded, Workload)):
        raise BadInput(f"entry point {name!r} ({found[name].value}) is not a Workload subclass")
    return loaded, found[name].value


def _class_from_target(target: str) -> type[Workload]:
    """``module:Class`` imported; BadInput naming the target when it is not a Workload."""
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise BadInput(f"--target {target!r} must be 'module:Class'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise BadInput(
            f"workload module {module_name} cannot be imported by {sys.executable} ({exc}): "
            "install what it needs in that Python"
        ) from exc
    loaded = getattr(module, attr, None)
    if not (isinstance(loaded, type) and issubclass(loaded, Workload)):
        raise BadInput(f"{target} is not a Workload subclass")
    return loaded


def _class_from_file(
    path: Path, name: str | None, class_name: str | None
) -> tuple[type[Workload], str]:
    if not path.is_file():
        raise BadInput(f"workload file {path} does not exist: check the --workload-file path")
    module_name = f"carbontop_workload_file_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise BadInput(f"workload file {path} cannot be loaded: give a .py file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    classes = [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type)
        and issubclass(obj, Workload)
        and obj is not Workload
        and obj.__module__ == module_name
    ]
    if class_name:
        classes = [cls for cls in classes if cls.__name__ == class_name]
    elif name:
        classes = [cls for cls in classes if (cls.name or cls.__name__) == name] or classes
    if not classes:
        wanted = f" named {class_name}" if class_name else ""
        raise BadInput(
            f"{path} defines no Workload subclass{wanted}: "
            "subclass carbontop.workload.Workload in that file"
        )
    if len(classes) > 1:
        names = ", ".join(cls.__name__ for cls in classes)
        raise BadInput(f"{path} defines several workloads ({names}): pick one with --class-name")
    return classes[0], f"{path}:{classes[0].__name__}"
