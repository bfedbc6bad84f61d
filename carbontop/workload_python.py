"""The workload child under another Python (``--workload-python``): its path, and a probe.

On JetPack 5 NVIDIA's torch wheels exist only for the system's Python 3.8, while carbontop (its
CodeCarbon) needs 3.10 or newer. The monitor therefore stays in carbontop's Python and starts the
workload child (``python -m carbontop.child``) with the interpreter the user names.

The child must see carbontop's own source packages and nothing else of carbontop's environment:
numpy, torch and psutil have to come from the target interpreter (a wheel built for 3.11 does not
load in 3.8). When carbontop is pip-installed, the folder holding ``carbontop`` and ``workloads``
is the venv's ``site-packages``, full of such wheels, so it cannot go on the child's path. The
child gets a private folder instead, holding one symbolic link per package it needs (carbontop,
workloads, and the top-level package of a plugin workload), as its ``PYTHONPATH``.

Before a session starts, :func:`probe` runs the target interpreter once (a fraction of a second)
to check that it exists, is 3.8 or newer, can import carbontop's child code, and finds the modules
the workload declares in ``requires``. Modules are looked up (``importlib.util.find_spec``), not
imported: importing torch takes seconds on a Jetson, and a torch that is there but broken still
fails the session at its loading phase with the import error.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from carbontop.errors import BadInput

log = logging.getLogger(__name__)

MIN_VERSION = (3, 8)
CHILD_PACKAGES = ("carbontop", "workloads")  # the child, and the built-in workloads
PROBE_TIMEOUT_S = 60.0  # a cold interpreter on an SD card can take seconds
FIX = "give a Python 3.8 or newer, e.g. --workload-python /usr/bin/python3"

# Runs on any Python the user may name (even 2.7): prints the version, then one line per problem.
_PROBE = """\
import sys
sys.stdout.write("%d.%d.%d\\n" % tuple(sys.version_info[:3]))
if sys.version_info >= (3, 8):
    import importlib.util
    for name in sys.argv[1:]:
        try:
            found = importlib.util.find_spec(name) is not None
        except Exception:
            found = False
        if not found:
            sys.stdout.write("missing %s\\n" % name)
    try:
        import carbontop.child.main
    except Exception as exc:
        text = (str(exc).splitlines() or [""])[0]
        sys.stdout.write("broken %s: %s\\n" % (type(exc).__name__, text))
"""


@dataclass(frozen=True)
class ProbeResult:
    """What the target interpreter said about itself."""

    version: str  # "3.8.18"
    missing: tuple[str, ...] = ()  # required modules it does not find
    broken: str | None = None  # why it cannot import carbontop's child code


def top_level(module: str) -> str:
    return module.split(".")[0]


def package_location(name: str) -> Path:
    """The folder of top-level package ``name`` (or its ``.py`` file), found without importing."""
    spec = importlib.util.find_spec(name)
    if spec is None:
        raise BadInput(f"module {name} is not installed for carbontop: reinstall it")
    locations = list(spec.submodule_search_locations or [])
    if locations:
        return Path(locations[0])
    if spec.origin and spec.origin.endswith(".py"):
        return Path(spec.origin)
    raise BadInput(f"module {name} has no Python source ({spec.origin}): it cannot run in "
                   "another interpreter")


class ChildPath:
    """A private folder of links to the packages the child imports; its ``PYTHONPATH``.

    ``modules`` are module names (``workloads.stress``, ``my_plugin.work``); their top-level
    packages are linked beside carbontop's. Remove the folder with :meth:`remove` once the child
    has exited (it imports lazily until then).
    """

    def __init__(self, modules: Iterable[str] = ()) -> None:
        names = list(CHILD_PACKAGES)
        for module in modules:
            if top_level(module) not in names:
                names.append(top_level(module))
        self.directory = Path(tempfile.mkdtemp(prefix="carbontop-child-path-"))
        try:
            for name in names:
                location = package_location(name)
                link = self.directory / (name if location.is_dir() else f"{name}.py")
                link.symlink_to(location.resolve(), target_is_directory=location.is_dir())
        except BaseException:
            self.remove()
            raise
        self.packages = tuple(names)

    def env(self, base: Mapping[str, str]) -> dict[str, str]:
        """``base`` with only this folder as ``PYTHONPATH`` and no ``PYTHONHOME``: nothing of
        carbontop's environment leaks into the target interpreter's imports."""
        env = {key: value for key, value in base.items() if key not in ("PYTHONPATH", "PYTHONHOME")}
        env["PYTHONPATH"] = str(self.directory)
        env.pop("VIRTUAL_ENV", None)  # carbontop's venv is not the child's
        return env

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def probe(python: Path, requires: Sequence[str] = (), modules: Iterable[str] = (),
          timeout_s: float = PROBE_TIMEOUT_S) -> ProbeResult:
    """Run ``python`` once with the child's path; BadInput (one line, with the fix) when it
    does not exist, does not run, is older than 3.8 or cannot import what the child needs."""
    python = Path(python).expanduser()
    if not python.exists():
        raise BadInput(f"--workload-python {python} does not exist: {FIX}")
    if python.is_dir() or not os.access(python, os.X_OK):
        raise BadInput(f"--workload-python {python} is not an executable file: {FIX}")
    child_path = ChildPath(modules)
    try:
        done = subprocess.run(
            [str(python), "-c", _PROBE, *requires], capture_output=True, text=True,
            timeout=timeout_s, env=child_path.env(os.environ), stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise BadInput(f"--workload-python {python} did not answer within {timeout_s:g} s: "
                       f"check that it runs (`{python} --version`)") from None
    except OSError as exc:
        raise BadInput(f"--workload-python {python} cannot be run ({exc.strerror or exc}): "
                       f"{FIX}") from None
    finally:
        child_path.remove()
    result = _parse_probe(done.stdout)
    if done.returncode != 0 or result is None:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise BadInput(f"--workload-python {python} is not a working Python ({last}): {FIX}")
    log.info("workload python %s: %s", python, result)
    return result


def _parse_probe(stdout: str) -> ProbeResult | None:
    lines = stdout.splitlines()
    if not lines or lines[0].count(".") != 2:
        return None
    missing = tuple(line.split(" ", 1)[1] for line in lines[1:] if line.startswith("missing "))
    broken = next((line.split(" ", 1)[1] for line in lines[1:] if line.startswith("broken ")),
                  None)
    return ProbeResult(lines[0], missing, broken)


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def check_workload_python(python: Path, workload: str | None = None,
                          requires: Sequence[str] = (), modules: Iterable[str] = ()) -> str:
    """The target interpreter's version, or BadInput saying what is wrong with it and the fix.

    ``workload`` names the workload in the message; ``requires`` are its modules to look for.
    A success is remembered for this process (the runner checks again at each session start).
    """
    python = Path(python).expanduser()
    key = (str(python), tuple(requires), tuple(modules))
    if key in _CHECKED:
        return _CHECKED[key]
    result = probe(python, requires, modules)
    if version_tuple(result.version) < MIN_VERSION:
        raise BadInput(
            f"--workload-python {python} is Python {result.version}, older than the 3.8 the "
            "workload child needs: give a newer Python, or run your own script with "
            f"`carbontop run -- {python} script.py` (progress lines to $CARBONTOP_PROGRESS_FD)"
        )
    if result.missing:
        which = f", which workload '{workload}' needs" if workload else ""
        names = " ".join(result.missing)
        jetson = "; torch on a Jetson: NVIDIA's wheel for that Python" if "torch" in names else ""
        raise BadInput(
            f"--workload-python {python} (Python {result.version}) cannot import "
            f"{', '.join(result.missing)}{which}: install it in that Python "
            f"(`{python} -m pip install {names}`{jetson}) or give another --workload-python"
        )
    if result.broken is not None:
        raise BadInput(
            f"--workload-python {python} (Python {result.version}) cannot run carbontop's "
            f"workload child ({result.broken}): {FIX}"
        )
    _CHECKED[key] = result.version
    return result.version


_CHECKED: dict[tuple[str, tuple[str, ...], tuple[str, ...]], str] = {}
