"""Which jtop power rail is the GPU, the CPU and the module input, per Jetson board.

Pure functions over rail names (docs/jetson-power.md, "Rails by board"). Names are matched
EXACTLY and in a fixed order: substring matching would misfile ``VDD_CPU_GPU_CV`` (the shared
CPU+GPU+CV rail of Xavier NX / Orin NX / Orin Nano) as a CPU rail.
"""

from __future__ import annotations

from collections.abc import Iterable

from carbontop.model import BoardBasis, Scope

# GPU rails, dedicated first, then shared ones. First match wins.
GPU_RAILS: tuple[tuple[str, Scope], ...] = (
    ("GPU", Scope.GPU_ONLY),  # AGX Xavier
    ("VDD_GPU", Scope.GPU_ONLY),  # TX1, AGX Thor
    ("POM_5V_GPU", Scope.GPU_ONLY),  # Nano
    ("VDD_SYS_GPU", Scope.GPU_ONLY),  # TX2
    ("VDD_GPU_SOC", Scope.GPU_SOC_SHARED),  # AGX Orin
    ("VDD_CPU_GPU_CV", Scope.CPU_GPU_CV_SHARED),  # Xavier NX, Orin NX, Orin Nano
    ("VDD_CPU_GPU", Scope.CPU_GPU_SHARED),  # TX2 NX
)

# CPU rails. VDD_CPU_CV (AGX Orin) also carries the CV accelerators (DLA, PVA): it is "CPU+CV",
# still the best CPU measurement on that board. VDD_CPU_SOC_MSS (Thor) is CPU+SOC+MSS: used in
# place of CodeCarbon's CPU estimate for what it holds, and named so.
CPU_RAILS: tuple[str, ...] = (
    "POM_5V_CPU", "VDD_CPU_CV", "CPU", "VDD_SYS_CPU", "VDD_CPU", "VDD_CPU_SOC_MSS")

# CPU rails whose figure contains more than the CPU, with what it contains.
CPU_RAIL_SCOPES: dict[str, str] = {"VDD_CPU_CV": "CPU+CV shared",
                                   "VDD_CPU_SOC_MSS": "CPU+SOC+MSS shared"}

# Input rails, in jtop's own order of preference. jtop moves the one it finds out of
# ``power['rail']`` into ``power['tot']`` and sets ``tot['name']``.
INPUT_RAILS: tuple[str, ...] = ("VIN", "POM_5V_IN", "VDD_IN")

# Input rails that are not the module's. POM_5V_IN and VDD_IN are INA3221 channels on the
# module's own input ("input rail VDD_IN"). Thor's VIN is an INA238 on the CARRIER board: its
# figure holds the module plus the carrier's own consumption, so it is labelled as such and never
# taken for VDD_IN (jtop falls back to VDD_IN for a tick where VIN does not read: that tick is not
# the board figure).
CARRIER_INPUT_LABELS: dict[str, str] = {"VIN": "carrier input VIN (INA238)"}


def gpu_rail(rails: Iterable[str]) -> tuple[str, Scope] | None:
    """The GPU rail among ``rails`` and what it contains, or None when the board has none."""
    names = set(rails)
    for name, scope in GPU_RAILS:
        if name in names:
            return name, scope
    return None


def cpu_rail(rails: Iterable[str]) -> str | None:
    """The CPU rail among ``rails`` (exact names only), or None."""
    names = set(rails)
    for name in CPU_RAILS:
        if name in names:
            return name
    return None


def cpu_rail_scope(name: str) -> str:
    """What a CPU rail's figure contains: "CPU only" or e.g. "CPU+CV shared"."""
    return CPU_RAIL_SCOPES.get(name, "CPU only")


def input_rail(rails: Iterable[str]) -> str | None:
    """The input rail jtop takes for the board among ``rails`` (VIN, POM_5V_IN, VDD_IN), or
    None."""
    names = set(rails)
    for name in INPUT_RAILS:
        if name in names:
            return name
    return None


def is_carrier_input(name: str | None) -> bool:
    """True for an input rail on the carrier board (Thor's VIN), not on the module."""
    return name in CARRIER_INPUT_LABELS


def input_rail_label(name: str) -> str:
    """How a board figure read on input rail ``name`` is labelled where it is shown and written:
    "input rail VDD_IN" for a module rail, "carrier input VIN (INA238)" for Thor's VIN."""
    return CARRIER_INPUT_LABELS.get(name, f"input rail {name}")


def board_label(basis: BoardBasis | None, rail: str | None) -> str | None:
    """What the board figure is, as shown and written (``board_basis`` columns): "input rail
    VDD_IN", "carrier input VIN (INA238)", "sum of rails"; None when there is none."""
    if basis is None:
        return None
    if basis is BoardBasis.INPUT_RAIL and rail:
        return input_rail_label(rail)
    return f"{basis.value} {rail}" if rail else basis.value
