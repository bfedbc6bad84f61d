"""Which jtop power rail is the GPU, the CPU and the module input, per Jetson board.

Pure functions over rail names (docs/jetson-power.md, "Rails by board"). Names are matched
EXACTLY and in a fixed order: substring matching would misfile ``VDD_CPU_GPU_CV`` (the shared
CPU+GPU+CV rail of Xavier NX / Orin NX / Orin Nano) as a CPU rail.
"""

from __future__ import annotations

from collections.abc import Iterable

from carbontop.model import Scope

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

# Module input rails, in jtop's own order of preference. jtop moves the one it finds out of
# ``power['rail']`` into ``power['tot']`` and sets ``tot['name']``.
INPUT_RAILS: tuple[str, ...] = ("VIN", "POM_5V_IN", "VDD_IN")


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
    """The module input rail among ``rails`` (VIN, POM_5V_IN, VDD_IN), or None."""
    names = set(rails)
    for name in INPUT_RAILS:
        if name in names:
            return name
    return None


# Input rails that measure the carrier board's input rather than the module's (Thor's INA238):
# extra loads on the carrier are inside, so they never compare with another board's VDD_IN.
CARRIER_INPUT_RAILS: frozenset[str] = frozenset({"VIN"})


def input_rail_label(name: str | None) -> str:
    """How a board figure from input rail ``name`` is named: module or carrier input."""
    if name in CARRIER_INPUT_RAILS:
        return f"carrier board input {name}"
    return f"board input rail {name}"


def is_input_rail(name: str | None) -> bool:
    """True for a module input rail name (what ``power['tot']['name']`` holds when measured)."""
    return name in INPUT_RAILS
