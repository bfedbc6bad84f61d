"""The session engine: one power source, one CodeCarbon tracker, one workload child at a time.

The dashboard and ``carbontop run`` are two faces of this engine (they call it through
carbontop/engine_api.py's ``EngineFace``). It never imports Textual or torch. Sources, CodeCarbon
and the workload's reader call in from their own threads; every call takes one lock, and the
outside world sees only immutable snapshots (carbontop/views.py). This module is the session's
state machine: baseline, loading, warm-up, measuring, done, and the measured windows' edges.
Its helpers: the recovery journal (carbontop/results/journal.py) and the simulated board's load
(carbontop/sim_drive.py).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from carbontop.board_lock import BoardLock
from carbontop.carbon import CarbonIntensity, co2_kg
from carbontop.clock import session_time_s
from carbontop.config import Settings
from carbontop.cpu_ram import CpuRamMeter
from carbontop.engine_api import Listener, SessionRequest
from carbontop.errors import CarbontopError
from carbontop.meter import Traces, WindowMeter
from carbontop.model import (
    CpuRamReading,
    FinalStatus,
    Phase,
    PowerSample,
    ProgressEvent,
    SourceInfo,
    SourceStatus,
)
from carbontop.results.journal import (
    JOURNAL_EVERY_S,
    journal_meta,
    journal_progress,
    recover_orphans,
)
from carbontop.results.store import ResultStore
from carbontop.sim_drive import SimDriver, SimulatedLoad
from carbontop.sources.base import BoardControl, PowerSource, SourceEvent
from carbontop.subphases import SubphaseMeter
from carbontop.summary import Baseline, Efficiency, SessionSummary
from carbontop.views import HistoryPoint, LiveFigures, SessionView, Snapshot

log = logging.getLogger(__name__)

HISTORY_S = 600.0  # the live chart's memory: bounded, whatever the session length
DEADLINE_GRACE_S = 10.0  # how long past its measured duration a child may take to finish
CPU_RAM_START_TIMEOUT_S = 15.0
TICK_S = 1.0  # CSV flush and journal; CodeCarbon's schedules when it is paced from here
LAST_READING_WAIT_S = 1.5  # CodeCarbon measures every second: its reading spanning an end edge


class SessionBusy(CarbontopError):
    """A session already measures this board."""


class WorkloadChild(Protocol):
    """The workload child as the engine drives it (carbontop/runner.py's ``WorkloadRunner``)."""

    @property
    def failure_reason(self) -> str | None: ...

    def start(self) -> None: ...

    def stop(self) -> object: ...

    def wait(self, timeout: float | None = None) -> int:
        """The exit code; raises TimeoutError while the child runs past ``timeout``."""
        ...

    def cpu_fraction(self) -> float: ...


RunnerFactory = Callable[..., WorkloadChild]
"""``factory(workload, workload_file=..., params=..., duration_s=..., on_event=...,
log_path=...)``: a test's stand-in for the workload child."""


@dataclass
class _Session:
    request: SessionRequest  # as asked; below, what the engine made of it and what it found
    run_id: str
    workload: str
    params: dict[str, Any]
    duration_s: float
    whole: WindowMeter
    window: WindowMeter | None = None
    subphases: SubphaseMeter | None = None  # the measured window's sub-phases
    phase: Phase = Phase.LOADING
    measuring_started_s: float | None = None  # session clock
    units: float | None = None
    unit: str | None = None
    flops: float | None = None
    child_info: dict[str, str] = field(default_factory=dict)
    failure_reason: str | None = None
    stop_status: FinalStatus | None = None
    done: threading.Event = field(default_factory=threading.Event)
    summary: SessionSummary | None = None
    runner: WorkloadChild | None = None
    baseline_meter: WindowMeter | None = None
    baseline: Baseline | None = None
    board_start: Any = None  # BoardState as the measured window opened (Jetson only)
    board_end: Any = None


class Engine:
    """Monitors power from ``open()`` to ``close()``; runs one workload session at a time."""

    #: open() and close() must not overlap: the dashboard waits for open() before close().
    closes_while_opening = False

    def __init__(self, settings: Settings, source: PowerSource, intensity: CarbonIntensity,
                 cpu_ram: CpuRamMeter | None = None, sim_load: SimulatedLoad | None = None,
                 clock: Callable[[], float] = time.time,
                 runner_factory: RunnerFactory | None = None,
                 log_dir: Path | None = None,
                 monotonic: Callable[[], float] = session_time_s) -> None:
        """``clock`` is the wall clock (it only labels rows); ``monotonic`` is the session
        clock every edge, duration and integral uses (carbontop/clock.py)."""
        self.settings = settings
        self.source = source
        self.info: SourceInfo = source.info
        self.intensity = intensity
        self.cpu_ram = cpu_ram
        self.sim = SimDriver(sim_load, self.info.interval_s)
        self.clock = clock
        self.monotonic = monotonic
        self.traces = Traces(self.info)
        self._runner_factory = runner_factory
        self._lock = threading.RLock()
        self._listeners: list[Listener] = []
        self._history: deque[HistoryPoint] = deque(
            maxlen=int(HISTORY_S / max(0.05, min(self.info.interval_s, 1.0))) + 1)
        self._last_sample: PowerSample | None = None
        self._last_cpu_ram: CpuRamReading | None = None
        self._source_connected = True
        self._source_message = self.info.note
        self._session: _Session | None = None
        self._last_summary: SessionSummary | None = None
        self._idle = self._new_idle_meter()
        self._closing: list[WindowMeter] = []  # closed windows awaiting readings past their end
        self._closed = threading.Event()
        self._ticker: threading.Thread | None = None
        self.store = ResultStore(settings.output_dir, notify=self._notify, clock=clock)
        self.log_dir = log_dir
        self._board_lock = BoardLock(self.info.kind)

    # -- life cycle ---------------------------------------------------------------------------

    @property
    def built(self) -> Engine:
        """An engine exists once built: this one (a DeferredEngine's is None until then)."""
        return self

    def open(self) -> None:
        self.store.check_writable()
        recover_orphans(self.store, self._notify)
        self.source.start(self._on_source_event)
        if self.cpu_ram is not None:
            self.cpu_ram.start(self._on_cpu_ram, self._on_cpu_ram_status)
            # CodeCarbon takes a few seconds to start; a session begun before it runs would
            # have no CPU/RAM figures for its first seconds.
            deadline = time.monotonic() + CPU_RAM_START_TIMEOUT_S
            while (not self.cpu_ram.running and self.cpu_ram.error is None
                   and time.monotonic() < deadline):
                time.sleep(0.05)
        self._ticker = threading.Thread(target=self._tick_loop, name="carbontop-tick", daemon=True)
        self._ticker.start()

    def close(self) -> None:
        """Ends a running session as stopped, writes everything, and stops every thread."""
        session = self._session
        if session is not None and not session.done.is_set():
            # An earlier stop (a signal's INTERRUPTED) keeps its status.
            self.stop_session(session.stop_status or FinalStatus.STOPPED)
            session.done.wait(15.0)
        self._closed.set()
        self.source.close()
        if self.cpu_ram is not None:
            self.cpu_ram.stop()
        self.store.flush_all(final=True)

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def _notify(self, message: str, level: str = "warning") -> None:
        log.log(_LOG_LEVELS.get(level, logging.INFO), message)
        for listener in list(self._listeners):
            try:
                listener(level, message)
            except Exception:  # noqa: BLE001 - a broken listener must not stop measuring
                log.exception("listener failed")

    # -- sessions -----------------------------------------------------------------------------

    @property
    def session_running(self) -> bool:
        s = self._session
        return s is not None and not s.done.is_set()

    def start_session(self, request: SessionRequest) -> str:
        """Starts a session (an idle baseline first, when asked) and its workload child.

        Returns the run id at once; the baseline and the child run on the session's thread.
        """
        workload = request.workload
        with self._lock:
            if self.session_running:
                raise SessionBusy("a session is already running: stop it first (x)")
            self._board_lock.acquire()
            now_s, now_unix = self.monotonic(), self.clock()
            run_id = str(uuid.uuid4())
            whole = WindowMeter(self.traces, now_s, now_unix)
            session = _Session(request=request, run_id=run_id, workload=workload,
                               params=dict(request.params),
                               duration_s=request.duration_s or self.settings.duration_s,
                               whole=whole)
            if request.baseline_s > 0:
                session.phase = Phase.BASELINE
                session.baseline_meter = WindowMeter(self.traces, now_s, now_unix)
                self.sim.set_phase(None)
            else:
                self.sim.set_phase(Phase.LOADING)
            self._session = session
        self.store.begin_session(session.run_id, workload, journal_meta(
            session.workload, session.params, session.whole.start_unix_s, self.info,
            self.intensity))
        threading.Thread(target=self._run_session, args=(session,),
                         name="carbontop-session", daemon=True).start()
        self._notify(f"started {workload} (run {run_id[:8]})", "info")
        return run_id

    def _run_session(self, session: _Session) -> None:
        baseline_s = session.request.baseline_s
        if baseline_s > 0 and not self._measure_baseline(session, baseline_s):
            self._finish(session, session.stop_status or FinalStatus.STOPPED)
            return
        try:
            runner = self._make_runner(session)
            session.runner = runner
            runner.start()
        except Exception as exc:
            log.exception("workload child failed to start")
            session.failure_reason = f"could not start the workload: {exc}"
            self._finish(session, FinalStatus.FAILED)
            return
        if session.stop_status is not None:  # stop_session() came while the child was starting
            threading.Thread(target=runner.stop, name="carbontop-stop", daemon=True).start()
        self._supervise(session)

    def _measure_baseline(self, session: _Session, baseline_s: float) -> bool:
        """Idle power for ``baseline_s`` seconds before the workload; False if stopped."""
        deadline = time.monotonic() + baseline_s
        while time.monotonic() < deadline:
            if session.stop_status is not None:
                return False
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
        with self._lock:
            meter = session.baseline_meter
            assert meter is not None
            end = self.monotonic()
            meter.close(end, self.clock())
            self._closing.append(meter)
        self._finish_windows([meter])
        with self._lock:
            totals = meter.totals(end)
            idle_w = totals.mean_total_w  # over the seconds measured, not the gaps
            if idle_w is not None:
                session.baseline = Baseline(totals.duration_s, idle_w,
                                            max(totals.gpu_samples, totals.board_samples))
                self._notify(f"idle baseline: {session.baseline.idle_w:.2f} W over "
                             f"{totals.duration_s:.1f} s", "info")
            else:
                self._notify("idle baseline: nothing measured", "warning")
            session.phase = Phase.LOADING
            self.sim.set_phase(Phase.LOADING)
        return True

    def stop_session(self, status: FinalStatus = FinalStatus.STOPPED) -> None:
        session = self._session
        if session is None or session.done.is_set():
            return
        session.stop_status = status
        runner = session.runner
        if runner is not None:
            threading.Thread(target=runner.stop, name="carbontop-stop", daemon=True).start()

    def wait_session(self, timeout: float | None = None) -> SessionSummary | None:
        session = self._session
        if session is None:
            return self._last_summary
        session.done.wait(timeout)
        return session.summary

    def _make_runner(self, session: _Session) -> WorkloadChild:
        request = session.request
        kwargs: dict[str, Any] = dict(
            params=session.params, duration_s=session.duration_s,
            on_event=lambda event: self._on_progress(session, event),
            log_path=self.store.workload_log_path(session.run_id))
        if self._runner_factory is not None:
            return self._runner_factory(session.workload, workload_file=request.workload_file,
                                        **kwargs)
        from carbontop.registry import find_workload
        from carbontop.runner import WorkloadRunner

        # Units reports at the sampling pace (never above the child's 4 a second): each one
        # wakes the event reader and the engine, and nothing shows them faster.
        kwargs["units_every_s"] = max(0.25, self.info.interval_s)
        if request.command is not None:
            return WorkloadRunner.for_command(request.command, **kwargs)
        entry = find_workload(session.workload, request.workload_file)
        return WorkloadRunner.for_entry(entry, python=request.workload_python, **kwargs)

    def _supervise(self, session: _Session) -> None:
        runner = session.runner
        assert runner is not None
        self.sim.begin()
        while True:
            try:
                code = runner.wait(timeout=self._supervise_wait_s(session))
                break
            except TimeoutError:
                pass
            self.sim.follow(runner.cpu_fraction)
            started = session.measuring_started_s
            overran = started is not None and (
                self.monotonic() - started > session.duration_s + DEADLINE_GRACE_S)
            if overran:
                log.warning("workload overran its duration: stopping it")
                session.stop_status = session.stop_status or FinalStatus.STOPPED
                session.failure_reason = session.failure_reason or (
                    f"stopped by carbontop: still running {DEADLINE_GRACE_S:.0f} s after its "
                    f"measured duration")
                runner.stop()
        if session.stop_status is not None:
            status = session.stop_status
        elif code == 0:
            status = FinalStatus.FINISHED
        else:
            status = FinalStatus.FAILED
            session.failure_reason = (session.failure_reason or runner.failure_reason
                                      or f"exited with code {code}")
        self._finish(session, status)

    def _supervise_wait_s(self, session: _Session) -> float:
        """How long the supervisor may sleep: the child's exit wakes it at once; otherwise
        the simulated load's pace, or the overrun deadline (every 5 s at most, every second
        before measuring starts): a session at rest costs it no wake-ups between."""
        if self.sim.active:
            return self.sim.every_s
        started = session.measuring_started_s
        if started is None:
            return 1.0
        left = started + session.duration_s + DEADLINE_GRACE_S - self.monotonic()
        return min(5.0, max(0.25, left))

    def _finish(self, session: _Session, status: FinalStatus) -> None:
        try:
            with self._lock:
                now, now_unix = self.monotonic(), self.clock()
                for meter in (session.whole, session.window):
                    if meter is not None and meter.is_open:
                        meter.close(now, now_unix)
                        self._closing.append(meter)
                if session.subphases is not None:
                    session.subphases.close(now)
                session.phase = Phase.DONE
                self._idle = self._new_idle_meter()
                self.sim.set_phase(None)
            self._finish_windows([m for m in (session.whole, session.window) if m is not None])
            with self._lock:
                if session.subphases is not None:
                    session.subphases.finish()
                summary = self._summary(session, status, now)
                session.summary = summary
                self._last_summary = summary
            self.store.write_summary(summary, final=True)
        finally:
            self._board_lock.release()
            session.done.set()
        verb = {FinalStatus.FAILED: "failed"}.get(status, status.value)
        reason = f": {summary.failure_reason}" if summary.failure_reason else ""
        self._notify(f"{session.workload} {verb}{reason}; results in {self.store.describe()}",
                     "error" if status is FinalStatus.FAILED else "info")

    def _summary(self, session: _Session, status: FinalStatus, now: float) -> SessionSummary:
        """``now`` is on the session clock."""
        window = session.window.totals(now) if session.window is not None else None
        eff = Efficiency.compute(session.units, session.unit, session.flops, window,
                                 sample_period_s=self.traces.rule.typical_step_s())
        cc = self.cpu_ram
        subphases = (session.subphases.report(window, final=True)
                     if session.subphases is not None else None)
        return SessionSummary(
            run_id=session.run_id, status=status, workload=session.workload,
            params=_resolved_params(session.params, session.child_info),
            source=self.info, intensity=self.intensity, whole=session.whole.totals(now),
            window=window, efficiency=eff, failure_reason=session.failure_reason,
            cpu_mode=cc.cpu_mode if cc is not None else "",
            cpu_provenance=_provenance(cc),
            child_info={k: str(v) for k, v in session.child_info.items()},
            hardware=_hardware(cc), baseline=session.baseline,
            experiment_id=session.request.experiment_id, trial=session.request.trial,
            board=self._board_columns(session), subphases=subphases,
        )

    def _board_state(self) -> Any:
        """The Jetson's power mode, clocks and temperatures now (None off a Jetson)."""
        if not isinstance(self.source, BoardControl):
            return None
        try:
            return self.source.board_state()
        except Exception:  # noqa: BLE001 - a board-state read must never end a session
            log.warning("board state unavailable", exc_info=True)
            return None

    def _board_columns(self, session: _Session) -> dict[str, object]:
        if session.board_start is None:
            return {}
        from carbontop.board_state import board_state_columns

        end = session.board_end or self._board_state()
        watch = self.source.board_watch() if isinstance(self.source, BoardControl) else None
        # Both edges are read while the workload runs, so their clocks compare (loaded=True).
        return dict(board_state_columns(session.board_start, end, watch,
                                        loaded=session.board_end is not None))

    def export(self) -> list[Path]:
        """Writes the three CSVs now: a running session as ``partial``, else the idle time."""
        with self._lock:
            now, now_unix = self.monotonic(), self.clock()
            session = self._session
            if session is not None and not session.done.is_set():
                summary = self._summary(session, FinalStatus.PARTIAL, now)
            else:
                idle = self._idle.totals(now, now_unix)
                summary = SessionSummary(
                    run_id=self.store.idle_run_id, status=FinalStatus.IDLE,
                    workload="idle-monitoring", params={}, source=self.info,
                    intensity=self.intensity, whole=idle, window=idle,
                    efficiency=Efficiency.compute(None, None, None, idle),
                    cpu_mode=self.cpu_ram.cpu_mode if self.cpu_ram is not None else "",
                    cpu_provenance=_provenance(self.cpu_ram), hardware=_hardware(self.cpu_ram))
        paths = self.store.write_summary(summary, final=False)
        self._notify("exported: " + ", ".join(str(p) for p in paths), "info")
        return paths

    # -- what the sources, CodeCarbon and the child tell us ------------------------------------

    def _on_source_event(self, event: SourceEvent) -> None:
        if isinstance(event, SourceStatus):
            with self._lock:
                self._source_connected = event.connected
                self._source_message = event.message
                if event.connected:
                    self.traces.reconnected(self.source.info.interval_s)
                else:
                    self.traces.mark_gap()
            self._notify(event.message, "info" if event.connected else "warning")
            return
        with self._lock:
            if not self.traces.add_sample(event):
                return
            self._last_sample = event
            self._settle()
            cc = self._last_cpu_ram
            self._history.append(HistoryPoint(
                event.t_unix_s, event.gpu_w, event.board_w, event.cpu_rail_w,
                cc.cpu_w if cc else None, cc.ram_w if cc else None))
            session = self._session
            if session is not None and not session.done.is_set():
                gpu_kwh = session.whole.gpu_energy_kwh(event.t_s)
                self.store.add_sample(event, self.info, session.run_id, session.workload,
                                      session.phase.value, gpu_kwh, co2_kg(gpu_kwh, self.intensity))
            else:
                gpu_kwh = self._idle.gpu_energy_kwh(event.t_s)
                self.store.add_idle_sample(event, self.info, gpu_kwh,
                                           co2_kg(gpu_kwh, self.intensity))

    def _finish_windows(self, meters: list[WindowMeter]) -> None:
        """Waits (briefly) for the readings past the closed windows' end edges (the power
        sample and CodeCarbon's reading that span each edge), then freezes the edges."""
        deadline = time.monotonic() + max(LAST_READING_WAIT_S, self.traces.rule.threshold_s())
        while time.monotonic() < deadline:
            with self._lock:
                power, cpu_ram = self._source_connected, self._cpu_ram_ok()
                if not any(m.waiting_for(power, cpu_ram) for m in meters):
                    break
            time.sleep(0.05)
        with self._lock:
            for meter in meters:
                meter.finish()
                if meter in self._closing:
                    self._closing.remove(meter)

    def _on_cpu_ram(self, reading: CpuRamReading) -> None:
        with self._lock:
            self._last_cpu_ram = reading
            self.traces.add_cpu_ram(reading)
            self._settle()
            if not self.info.measures_gpu and self.info.board_basis is None:
                # No power samples arrive without a GPU: the chart follows CodeCarbon instead.
                self._history.append(HistoryPoint(reading.t_unix_s, None, None, None,
                                                  reading.cpu_w, reading.ram_w))

    def _on_cpu_ram_status(self, error: str | None) -> None:
        if error:
            self._notify(f"CPU/RAM (CodeCarbon) unavailable: {error}", "warning")

    def _on_progress(self, session: _Session, event: ProgressEvent) -> None:
        with self._lock:
            if event.kind == "phase" and event.phase is not None:
                self._enter_phase(session, event.phase, event.t_s)
            elif event.kind == "subphase":
                self._subphase_edge(session, event)
            elif event.kind == "units":
                if session.phase is Phase.MEASURING:
                    session.units, session.flops = event.units, event.flops
                    if session.subphases is not None and event.subphase_units:
                        session.subphases.set_units(event.subphase_units)
                session.unit = event.unit or session.unit
            elif event.kind == "done":
                # Sent after the last synchronize and before teardown: the window's end edge.
                if session.phase is Phase.MEASURING:
                    if event.units is not None:
                        session.units, session.flops = event.units, event.flops
                    if session.subphases is not None and event.subphase_units:
                        session.subphases.set_units(event.subphase_units)
                    self._enter_phase(session, Phase.DONE, event.t_s)
                session.unit = event.unit or session.unit
            elif event.kind == "info":
                session.child_info.update(event.info)
            elif event.kind == "error":
                session.failure_reason = event.message
        if event.kind != "units":  # units come 4 times a second; the ticker saves them
            self.store.update_journal(session.run_id, self._journal_progress(session))

    def _subphase_edge(self, session: _Session, event: ProgressEvent) -> None:
        """A sub-phase edge at the event's stamp, inside the measured window only."""
        meter, window = session.subphases, session.window
        if session.phase is not Phase.MEASURING or meter is None or window is None:
            return
        now_s = self.monotonic()
        edge = now_s if event.t_s is None else min(now_s, max(event.t_s, window.start_s))
        meter.unit = event.unit or session.unit
        meter.edge(event.subphase, edge, event.subphase_units)
        meter.settle(now_s)

    def _enter_phase(self, session: _Session, phase: Phase, t_s: float | None) -> None:
        """Moves the session to ``phase`` at ``t_s``: the child's own stamp of the edge on the
        session clock (the time it was read when the child gave none)."""
        now_s = self.monotonic()
        edge = now_s if t_s is None else min(now_s, max(t_s, session.whole.start_s))
        edge_unix = self._unix_at(edge)
        leaving_window = session.phase is Phase.MEASURING and phase is not Phase.MEASURING
        if leaving_window and session.window is not None and session.window.is_open:
            session.window.close(edge, edge_unix)
            self._closing.append(session.window)
            if session.subphases is not None:
                session.subphases.close(edge)
            session.board_end = self._board_state()
        restart = phase is Phase.MEASURING and session.phase is Phase.MEASURING
        if (phase in (Phase.LOADING, Phase.WARMUP) or restart) and session.window is not None:
            # A program went back to warm-up, or stamped a new measuring edge (its first
            # ``measure`` line after the child's own): the measured window is its last
            # measuring phase, so this one is discarded.
            if session.window in self._closing:
                self._closing.remove(session.window)
            session.window = None
            session.subphases = None
            session.measuring_started_s = None
            session.units = session.flops = None
        if phase is Phase.MEASURING and session.window is None:
            session.window = WindowMeter(self.traces, edge, edge_unix)
            session.subphases = SubphaseMeter(self.traces, edge)
            session.measuring_started_s = edge
            session.units = 0.0
            session.board_start = self._board_state()
            if isinstance(self.source, BoardControl):
                self.source.reset_board_watch()
        if phase is Phase.DONE:
            self.sim.set_phase(None)
        else:
            session.phase = phase
            self.sim.set_phase(phase)

    # -- views ---------------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        with self._lock:
            now, now_unix = self.monotonic(), self.clock()
            s = self._last_sample
            cc = self._last_cpu_ram
            live = LiveFigures(
                gpu_w=s.gpu_w if s and self._source_connected else None,
                board_w=s.board_w if s and self._source_connected else None,
                cpu_rail_w=s.cpu_rail_w if s and self._source_connected else None,
                gpu_load_pct=s.gpu_load_pct if s else None,
                cpu_w=cc.cpu_w if cc else None, ram_w=cc.ram_w if cc else None,
                sample_age_s=(now - s.t_s) if s else None)
            return Snapshot(
                t_unix_s=now_unix, source=self.info, source_connected=self._source_connected,
                source_message=self._source_message, intensity=self.intensity, live=live,
                cpu_ram_error=self.cpu_ram.error if self.cpu_ram is not None else
                "CodeCarbon not started",
                cpu_mode=self.cpu_ram.cpu_mode if self.cpu_ram is not None else "",
                cpu_provenance=_provenance(self.cpu_ram),
                session=self._session_view(now, now_unix), last_summary=self._last_summary,
                idle=self._idle.totals(now, now_unix))

    def history(self) -> list[HistoryPoint]:
        with self._lock:
            return list(self._history)

    def _session_view(self, now: float, now_unix: float) -> SessionView | None:
        session = self._session
        if session is None or session.done.is_set():
            return None
        window = session.window.totals(now, now_unix) if session.window is not None else None
        measuring = (now - session.measuring_started_s
                     if session.measuring_started_s is not None else 0.0)
        return SessionView(
            run_id=session.run_id, workload=session.workload, params=dict(session.params),
            phase=session.phase, started_unix_s=session.whole.start_unix_s,
            elapsed_s=now - session.whole.start_s,
            duration_s=session.duration_s, measuring_elapsed_s=measuring,
            whole=session.whole.totals(now, now_unix), window=window,
            efficiency=Efficiency.compute(session.units, session.unit, session.flops, window,
                                          sample_period_s=self.traces.rule.typical_step_s()),
            failure_reason=session.failure_reason,
            subphases=(session.subphases.report(window, final=False)
                       if session.subphases is not None else None))

    # -- helpers -------------------------------------------------------------------------------

    def _settle(self) -> None:
        """Lets every window freeze the edges that the newest reading has placed."""
        meters = [self._idle, *self._closing]
        session = self._session
        if session is not None and not session.done.is_set():
            meters += [m for m in (session.whole, session.window, session.baseline_meter)
                       if m is not None and not m.finished]
        for meter in meters:
            meter.settle()
        if session is not None and session.subphases is not None:
            session.subphases.settle(self.monotonic())

    def _unix_at(self, t_s: float) -> float:
        """A wall-clock label for an instant on the session clock (no wall time subtracted)."""
        return self.clock() - (self.monotonic() - t_s)

    def _new_idle_meter(self) -> WindowMeter:
        return WindowMeter(self.traces, self.monotonic(), self.clock())

    def _cpu_ram_ok(self) -> bool:
        return self.cpu_ram is not None and self.cpu_ram.error is None

    def _tick_loop(self) -> None:
        # With an externally paced CodeCarbon (CpuRamTracker.tick), this thread runs its
        # schedules too, waking at their due times (every second): one wake a second in all.
        paced = self.cpu_ram if self.cpu_ram is not None and self.cpu_ram.external_pacing \
            else None
        due = time.monotonic() + TICK_S
        journal_due = 0.0
        while not self._closed.wait(max(0.0, due - time.monotonic())):
            due = time.monotonic() + TICK_S
            if paced is not None:
                due = min(due, paced.tick())
            try:
                self.store.flush_all(final=False)
                session = self._session
                now = time.monotonic()
                if (session is not None and not session.done.is_set()
                        and now >= journal_due):
                    journal_due = now + JOURNAL_EVERY_S
                    self.store.update_journal(session.run_id, self._journal_progress(session))
            except Exception:  # noqa: BLE001 - the ticker must survive anything
                log.exception("tick failed")

    def _journal_progress(self, session: _Session) -> dict[str, Any]:
        with self._lock:
            totals = session.whole.totals(self.monotonic(), self.clock())
            return journal_progress(session.phase, session.units, session.unit, totals,
                                    self.clock(), session.failure_reason)


_CHILD_BOOKKEEPING = frozenset({"workload", "target", "unit", "pid", "python", "command_pid",
                                "duration_s", "memory_limit_bytes", "t_monotonic_s",
                                "requests", "ttft_median_s"})


def _resolved_params(given: dict[str, Any], child_info: dict[str, str]) -> dict[str, Any]:
    """The parameters as the workload resolved them (defaults, device, dtype), over the given."""
    resolved = {k: v for k, v in child_info.items() if k not in _CHILD_BOOKKEEPING}
    return {**given, **resolved}


_LOG_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def _provenance(cpu_ram: CpuRamMeter | None) -> str:
    """The ``cpu_provenance`` word: CodeCarbon's (measured, estimated), else unavailable."""
    return cpu_ram.cpu_provenance.value if cpu_ram is not None else "unavailable"


def _hardware(cpu_ram: CpuRamMeter | None) -> dict[str, str]:
    if cpu_ram is None:
        return {}
    try:
        return dict(cpu_ram.hardware_info())
    except Exception:  # noqa: BLE001
        return {}
