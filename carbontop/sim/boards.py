"""The simulated Jetson's catalogue: its modules, their power rails, nvpmodel modes and sensors.

The boards themselves are data, in ``boards.toml`` beside this file (one table a board); this
module gives them their types (:class:`SimBoard`, :class:`SimRail`, :class:`SimPowerMode`),
checks every field's type as it reads them, and reads them once, when first asked. Each board
has a few nvpmodel power modes (figures approximate, after NVIDIA's published mode tables). The
rails' idle and peak watts are those of the board's default mode (:mod:`carbontop.sim.physics`
scales them in the other modes).
"""

from __future__ import annotations

import functools
import sys
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from carbontop.errors import BadInput
from carbontop.sim import DEFAULT_SIM_BOARD

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 (JetPack 6 ships 3.10)
    import tomli as tomllib

CATALOGUE = Path(__file__).with_name("boards.toml")

# Sensor names as jtop 7 derives them from the thermal zones, each with its offset from the
# die (None: offline, reads -256, like Orin's CV sensors on many modules).
SIM_SENSORS: dict[str, tuple[tuple[str, float | None], ...]] = {
    "tegra234": (
        ("cpu", 0.0), ("cv0", None), ("gpu", -1.5), ("soc0", -4.0), ("soc1", -3.5),
        ("soc2", -4.5), ("tj", 1.0),
    ),
    "tegra194": (
        ("AO", -6.0), ("AUX", -4.0), ("CPU", 0.0), ("GPU", -1.0), ("PLL", -3.0),
        ("thermal", 0.5),
    ),
    "tegra210": (("AO", -5.0), ("CPU", 0.0), ("GPU", -1.5), ("PLL", -2.0), ("thermal", -0.5)),
}


@dataclass(frozen=True)
class SimRail:
    """One INA3221 channel: idle and peak watts, and how much of each load drives it."""

    name: str
    idle_w: float
    peak_w: float
    gpu: float = 0.0  # weight of the GPU load (0..1)
    cpu: float = 0.0  # weight of the CPU load (0..1)
    volt_mv: int = 5000


@dataclass(frozen=True)
class SimPowerMode:
    """One nvpmodel mode: its name and the caps it sets (its id is its index on the board)."""

    name: str
    cpu_max_mhz: float
    cores_online: int
    gpu_max_mhz: float
    needs_reboot: bool = False  # a different GPU power-gating mask: jtop will not switch to it


@dataclass(frozen=True)
class SimBoard:
    """A simulated module: its rails, its input rail (None: jtop sums the rails), its modes."""

    key: str
    module: str  # what jtop's board['hardware']['Module'] says; JtopSource's device_name
    model: str
    soc: str
    gpu_name: str
    l4t: str
    jetpack: str
    nvpmodel: str
    cpus: int
    rails: tuple[SimRail, ...]
    input_rail: str | None = None
    input_base_w: float = 0.0  # input = base + factor x (sum of the module rails)
    input_factor: float = 1.0
    modes: tuple[SimPowerMode, ...] = ()  # by id; ``nvpmodel`` names the default one
    cpu_min_mhz: float = 729.6  # where the governors park the clocks when idle
    gpu_min_mhz: float = 306.0

    def mode_id(self, name: str) -> int:
        """The id of mode ``name``; BadInput listing the modes otherwise."""
        for idx, mode in enumerate(self.modes):
            if mode.name == name:
                return idx
        modes = ", ".join(m.name for m in self.modes)
        raise BadInput(f"unknown power mode {name!r} for {self.key}: choose one of {modes}")

    @property
    def default_mode(self) -> SimPowerMode:
        return self.modes[self.mode_id(self.nvpmodel)]

    @property
    def sensors(self) -> tuple[tuple[str, float | None], ...]:
        """The SoC's temperature sensors, each with its offset from the die (None: offline)."""
        return SIM_SENSORS.get(self.soc, SIM_SENSORS["tegra234"])


def sim_board(name: str) -> SimBoard:
    """The profile called ``name``; BadInput listing the valid names otherwise."""
    boards = sim_boards()
    try:
        return boards[name]
    except KeyError:
        raise BadInput(
            f"unknown simulated board {name!r}: choose one of {', '.join(boards)}"
        ) from None


@functools.cache
def sim_boards() -> dict[str, SimBoard]:
    """Every simulated board by key, in the catalogue's order (read once)."""
    return load_catalogue(CATALOGUE.read_text(encoding="utf-8"), str(CATALOGUE))


def load_catalogue(text: str, where: str = "boards.toml") -> dict[str, SimBoard]:
    """The boards of a catalogue in TOML. ValueError naming the board and the field for a
    missing, unknown or mistyped field, or a default mode that is not among the board's modes."""
    boards: dict[str, SimBoard] = {}
    for key, table in tomllib.loads(text).items():
        at = f"{where}: [{key}]"
        if not isinstance(table, dict):
            raise ValueError(f"{at} is not a table")
        rails = tuple(_build(SimRail, r, f"{at} rails") for r in _rows(table, "rails", at))
        modes = tuple(_build(SimPowerMode, m, f"{at} modes") for m in _rows(table, "modes", at))
        board = _build(SimBoard, {**table, "key": key, "rails": rails, "modes": modes}, at)
        if board.nvpmodel not in {m.name for m in modes}:
            raise ValueError(f"{at}: nvpmodel {board.nvpmodel!r} is not one of its modes")
        boards[key] = board
    if DEFAULT_SIM_BOARD not in boards:
        raise ValueError(f"{where}: no [{DEFAULT_SIM_BOARD}], the default board")
    return boards


def _rows(table: dict[str, Any], name: str, at: str) -> list[dict[str, Any]]:
    rows = table.get(name)
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        raise ValueError(f"{at}: {name} must be a non-empty list of tables")
    return rows


T = TypeVar("T", bound="DataclassInstance")
_SCALARS: dict[str, tuple[type, ...]] = {"str": (str,), "int": (int,), "float": (int, float),
                                         "bool": (bool,)}


def _build(cls: type[T], table: dict[str, Any], at: str) -> T:
    """``cls(**table)``, each scalar field checked against its annotation (``float``,
    ``str | None``...) and an int taken as a float where a float is due."""
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise ValueError(f"{at}: unknown field {unknown[0]!r}")
    values: dict[str, Any] = {}
    for name, f in known.items():
        if name not in table:
            if f.default is MISSING:
                raise ValueError(f"{at}: {name} is missing")
            continue
        value, kinds = table[name], str(f.type).replace(" ", "").split("|")
        if set(kinds) <= {*_SCALARS, "None"} and not _fits(value, kinds):
            raise ValueError(f"{at}: {name} = {value!r} is not {' or '.join(kinds)}")
        values[name] = float(value) if kinds == ["float"] else value
    return cls(**values)


def _fits(value: object, kinds: list[str]) -> bool:
    if value is None:
        return "None" in kinds
    if isinstance(value, bool):  # an int to isinstance, never a number here
        return "bool" in kinds
    return any(isinstance(value, _SCALARS[k]) for k in kinds if k != "None")
