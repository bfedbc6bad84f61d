"""One tick of named rail readings (milliwatts) as a :class:`PowerSample`, for the sources that
read the power monitors themselves (``sysfs``, ``tegrastats``).

The roles of the rails (which is the GPU and what it contains, the module input, the CPU) come
from the one catalogue in :mod:`carbontop.boards`, the one the jtop path uses, and the figures
follow jtop's rules (docs/jetson-power.md): the input rail, when the board has one, is the board
figure and is left out of ``rails_w``; otherwise the board figure is the plain sum of every rail.
What differs from jtop, on purpose: a rail whose read failed this tick is a gap (``None``), never
silently left out of a sum, and negative readings (a calibration offset at idle) count as 0.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from carbontop import boards
from carbontop.model import BoardBasis, PowerSample, Scope, SourceInfo

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RailRoles:
    """What each of a board's rails is, decided once from the rail names."""

    names: tuple[str, ...]  # every rail read, the input rail included
    gpu_rail: str | None
    gpu_scope: Scope | None
    input_rail: str | None
    cpu_rail: str | None

    @classmethod
    def from_names(cls, names: Iterable[str]) -> RailRoles:
        ordered = tuple(dict.fromkeys(names))
        gpu = boards.gpu_rail(ordered)
        return cls(
            names=ordered,
            gpu_rail=gpu[0] if gpu else None,
            gpu_scope=gpu[1] if gpu else None,
            input_rail=boards.input_rail(ordered),
            cpu_rail=boards.cpu_rail(ordered),
        )

    @property
    def basis(self) -> BoardBasis | None:
        if self.input_rail is not None:
            return BoardBasis.INPUT_RAIL
        return BoardBasis.SUM_OF_RAILS if self.names else None

    def board_note(self) -> str:
        """One sentence on what the board figure is (shown by ``detect`` and the dashboard)."""
        if self.input_rail == "VIN":
            return ("board = carrier-board input VIN (Thor's INA238: the whole carrier, extra "
                    "loads on it included; not the wall)")
        if self.input_rail is not None:
            return (f"board = module input rail {self.input_rail} (not the carrier board or the "
                    "wall)")
        return "board = sum of the rails (this board has no input rail)"

    def source_info(self, kind: str, device_name: str, interval_s: float,
                    note: str) -> SourceInfo:
        return SourceInfo(
            kind=kind,
            device_name=device_name,
            gpu_count=1 if self.gpu_rail else 0,
            gpu_rail=self.gpu_rail,
            gpu_scope=self.gpu_scope,
            board_rail=self.input_rail,
            board_basis=self.basis,
            cpu_rail=self.cpu_rail,
            interval_s=interval_s,
            note=note,
        )

    def sample(self, mw: Mapping[str, float | None], t_s: float, t_unix_s: float,
               t_sensor_s: float | None = None) -> PowerSample:
        """The PowerSample of one tick. ``mw`` maps rail names to milliwatts (None: that rail's
        read failed this tick); negatives must already be clamped by the caller."""
        watts = {name: (None if mw.get(name) is None else float(mw[name] or 0.0) / 1000.0)
                 for name in self.names}
        if self.input_rail is not None:
            board_w = watts[self.input_rail]
        elif any(w is None for w in watts.values()):
            board_w = None  # a sum missing a rail is not the board
        else:
            board_w = sum(w for w in watts.values() if w is not None)
        rails_w = tuple(sorted((name, w) for name, w in watts.items()
                               if w is not None and name != self.input_rail))
        return PowerSample(
            t_s=t_s,
            t_unix_s=t_unix_s,
            t_sensor_s=t_sensor_s,
            gpu_w=watts[self.gpu_rail] if self.gpu_rail else None,
            board_w=board_w,
            board_basis=self.basis,
            board_rail=self.input_rail,
            cpu_rail_w=watts[self.cpu_rail] if self.cpu_rail else None,
            rails_w=rails_w,
        )


class NegativeNote:
    """Clamps negative readings to 0 and logs each rail's first one (once per rail)."""

    def __init__(self, reader: str) -> None:
        self._reader = reader
        self._seen: set[str] = set()

    def clamp(self, name: str, mw: float | None) -> float | None:
        if mw is None or mw >= 0:
            return mw
        if name not in self._seen:
            self._seen.add(name)
            log.warning("%s reported %g mW on %s: counted as 0 W (a calibration offset at idle)",
                        self._reader, mw, name)
        return 0.0
