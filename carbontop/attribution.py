"""What a session's total is, and how it splits into GPU, CPU and RAM, counting no joule twice.

docs/measurement.md rule 5: a module input rail (VDD_IN, POM_5V_IN) or jtop's sum of rails already
contains CPU, GPU and DRAM; a shared GPU rail already contains the CPU (or the SOC); a measured CPU
rail beats CodeCarbon's CPU estimate. One function decides the total, names its basis, says which
measured channels it rests on (their gaps are the total's unmeasured time) and splits it into the
three component figures CodeCarbon's columns expect, which add up to the total.
"""

from __future__ import annotations

from dataclasses import dataclass

from carbontop import boards
from carbontop.model import BoardBasis, Scope, SourceInfo


@dataclass(frozen=True)
class Components:
    """The total split three ways (kWh); ``note`` says what each part holds when not the obvious."""

    gpu_kwh: float | None
    cpu_kwh: float | None
    ram_kwh: float | None
    note: str = ""


@dataclass(frozen=True)
class Attribution:
    total_kwh: float | None
    basis: str
    rests_on: tuple[str, ...]  # measured channels the total rests on: "gpu", "board", "cpu_rail"
    components: Components


def _board_label(info: SourceInfo) -> str:
    if info.board_basis is BoardBasis.SUM_OF_RAILS:
        return "sum of all board rails (measured)"
    rail = info.board_rail or "?"
    if boards.is_carrier_input(rail):
        return f"{boards.input_rail_label(rail)} (measured)"
    return f"board {boards.input_rail_label(rail)} (measured)"


def attribute(info: SourceInfo, gpu_kwh: float | None, board_kwh: float | None,
              cpu_kwh: float | None, ram_kwh: float | None,
              cpu_rail_kwh: float | None = None) -> Attribution:
    """The total on its basis, and its split into GPU, CPU and RAM.

    ``cpu_kwh`` and ``ram_kwh`` are CodeCarbon's; ``cpu_rail_kwh`` is the board's CPU rail.
    """
    if board_kwh is not None and info.board_basis is not None:
        return _board_total(info, board_kwh, gpu_kwh, ram_kwh, cpu_rail_kwh)
    if gpu_kwh is None and (info.measures_gpu or info.board_basis is not None):
        # The source measures this board but nothing was integrated (every reading lost):
        # CodeCarbon's CPU and RAM alone would pass for a total they are not.
        lost = ("board",) if info.board_basis is not None else ("gpu",)
        return Attribution(None, "nothing measured (the power source's readings were lost)",
                           lost, Components(None, None, None))
    scope = info.gpu_scope
    if gpu_kwh is not None and scope is not None and scope.is_shared \
            and scope is not Scope.GPU_SOC_SHARED:
        # A shared GPU rail already contains the CPU: add only RAM.
        label = f"GPU rail {info.gpu_rail} ({scope.value}, measured)"
        if ram_kwh is None:
            return Attribution(gpu_kwh, f"{label}; RAM unavailable", ("gpu",),
                               Components(gpu_kwh, None, None, f"gpu_energy holds {scope.value}"))
        return Attribution(gpu_kwh + ram_kwh, f"{label} + RAM (CodeCarbon, estimated)", ("gpu",),
                           Components(gpu_kwh, 0.0, ram_kwh,
                                      f"gpu_energy holds {scope.value}; cpu_energy is in it"))
    cpu, cpu_label, cpu_channel = _cpu_figure(info, cpu_kwh, cpu_rail_kwh)
    if gpu_kwh is not None:
        gpu_label = ("GPU+SOC rail (measured)" if scope is Scope.GPU_SOC_SHARED
                     else "GPU (measured)")
        rests = ("gpu",) + cpu_channel
        if cpu is None:
            what = "CPU or RAM" if scope is Scope.GPU_SOC_SHARED else "CPU and RAM"
            return Attribution(gpu_kwh, f"{gpu_label}; {what} unavailable", ("gpu",),
                               Components(gpu_kwh, None, None))
        if ram_kwh is None:  # CodeCarbon down: a measured CPU rail still counts
            return Attribution(gpu_kwh + cpu, f"{gpu_label} + {cpu_label}; RAM unavailable",
                               rests, Components(gpu_kwh, cpu, None,
                                                 _holds(info, scope, cpu_channel)))
        return Attribution(gpu_kwh + cpu + ram_kwh,
                           f"{gpu_label} + {cpu_label} + RAM (CodeCarbon)", rests,
                           Components(gpu_kwh, cpu, ram_kwh, _holds(info, scope, cpu_channel)))
    if cpu is not None and ram_kwh is not None:
        label = "CPU + RAM (CodeCarbon)" if not cpu_channel else f"{cpu_label} + RAM (CodeCarbon)"
        return Attribution(cpu + ram_kwh, f"{label}; no GPU measured",
                           cpu_channel, Components(None, cpu, ram_kwh))
    return Attribution(None, "nothing measured", (), Components(None, None, None))


def _cpu_figure(info: SourceInfo, cpu_kwh: float | None, cpu_rail_kwh: float | None
                ) -> tuple[float | None, str, tuple[str, ...]]:
    """The CPU figure to add: the board's CPU rail where measured, else CodeCarbon's."""
    if cpu_rail_kwh is not None and info.cpu_rail is not None:
        scope = boards.cpu_rail_scope(info.cpu_rail)
        held = "" if scope == "CPU only" else f", {scope}"
        return cpu_rail_kwh, f"CPU rail {info.cpu_rail} (measured{held})", ("cpu_rail",)
    return cpu_kwh, "CPU (CodeCarbon)", ()


def _holds(info: SourceInfo, scope: Scope | None, cpu_channel: tuple[str, ...]) -> str:
    parts = []
    if scope is Scope.GPU_SOC_SHARED:
        parts.append(f"gpu_energy holds {scope.value}")
    if cpu_channel and info.cpu_rail is not None:
        cpu_scope = boards.cpu_rail_scope(info.cpu_rail)
        if cpu_scope != "CPU only":
            parts.append(f"cpu_energy holds {cpu_scope}")
    return "; ".join(parts)


def _board_total(info: SourceInfo, board_kwh: float, gpu_kwh: float | None,
                 ram_kwh: float | None, cpu_rail_kwh: float | None) -> Attribution:
    """The board figure is the total. The GPU rail and a measured CPU rail are carved out of it
    first (measured beats estimated), then CodeCarbon's RAM estimate from what is left; the
    rest of the board figure goes with the CPU."""
    gpu = min(gpu_kwh, board_kwh) if gpu_kwh is not None else 0.0
    cpu_rail = (min(cpu_rail_kwh, board_kwh - gpu)
                if cpu_rail_kwh is not None and info.cpu_rail is not None else 0.0)
    ram = min(ram_kwh, board_kwh - gpu - cpu_rail) if ram_kwh is not None else 0.0
    rest = max(0.0, board_kwh - gpu - ram)  # the CPU rail and what no rail names
    gpu_what = (f"{info.gpu_rail} ({info.gpu_scope.value})"
                if info.gpu_rail and info.gpu_scope else "no GPU rail")
    cpu_what = (f"CPU rail {info.cpu_rail} (measured) + the rest of the board figure"
                if cpu_rail_kwh is not None and info.cpu_rail is not None
                else "the rest of the board figure")
    note = (f"gpu_energy = {gpu_what}, ram_energy = RAM (CodeCarbon, estimated), "
            f"cpu_energy = {cpu_what} (CPU, SOC, memory controller...)")
    return Attribution(board_kwh, _board_label(info), ("board",),
                       Components(gpu if gpu_kwh is not None else None, rest,
                                  ram if ram_kwh is not None else None, note))


def total_and_basis(info: SourceInfo, gpu_kwh: float | None, board_kwh: float | None,
                    cpu_kwh: float | None, ram_kwh: float | None,
                    cpu_rail_kwh: float | None = None) -> tuple[float | None, str]:
    """The session total and what it is. Never adds a figure that another already contains."""
    a = attribute(info, gpu_kwh, board_kwh, cpu_kwh, ram_kwh, cpu_rail_kwh)
    return a.total_kwh, a.basis
