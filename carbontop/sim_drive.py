"""Driving the simulated board's load from the session: its phase and the child's real CPU load.

With ``--gpu-source sim`` (``--demo``) the simulated Jetson's power follows what the session does:
idle between sessions and during an idle baseline, the phase's level while loading, warming up
and measuring, and, while the child runs, as hard as the child really works (a busy core drives
the simulated GPU fully, an idle child leaves it idle). Off the simulator there is nothing to
drive and every call here does nothing.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Protocol

from carbontop.model import Phase

log = logging.getLogger(__name__)

MIN_FOLLOW_S = 0.25  # the child's CPU time is read at the sampling pace, never faster than this


class SimulatedLoad(Protocol):
    """The simulated board's load model, as the session drives it (carbontop/sources/sim.py)."""

    def set_phase(self, phase: Phase | None) -> None: ...

    def set_cpu_fraction(self, f: float) -> None: ...

    def set_gpu_intensity(self, x: float) -> None: ...


class SimDriver:
    """Hands the session's phase and the child's CPU load to the simulated board, if any.

    The child's load is read at the sampling pace, no faster: reading its CPU time (psutil) 4
    times a second cost 0.27 % of a core at 1 s sampling, and no sample would show the
    difference.
    """

    def __init__(self, load: SimulatedLoad | None, interval_s: float) -> None:
        self.load = load
        self.every_s = max(MIN_FOLLOW_S, interval_s)
        self._next_s = 0.0

    @property
    def active(self) -> bool:
        return self.load is not None

    def set_phase(self, phase: Phase | None) -> None:
        """The session's phase (None: idle, as between sessions)."""
        if self.load is not None:
            self.load.set_phase(phase)

    def begin(self) -> None:
        """A new child: its load is read at the first :meth:`follow`."""
        self._next_s = 0.0

    def follow(self, cpu_fraction: Callable[[], float]) -> None:
        """Sets the simulated load from the child's CPU use, once per :attr:`every_s`."""
        if self.load is None or time.monotonic() < self._next_s:
            return
        self._next_s = time.monotonic() + self.every_s
        try:
            fraction = cpu_fraction()
            self.load.set_cpu_fraction(fraction)
            self.load.set_gpu_intensity(min(1.0, fraction * (os.cpu_count() or 1)))
        except Exception:  # noqa: BLE001
            log.debug("cpu fraction unavailable", exc_info=True)
