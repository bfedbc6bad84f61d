"""The workload child process: ``python -m workloads.child --workload NAME --events-fd FD ...``.

carbontop's monitor starts this with an argument list (no shell) and a pipe. The child runs one
workload through its phases and writes one JSON line per :class:`carbontop.model.ProgressEvent` to
the pipe; the workload's own stdout/stderr go to a log file. Phases (docs/measurement.md, rules 9
and 11): ``loading`` (imports and ``setup()``), ``warm-up`` (``step()`` for ``warmup_s``, not
measured), then ``measuring`` (``step()`` for ``--duration`` seconds of the monotonic clock, or
until the workload ends). ``synchronize()`` runs at every window edge, before the event that
marks it.

Event lines: ``{"kind", "t_unix_s", "t_s", "phase", "units", "unit", "flops", "message",
"info"}``; ``t_s`` is when it happened on the session clock (an edge's stamp is taken at the edge,
a program's progress line brings its own). Kinds ``phase``, ``units`` (cumulative in the current
phase, at most every 0.25 s and at its end), ``info``, ``error`` (then exit code 1) and ``done``
(stamped at the end of the measured window, sent before teardown). The child exits when its
parent dies (PR_SET_PDEATHSIG and a ``getppid()`` check) and promptly on SIGTERM/SIGINT.

``--command-json '["python", "train.py"]'`` runs a plain command instead of a workload: loading,
then the whole command as the measured window (one unit, "run", when it exits 0), unless it
reports its own phases and units with the progress protocol (:mod:`carbontop.progress`), whose
lines are applied as soon as they are written.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import errno
import functools
import gc
import importlib
import importlib.util
import json
import logging
import os
import select
import shlex
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

from carbontop.clock import session_time_s
from carbontop.errors import BadInput, CarbontopError
from carbontop.model import Phase, ProgressEvent
from carbontop.progress import OTHER_SUBPHASE, PROGRESS_FD_ENV, parse_line, subphase_name
from workloads.base import Progress, Step, Workload

log = logging.getLogger("workloads.child")

GROUP = "carbontop.workloads"
UNITS_EVERY_S = 0.25
CHECK_EVERY_S = 0.25  # signals, the parent and the duration, while a command runs
EXIT_POLL_S = 0.01  # how often a command's exit is polled where no pidfd is available
STAMP_SLACK_S = 0.001  # a stamp's rounding (6 decimals) and clock reads in another process
_PR_SET_PDEATHSIG = 1
_T = TypeVar("_T")


class Terminated(BaseException):
    """SIGTERM/SIGINT arrived, or the parent died: stop now."""

    def __init__(self, reason: str, signum: int = signal.SIGTERM) -> None:
        super().__init__(reason)
        self.reason = reason
        self.signum = signum


class _Signals:
    """Turns SIGTERM/SIGINT into :class:`Terminated`, but only inside workload code.

    Outside workload calls (while writing an event) the signal is only recorded and acted on at the
    next check, so an event line is never cut in half.
    """

    def __init__(self) -> None:
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
        if self.pending is not None:
            raise Terminated(f"stopped by {signal.Signals(self.pending).name}", self.pending)

    def call(self, fn: Callable[[], _T]) -> _T:
        """Run workload code where a signal interrupts it at once."""
        self.check()
        self.inside = True
        try:
            return fn()
        finally:
            self.inside = False


class EventWriter:
    """Writes events as JSON lines, each in one ``write`` (atomic on a pipe)."""

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
        """Write one event; ``t_s`` is when it happened on the session clock (default: now).

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


def encode_event(event: ProgressEvent) -> bytes:
    """One JSON line; ``phase`` as its string value."""
    data: dict[str, Any] = asdict(event)
    data["phase"] = event.phase.value if event.phase is not None else None
    return (json.dumps(data, separators=(",", ":")) + "\n").encode()


def describe(exc: BaseException) -> str:
    """``Type: message``, and ``out of memory: ...`` for every flavour of OOM."""
    if isinstance(exc, CarbontopError):  # already a one-line message for the user
        return str(exc)
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    text = text.splitlines()[0] if text.strip() else type(exc).__name__
    return f"out of memory: {text}" if is_out_of_memory(exc) else text


def is_out_of_memory(exc: BaseException) -> bool:
    """MemoryError, torch's (CUDA) OutOfMemoryError, or a CPU allocator failure."""
    if isinstance(exc, MemoryError):
        return True
    if any(cls.__name__ == "OutOfMemoryError" for cls in type(exc).__mro__):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and (
        "out of memory" in text or "can't allocate memory" in text
    )


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


def _die_with_parent() -> None:
    """preexec_fn of a command (this process is single-threaded, so it is safe here)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)


def _end_command(proc: subprocess.Popen[bytes], grace_s: float = 3.0) -> None:
    """SIGTERM the command, then SIGKILL it after ``grace_s``."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def apply_memory_limit(limit_bytes: int | None) -> None:
    """Cap the address space (RLIMIT_AS): allocations beyond it fail with MemoryError."""
    if not limit_bytes:
        return
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit_bytes = min(limit_bytes, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, hard))
    log.info("address space limited to %d bytes", limit_bytes)


def load_workload_class(
    name: str | None,
    workload_file: str | None,
    class_name: str | None,
    target: str | None = None,
) -> tuple[type[Workload], str]:
    """The Workload subclass to run and its "module:Class" or "path:Class" target.

    The monitor resolves entry points itself and passes ``target`` ("module:Class"): the child
    may run in another interpreter (``--workload-python``) where carbontop is not installed and
    its entry points do not exist. A bare ``name`` is still looked up among entry points.
    """
    if workload_file:
        return _class_from_file(Path(workload_file), name, class_name)
    if target:
        return _class_from_target(target), target
    if not name:
        raise BadInput("no workload given: pass --workload NAME or --workload-file PATH")
    found = {ep.name: ep for ep in workload_entry_points()}
    if name not in found:
        raise BadInput(
            f"unknown workload {name!r}: choose one of {', '.join(sorted(found))} (carbontop list)"
        )
    loaded = found[name].load()
    if not (isinstance(loaded, type) and issubclass(loaded, Workload)):
        raise BadInput(f"entry point {name!r} ({found[name].value}) is not a Workload subclass")
    return loaded, found[name].value


def workload_entry_points() -> list[EntryPoint]:
    """Entry points of group ``carbontop.workloads`` on every Python from 3.8.

    ``entry_points(group=...)`` exists from 3.10; 3.8 and 3.9 return a dict of groups.
    """
    found: Any = entry_points()
    if hasattr(found, "select"):
        return list(found.select(group=GROUP))
    return list(found.get(GROUP, ()))


def _class_from_target(target: str) -> type[Workload]:
    """``module:Class`` imported; BadInput naming the target when it is not a Workload."""
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise BadInput(f"--target {target!r} must be 'module:Class'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise BadInput(
            f"workload module {module_name} cannot be imported by {sys.executable} ({exc}): "
            "install what it needs in that Python"
        ) from exc
    loaded = getattr(module, attr, None)
    if not (isinstance(loaded, type) and issubclass(loaded, Workload)):
        raise BadInput(f"{target} is not a Workload subclass")
    return loaded


def _class_from_file(
    path: Path, name: str | None, class_name: str | None
) -> tuple[type[Workload], str]:
    if not path.is_file():
        raise BadInput(f"workload file {path} does not exist: check the --workload-file path")
    module_name = f"carbontop_workload_file_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise BadInput(f"workload file {path} cannot be loaded: give a .py file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    classes = [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type)
        and issubclass(obj, Workload)
        and obj is not Workload
        and obj.__module__ == module_name
    ]
    if class_name:
        classes = [cls for cls in classes if cls.__name__ == class_name]
    elif name:
        classes = [cls for cls in classes if (cls.name or cls.__name__) == name] or classes
    if not classes:
        wanted = f" named {class_name}" if class_name else ""
        raise BadInput(
            f"{path} defines no Workload subclass{wanted}: "
            "subclass workloads.base.Workload in that file"
        )
    if len(classes) > 1:
        names = ", ".join(cls.__name__ for cls in classes)
        raise BadInput(f"{path} defines several workloads ({names}): pick one with --class-name")
    return classes[0], f"{path}:{classes[0].__name__}"


class CommandFailed(CarbontopError):
    """A plain command (``--command-json``) exited with an error."""


class Runner:
    """Drives one workload through loading, warm-up and measuring, reporting events."""

    def __init__(
        self,
        events: EventWriter,
        signals: _Signals,
        parent_pid: int | None,
        duration_s: float | None,
        units_every_s: float = UNITS_EVERY_S,
    ) -> None:
        self.events = events
        self.units_every_s = units_every_s
        self.signals = signals
        self.parent_pid = parent_pid
        self.duration_s = duration_s
        self.phase = Phase.LOADING
        self.units = 0.0
        self.flops: float | None = None
        self.phase_start = session_time_s()
        # measuring units, flops and seconds once the window closed
        self.measured: tuple[float, float | None, float] = (0.0, None, 0.0)
        # the measured window's end on the session clock: the "done" event's stamp
        self.window_end_s: float | None = None
        self.workload: Workload | None = None
        # the measuring phase's sub-phases: the open one, and units per sub-phase (cumulative)
        self.subphase: str | None = None
        self.subphase_units: dict[str, float] = {}
        self._warned_subphase = False

    def check(self) -> None:
        self.signals.check()
        if self.parent_pid is not None and os.getppid() != self.parent_pid:
            raise Terminated("the parent process is gone")

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
            "phase", phase=phase, t_s=start, info={"t_monotonic_s": f"{start:.6f}"}
        )

    def report_units(self, t_s: float | None = None) -> None:
        """The current phase's units so far, as of ``t_s`` (default: now)."""
        self.events.emit("units", phase=self.phase, units=self.units, flops=self.flops, t_s=t_s,
                         subphase_units=self.subphase_units)

    def add_units(self, amount: float) -> None:
        """Units of work done: to the current phase, and to the current sub-phase if one is open."""
        self.units += amount
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
        self.events.emit("subphase", phase=self.phase, units=self.units, flops=self.flops,
                         t_s=at_s, subphase=self.subphase, subphase_units=self.subphase_units)

    def close_window(self, end_s: float) -> None:
        """The measuring phase ends at ``end_s``: report its units there and keep its totals."""
        self.report_units(t_s=end_s)
        self.measured = (self.units, self.flops, end_s - self.phase_start)
        self.window_end_s = end_s

    def run(self, args: argparse.Namespace) -> str:
        """Everything from import to the end of the window; returns why measuring ended."""
        self.enter(Phase.LOADING)
        params = json.loads(args.params)
        if not isinstance(params, dict):
            raise BadInput("--params must be a JSON object")
        cls, target = self.signals.call(
            lambda: load_workload_class(
                args.workload, args.workload_file, args.class_name, args.target
            )
        )
        self.events.unit = cls.unit
        workload = self.signals.call(lambda: cls(params))
        workload.progress = RunnerProgress(self)
        self.workload = workload
        self.signals.call(workload.setup)
        info = {
            "workload": cls.name or args.workload or cls.__name__,
            "target": target,
            "unit": cls.unit,
            "pid": str(os.getpid()),
            "python": sys.version.split()[0],
            **self.signals.call(workload.info),
        }
        if self.duration_s is not None:
            info["duration_s"] = f"{self.duration_s:g}"
        if args.memory_limit_bytes:
            info["memory_limit_bytes"] = str(args.memory_limit_bytes)
        self.events.emit("info", info=info)
        self.events.unit = info.get("unit") or cls.unit  # a workload's mode may name its unit
        log.info("running %s (%s): %s", info["workload"], target, info)

        self.signals.call(workload.synchronize)
        self.enter(Phase.WARMUP)
        if self._loop(workload, workload.warmup_s, at_least_one=False):
            return "workload finished during warm-up"  # nothing was measured
        self.signals.call(workload.synchronize)
        self.report_units()
        self.enter(Phase.MEASURING)
        ended = self._loop(workload, self.duration_s, at_least_one=True)
        self.signals.call(workload.synchronize)
        self.close_window(session_time_s())  # the real edge: the queued work has finished
        return "workload finished" if ended else "duration"

    def run_command(self, argv: list[str]) -> str:
        """A plain command as the workload.

        Without the progress protocol all of it is measured, one unit ("run") per completed run.
        A program that writes protocol lines (see :mod:`carbontop.progress`) to the descriptor
        named by ``CARBONTOP_PROGRESS_FD`` sets its own phases and units of work instead; each
        line is handled as soon as it is written, at the stamp it carries (or when it was read).
        """
        self.events.unit = "run"
        self.enter(Phase.LOADING)
        if not argv:
            raise BadInput("the command is empty: give it after `--`")
        self.enter(Phase.MEASURING)
        progress_r, progress_w = os.pipe()
        os.set_blocking(progress_r, False)
        env = {**os.environ, PROGRESS_FD_ENV: str(progress_w)}
        try:
            try:
                proc = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, close_fds=True, pass_fds=(progress_w,),
                    env=env, preexec_fn=_die_with_parent,
                )
            finally:
                os.close(progress_w)
            reader = ProgressReader(self, progress_r, earliest_s=self.phase_start)
            info = {"workload": "command", "command": shlex.join(argv), "unit": "run"}
            info.update(pid=str(os.getpid()), command_pid=str(proc.pid))
            if self.duration_s is not None:
                info["duration_s"] = f"{self.duration_s:g}"
            self.events.emit("info", info=info)
            try:
                ended, end_s = self._watch_command(proc, reader)
            except Terminated:
                _end_command(proc)
                raise
        finally:
            _close_quietly(progress_r)
        returncode = proc.returncode
        if ended == "command exited" and returncode != 0:
            how = (
                f"killed by signal {signal.Signals(-returncode).name}"
                if returncode < 0 and -returncode in signal.valid_signals()
                else f"exited with code {returncode}"
            )
            raise CommandFailed(f"the command {how}")
        if not reader.used:
            self.units = 1.0 if ended == "command exited" else 0.0
        if self.phase is Phase.MEASURING:  # a measuring phase lasts until the command ends
            self.close_window(end_s)
        return ended

    def _watch_command(self, proc: subprocess.Popen[bytes], reader: ProgressReader) -> tuple[
        str, float
    ]:
        """Apply the command's progress lines as they come until it exits or the duration ends.

        Returns why it ended and when, on the session clock. One ``select`` waits for a line, for
        the command's exit (a pidfd, where Linux and Python have one; else a short poll) and for
        the next check of signals, the parent and the duration: nothing waits on a fixed tick.
        """
        exit_fd = _exit_fd(proc.pid)
        try:
            while True:
                timeout = CHECK_EVERY_S if exit_fd is not None else EXIT_POLL_S
                if self.duration_s is not None:
                    deadline = self.phase_start + self.duration_s
                    timeout = max(0.0, min(timeout, deadline - session_time_s()))
                waiting = [fd for fd in (reader.fd if reader.open else None, exit_fd)
                           if fd is not None]
                self.signals.call(functools.partial(select.select, waiting, [], [], timeout))
                woke_s = session_time_s()
                reader.read()
                if proc.poll() is not None:
                    reader.read()  # what it wrote just before it exited
                    return "command exited", woke_s
                self.check()
                # (the lines just read may have started a phase: its own duration counts)
                if self.duration_s is not None and woke_s >= self.phase_start + self.duration_s:
                    reader.read()
                    _end_command(proc)
                    return "duration", woke_s
        finally:
            if exit_fd is not None:
                _close_quietly(exit_fd)

    def _loop(self, workload: Workload, seconds: float | None, *, at_least_one: bool) -> bool:
        """Steps until ``seconds`` pass (None: forever); True when the workload said it ended."""
        start = last_report = session_time_s()
        first = at_least_one
        while first or seconds is None or session_time_s() - start < seconds:
            first = False
            step: Step = self.signals.call(workload.step)  # raises Terminated on SIGTERM
            if step.units:
                self.add_units(step.units)
            if step.flops is not None:
                self.flops = (self.flops or 0.0) + step.flops
            if step.last:
                return True
            now = session_time_s()
            if now - last_report >= self.units_every_s:
                last_report = now
                self.check()  # PR_SET_PDEATHSIG's fallback, at the reporting pace
                self.report_units()
        return False


def _close_quietly(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


def _exit_fd(pid: int) -> int | None:
    """A descriptor that turns readable when ``pid`` exits (Linux >= 5.3); None where unavailable.

    Taken before the child is reaped, so it also works for a command that has already exited.
    """
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is None:
        return None
    try:
        return int(pidfd_open(pid))
    except OSError:
        return None


class RunnerProgress(Progress):
    """A workload's :class:`~workloads.base.Progress` inside the child: the calls a user's
    program makes through :mod:`carbontop.progress`, applied to the runner directly."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    @property
    def window_start_s(self) -> float | None:
        runner = self.runner
        return runner.phase_start if runner.phase is Phase.MEASURING else None

    def subphase(self, name: str | None, t_s: float | None = None) -> None:
        self.runner.enter_subphase(subphase_name(name), t_s)

    def units(self, amount: float) -> None:
        self.runner.add_units(amount)

    def results(self, figures: dict[str, str]) -> None:
        if figures and self.runner.phase is Phase.MEASURING:
            self.runner.events.emit("info", info=figures)


class ProgressReader:
    """Applies a command's progress lines (:mod:`carbontop.progress`) to the runner as they come.

    ``phase`` starts a phase (the measured window is the last measuring phase; the program's
    first phase line is always an edge, so ``measure`` as its first word restarts the measuring
    phase the command began in); ``units`` adds units of work to the current one. Each line
    counts at its ``t=`` stamp when that is a time on the session clock between the command's
    start and now, else at the moment it was read; a stamp is never placed before the current
    phase's start. Units are reported to the monitor at
    most every ``runner.units_every_s`` and at every edge, however often the program writes them.
    """

    def __init__(self, runner: Runner, fd: int, earliest_s: float) -> None:
        self.runner = runner
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
        runner = self.runner
        # The program's first phase line takes the phases over, even when it names the phase the
        # child started it in: "measure" as its first word starts the window there, not at the
        # command's start (its interpreter and imports are not measured).
        if line.phase is not None and (
            Phase(line.phase) is not runner.phase or not self._phases_used
        ):
            self.used = self._phases_used = True
            runner.report_units(t_s=at_s)
            runner.enter(Phase(line.phase), t_s=at_s)
            self._last_units_report_s = at_s
        if line.subphase is not None:
            runner.enter_subphase(line.subphase, t_s=at_s)
            self._last_units_report_s = at_s
        if line.units is not None:
            self.used = True  # the protocol's units replace "one run"
            runner.add_units(line.units)
            if line.unit:
                runner.events.unit = line.unit
            if at_s - self._last_units_report_s >= runner.units_every_s:
                runner.report_units(t_s=at_s)
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
        return max(at_s, self.runner.phase_start)


def _command(text: str) -> list[str]:
    argv = json.loads(text)
    if not isinstance(argv, list) or not all(isinstance(arg, str) for arg in argv):
        raise BadInput("--command-json must be a JSON list of strings")
    return argv


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m workloads.child", description=__doc__)
    parser.add_argument("--workload", help="entry point name in group carbontop.workloads")
    parser.add_argument("--workload-file", help="a .py file defining a Workload subclass")
    parser.add_argument("--class-name", help="which class of --workload-file to run")
    parser.add_argument("--target", help="module:Class of the workload (resolved by the monitor)")
    parser.add_argument("--command-json", help="run this argument list (JSON) as the workload")
    parser.add_argument("--params", default="{}", help="JSON object of params")
    parser.add_argument("--duration", type=float, help="seconds to measure (default: until done)")
    parser.add_argument("--events-fd", type=int, required=True, help="pipe for event lines")
    parser.add_argument("--parent-pid", type=int, help="exit if our parent is no longer this pid")
    parser.add_argument("--memory-limit-bytes", type=int, help="RLIMIT_AS for this process")
    parser.add_argument("--units-every", type=float, default=UNITS_EVERY_S,
                        help="report units at most this often, in seconds (phase edges at once)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    signals = _Signals()
    signals.install()
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    args = parse_args(argv)
    events = EventWriter(args.events_fd)
    if not args.units_every > 0:
        raise SystemExit("--units-every must be positive seconds, e.g. 0.25")
    runner = Runner(events, signals, args.parent_pid, args.duration, args.units_every)
    try:
        set_parent_death_signal(args.parent_pid)
        apply_memory_limit(args.memory_limit_bytes)
        if args.command_json is not None:
            ended = runner.run_command(_command(args.command_json))
        else:
            ended = runner.run(args)
    except Terminated as stop:
        return _terminated(runner, stop)
    except BaseException as exc:
        return _failed(runner, exc)
    units, flops, seconds = runner.measured
    log.info("done (%s): %g %s in %.3f s measured", ended, units, events.unit, seconds)
    # "done" marks the end of the window, stamped where it ended; it goes out before teardown
    end_s = runner.window_end_s if runner.window_end_s is not None else session_time_s()
    info = {"ended": ended, "measured_s": f"{seconds:.6f}", "t_monotonic_s": f"{end_s:.6f}"}
    try:
        events.emit("done", phase=Phase.DONE, units=units, flops=flops, info=info, t_s=end_s,
                    subphase_units=runner.subphase_units)
    except Terminated:
        return 1
    runner.phase = Phase.DONE
    _teardown_quietly(runner)  # the measurement is complete: a failing teardown is only logged
    return 0


def _failed(runner: Runner, exc: BaseException) -> int:
    """Report the error (after freeing memory when it was an OOM), log the traceback, exit 1."""
    oom = is_out_of_memory(exc)
    message = describe(exc)
    phase = runner.phase
    try:
        if oom:
            _teardown_quietly(runner)
        runner.events.emit("error", phase=phase, message=message, info={"type": type(exc).__name__})
    except (Terminated, MemoryError):
        pass
    try:
        log.error("workload failed in %s: %s", phase.value, message)
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    except MemoryError:
        pass
    if not oom:
        _teardown_quietly(runner)
    return 1


def _teardown_quietly(runner: Runner) -> None:
    workload, runner.workload = runner.workload, None
    if workload is None:
        return
    try:
        runner.signals.call(workload.teardown)
    except BaseException as exc:  # already failing: log and go on
        log.warning("teardown failed: %s", describe(exc))
    del workload
    gc.collect()


def _terminated(runner: Runner, stop: Terminated) -> int:
    """Report what was done so far, then die of the signal (no teardown: exit must be prompt)."""
    log.info("%s", stop.reason)
    try:
        end_s = session_time_s()
        info = {"ended": "stopped", "t_monotonic_s": f"{end_s:.6f}"}
        units, flops = 0.0, None
        if runner.phase in (Phase.WARMUP, Phase.MEASURING):
            runner.report_units(t_s=end_s)
        if runner.phase is Phase.MEASURING:
            units, flops = runner.units, runner.flops
            info["measured_s"] = f"{end_s - runner.phase_start:.6f}"
        runner.events.emit(
            "done", phase=Phase.DONE, units=units, flops=flops, message=stop.reason, info=info,
            t_s=end_s, subphase_units=runner.subphase_units,
        )
    except Terminated:
        pass
    _flush()
    signal.signal(stop.signum, signal.SIG_DFL)
    os.kill(os.getpid(), stop.signum)
    os._exit(128 + stop.signum)  # not reached unless the signal is blocked


def _flush() -> None:
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def _exit_now(code: int) -> None:
    """Flush and leave without interpreter shutdown, which takes most of a second after torch.

    Atexit handlers do not run: a workload cleans up in ``teardown()``.
    """
    _flush()
    os._exit(code)


if __name__ == "__main__":
    _exit_now(main())
