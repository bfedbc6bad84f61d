"""The dashboard: one Engine, one refresh timer, panels that each render a Snapshot.

The engine measures from ``open()`` (run off the UI thread: CodeCarbon's start takes ~1.4 s) to
``close()``; the app only reads snapshots and asks for sessions. The engine calls our listener from
its own threads, so messages cross into the app with ``post_message`` (thread-safe).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shlex
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on
from textual.app import App, ComposeResult, ScreenStackError, SystemCommand
from textual.binding import Binding, BindingType
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.events import Resize
from textual.message import Message as TextualMessage
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, OptionList, Static
from textual.worker import Worker, WorkerState

from carbontop.config import Settings
from carbontop.engine_api import EngineFace, SessionRequest
from carbontop.errors import CarbontopError
from carbontop.model import FinalStatus
from carbontop.registry import WorkloadEntry
from carbontop.sources.base import BoardControl
from carbontop.tui.messages import Message
from carbontop.tui.screens import (
    BoardScreen,
    ConfirmQuit,
    HelpScreen,
    MessagesScreen,
    RunCommandScreen,
)
from carbontop.tui.screens.board import board_line, board_state_of
from carbontop.tui.widgets import (
    EnergyPanel,
    MessagesPanel,
    PowerChart,
    PowerPanel,
    StatusBar,
    WorkloadMenu,
    WorkloadPanel,
)

if TYPE_CHECKING:
    from carbontop.engine import Engine
    from carbontop.views import Snapshot

log = logging.getLogger(__name__)

MIN_WIDTH, MIN_HEIGHT = 60, 16
STARTING_TEXT = "opening the power source and CodeCarbon…"
REFRESH_S = 0.4  # numbers: at most 2.5 Hz (short sampling intervals)
REFRESH_MAX_S = 1.0  # ...and at least once a second (the elapsed time, the state line)
CHART_S = 1.0  # the plot: at most 1 Hz (a redraw costs 16-90 ms)
MAX_MESSAGES = 2000


class EngineSays(TextualMessage):
    """A line from the engine's listener, posted from whichever thread the engine was on."""

    def __init__(self, level: str, text: str) -> None:
        super().__init__()
        self.level = level
        self.text = text


class EngineOpened(TextualMessage):
    def __init__(self, error: str | None) -> None:
        super().__init__()
        self.error = error


class WorkloadCommands(Provider):
    """``Run workload: NAME`` for every workload in the command palette."""

    def _commands(self) -> list[tuple[str, Callable[[], None], str]]:
        app = self.app
        assert isinstance(app, CarbontopApp)
        return [(f"Run workload: {entry.name}", partial(app.start_workload, entry.name),
                 entry.error or entry.description) for entry in app.workloads]

    async def discover(self) -> Hits:
        for text, callback, help_text in self._commands():
            yield DiscoveryHit(text, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for text, callback, help_text in self._commands():
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), callback, help=help_text)


class CarbontopApp(App[int]):
    """Live watts, kWh and CO2 of the board, and the workload sessions run from its menu."""

    CSS_PATH = "app.tcss"
    TITLE = "carbontop"
    COMMANDS = App.COMMANDS | {WorkloadCommands}
    HORIZONTAL_BREAKPOINTS = [
        (0, "-tiny-w"), (MIN_WIDTH, "-narrow"), (80, "-normal"), (110, "-wide")]
    VERTICAL_BREAKPOINTS = [
        (0, "-tiny-h"), (MIN_HEIGHT, "-short"), (24, "-compact"), (30, "-medium"), (40, "-tall")]
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "start", "Start", id="start",
                tooltip="Start the selected workload (Enter in the menu does too)"),
        Binding("x", "stop", "Stop", id="stop",
                tooltip="Stop the session; its results are written"),
        Binding("e", "export", "Export", id="export", tooltip="Write the three CSVs now"),
        Binding("m", "messages", "Messages", id="messages",
                tooltip="Source lost/regained, CodeCarbon problems, files written"),
        # Not shown in the footer (it is full at 80 columns): in the help and the palette.
        Binding("h", "history", "History", show=False, id="history",
                tooltip="Past sessions of the results directory"),
        Binding("r", "run_command", "Run command", show=False, id="run_command",
                tooltip="Measure any program as a workload session"),
        Binding("b", "board", "Board", show=False, id="board",
                tooltip="Power mode, clocks, temperature; switch the power mode"),
        Binding("question_mark", "help", "Help", key_display="?", id="help",
                tooltip="Every key"),
        Binding("q", "quit", "Quit", id="quit", tooltip="Quit (asks first if a session runs)"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True, id="interrupt"),
    ]

    def __init__(self, engine: EngineFace, workloads: Sequence[WorkloadEntry],
                 settings: Settings, *, clock: Callable[[], float] = time.time,
                 params: Mapping[str, Mapping[str, str]] | None = None) -> None:
        """``engine``: an engine not yet opened (carbontop/engine_api.py: an Engine, the
        dashboard's DeferredEngine, or a test's stand-in). ``params``: per-workload parameters,
        ``{"matmul": {"size": "256"}}``."""
        super().__init__()
        self.engine = engine
        self.workloads = list(workloads)
        self.settings = settings
        self.clock = clock
        self.params = {name: dict(p) for name, p in (params or {}).items()}
        self.messages: deque[Message] = deque(maxlen=MAX_MESSAGES)
        self.refreshes = 0  # snapshot refreshes so far (a figure the tests and the README use)
        self.opened = False
        self.open_error: str | None = None
        self._open_done = threading.Event()
        self._open_started = False
        self._close_lock = threading.Lock()
        self._engine_closed = False
        self._quitting = False
        self._starting = False
        self._session_on = False
        self._last_chart = float("-inf")
        self._snapshot: Snapshot | None = None
        self._signals: list[int] = []
        self.fatal_error: Exception | None = None  # the engine could not be built

    # -- layout -------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        with Horizontal(id="body"):
            with Vertical(id="left"):
                yield WorkloadMenu(self.workloads, id="menu")
                yield WorkloadPanel(id="workload")
                yield MessagesPanel(id="log-panel")
            with Vertical(id="right"):
                yield PowerPanel(id="power")
                yield EnergyPanel(id="energy")
                yield PowerChart(id="chart")
        yield Static("", id="too-small")
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        from carbontop.logs import silence_library_stderr

        silence_library_stderr()
        self.engine.add_listener(self._engine_listener)
        self._install_signal_handlers()
        self._refresh_timer: Timer | None = None
        self._at_sampling_pace = False
        self._refresh_panels()
        # After the first frame: opening imports and starts the source and CodeCarbon, work
        # that would otherwise share the interpreter with the first paint.
        self.call_after_refresh(self._start_opening)
        self.call_after_refresh(self._first_refresh)
        # 2.5 times a second until the first watts are shown (they appear as soon as the
        # source delivers), then at the sampling pace.
        self._refresh_timer = self.set_interval(REFRESH_S, self._refresh_panels, name="refresh")
        self.query_one("#menu-list", OptionList).focus()

    @property
    def refresh_s(self) -> float:
        """The panels' refresh period: the sampling pace, within 0.4-1 s. Faster than the samples
        would repaint the same figures (an idle repaint pass was most of the idle dashboard's
        CPU at 1 s); slower than a second would freeze the clock."""
        return min(REFRESH_MAX_S, max(REFRESH_S, float(self.settings.interval_s)))

    def on_resize(self, event: Resize) -> None:
        w, h = event.size.width, event.size.height
        with contextlib.suppress(NoMatches):
            self.query_one("#too-small", Static).update(
                f"Terminal {w}x{h} is too small: carbontop needs at least "
                f"{MIN_WIDTH}x{MIN_HEIGHT}.\nEnlarge the window (or zoom out). "
                "Measuring goes on; q quits.")

    # -- the engine -----------------------------------------------------------------------------

    def _start_opening(self) -> None:
        if self._quitting or self._open_started:  # quit before the first frame: nothing opens
            return
        self._open_started = True
        self.run_worker(self._open_engine, thread=True, group="engine", exit_on_error=False)

    def _open_engine(self) -> None:
        try:
            self.engine.open()
        except Exception as exc:  # noqa: BLE001 - one line for the user, traceback in the log
            if self.engine.built is None:
                # The engine could not even be built (a source asked for by name and absent, a
                # Prometheus port in use...): the dashboard could never measure, so it ends as
                # `carbontop run` would, with one line and exit 2 (bad input) or 1.
                if not isinstance(exc, CarbontopError):
                    log.exception("the engine could not be built")
                self.fatal_error = exc
                code = exc.exit_code if isinstance(exc, CarbontopError) else 1
                with contextlib.suppress(RuntimeError):
                    self.call_from_thread(self.exit, code, code)
            else:  # built, but opening failed: shown on screen, the app stays up
                log.exception("the engine failed to open")
                self._post(EngineOpened(str(exc) or type(exc).__name__))
        else:
            self._post(EngineOpened(None))
        finally:
            self._open_done.set()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # An opening worker cancelled before it ran (the app ended at once) never reaches
        # _open_engine's finally: close_engine must not wait for it.
        if event.worker.group == "engine" and event.state in (WorkerState.CANCELLED,
                                                              WorkerState.ERROR):
            self._open_done.set()

    def _engine_listener(self, level: str, text: str) -> None:
        self._post(EngineSays(level, text))

    def _post(self, message: TextualMessage) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closing: nothing left to show
            self.post_message(message)

    def on_engine_opened(self, event: EngineOpened) -> None:
        self.opened = event.error is None
        self.open_error = event.error
        if event.error:
            self.add_message("error", f"measuring could not start: {event.error}")
            self.notify(event.error, title="Measuring could not start", severity="error",
                        timeout=10)
        else:
            out = self.engine.store
            where = out.describe() if out is not None else str(self.settings.output_dir)
            self.add_message("info", f"measuring; results will be written to {where}")
        self._refresh_panels()
        self.screen.refresh_bindings()

    def on_engine_says(self, event: EngineSays) -> None:
        self.add_message(event.level, event.text)
        if event.level in ("warning", "error"):
            self.notify(event.text, severity="error" if event.level == "error" else "warning",
                        timeout=6)

    def add_message(self, level: str, text: str) -> None:
        stamp = datetime.fromtimestamp(self.clock()).strftime("%H:%M:%S")
        message = Message(stamp, level, text)
        self.messages.append(message)
        if not self.is_running:  # said before the app runs: shown once it does
            return
        with contextlib.suppress(NoMatches):
            panel = self.query_one(MessagesPanel)
            if panel.display:
                panel.show(self.messages)
        for screen in self.screen_stack:
            if isinstance(screen, MessagesScreen):
                screen.add(message)

    def close_engine(self) -> None:
        """Stops a running session (as stopped, unless already told otherwise), writes, ends
        every engine thread. Safe from any thread, and more than once."""
        with self._close_lock:
            if self._engine_closed:
                return
            if self._open_started and not self.engine.closes_while_opening:
                self._open_done.wait(30.0)
            try:
                self.engine.close()
            except Exception:  # noqa: BLE001
                log.exception("closing the engine failed")
            self._engine_closed = True

    # -- the refresh timer ------------------------------------------------------------------

    def _refresh_panels(self) -> None:
        """One Snapshot into every panel; the chart at most once a second, and only if shown."""
        snap = self.engine.snapshot()
        self._snapshot = snap
        self.refreshes += 1
        try:
            if snap is None:  # a DeferredEngine still opening its source
                self.query_one(StatusBar).starting(STARTING_TEXT, self._state_note())
                return
            self._show(snap)
            if (not self._at_sampling_pace and self._refresh_timer is not None
                    and snap.live.sample_age_s is not None):
                self._at_sampling_pace = True
                self._refresh_timer.stop()
                self._refresh_timer = self.set_interval(self.refresh_s, self._refresh_panels,
                                                        name="refresh")
        except NoMatches:  # a panel's parts are not mounted yet (start) or already gone (exit)
            log.debug("refresh skipped: panels not mounted")

    def _show(self, snap: Snapshot) -> None:
        menu = self.query_one(WorkloadMenu)
        selected = menu.selected
        self.query_one(StatusBar).show(snap, self.opened or self._quitting, self._state_note(),
                                       self._board_text())
        self.query_one(PowerPanel).show(snap)
        self.query_one(EnergyPanel).show(snap)
        self.query_one(WorkloadPanel).show(snap, selected.name if selected else None)
        self.call_after_refresh(self._fit_left)
        panel = self.query_one(MessagesPanel)
        if panel.display:
            panel.show(self.messages)
        running = snap.session is not None
        if running != self._session_on:
            self._session_on = running
            self.screen.refresh_bindings()
        now = time.monotonic()
        if now - self._last_chart >= CHART_S:
            history = self.engine.history()
            self.query_one(PowerPanel).spark(history, snap.t_unix_s)
            chart = self.query_one(PowerChart)
            if chart.display and chart.size.height > 0:
                chart.draw(history, snap.t_unix_s, snap.source)
            self._last_chart = now

    def _fit_left(self) -> None:
        """The workload panel whole in the left column: the menu above it gives up rows when
        the panel grows (its sub-phase table), and takes them back when it shrinks."""
        with contextlib.suppress(NoMatches):
            left = self.query_one("#left")
            height = left.content_size.height
            if height <= 0:
                return
            menu, log_panel = self.query_one(WorkloadMenu), self.query_one(MessagesPanel)
            used = sum(w.outer_size.height for w in left.children
                       if w.display and w is not menu and w is not log_panel)
            if log_panel.display and log_panel.styles.min_height is not None:
                used += int(log_panel.styles.min_height.value)
            if menu.fit(height - used):  # the panel's width may change with the column's
                self.call_after_refresh(self._refresh_panels)  # scrollbar: its text again

    def _board_text(self) -> str:
        """``MAXN · 44 °C``, fixed width, where the source reports a board state; else ``""``."""
        source = self.engine.source
        if not isinstance(source, BoardControl):
            return ""
        return board_line(board_state_of(source), fixed=True)

    def _first_refresh(self) -> None:
        """Once the layout has sizes: the chart can be drawn at once rather than in a second."""
        self._last_chart = float("-inf")
        self._refresh_panels()

    def _state_note(self) -> str | None:
        if self._quitting:
            return "stopping and saving…"
        if self.open_error:
            return f"measuring could not start: {self.open_error}"
        return None

    # -- actions --------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "start":
            return None if self._session_on or self._quitting else True
        if action == "stop":
            return True if self._session_on else None
        return True

    def action_start(self) -> None:
        entry = self.query_one(WorkloadMenu).selected
        if entry is not None:
            self.start_workload(entry.name)

    @on(OptionList.OptionSelected, "#menu-list")
    def _menu_enter(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self.start_workload(event.option.id)

    def start_workload(self, name: str) -> None:
        entry = next((e for e in self.workloads if e.name == name), None)
        if entry is None:
            self._refuse(f"unknown workload {name}")
            return
        self.query_one(WorkloadMenu).select(name)
        if entry.error:
            self._refuse(f"{name} is broken: {entry.error}")
            return
        if not self._may_start():
            return
        self._starting = True
        self.run_worker(partial(self._start_blocking, entry), thread=True, group="session",
                        exit_on_error=False)

    def _start_blocking(self, entry: WorkloadEntry) -> None:
        try:
            self.engine.start_session(SessionRequest.from_settings(
                self.settings, entry.name, self.params.get(entry.name, {})))
        except CarbontopError as exc:
            self._post(EngineSays("error", f"{entry.name} did not start: {exc}"))
        except Exception as exc:  # noqa: BLE001
            log.exception("start_session failed")
            self._post(EngineSays("error", f"{entry.name} did not start: {exc}"))
        finally:
            self._starting = False

    def _may_start(self) -> bool:
        """Whether a session may start now; says why not."""
        if self._quitting:
            return False
        if not self.opened:
            self._refuse(self.open_error and f"measuring could not start: {self.open_error}"
                         or "still starting the meters: try again in a second")
            return False
        if self._starting or self.engine.session_running:
            self._refuse("a session is already running: stop it first (x)")
            return False
        return True

    def _refuse(self, text: str) -> None:
        self.add_message("warning", text)
        self.notify(text, severity="warning", timeout=4)

    def action_stop(self) -> None:
        if self.engine.session_running:
            self.engine.stop_session(FinalStatus.STOPPED)
            self.add_message("info", "stopping the session…")

    def action_export(self) -> None:
        if not self.opened:
            self._refuse("nothing to export yet: the meters are starting")
            return
        self.run_worker(self._export_blocking, thread=True, group="export", exit_on_error=False)

    def _export_blocking(self) -> None:
        try:
            paths = self.engine.export()
        except Exception as exc:  # noqa: BLE001
            log.exception("export failed")
            self._post(EngineSays("error", f"export failed: {exc}"))
            return
        text = "\n".join(str(p) for p in paths)
        with contextlib.suppress(RuntimeError):
            self.call_from_thread(self.notify, text, title="Exported", timeout=8)

    def action_messages(self) -> None:
        if not isinstance(self.screen, MessagesScreen):
            self.push_screen(MessagesScreen(self.messages))

    def action_history(self) -> None:
        from carbontop.tui.screens.history import HistoryScreen  # ~50 ms: not at start-up

        if not isinstance(self.screen, HistoryScreen):
            self.push_screen(HistoryScreen(self.settings.output_dir))

    def action_board(self) -> None:
        source = self.engine.source
        if source is None:
            self._refuse("still opening the power source: try again in a second")
            return
        if not isinstance(self.screen, BoardScreen):
            self.push_screen(BoardScreen(source))

    def action_run_command(self) -> None:
        if isinstance(self.screen, RunCommandScreen):
            return

        def answered(text: str | None) -> None:
            if text is not None:
                self.run_command(text)

        self.push_screen(RunCommandScreen(), answered)

    def run_command(self, text: str) -> None:
        """Starts ``text`` (split with shlex, no shell) as the workload child of a session."""
        try:
            argv = shlex.split(text)
        except ValueError as exc:
            self._refuse(f"cannot run that command: {exc}")
            return
        if not argv:
            self._refuse("no command given")
            return
        if not self._may_start():
            return
        self._starting = True
        self.run_worker(partial(self._start_command_blocking, text.strip(), argv), thread=True,
                        group="session", exit_on_error=False)

    def _start_command_blocking(self, text: str, argv: list[str]) -> None:
        name = "command: " + text[:60]
        try:
            run_id = self.engine.start_session(SessionRequest(
                name, duration_s=self.settings.duration_s, command=tuple(argv)))
        except CarbontopError as exc:
            self._post(EngineSays("error", f"{name} did not start: {exc}"))
            return
        except Exception as exc:  # noqa: BLE001
            log.exception("start_session failed")
            self._post(EngineSays("error", f"{name} did not start: {exc}"))
            return
        finally:
            self._starting = False
        store = self.engine.store
        if store is not None:
            try:
                where = store.workload_log_path(run_id)
            except OSError as exc:
                self._post(EngineSays("warning", f"no workload log: {exc}"))
            else:
                self._post(EngineSays("info", f"the command's output goes to {where}"))

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    async def action_quit(self) -> None:
        if self._quitting or isinstance(self.screen, ConfirmQuit):
            return
        if self.engine.session_running:
            snap = self._snapshot
            name = snap.session.workload if snap is not None and snap.session else "A workload"

            def answered(yes: bool | None) -> None:
                if yes:
                    self.shutdown(0)

            self.push_screen(ConfirmQuit(name), answered)
            return
        self.shutdown(0)

    def shutdown(self, return_code: int) -> None:
        """Stops and writes in a thread (a child may take a second to stop), then exits."""
        if self._quitting:
            return
        self._quitting = True
        self._refresh_panels()
        with contextlib.suppress(ScreenStackError):
            self.screen.refresh_bindings()

        def close_then_exit() -> None:
            self.close_engine()
            with contextlib.suppress(RuntimeError):
                self.call_from_thread(self.exit, return_code, return_code)

        self.run_worker(close_then_exit, thread=True, group="shutdown", exit_on_error=False)

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Export", "Write the three CSVs now and show where",
                            self.action_export)
        yield SystemCommand("Stop the session", "Stop the running workload; results are written",
                            self.action_stop)
        yield SystemCommand("Messages", "Source lost/regained, CodeCarbon problems, files",
                            self.action_messages)
        yield SystemCommand("History", "Past sessions: compare them, replay their power",
                            self.action_history)
        yield SystemCommand("Run command...", "Measure any program as a workload session",
                            self.action_run_command)
        yield SystemCommand("Board", "Power mode, clocks, temperature; switch the power mode",
                            self.action_board)
        yield SystemCommand("Help", "Every key carbontop knows", self.action_help)

    # -- signals: a dropped SSH session (SIGHUP) or a kill (SIGTERM) ------------------------

    def _install_signal_handlers(self) -> None:
        try:
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGHUP, signal.SIGTERM):
                loop.add_signal_handler(signum, self._on_signal, signum)
                self._signals.append(signum)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, Windows
            log.warning("cannot install SIGHUP/SIGTERM handlers", exc_info=True)

    def _on_signal(self, signum: int) -> None:
        name = signal.Signals(signum).name
        log.warning("received %s: stopping the session as interrupted", name)
        self.add_message("warning", f"received {name}: stopping the session as interrupted")
        self.engine.stop_session(FinalStatus.INTERRUPTED)
        self.shutdown(128 + signum)

    def on_unmount(self) -> None:
        with contextlib.suppress(RuntimeError):
            loop = asyncio.get_running_loop()
            for signum in self._signals:
                loop.remove_signal_handler(signum)
        self._signals.clear()


def run_dashboard(settings: Settings) -> int:
    """``carbontop`` without a command: runs the app at once and builds the engine (as ``carbontop
    run`` does) in the app's opening worker, so the first frame waits for neither the source nor
    CodeCarbon. Returns the app's exit code; bad input found while building (a source asked for
    by name and absent, a Prometheus port in use) ends the app and is raised here as one line.
    The engine is closed (the session written) however the app ends."""
    from carbontop.carbon import resolve_intensity
    from carbontop.deferred_engine import DeferredEngine
    from carbontop.registry import list_workloads
    from carbontop.results.store import check_output_dir

    logging.captureWarnings(True)
    # Cheap checks of what the user typed stay before the first frame: one line, exit 2.
    resolve_intensity(settings.country, settings.region, settings.carbon_intensity)
    check_output_dir(settings.output_dir)
    workloads = list_workloads(settings.workload_file)
    engine = DeferredEngine(partial(build_dashboard_engine, settings))
    app = CarbontopApp(engine, workloads, settings)
    try:
        code = app.run()
    finally:
        app.close_engine()
    if app.fatal_error is not None:
        raise app.fatal_error
    return int(code if code is not None else (app.return_code or 0))


def build_dashboard_engine(settings: Settings, say: Callable[[str, str], None]
                           ) -> tuple[Engine, Callable[[], None] | None]:
    """The dashboard's engine and its Prometheus exporter (``--prometheus-port``), built in
    the app's opening worker."""
    from carbontop.logs import silence_library_stderr
    from carbontop.session_factory import build_engine, start_metrics

    engine = build_engine(settings)
    try:
        exporter = start_metrics(engine, settings)
    except BaseException:
        engine.close()
        raise
    silence_library_stderr()  # CodeCarbon and jtop are imported by now
    if exporter is None:
        return engine, None
    say("info", f"Prometheus metrics on {exporter.url}")
    return engine, exporter.close
