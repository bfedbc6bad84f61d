"""The workload child process: ``python -m workloads.child --workload NAME --events-fd FD ...``.

carbontop's monitor starts this with an argument list (no shell) and a pipe. The child runs one
workload through its phases and writes one JSON line per :class:`carbontop.model.ProgressEvent` to
the pipe; the workload's own stdout/stderr go to a log file. Phases (docs/measurement.md, rules 9
and 11): ``loading`` (imports and ``setup()``), ``warm-up`` (``step()`` for ``warmup_s``, not
measured), then ``measuring`` (``step()`` for ``--duration`` seconds of the monotonic clock, or
until the workload ends). ``synchronize()`` runs at every window edge, before the event that
marks it.

Event lines: ``{"kind", "t_unix_s", "phase", "units", "unit", "flops", "message", "info"}``; kinds
``phase``, ``units`` (cumulative in the current phase, at most every 0.25 s and at its end),
``info``, ``error`` (then exit code 1) and ``done``. The child exits when its parent dies
(PR_SET_PDEATHSIG and a ``getppid()`` check) and promptly on SIGTERM/SIGINT.

``--command-json '["python", "train.py"]'`` runs a plain command instead of a workload: loading,
then the whole command as the measured window (one unit, "run", when it exits 0).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import errno
import gc
import importlib.util
import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict
from importlib.metadata import entry_points
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

from carbontop.clock import session_time_s
from carbontop.errors import BadInput, CarbontopError
from carbontop.model import Phase, ProgressEvent
from workloads.base import Step, Workload

log = logging.getLogger("workloads.child")

GROUP = "carbontop.workloads"
UNITS_EVERY_S = 0.25
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
    ) -> None:
        event = ProgressEvent(
            kind=kind,
            t_unix_s=time.time(),
            t_s=session_time_s(),
            phase=phase,
            units=units,
            unit=self.unit if units is not None else None,
            flops=flops,
            message=message,
            info=dict(info or {}),
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
    name: str | None, workload_file: str | None, class_name: str | None
) -> tuple[type[Workload], str]:
    """The Workload subclass to run and its "module:Class" or "path:Class" target."""
    if workload_file:
        return _class_from_file(Path(workload_file), name, class_name)
    if not name:
        raise BadInput("no workload given: pass --workload NAME or --workload-file PATH")
    found = {ep.name: ep for ep in entry_points(group=GROUP)}
    if name not in found:
        raise BadInput(
            f"unknown workload {name!r}: choose one of {', '.join(sorted(found))} (carbontop list)"
        )
    loaded = found[name].load()
    if not (isinstance(loaded, type) and issubclass(loaded, Workload)):
        raise BadInput(f"entry point {name!r} ({found[name].value}) is not a Workload subclass")
    return loaded, found[name].value


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
    ) -> None:
        self.events = events
        self.signals = signals
        self.parent_pid = parent_pid
        self.duration_s = duration_s
        self.phase = Phase.LOADING
        self.units = 0.0
        self.flops: float | None = None
        self.phase_start = time.monotonic()
        # measuring units, flops and seconds once the window closed
        self.measured: tuple[float, float | None, float] = (0.0, None, 0.0)
        self.workload: Workload | None = None

    def check(self) -> None:
        self.signals.check()
        if self.parent_pid is not None and os.getppid() != self.parent_pid:
            raise Terminated("the parent process is gone")

    def enter(self, phase: Phase) -> None:
        log.info("phase: %s", phase.value)
        self.phase = phase
        self.units = 0.0
        self.flops = None
        self.phase_start = time.monotonic()
        self.events.emit("phase", phase=phase, info={"t_monotonic_s": f"{self.phase_start:.6f}"})

    def report_units(self) -> None:
        self.events.emit("units", phase=self.phase, units=self.units, flops=self.flops)

    def run(self, args: argparse.Namespace) -> str:
        """Everything from import to the end of the window; returns why measuring ended."""
        self.enter(Phase.LOADING)
        params = json.loads(args.params)
        if not isinstance(params, dict):
            raise BadInput("--params must be a JSON object")
        cls, target = self.signals.call(
            lambda: load_workload_class(args.workload, args.workload_file, args.class_name)
        )
        self.events.unit = cls.unit
        workload = self.signals.call(lambda: cls(params))
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
        self.report_units()
        self.measured = (self.units, self.flops, time.monotonic() - self.phase_start)
        return "workload finished" if ended else "duration"

    def run_command(self, argv: list[str]) -> str:
        """A plain command as the workload.

        Without the progress protocol all of it is measured, one unit ("run") per completed run.
        A program that writes protocol lines (see :mod:`carbontop.progress`) to the descriptor
        named by ``CARBONTOP_PROGRESS_FD`` sets its own phases and units of work instead.
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
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, close_fds=True, pass_fds=(progress_w,), env=env,
                preexec_fn=_die_with_parent,
            )
        finally:
            os.close(progress_w)
        protocol = ProgressProtocol(self)
        info = {"workload": "command", "command": shlex.join(argv), "unit": "run"}
        info.update(pid=str(os.getpid()), command_pid=str(proc.pid))
        if self.duration_s is not None:
            info["duration_s"] = f"{self.duration_s:g}"
        self.events.emit("info", info=info)
        ended = "command exited"
        try:
            while True:
                try:
                    returncode = self.signals.call(lambda: proc.wait(UNITS_EVERY_S))
                    protocol.read(progress_r)
                    break
                except subprocess.TimeoutExpired:
                    pass
                protocol.read(progress_r)
                self.check()
                if self.duration_s is not None and (
                    time.monotonic() - self.phase_start >= self.duration_s
                ):
                    ended = "duration"
                    _end_command(proc)
                    returncode = proc.wait()
                    break
        except Terminated:
            _end_command(proc)
            raise
        if ended == "command exited" and returncode != 0:
            how = (
                f"killed by signal {signal.Signals(-returncode).name}"
                if returncode < 0 and -returncode in signal.valid_signals()
                else f"exited with code {returncode}"
            )
            raise CommandFailed(f"the command {how}")
        finally_close(progress_r)
        if not protocol.used:
            self.units = 1.0 if ended == "command exited" else 0.0
        self.report_units()
        self.measured = (self.units, None, time.monotonic() - self.phase_start)
        return ended

    def _loop(self, workload: Workload, seconds: float | None, *, at_least_one: bool) -> bool:
        """Steps until ``seconds`` pass (None: forever); True when the workload said it ended."""
        start = last_report = time.monotonic()
        first = at_least_one
        while first or seconds is None or time.monotonic() - start < seconds:
            first = False
            step: Step = self.signals.call(workload.step)  # raises Terminated on SIGTERM
            self.units += step.units
            if step.flops is not None:
                self.flops = (self.flops or 0.0) + step.flops
            if step.last:
                return True
            now = time.monotonic()
            if now - last_report >= UNITS_EVERY_S:
                last_report = now
                self.check()  # PR_SET_PDEATHSIG's fallback, at the reporting pace
                self.report_units()
        return False


PROGRESS_FD_ENV = "CARBONTOP_PROGRESS_FD"


def finally_close(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


class ProgressProtocol:
    """Reads ``carbontop:phase=...`` and ``carbontop:units=N unit=X`` lines from a command.

    ``phase`` is one of loading, warmup (warm-up), measure (measuring); ``units`` adds N units of
    work to the current phase. The measured window is the last measuring phase.
    """

    PHASES = {"loading": Phase.LOADING, "warmup": Phase.WARMUP, "warm-up": Phase.WARMUP,
              "measure": Phase.MEASURING, "measuring": Phase.MEASURING}

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.used = False
        self._buffer = b""

    def read(self, fd: int) -> None:
        while True:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                return
            except OSError:
                return
            if not chunk:
                return
            self._buffer += chunk
            *lines, self._buffer = self._buffer.split(b"\n")
            for line in lines:
                self.handle(line.decode("utf-8", "replace").strip())

    def handle(self, line: str) -> None:
        if not line.startswith("carbontop:"):
            return
        fields = dict(part.split("=", 1) for part in line[10:].split() if "=" in part)
        if "phase" in fields:
            phase = self.PHASES.get(fields["phase"].lower())
            if phase is None:
                log.warning("unknown phase in progress line: %r", line)
            elif phase is not self.runner.phase:
                self.used = True
                self.runner.report_units()
                self.runner.enter(phase)
        if "units" in fields:
            try:
                amount = float(fields["units"])
            except ValueError:
                log.warning("bad units in progress line: %r", line)
                return
            if not self.used:
                self.runner.enter(self.runner.phase)  # the protocol's units replace "one run"
            self.used = True
            self.runner.units += amount
            if "unit" in fields:
                self.runner.events.unit = fields["unit"]
            self.runner.report_units()


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
    parser.add_argument("--command-json", help="run this argument list (JSON) as the workload")
    parser.add_argument("--params", default="{}", help="JSON object of params")
    parser.add_argument("--duration", type=float, help="seconds to measure (default: until done)")
    parser.add_argument("--events-fd", type=int, required=True, help="pipe for event lines")
    parser.add_argument("--parent-pid", type=int, help="exit if our parent is no longer this pid")
    parser.add_argument("--memory-limit-bytes", type=int, help="RLIMIT_AS for this process")
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
    runner = Runner(events, signals, args.parent_pid, args.duration)
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
    info = {"ended": ended, "measured_s": f"{seconds:.6f}", "t_monotonic_s": _now()}
    try:  # "done" marks the end of the window: it goes out before teardown
        events.emit("done", phase=Phase.DONE, units=units, flops=flops, info=info)
    except Terminated:
        return 1
    runner.phase = Phase.DONE
    _teardown_quietly(runner)  # the measurement is complete: a failing teardown is only logged
    return 0


def _now() -> str:
    return f"{time.monotonic():.6f}"


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
        info = {"ended": "stopped", "t_monotonic_s": _now()}
        units, flops = 0.0, None
        if runner.phase in (Phase.WARMUP, Phase.MEASURING):
            runner.report_units()
        if runner.phase is Phase.MEASURING:
            units, flops = runner.units, runner.flops
            info["measured_s"] = f"{time.monotonic() - runner.phase_start:.6f}"
        runner.events.emit(
            "done", phase=Phase.DONE, units=units, flops=flops, message=stop.reason, info=info
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
