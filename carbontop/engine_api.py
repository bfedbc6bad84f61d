"""The engine as the faces see it: the request that starts a session, and the calls they make.

The dashboard (carbontop/tui/app.py), ``carbontop run`` (carbontop/cli.py, carbontop/trials.py)
and the Prometheus exporter (carbontop/exporter.py) hold an engine only through
:class:`EngineFace` (the exporter through its one call, :class:`SnapshotSource`). Two classes
implement it: :class:`carbontop.engine.Engine` and :class:`carbontop.deferred_engine.DeferredEngine`
(the dashboard's, built when it opens); mypy checks both (carbontop/deferred_engine.py names them).
What the calls return are the immutable values of carbontop/views.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from carbontop.model import FinalStatus

if TYPE_CHECKING:  # at run time only the request and FinalStatus: the dashboard imports this
    from carbontop.config import Settings  # before its first frame
    from carbontop.results.store import ResultStore
    from carbontop.sources.base import PowerSource
    from carbontop.summary import SessionSummary
    from carbontop.views import HistoryPoint, Snapshot

Listener = Callable[[str, str], None]
"""``(level, message)`` for the messages panel and the log: level is info, warning or error."""


@dataclass(frozen=True)
class SessionRequest:
    """One session to run: what to run, for how long, and how to label it.

    ``workload`` is a workload's name (``carbontop list``), or a label such as ``command: python
    train.py`` when ``command`` is given (the program measured instead of a workload class).
    ``duration_s`` is the measured window (None: the engine's settings); ``baseline_s`` seconds of
    idle power are measured first when positive. ``experiment_id`` and ``trial`` label the
    trials of one ``--repeat`` or ``--power-modes`` run. ``workload_python`` runs the workload
    child under that interpreter (None: carbontop's own).
    """

    workload: str
    params: Mapping[str, str] = field(default_factory=dict)
    duration_s: float | None = None
    workload_file: Path | None = None
    command: tuple[str, ...] | None = None
    baseline_s: float = 0.0
    experiment_id: str | None = None
    trial: str | None = None
    workload_python: Path | None = None

    @classmethod
    def from_settings(cls, settings: Settings, workload: str,
                      params: Mapping[str, str] | None = None, *,
                      command: Sequence[str] | None = None, experiment_id: str | None = None,
                      trial: str | None = None) -> SessionRequest:
        """A request with the duration, baseline, workload file and interpreter the user set."""
        return cls(workload=workload, params=dict(params or {}), duration_s=settings.duration_s,
                   workload_file=settings.workload_file,
                   command=tuple(command) if command is not None else None,
                   baseline_s=settings.baseline_s, experiment_id=experiment_id, trial=trial,
                   workload_python=settings.workload_python)


class SnapshotSource(Protocol):
    """Something that shows the monitor now: None until it has anything to show."""

    def snapshot(self) -> Snapshot | None: ...


class EngineFace(SnapshotSource, Protocol):
    """Every call a face makes of an engine.

    ``open()`` starts measuring (slow: the power source and CodeCarbon start), ``close()`` ends
    a running session as stopped, writes everything and stops every thread. ``built`` is the
    engine that measures once it exists (an :class:`~carbontop.engine.Engine` is its own; a
    deferred one's is None until built, and stays None when building failed).
    ``closes_while_opening``: whether ``close()`` may be called while ``open()`` still runs on
    another thread. ``source`` and ``store`` are None until built.
    """

    @property
    def built(self) -> object | None: ...

    @property
    def closes_while_opening(self) -> bool: ...

    @property
    def session_running(self) -> bool: ...

    @property
    def source(self) -> PowerSource | None: ...

    @property
    def store(self) -> ResultStore | None: ...

    def open(self) -> None: ...

    def close(self) -> None: ...

    def add_listener(self, listener: Listener) -> None: ...

    def history(self) -> list[HistoryPoint]: ...

    def start_session(self, request: SessionRequest) -> str:
        """Starts a session; returns its run id at once (the session runs on its own thread)."""
        ...

    def stop_session(self, status: FinalStatus = FinalStatus.STOPPED) -> None:
        """Stops the running session, ending it with ``status``; nothing if none runs."""
        ...

    def wait_session(self, timeout: float | None = None) -> SessionSummary | None:
        """The session's summary once it has ended (the last one's if none runs), else None."""
        ...

    def export(self) -> list[Path]:
        """Writes the three CSVs now: a running session as ``partial``, else the idle time."""
        ...
