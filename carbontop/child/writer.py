"""Event lines onto the monitor's pipe, each in one ``write`` (atomic on a pipe).

The lines themselves are :mod:`carbontop.events`'; this module stamps and writes them. A closed
pipe (the monitor is gone) stops the child: :class:`~carbontop.child.signals.Terminated`.
"""

from __future__ import annotations

import errno
import logging
import os
import time

from carbontop.child.signals import Terminated
from carbontop.clock import session_time_s
from carbontop.events import encode_event
from carbontop.model import Phase, ProgressEvent

log = logging.getLogger(__name__)


class EventWriter:
    """Writes events to ``fd``; ``unit`` names the units of every event that carries some."""

    def __init__(self, fd: int, unit: str = "iteration") -> None:
        self.fd = fd
        self.unit = unit
        self.broken = False

    def emit(
        self,
        kind: str,
        phase: Phase | None = None,
        units: float | None = None,
        flops: float | None = None,
        message: str = "",
        info: dict[str, str] | None = None,
        t_s: float | None = None,
        subphase: str | None = None,
        subphase_units: dict[str, float] | None = None,
    ) -> None:
        """Write one event of ``kind`` (:data:`carbontop.events.KINDS`); ``t_s`` is when it
        happened on the session clock (default: now).

        An event stamped earlier than now (a program's own stamp, a window's end) gets its wall
        label moved back by the same amount, so both of its times name the same moment.
        """
        now_s = session_time_s()
        t_unix_s = time.time()
        if t_s is None:
            t_s = now_s
        else:
            t_unix_s -= now_s - t_s
        event = ProgressEvent(
            kind=kind,
            t_unix_s=t_unix_s,
            t_s=t_s,
            phase=phase,
            units=units,
            unit=self.unit if units is not None else None,
            flops=flops,
            message=message,
            info=dict(info or {}),
            subphase=subphase,
            subphase_units=dict(subphase_units or {}),
        )
        self.write(encode_event(event))

    def write(self, line: bytes) -> None:
        if self.broken:
            return
        view = memoryview(line)
        try:
            while view:
                written = os.write(self.fd, view)
                view = view[written:]
        except OSError as exc:  # EPIPE: the monitor is gone
            self.broken = True
            if exc.errno != errno.EPIPE:
                log.warning("cannot write events: %s", exc)
            raise Terminated("the monitor closed the events pipe") from exc
