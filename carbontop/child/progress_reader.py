"""A command's progress lines (:mod:`carbontop.progress`), applied to the run as they come.

The program writes lines to the pipe named by ``$CARBONTOP_PROGRESS_FD``; the command runner
(:mod:`.command`) calls :meth:`ProgressReader.read` whenever the pipe is readable. The lines are
parsed by :func:`carbontop.progress.parse_line`, the protocol's one definition.
"""

from __future__ import annotations

import logging
import os

from carbontop.child.phases import Phases
from carbontop.clock import session_time_s
from carbontop.model import Phase
from carbontop.progress import parse_line

log = logging.getLogger(__name__)

STAMP_SLACK_S = 0.001  # a stamp's rounding (6 decimals) and clock reads in another process


class ProgressReader:
    """Applies a command's progress lines to ``phases``.

    ``phase`` starts a phase (the measured window is the last measuring phase; the program's
    first phase line is always an edge, so ``measure`` as its first word restarts the measuring
    phase the command began in); ``units`` adds units of work to the current one. Each line
    counts at its ``t=`` stamp when that is a time on the session clock between the command's
    start (``earliest_s``) and now, else at the moment it was read; a stamp is never placed before
    the current phase's start. Units are reported to the monitor at most every
    ``phases.units_every_s`` and at every edge, however often the program writes them.
    """

    def __init__(self, phases: Phases, fd: int, earliest_s: float) -> None:
        self.phases = phases
        self.fd = fd
        self.earliest_s = earliest_s
        self.open = True  # False once every writer has closed the pipe
        self.used = False
        self._phases_used = False
        self._buffer = b""
        self._last_units_report_s = float("-inf")
        self._warned_stamp = False

    def read(self) -> None:
        """Handle every complete line readable now (never blocks)."""
        while self.open:
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                return
            except OSError as exc:
                log.warning("cannot read progress lines: %s", exc)
                self.open = False
                return
            read_s = session_time_s()
            if not chunk:
                self.open = False
                chunk = b"\n"  # a last line without its newline still counts
            self._buffer += chunk
            *lines, self._buffer = self._buffer.split(b"\n")
            for line in lines:
                self.handle(line.decode("utf-8", "replace"), read_s)

    def handle(self, text: str, read_s: float) -> None:
        """Apply one line that was read at ``read_s``."""
        try:
            line = parse_line(text)
        except ValueError as exc:
            log.warning("ignoring a progress line (%s): %.200r", exc, text)
            return
        if line is None:  # the program's own output
            return
        at_s = self._when(line.t_s, read_s)
        phases = self.phases
        # The program's first phase line takes the phases over, even when it names the phase the
        # child started it in: "measure" as its first word starts the window there, not at the
        # command's start (its interpreter and imports are not measured).
        if line.phase is not None and (
            Phase(line.phase) is not phases.phase or not self._phases_used
        ):
            self.used = self._phases_used = True
            phases.report_units(t_s=at_s)
            phases.enter(Phase(line.phase), t_s=at_s)
            self._last_units_report_s = at_s
        if line.subphase is not None:
            phases.enter_subphase(line.subphase, t_s=at_s)
            self._last_units_report_s = at_s
        if line.units is not None:
            self.used = True  # the protocol's units replace "one run"
            phases.add_units(line.units)
            if line.unit:
                phases.events.unit = line.unit
            if at_s - self._last_units_report_s >= phases.units_every_s:
                phases.report_units(t_s=at_s)
                self._last_units_report_s = at_s

    def _when(self, stamp_s: float | None, read_s: float) -> float:
        at_s = read_s
        if stamp_s is not None:
            if self.earliest_s - STAMP_SLACK_S <= stamp_s <= read_s + STAMP_SLACK_S:
                at_s = min(stamp_s, read_s)
            elif not self._warned_stamp:
                self._warned_stamp = True
                log.warning(
                    "progress stamp t=%.6f is not a CLOCK_MONOTONIC time between the command's "
                    "start (%.6f) and now (%.6f): lines count from when they are read",
                    stamp_s, self.earliest_s, read_s,
                )
        return max(at_s, self.phases.phase_start)
