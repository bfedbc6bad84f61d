"""Which power source to use: ``--gpu-source`` or, for ``auto``, the first that really answers.

``auto`` tries the sources of :data:`AUTO_ORDER` in turn: jtop (the service answers and the board
has power rails), then NVML (only if it returns a power reading: on JetPack 6/7 NVML answers but
power is NotSupported); when none answers it falls back to :data:`AUTO_FALLBACK` (CPU and RAM
only). ``carbontop detect`` reports the same walk.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

from carbontop.config import Settings
from carbontop.errors import BadInput
from carbontop.model import SourceInfo
from carbontop.sources.base import PowerSource, SourceUnavailable

log = logging.getLogger(__name__)


@dataclass
class OpenedSource:
    source: PowerSource
    info: SourceInfo
    sim_load: Any | None = None  # the simulated board's load model, when simulating
    tried: list[str] = field(default_factory=list)  # "jtop: why not", ...


def _jtop(settings: Settings) -> OpenedSource:
    from carbontop.sources.jtop import JtopSource

    source = JtopSource(interval_s=settings.interval_s)
    return OpenedSource(source, source.open())


def _nvml(settings: Settings) -> OpenedSource:
    from carbontop.sources.nvml import NvmlSource

    indices = list(settings.gpu_indices) if settings.gpu_indices is not None else None
    source = NvmlSource(gpu_indices=indices, interval_s=settings.interval_s)
    return OpenedSource(source, source.open())


def _sim(settings: Settings) -> OpenedSource:
    from carbontop.sources.sim import SimLoad, make_sim_source

    load = SimLoad()
    source = make_sim_source(board=settings.sim_board, seed=settings.seed,
                             interval_s=settings.interval_s, load=load)
    return OpenedSource(source, source.open(), sim_load=load)


def _none(settings: Settings) -> OpenedSource:
    from carbontop.sources.none import NoneSource

    source = NoneSource(interval_s=settings.interval_s)
    return OpenedSource(source, source.open())


OPENERS = {"jtop": _jtop, "nvml": _nvml, "sim": _sim, "none": _none}

# The order in which ``auto`` probes the sources, most specific first: the one list that `auto`,
# `carbontop detect` and the tests read, so that a new source is added here and nowhere else.
AUTO_ORDER: tuple[str, ...] = ("jtop", "nvml")
# What ``auto`` opens when no source of AUTO_ORDER answers: no GPU figure, CPU and RAM only.
AUTO_FALLBACK = "none"

# A jtop that answers but is set up wrong (a Jetson whose user must fix something): `auto` says
# so instead of quietly measuring no GPU.
_JTOP_MISCONFIGURED = ("does not match", "no permission", "another python", "refused this client")


def open_source(settings: Settings) -> OpenedSource:
    """Opens the source asked for; a source asked for by name and absent is bad input (exit 2)."""
    if settings.gpu_source != "auto":
        try:
            return OPENERS[settings.gpu_source](settings)
        except SourceUnavailable as exc:
            raise BadInput(f"--gpu-source {settings.gpu_source}: {exc}") from None
    tried: list[str] = []
    for name in AUTO_ORDER:
        try:
            opened = OPENERS[name](settings)
        except SourceUnavailable as exc:
            if name == "jtop" and any(m in str(exc).lower() for m in _JTOP_MISCONFIGURED):
                raise BadInput(f"jtop: {exc}") from None
            tried.append(f"{name}: {exc}")
            log.info("auto: %s unavailable: %s", name, exc)
            continue
        except Exception as exc:  # noqa: BLE001 - a probe must never take carbontop down
            tried.append(f"{name}: {exc}")
            log.warning("auto: %s probe failed", name, exc_info=True)
            continue
        opened.tried = tried
        opened.info = replace(opened.info, note=f"auto chose {name}")
        opened.source.info = opened.info
        return opened
    opened = OPENERS[AUTO_FALLBACK](settings)
    opened.tried = tried
    opened.info = replace(opened.info, note="auto found no GPU power sensor: CPU and RAM only")
    opened.source.info = opened.info
    return opened
