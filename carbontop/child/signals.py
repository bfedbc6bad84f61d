"""How the child is told to stop: SIGTERM/SIGINT and its parent's death, as :class:`Terminated`.

A signal interrupts workload code at once (a ``step()`` may run for seconds); elsewhere (while an
event line is written) it is only recorded and acted on at the next :meth:`Signals.check`, so an
event line is never cut in half. The parent's death arrives as SIGTERM (``PR_SET_PDEATHSIG``),
with a ``getppid()`` check as the fallback.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import TypeVar

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
_T = TypeVar("_T")


class Terminated(BaseException):
    """SIGTERM/SIGINT arrived, or the parent died: stop now."""

    def __init__(self, reason: str, signum: int = signal.SIGTERM) -> None:
        super().__init__(reason)
        self.reason = reason
        self.signum = signum


class Signals:
    """Turns SIGTERM/SIGINT into :class:`Terminated`, but only inside workload code.

    ``parent_pid``: :meth:`check` also stops when the parent is no longer that process.
    """

    def __init__(self, parent_pid: int | None = None) -> None:
        self.parent_pid = parent_pid
        self.pending: int | None = None
        self.inside = False

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._handle)
        signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.pending is None:
            self.pending = signum
        if self.inside:
            self.inside = False
            raise Terminated(f"stopped by {signal.Signals(signum).name}", signum)

    def check(self) -> None:
        """Raise :class:`Terminated` for a signal that arrived, or for the parent's death."""
        if self.pending is not None:
            raise Terminated(f"stopped by {signal.Signals(self.pending).name}", self.pending)
        if self.parent_pid is not None and os.getppid() != self.parent_pid:
            raise Terminated("the parent process is gone")

    def call(self, fn: Callable[[], _T]) -> _T:
        """Run workload code where a signal interrupts it at once."""
        self.check()
        self.inside = True
        try:
            return fn()
        finally:
            self.inside = False


def set_parent_death_signal(expected_ppid: int | None) -> None:
    """Ask Linux to SIGTERM us when the parent thread dies; exit now if it already has."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
                log.warning("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())
        except (OSError, AttributeError) as exc:
            log.warning("prctl unavailable: %s", exc)
    if expected_ppid is not None and os.getppid() != expected_ppid:
        raise Terminated("the parent process is gone")


def die_with_parent() -> None:
    """A command's ``preexec_fn``: SIGTERM it when the child dies (the child is single-threaded,
    so running Python between fork and exec is safe here)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
