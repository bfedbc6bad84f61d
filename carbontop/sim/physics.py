"""The simulated board's physics: rail watts, clocks and the die temperature.

The rails' idle and peak watts in :mod:`carbontop.sim.boards` are those of the board's default
mode. In another mode the GPU-driven part of a rail scales with (GPU MHz / default GPU MHz)^1.5
and the CPU-driven part with (online cores / default cores) x (CPU MHz / default CPU MHz)^1.5:
dynamic power grows faster than the clock, the voltage rising with it. Thermal throttling
lowers both caps by one factor. The governors move the clocks from their idle floor to the cap
with the load. The die follows the module's power with a first-order lag of THERMAL_TAU_S.

Pure arithmetic over a :class:`SimBoard` and the load levels of :mod:`carbontop.sim.load`;
the noise comes from the ``random.Random`` the caller passes (seeded per tick).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from carbontop.sim.boards import SimBoard, SimPowerMode, SimRail

FREQ_EXPONENT = 1.5  # dynamic power ~ clock^1.5 (the voltage rises with the clock)
AMBIENT_C = 36.0
THERMAL_TAU_S = 30.0  # simulated seconds for the die to get 63 % of the way to a new level
HOT_RISE_C = 38.0  # die rise over ambient at the default mode's full load


def _scale(value: float, default: float) -> float:
    return (value / default) ** FREQ_EXPONENT if default > 0 else 1.0


@dataclass(frozen=True)
class Envelope:
    """What a power mode, throttled by ``cap_factor``, lets the board draw and clock."""

    gpu_scale: float  # the GPU-driven power relative to the default mode's
    cpu_scale: float  # the CPU-driven power relative to the default mode's
    cpu_cap_mhz: float
    gpu_cap_mhz: float

    @classmethod
    def of(cls, board: SimBoard, mode: SimPowerMode, cap_factor: float = 1.0) -> Envelope:
        default = board.default_mode
        return cls(
            gpu_scale=_scale(mode.gpu_max_mhz * cap_factor, default.gpu_max_mhz),
            cpu_scale=(mode.cores_online / default.cores_online)
            * _scale(mode.cpu_max_mhz * cap_factor, default.cpu_max_mhz),
            cpu_cap_mhz=mode.cpu_max_mhz * cap_factor,
            gpu_cap_mhz=mode.gpu_max_mhz * cap_factor,
        )


def rail_watts(rail: SimRail, gpu_level: float, cpu_level: float, envelope: Envelope,
               rng: random.Random) -> float:
    """One rail's watts at these load levels (0..1), with 2 % noise (4 % under GPU load)."""
    top = max(1.0, envelope.gpu_scale, envelope.cpu_scale)  # 1.0 in the default mode
    noise = 0.04 if gpu_level > 0.5 else 0.02
    drive = min(top, rail.gpu * gpu_level * envelope.gpu_scale
                + rail.cpu * cpu_level * envelope.cpu_scale)
    watts = rail.idle_w + (rail.peak_w - rail.idle_w) * drive
    return max(0.0, watts * (1.0 + rng.gauss(0.0, noise)))


def input_watts(board: SimBoard, module_w: float, rng: random.Random) -> float:
    """The module input rail's watts: the board's base plus its factor x the module rails."""
    watts = board.input_base_w + board.input_factor * module_w
    return watts * (1.0 + rng.gauss(0.0, 0.01))


def clocks_mhz(board: SimBoard, envelope: Envelope, gpu_level: float,
               cpu_level: float) -> tuple[float, float]:
    """(CPU MHz, GPU MHz): the governors climb from the idle floor to the cap with the load
    (the CPU at 30 % load, the GPU at 60 %)."""
    cpu_cap, gpu_cap = envelope.cpu_cap_mhz, envelope.gpu_cap_mhz
    cpu = min(cpu_cap, board.cpu_min_mhz + (cpu_cap - board.cpu_min_mhz) * min(
        1.0, cpu_level / 0.3))
    gpu = min(gpu_cap, board.gpu_min_mhz + (gpu_cap - board.gpu_min_mhz) * min(
        1.0, gpu_level / 0.6))
    return cpu, gpu


class Thermal:
    """The die temperature: it follows the module's power with a lag of THERMAL_TAU_S.

    At the default mode's full load (every rail at its peak) the die settles HOT_RISE_C over
    AMBIENT_C; it starts where the idle rails would hold it. Not thread-safe: its owner
    serialises the calls.
    """

    def __init__(self, board: SimBoard) -> None:
        full_w = sum(r.peak_w for r in board.rails)
        self._c_per_w = HOT_RISE_C / full_w if full_w > 0 else 0.0
        self._die_c = AMBIENT_C + self._c_per_w * sum(r.idle_w for r in board.rails)
        self._t = 0.0

    def die_c(self, at_s: float, module_w: float) -> float:
        """The die at simulated time ``at_s`` with the module drawing ``module_w`` since the
        last call (a call for an earlier time moves the die no further)."""
        target = AMBIENT_C + self._c_per_w * module_w
        dt = max(0.0, at_s - self._t)
        self._t = max(self._t, at_s)
        self._die_c += (target - self._die_c) * (1.0 - math.exp(-dt / THERMAL_TAU_S))
        return self._die_c
