"""The interfaces of the power sources, and the life cycle they share.

:class:`PowerSource` is what every source implements. :class:`BoardControl` is what a source
that knows a Jetson's power envelope adds (jtop, and the simulated Jetson read through it): the
engine and the Board screen ask ``isinstance(source, BoardControl)``. :class:`ThreadedSource`
is the one background thread each source runs, started by ``start(sink)`` and ended by
``close()``, every event delivered under one lock so that none reaches the sink once ``close()``
has returned.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Protocol, Union, runtime_checkable

from carbontop.board_state import BoardState, BoardWatch
from carbontop.model import PowerSample, SourceInfo, SourceStatus

log = logging.getLogger(__name__)

SourceEvent = Union[PowerSample, SourceStatus]
SourceSink = Callable[[SourceEvent], None]


class SourceUnavailable(Exception):
    """The source cannot be opened here. The message is one line: the problem and the fix."""


class PowerSource(Protocol):
    """A source of power samples.

    ``open()`` connects (or raises :class:`SourceUnavailable`) and fills ``info``. ``start(sink)``
    begins delivering events from a background thread: each new :class:`PowerSample` (repeated
    sensor timestamps already dropped, milliwatts already watts, negatives already clamped) and
    each :class:`SourceStatus` change (lost, regained). ``close()`` stops the thread promptly.
    """

    info: SourceInfo

    def open(self) -> SourceInfo: ...

    def start(self, sink: SourceSink) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class BoardControl(Protocol):
    """A Jetson's performance envelope and its nvpmodel power modes (docs/jetson-power.md).

    Offered by the sources that read them (jtop; the simulated Jetson through it). Every method
    may be called from any thread; reads never raise for a missing piece (None or [] instead).
    """

    def board_state(self) -> BoardState | None:
        """The latest state: power mode, jetson_clocks, clocks, hottest sensor; None when the
        board reports none of it."""
        ...

    def board_watch(self) -> BoardWatch:
        """Extremes of the states seen since :meth:`reset_board_watch`."""
        ...

    def reset_board_watch(self) -> BoardWatch:
        """Starts a new watch (when a session starts measuring) from the latest state."""
        ...

    def power_modes(self) -> list[str]:
        """The board's power modes by id (index = id); [] when it reports none."""
        ...

    def set_power_mode(self, mode: str | int, timeout_s: float = ...) -> None:
        """Switches to ``mode`` (name or id) and returns once the board reports it. BadInput for
        an unknown mode, CarbontopError when the switch is refused or does not happen."""
        ...

    def restoring_power_mode(self, timeout_s: float = ...) -> AbstractContextManager[str | None]:
        """A context that sets the mode in force now back on leaving (yields its name, None
        where there is nothing to restore)."""
        ...


class ThreadedSource(ABC):
    """The life cycle of a source that delivers from one background thread.

    A subclass fills ``info`` in its ``__init__`` (after calling this one), makes ``open()``
    return at once when already open, and writes :meth:`_run`: the thread's body, which hands
    each event to :meth:`_emit` and ends soon after ``_stop`` is set. Optional hooks:
    :meth:`_interrupt` unblocks the thread on close (ends a child, closes a client),
    :meth:`_release` frees what ``open()`` took once the thread has ended, and
    :meth:`_runs_thread` False starts no thread at all.
    """

    info: SourceInfo

    def __init__(self) -> None:
        self._sink: SourceSink | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._emit_lock = threading.RLock()  # a sink may call close() from the thread

    @abstractmethod
    def open(self) -> SourceInfo:
        """Connects (or raises SourceUnavailable) and fills ``info``; at once when open."""

    @abstractmethod
    def _run(self) -> None:
        """The thread's body."""

    def _runs_thread(self) -> bool:
        return True

    def _interrupt(self) -> None:  # noqa: B027 - a hook, nothing to do by default
        """Called by close() once ``_stop`` is set, before waiting for the thread."""

    def _release(self) -> None:  # noqa: B027 - a hook, nothing to do by default
        """Called by close() after the thread has ended (or was left blocked in a call)."""

    def _join_timeout_s(self) -> float:
        return max(1.0, 2.0 * self.info.interval_s)

    def start(self, sink: SourceSink) -> None:
        """Opens if need be, then starts the thread; events go to ``sink`` from that thread."""
        if self._sink is not None:
            raise RuntimeError(f"{type(self).__name__} already started")
        self.open()
        self._stop.clear()
        self._sink = sink
        if self._runs_thread():
            self._thread = threading.Thread(target=self._run, name=f"carbontop-{self.info.kind}",
                                            daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stops the thread and frees the source; no event is delivered after this returns."""
        with self._emit_lock:
            self._stop.set()
            self._sink = None
        self._interrupt()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=self._join_timeout_s())
            if thread.is_alive():
                log.debug("%s thread still blocked in a call; it exits on its own",
                          self.info.kind)
        self._release()

    def _emit(self, event: SourceEvent) -> bool:
        """Hands ``event`` to the sink unless the source is closing (then False). Under the emit
        lock, so that close() returns only once no event is on its way; a broken sink never
        kills the thread."""
        with self._emit_lock:
            if self._stop.is_set() or self._sink is None:
                return False
            try:
                self._sink(event)
            except Exception:  # noqa: BLE001
                log.exception("power sink failed on %s", type(event).__name__)
            return True

    def _status(self, connected: bool, message: str) -> bool:
        """Delivers a :class:`SourceStatus`: the source lost (False) or regained its sensor."""
        return self._emit(SourceStatus(t_unix_s=time.time(), connected=connected,
                                       message=message))

    def _ticks(self, interval_s: float) -> Iterator[float]:
        """The thread's pace for a source that polls: yields now, then every ``interval_s`` on
        a grid (monotonic seconds), until the source closes. A tick missed by more than half an
        interval (a stalled thread) starts a new grid rather than reading twice in quick
        succession."""
        due = time.monotonic()
        while not self._stop.is_set():
            yield due
            due += interval_s
            now = time.monotonic()
            if due - now < interval_s / 2:
                due = now + interval_s
            if self._stop.wait(due - now):
                return
