"""The plugin API: the class every carbontop workload subclasses, and what its ``step()`` returns.

A workload is a loop of small, equal pieces of work. carbontop runs it in a child process
(:mod:`carbontop.child`): ``setup()`` (loading), then ``step()`` for ``warmup_s`` seconds
(warm-up, not measured), then ``step()`` until the measured window is over. Each ``step()``
returns how many units of work it did (images, tokens, samples...), so the session can report
joules per unit. Example::

    import time

    from carbontop.workload import Step, Workload

    class Sleepy(Workload):
        name = "sleepy"
        description = "Sleeps; one unit per nap"
        unit = "nap"
        defaults = {"nap_s": 0.1}

        def step(self) -> Step:
            time.sleep(self.float_param("nap_s"))
            return Step(units=1)

Name the modules it imports beyond the standard library in ``requires = ("numpy",)``, so that
``--workload-python`` can be checked for them before a session starts. Register it in a
package's ``pyproject.toml`` under ``[project.entry-points."carbontop.workloads"]``
(:mod:`carbontop.entry_points`) or pass the file with ``--workload-file``. Import torch inside
methods, never at the top of a module that carbontop lists: listing reads the source and imports
nothing. torch helpers (the device, the dtype) are in :mod:`carbontop.workload_torch`.

This module runs in the workload child, whatever its Python (3.8 on JetPack 5): standard library
only, and 3.8's (pyproject.toml's contracts, vermin in .ci/run).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from carbontop import workload_torch
from carbontop.errors import BadInput

if TYPE_CHECKING:
    from carbontop.workload_torch import Device

LEGACY_MODULE = "workloads.base"
"""Where the plugin API lived before this module: a shim that warns, for one release."""
LEGACY_MESSAGE = (
    "workloads.base is deprecated and goes in carbontop's next release: import Step and "
    "Workload from carbontop.workload (pick_device, pick_dtype, pick_size and torch_info from "
    "carbontop.workload_torch)"
)
"""The FutureWarning's text: the shim's at import, the monitor's when it reads a plugin's source."""

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Step:
    """What one ``step()`` did: ``units`` of work and, when known, floating point operations."""

    units: float
    flops: float | None = None
    last: bool = False  # True: the workload has no more work; the measured window ends here


class Progress:
    """What a workload tells carbontop beyond its steps: sub-phases of the measured window and the
    units done in each, the calls a user's program makes through :mod:`carbontop.progress`.

    This default does nothing (a workload run outside carbontop); the workload child puts its own
    in ``Workload.progress``.
    """

    @property
    def window_start_s(self) -> float | None:
        """Where the measured window started on the session clock; None outside it."""
        return None

    def subphase(self, name: str | None, t_s: float | None = None) -> None:
        """Sub-phase ``name`` starts at ``t_s`` on the session clock (default: now); None or
        ``"other"`` ends the current one. Valid only inside the measured window."""

    def units(self, amount: float) -> None:
        """Adds ``amount`` units to the current phase and to the current sub-phase."""

    def results(self, figures: dict[str, str]) -> None:
        """Figures known as the work goes (e.g. the median time to first token)."""


class Workload:
    """Subclass this; override ``setup``, ``step`` and, if needed, ``teardown`` and ``info``.

    ``params`` are the user's ``--param`` values merged over ``defaults``; command-line values are
    strings and are converted to the type of the default. ``warmup_s`` is always a valid param.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""  # one line
    unit: ClassVar[str] = "iteration"  # image, token, sample, GFLOP, ...
    defaults: ClassVar[dict[str, object]] = {}
    # Top-level modules the workload imports (e.g. ("torch",)): a --workload-python is checked
    # for them before the session starts. A literal tuple: carbontop reads it without importing.
    requires: ClassVar[tuple[str, ...]] = ()
    warmup_s: float = 2.0  # class default; the param warmup_s overrides it per instance

    def __init__(self, params: Mapping[str, object] | None = None) -> None:
        self.params: dict[str, object] = resolve_params(type(self), params or {})
        warmup = self.params.pop("warmup_s")
        self.warmup_s = max(0.0, warmup if isinstance(warmup, float) else 0.0)
        self.device: Device | None = None  # a torch device; synchronize() and info() use it
        self.progress: Progress = Progress()  # the workload child puts its own here

    def int_param(self, key: str) -> int:
        return int(str(self.params[key]))

    def float_param(self, key: str) -> float:
        return float(str(self.params[key]))

    def str_param(self, key: str) -> str:
        return str(self.params[key])

    def bool_param(self, key: str) -> bool:
        return bool(self.params[key])

    @classmethod
    def check_params(cls, params: Mapping[str, object]) -> None:
        """Checks the resolved ``params`` without torch, before anything starts (BadInput: one
        line, exit 2). ``carbontop run`` calls it for built-ins; the default checks nothing."""

    def setup(self) -> None:
        """Loading phase: build the network, allocate inputs."""

    def step(self) -> Step:
        """One unit of measured work."""
        raise NotImplementedError(f"{type(self).__name__}.step() is not implemented")

    def synchronize(self) -> None:
        """Wait for queued device work (CUDA); called at every window edge."""
        if self.device is not None:
            workload_torch.synchronize(self.device)

    def teardown(self) -> None:
        """Release what ``setup`` took."""

    def info(self) -> dict[str, str]:
        """Resolved settings recorded in the session summary (device, dtype, sizes...)."""
        out = {key: str(value) for key, value in self.params.items()}
        out["warmup_s"] = f"{self.warmup_s:g}"
        if self.device is not None:
            out.update(workload_torch.torch_info(self.device))
        return out


def resolve_params(cls: type[Workload], given: Mapping[str, object]) -> dict[str, object]:
    """Merge ``given`` over ``cls.defaults`` (plus ``warmup_s``), typed like the defaults."""
    defaults: dict[str, object] = {**cls.defaults, "warmup_s": float(cls.warmup_s)}
    label = cls.name or cls.__name__
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise BadInput(
            f"unknown param {unknown[0]!r} for workload {label!r}: "
            f"valid keys are {', '.join(defaults)}"
        )
    resolved = dict(defaults)
    for key, value in given.items():
        resolved[key] = coerce_param(key, value, defaults[key], label)
    return resolved


def coerce_param(key: str, value: object, default: object, workload: str = "") -> object:
    """Convert ``value`` (usually a string) to the type of ``default``, or raise BadInput."""
    if default is None:
        return value
    kind = type(default)
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    text = str(value).strip()
    try:
        if kind is bool:
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
            raise ValueError(text)
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
        if kind is str:
            return text
    except ValueError:
        pass
    else:
        return value
    expected = {bool: "true or false", int: "an integer", float: "a number"}.get(
        kind, kind.__name__
    )
    where = f" for workload {workload!r}" if workload else ""
    raise BadInput(f"param {key}={value!r}{where} must be {expected}, e.g. {key}={default}")
