"""An engine that is built when it opens, on the thread that opens it.

The dashboard shows its first frame before anything slow has happened: opening the power source
(jtop's service, NVML, or the simulated board, which waits for a second sample on boards that
sum their rails), importing CodeCarbon and starting its tracker all happen in the worker that
calls :meth:`DeferredEngine.open`. Until then the object answers like an engine with nothing to
show: no snapshot, no history, no session.

Never imports Textual; the build function is given by the caller (``carbontop.tui.app``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from carbontop.engine_api import EngineFace, Listener, SessionRequest
from carbontop.errors import CarbontopError
from carbontop.model import FinalStatus

if TYPE_CHECKING:
    from carbontop.engine import Engine
    from carbontop.results.store import ResultStore
    from carbontop.sources.base import PowerSource
    from carbontop.summary import SessionSummary
    from carbontop.views import HistoryPoint, Snapshot

log = logging.getLogger(__name__)

#: Builds the engine (not opened). ``say(level, text)`` reaches the engine's listeners.
#: Returns the engine and what to close with it (a metrics exporter), or None.
Build = Callable[[Listener], "tuple[Engine, Callable[[], None] | None]"]


class NotReady(CarbontopError):
    """Asked for something the engine can only do once it has opened."""


class DeferredEngine:
    """An :class:`~carbontop.engine_api.EngineFace`, as :class:`carbontop.engine.Engine` is, for the
    dashboard; see the module docstring.

    ``open()`` builds and opens (raises what the build raises: a :class:`BadInput` for a source
    asked for by name and absent). ``close()`` is safe from any thread, before, during or after
    ``open()``: an engine built after ``close()`` is closed at once and never opened; one being
    opened is closed when its ``open()`` returns. After ``close()`` the engine's last snapshot
    stays readable.
    """

    #: The dashboard need not wait for open() to end before close(): see close().
    closes_while_opening = True

    def __init__(self, build: Build) -> None:
        self._build = build
        self._engine: Engine | None = None
        self._close_extra: Callable[[], None] | None = None
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()
        self._closed = False
        self._engine_closed = False
        self._opener: threading.Thread | None = None  # the thread inside open(), while it is
        self._open_finished = threading.Event()
        self._open_finished.set()

    @property
    def built(self) -> Engine | None:
        """The real engine once built (then opening, open, or closed), else None."""
        return self._engine

    # -- life cycle ------------------------------------------------------------------------

    def open(self) -> None:
        with self._lock:
            if self._closed or self._opener is not None:
                return
            self._opener = threading.current_thread()
            self._open_finished.clear()
        try:
            engine, close_extra = self._build(self._say)
            with self._lock:
                closed = self._closed
                if not closed:
                    self._engine, self._close_extra = engine, close_extra
                    for listener in self._listeners:
                        engine.add_listener(listener)
            if closed:  # quit while building: nothing was measured, nothing to write
                _close_quietly(engine.close, close_extra)
                return
            engine.open()
        finally:
            with self._lock:
                self._opener = None
                self._open_finished.set()

    def close(self) -> None:
        """Closes the engine (the session written); from any thread, at any time, once."""
        with self._lock:
            self._closed = True
            opening = self._opener is not None and self._engine is not None
            mine = self._opener is threading.current_thread()
        if opening and not mine:
            # Engine.open and Engine.close must not overlap: the engine closes once open() is
            # done. (While building there is nothing to wait for: open() closes what it builds
            # and never opens it.)
            self._open_finished.wait()
        with self._lock:
            if self._engine_closed or self._engine is None:
                return
            self._engine_closed = True
            engine, close_extra = self._engine, self._close_extra
            self._close_extra = None
        _close_quietly(engine.close, close_extra)

    def add_listener(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.append(listener)
            engine = self._engine
        if engine is not None:
            engine.add_listener(listener)

    def _say(self, level: str, text: str) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(level, text)
            except Exception:  # noqa: BLE001 - a broken listener must not stop the build
                log.exception("listener failed")

    # -- what the dashboard reads ----------------------------------------------------------

    def snapshot(self) -> Snapshot | None:
        engine = self._engine
        return engine.snapshot() if engine is not None else None

    def history(self) -> list[HistoryPoint]:
        engine = self._engine
        return engine.history() if engine is not None else []

    @property
    def session_running(self) -> bool:
        engine = self._engine
        return engine is not None and engine.session_running

    @property
    def source(self) -> PowerSource | None:
        engine = self._engine
        return engine.source if engine is not None else None

    @property
    def store(self) -> ResultStore | None:
        engine = self._engine
        return engine.store if engine is not None else None

    # -- what the dashboard asks -----------------------------------------------------------

    def start_session(self, request: SessionRequest) -> str:
        return self._ready().start_session(request)

    def stop_session(self, status: FinalStatus = FinalStatus.STOPPED) -> None:
        """Stops a running session (as ``stopped`` unless told otherwise); nothing if none."""
        engine = self._engine
        if engine is not None:
            engine.stop_session(status)

    def wait_session(self, timeout: float | None = None) -> SessionSummary | None:
        return self._ready().wait_session(timeout)

    def export(self) -> list[Path]:
        return self._ready().export()

    def _ready(self) -> Engine:
        engine = self._engine
        if engine is None:
            raise NotReady("the meters are still starting: try again in a second")
        return engine


def _close_quietly(close: Callable[[], None], close_extra: Callable[[], None] | None) -> None:
    for step in (close, close_extra):
        if step is None:
            continue
        try:
            step()
        except Exception:  # noqa: BLE001 - closing must reach every step
            log.exception("closing failed")


if TYPE_CHECKING:  # mypy checks that both engines are what the faces take them for
    _FACES: tuple[type[EngineFace], ...] = (Engine, DeferredEngine)
