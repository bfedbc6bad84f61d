"""The child's phases, units and sub-phases so far, and the events that report them.

The workload loop (:mod:`.loop`), a command's progress lines (:mod:`.progress_reader`) and a
workload's ``progress`` hook all move the run along through one :class:`Phases`: a phase edge,
units of work, a sub-phase edge, the end of the measured window. Each is reported to the monitor
as an event stamped where it happened on the session clock.
"""

from __future__ import annotations

import logging

from carbontop import events
from carbontop.child.writer import EventWriter
from carbontop.clock import session_time_s
from carbontop.model import Phase
from carbontop.progress import OTHER_SUBPHASE

log = logging.getLogger(__name__)

UNITS_EVERY_S = 0.25
"""Units are reported at most this often (phase edges at once): ``--units-every``'s default."""


class Phases:
    """Where the run is: the current phase since ``phase_start``, its units and flops, the
    measured window's sub-phases, and the window's totals once it closed."""

    def __init__(self, events: EventWriter, units_every_s: float = UNITS_EVERY_S) -> None:
        self.events = events
        self.units_every_s = units_every_s
        self.phase = Phase.LOADING
        self.units = 0.0
        self.flops: float | None = None
        self.phase_start = session_time_s()
        # measuring units, flops and seconds once the window closed
        self.measured: tuple[float, float | None, float] = (0.0, None, 0.0)
        # the measured window's end on the session clock: the "done" event's stamp
        self.window_end_s: float | None = None
        # the measuring phase's sub-phases: the open one, and units per sub-phase (cumulative)
        self.subphase: str | None = None
        self.subphase_units: dict[str, float] = {}
        self._warned_subphase = False

    def enter(self, phase: Phase, t_s: float | None = None) -> None:
        """Start ``phase`` at ``t_s`` on the session clock (default: now) and report the edge."""
        start = session_time_s() if t_s is None else t_s
        log.info("phase: %s", phase.value)
        self.phase = phase
        self.units = 0.0
        self.flops = None
        self.phase_start = start
        self.subphase = None
        self.subphase_units = {}
        self.events.emit(
            events.PHASE, phase=phase, t_s=start, info={"t_monotonic_s": f"{start:.6f}"}
        )

    def report_units(self, t_s: float | None = None) -> None:
        """The current phase's units so far, as of ``t_s`` (default: now)."""
        self.events.emit(events.UNITS, phase=self.phase, units=self.units, flops=self.flops,
                         t_s=t_s, subphase_units=self.subphase_units)

    def add_units(self, amount: float, flops: float | None = None) -> None:
        """Units of work done (and their flops, when known): to the current phase, and to the
        current sub-phase if one is open."""
        self.units += amount
        if flops is not None:
            self.flops = (self.flops or 0.0) + flops
        if self.subphase is not None:
            self.subphase_units[self.subphase] = self.subphase_units.get(self.subphase, 0.0) \
                + amount

    def enter_subphase(self, name: str | None, t_s: float | None = None) -> None:
        """Sub-phase ``name`` (None: none, the window's "other") starts at ``t_s`` (default: now),
        never before the measuring phase's start nor after now. Outside the measured window it is
        ignored, with one warning in the log."""
        if self.phase is not Phase.MEASURING:
            if not self._warned_subphase:
                self._warned_subphase = True
                log.warning("sub-phase %r outside the measured window: ignored (sub-phases "
                            "split the measured window only)", name)
            return
        now = session_time_s()
        at_s = now if t_s is None else min(now, max(t_s, self.phase_start))
        self.subphase = None if name in (None, OTHER_SUBPHASE) else name
        if self.subphase is not None:
            self.subphase_units.setdefault(self.subphase, 0.0)
        self.events.emit(events.SUBPHASE, phase=self.phase, units=self.units, flops=self.flops,
                         t_s=at_s, subphase=self.subphase, subphase_units=self.subphase_units)

    def close_window(self, end_s: float) -> None:
        """The measuring phase ends at ``end_s``: report its units there and keep its totals."""
        self.report_units(t_s=end_s)
        self.measured = (self.units, self.flops, end_s - self.phase_start)
        self.window_end_s = end_s
