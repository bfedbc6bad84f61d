"""Which power source to use: ``--gpu-source`` or, for ``auto``, the first that really answers.

``auto`` tries, in the order of :data:`AUTO_ORDER`: jtop (its service answers and the board has
power rails; it also gives board state and power modes), sysfs (the power monitors read
directly), tegrastats (NVIDIA's tool on PATH), NVML (only if it returns a power reading, and
never on a Tegra board: NVML's power queries answer NotSupported there), then none.

A jtop service that is there but unusable (version mismatch, no permission, not running, its
socket a directory) does not stop ``auto``: it measures with sysfs (or tegrastats) and its note
says in one line what is wrong with jtop and how to fix it. Where neither can measure, a
misconfigured jtop stays the error it is (exit 2). Asked for by name, any source that cannot
open is an error with its one line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from carbontop.config import Settings
from carbontop.errors import BadInput
from carbontop.model import SourceInfo
from carbontop.sim.load import SimLoad
from carbontop.source_names import AUTO, AUTO_FALLBACK, AUTO_ORDER
from carbontop.sources.base import PowerSource, SourceUnavailable

log = logging.getLogger(__name__)


@dataclass
class OpenedSource:
    source: PowerSource
    info: SourceInfo
    sim_load: SimLoad | None = None  # the simulated board's load, when simulating
    tried: list[str] = field(default_factory=list)  # "jtop: why not", ...
    # Every auto candidate in order, with what became of it: "chosen", why not, "not tried".
    candidates: list[tuple[str, str]] = field(default_factory=list)


def _jtop(settings: Settings) -> OpenedSource:
    from carbontop.sources.jtop import JtopSource

    source = JtopSource(interval_s=settings.interval_s)
    return OpenedSource(source, source.open())


def _nvml(settings: Settings) -> OpenedSource:
    from carbontop.sources.nvml import NvmlSource

    indices = list(settings.gpu_indices) if settings.gpu_indices is not None else None
    source = NvmlSource(gpu_indices=indices, interval_s=settings.interval_s)
    return OpenedSource(source, source.open())


def _sysfs(settings: Settings) -> OpenedSource:
    from carbontop.sources.sysfs import SysfsSource

    source = SysfsSource(interval_s=settings.interval_s)
    return OpenedSource(source, source.open())


def _tegrastats(settings: Settings) -> OpenedSource:
    from carbontop.sources.tegrastats import TegrastatsSource

    source = TegrastatsSource(interval_s=settings.interval_s)
    return OpenedSource(source, source.open())


def _sim(settings: Settings) -> OpenedSource:
    from carbontop.sources.sim import make_sim_source

    load = SimLoad()
    source = make_sim_source(board=settings.sim_board, seed=settings.seed,
                             interval_s=settings.interval_s, load=load)
    return OpenedSource(source, source.open(), sim_load=load)


def _none(settings: Settings) -> OpenedSource:
    from carbontop.sources.none import NoneSource

    source = NoneSource(interval_s=settings.interval_s)
    return OpenedSource(source, source.open())


# How each source of carbontop.source_names is opened (the names, AUTO_ORDER and AUTO_FALLBACK
# live there).
OPENERS: dict[str, Callable[[Settings], OpenedSource]] = {
    "jtop": _jtop, "sysfs": _sysfs, "tegrastats": _tegrastats, "nvml": _nvml, "sim": _sim,
    "none": _none}

# A jtop that answers but is set up wrong (a Jetson whose user must fix something): `auto` says
# so, and measures through sysfs or tegrastats where they can, instead of quietly measuring no
# GPU.
_JTOP_MISCONFIGURED = ("does not match", "no permission", "another python", "refused this client",
                       "is a directory")
NEVER_NVML_ON_TEGRA = "never on a Tegra board (NVML's power queries answer NotSupported there)"


def _on_tegra() -> bool:
    from carbontop.sources.sysfs import is_tegra

    try:
        return is_tegra()
    except OSError:
        return False


def open_source(settings: Settings) -> OpenedSource:
    """Opens the source asked for; a source asked for by name and absent is bad input (exit 2)."""
    if settings.gpu_source != AUTO:
        try:
            return OPENERS[settings.gpu_source](settings)
        except SourceUnavailable as exc:
            raise BadInput(f"--gpu-source {settings.gpu_source}: {exc}") from None
    tried: list[str] = []
    candidates: list[tuple[str, str]] = []
    jtop_problem: str | None = None
    for index, name in enumerate(AUTO_ORDER):
        if jtop_problem is not None and name == "nvml":
            break  # a Jetson whose jtop must be fixed: NVML is no answer there
        if name == "nvml" and _on_tegra():
            tried.append(f"nvml: {NEVER_NVML_ON_TEGRA}")
            candidates.append((name, NEVER_NVML_ON_TEGRA))
            continue
        try:
            opened = OPENERS[name](settings)
        except SourceUnavailable as exc:
            if name == "jtop" and any(m in str(exc).lower() for m in _JTOP_MISCONFIGURED):
                jtop_problem = str(exc)
            tried.append(f"{name}: {exc}")
            candidates.append((name, str(exc)))
            log.info("auto: %s unavailable: %s", name, exc)
            continue
        except Exception as exc:  # noqa: BLE001 - a probe must never take carbontop down
            tried.append(f"{name}: {exc}")
            candidates.append((name, f"failed: {exc}"))
            log.warning("auto: %s probe failed", name, exc_info=True)
            continue
        note = f"auto chose {name}"
        jtop_why = tried[0].removeprefix("jtop: ") if tried and tried[0].startswith("jtop: ") \
            else None
        if name in ("sysfs", "tegrastats") and jtop_why and "not installed" not in jtop_why:
            # A jtop service there but unusable: one line on what is wrong and its fix (jtop
            # would add board state and power modes).
            note += f"; jtop not used: {jtop_why}"
        if opened.info.note:
            note += f"; {opened.info.note}"
        candidates.append((name, "chosen"))
        candidates.extend((later, f"not tried: auto stops at the first that answers ({name})")
                          for later in AUTO_ORDER[index + 1:])
        return _chosen(opened, note, tried, candidates)
    if jtop_problem is not None:
        raise BadInput(f"jtop: {jtop_problem}")
    opened = OPENERS[AUTO_FALLBACK](settings)
    candidates.append((AUTO_FALLBACK, "chosen"))
    return _chosen(opened, "auto found no GPU power sensor: CPU and RAM only", tried, candidates)


def _chosen(opened: OpenedSource, note: str, tried: list[str],
            candidates: list[tuple[str, str]]) -> OpenedSource:
    opened.tried = tried
    opened.candidates = candidates
    opened.info = replace(opened.info, note=note)
    opened.source.info = opened.info
    return opened
