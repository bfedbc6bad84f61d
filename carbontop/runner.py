"""Runs a workload in a child process and turns its event lines into ProgressEvents.

The monitor must never import torch, and jetson-stats 7 forces the multiprocessing start method to
'fork' when it is imported, so a multiprocessing child would inherit the monitor's threads and
sockets. We therefore start a fresh interpreter with :mod:`subprocess` (``python -m
carbontop.child``), give it the write end of a pipe for events, and send its stdout/stderr to a log.
The two share only the event lines (:mod:`carbontop.events`), never each other's code.

The API is blocking and thread-safe: call ``start()``/``stop()``/``wait()`` from any thread (a
Textual worker: ``await runner.wait_async()``). ``on_event`` and ``on_exit`` run in the
runner's own thread; a Textual app should forward them with ``App.call_from_thread``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import psutil

from carbontop import events
from carbontop.errors import BadInput
from carbontop.events import parse_event
from carbontop.model import Phase, ProgressEvent
from carbontop.registry import WorkloadEntry, find_workload
from carbontop.workload_python import ChildPath, check_workload_python

log = logging.getLogger(__name__)

EventSink = Callable[[ProgressEvent], None]
ExitSink = Callable[[int], None]

CHILD_MODULE = "carbontop.child"  # run as ``python -m``
_POLL_S = 0.2  # without a pidfd: how often the reader looks whether the child is gone


def _entry_target(name: str | None) -> str | None:
    """``module:Class`` of an entry-point workload; None (the child then says why) if unknown."""
    try:
        entry = find_workload(name)
    except BadInput:
        return None
    return entry.target if entry.source != "file" else None


def _open_pidfd(pid: int) -> int | None:
    """A pidfd for ``pid`` (readable once it exits), or None where the system has none."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def describe_exit(returncode: int) -> str:
    """``killed by signal SIGKILL`` or ``exited with code 3``."""
    if returncode < 0:
        try:
            return f"killed by signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with code {returncode}"


class WorkloadRunner:
    """One workload child process: start it, read its events, stop it, wait for it.

    Name a workload (``workload="matmul"``) or a file (``workload_file=..., class_name=...``), or
    use :meth:`for_entry` with a registry entry. ``log_path`` gets the child's stdout and stderr
    (appended); None discards them. ``memory_limit_bytes`` caps the child's address space
    (RLIMIT_AS); on CUDA, where the driver reserves huge virtual ranges, leave it None.
    ``target`` is the workload's ``module:Class`` (the registry resolves it; the child then reads
    no entry points). ``python`` runs the child in that interpreter instead of carbontop's, with
    only carbontop's source packages on its path (:mod:`carbontop.workload_python`).
    ``units_every_s`` sets how often the child reports units (phase edges always at once).
    """

    def __init__(
        self,
        workload: str | None = None,
        *,
        command: Sequence[str] | None = None,
        workload_file: Path | None = None,
        class_name: str | None = None,
        params: Mapping[str, object] | None = None,
        duration_s: float | None = None,
        log_path: Path | None = None,
        on_event: EventSink | None = None,
        on_exit: ExitSink | None = None,
        memory_limit_bytes: int | None = None,
        env: Mapping[str, str] | None = None,
        target: str | None = None,
        python: Path | None = None,
        requires: Sequence[str] = (),
        units_every_s: float | None = None,
    ) -> None:
        if workload is None and workload_file is None and not command:
            raise ValueError("give a workload name, a workload file or a command")
        self.workload = workload if workload is not None or not command else "command"
        self.argv = list(command) if command else None
        self.workload_file = workload_file
        self.class_name = class_name
        self.params: dict[str, object] = dict(params or {})
        self.duration_s = duration_s
        self.log_path = log_path
        self.on_event = on_event
        self.on_exit = on_exit
        self.memory_limit_bytes = memory_limit_bytes
        # how often the child reports its units (None: the child's default, 0.25 s); the engine
        # asks for its sampling pace, as nothing reads them faster
        self.units_every_s = units_every_s
        self.env = dict(env) if env is not None else None
        self.python = Path(python) if python is not None else None
        if self.python is not None and target is None and workload_file is None and not command:
            target = _entry_target(self.workload)  # another Python has no carbontop entry points
        self.target = target
        self.requires = tuple(requires)  # modules the workload imports, checked in ``python``
        self._child_path: ChildPath | None = None
        self.phase: Phase | None = None  # the latest phase the child reported
        self.info: dict[str, str] = {}  # merged "info" events
        self.done: ProgressEvent | None = None  # the "done" event, if one came
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._finished = threading.Event()
        self._start_error: BaseException | None = None
        self._error_event: ProgressEvent | None = None
        self._stop_requested = False
        self._cpu_last: tuple[float, float] | None = None  # (wall, cpu seconds)
        self._ps: psutil.Process | None = None

    @classmethod
    def for_entry(cls, entry: WorkloadEntry, **kwargs: Any) -> WorkloadRunner:
        """A runner for a registry entry (entry point or workload file)."""
        if entry.source == "file":
            return cls(entry.name, workload_file=entry.file, class_name=entry.class_name,
                       requires=entry.requires, **kwargs)
        return cls(entry.name, target=entry.target, requires=entry.requires, **kwargs)

    @classmethod
    def for_command(cls, argv: Sequence[str], **kwargs: Any) -> WorkloadRunner:
        """A runner for a plain command (``carbontop run -- CMD``).

        The child wraps the command: everything it does is the measured window (no warm-up), one
        unit per completed run; a non-zero exit is a failure. ``params`` do not apply.
        """
        kwargs.pop("params", None)
        kwargs.pop("python", None)  # the command names its own interpreter
        return cls(command=argv, **kwargs)

    # --- the child's command line -------------------------------------------------------------

    def child_argv(self, events_fd: int) -> list[str]:
        """The child's argument list (no shell)."""
        python = str(self.python) if self.python is not None else sys.executable
        argv = [python, "-m", CHILD_MODULE, "--events-fd", str(events_fd)]
        argv += ["--parent-pid", str(os.getpid())]
        if self.units_every_s is not None:
            argv += ["--units-every", repr(float(self.units_every_s))]
        if self.argv is not None:
            argv += ["--command-json", json.dumps(self.argv)]
            if self.duration_s is not None:
                argv += ["--duration", repr(float(self.duration_s))]
            return argv
        if self.workload_file is not None:
            argv += ["--workload-file", str(self.workload_file)]
            if self.class_name:
                argv += ["--class-name", self.class_name]
        if self.workload:
            argv += ["--workload", self.workload]
        if self.target and self.workload_file is None:
            argv += ["--target", self.target]
        argv += ["--params", json.dumps(self.params, default=str)]
        if self.duration_s is not None:
            argv += ["--duration", repr(float(self.duration_s))]
        if self.memory_limit_bytes:
            argv += ["--memory-limit-bytes", str(int(self.memory_limit_bytes))]
        return argv

    # --- public API ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the child; returns once it is running. Raises OSError if it cannot start."""
        with self._lock:
            if self._thread is not None:
                raise RuntimeError("this runner was already started")
            # The child is spawned by the runner's own thread, which lives exactly as long as the
            # child: Linux's PR_SET_PDEATHSIG fires when the *thread* that forked the child exits,
            # so spawning from a short-lived caller thread (a Textual worker) would kill it early.
            self._thread = threading.Thread(
                target=self._run, name=f"workload-runner-{self.workload}", daemon=True
            )
            self._thread.start()
        self._started.wait()
        if self._start_error is not None:
            raise self._start_error

    def stop(self, grace_s: float = 3.0) -> int | None:
        """SIGTERM, wait up to ``grace_s``, then SIGKILL. Returns the exit code (None: not started).

        A stop is not a failure: ``failure_reason`` stays None unless the child reported an error.
        """
        self._stop_requested = True
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            self._signal(proc, signal.SIGTERM)
            try:
                proc.wait(timeout=max(0.0, grace_s))
            except subprocess.TimeoutExpired:
                log.warning(
                    "workload pid %d ignored SIGTERM for %.1f s: SIGKILL", proc.pid, grace_s
                )
                self._signal(proc, signal.SIGKILL)
                try:
                    proc.wait(timeout=5.0)
                except subprocess.TimeoutExpired:
                    log.error("workload pid %d survived SIGKILL", proc.pid)
        if threading.current_thread() is not self._thread:  # not from inside a callback
            self._finished.wait(timeout=2.0)  # let the reader hand over the last events
        return proc.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Block until the child exited, its last events were delivered and ``on_exit`` ran.

        Raises TimeoutError after ``timeout`` seconds, RuntimeError if never started.
        """
        if self._thread is None:
            raise RuntimeError("wait() before start()")
        if threading.current_thread() is self._thread and self.returncode is not None:
            return self.returncode  # called from on_exit: the child is already reaped
        if not self._finished.wait(timeout):
            raise TimeoutError(f"workload still running after {timeout} s")
        returncode = self.returncode
        assert returncode is not None
        return returncode

    async def wait_async(self, timeout: float | None = None) -> int:
        """:meth:`wait` for asyncio code (a Textual worker): runs it in a thread."""
        return await asyncio.to_thread(self.wait, timeout)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and not self._finished.is_set()

    @property
    def stop_requested(self) -> bool:
        return self._stop_requested

    @property
    def failure_reason(self) -> str | None:
        """Why the workload failed: its error event's message, or how the process died."""
        if self._error_event is not None:
            return self._error_event.message or "the workload reported an error"
        if self._start_error is not None:
            return f"could not start: {self._start_error}"
        returncode = self.returncode
        if returncode is None or (returncode == 0 and self.done is not None):
            return None
        if self._stop_requested and returncode in (0, -signal.SIGTERM, -signal.SIGKILL):
            return None
        if returncode == 0:
            return "exited before reporting the end of its run"
        return describe_exit(returncode)

    def cpu_fraction(self) -> float:
        """The child's CPU use since the previous call, as a share of the whole machine (0..1)."""
        pid = self.pid
        if pid is None or self._finished.is_set():
            return 0.0
        try:
            if self._ps is None or self._ps.pid != pid:
                self._ps = psutil.Process(pid)
            times = self._ps.cpu_times()
            cpu_s = times.user + times.system + times.children_user + times.children_system
        except (psutil.Error, OSError):
            return 0.0
        now = time.monotonic()
        with self._lock:
            last, self._cpu_last = self._cpu_last, (now, cpu_s)
        if last is None:
            return 0.0
        wall = now - last[0]
        if wall <= 0:
            return 0.0
        share = float(cpu_s - last[1]) / (wall * (psutil.cpu_count() or 1))
        return min(1.0, max(0.0, share))

    # --- the runner thread --------------------------------------------------------------------

    def _signal(self, proc: subprocess.Popen[bytes], signum: int) -> None:
        with contextlib.suppress(OSError):  # already gone
            proc.send_signal(signum)

    def _spawn(self) -> tuple[subprocess.Popen[bytes], int]:
        read_fd, write_fd = os.pipe()
        log_file: IO[bytes] | int = subprocess.DEVNULL
        try:
            if self.log_path is not None:
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
                log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed below
            env = dict(os.environ if self.env is None else self.env)
            if self.python is not None:
                check_workload_python(self.python, self.workload, self.requires,
                                      self._child_modules())
                self._child_path = ChildPath(self._child_modules())
                env = self._child_path.env(env)
            env.setdefault("PYTHONUNBUFFERED", "1")
            env.setdefault("PYTHONFAULTHANDLER", "1")  # a segfault leaves a traceback in the log
            proc = subprocess.Popen(
                self.child_argv(write_fd),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                pass_fds=(write_fd,),
                close_fds=True,
                start_new_session=False,
                env=env,
            )
        except BaseException:
            os.close(read_fd)
            self._remove_child_path()
            raise
        finally:
            os.close(write_fd)
            if not isinstance(log_file, int):
                log_file.close()
        return proc, read_fd

    def _child_modules(self) -> list[str]:
        """The workload's module, whose package goes on another Python's path."""
        return [self.target.partition(":")[0]] if self.target and not self.workload_file else []

    def _remove_child_path(self) -> None:
        child_path, self._child_path = self._child_path, None
        if child_path is not None:
            child_path.remove()

    def _run(self) -> None:
        try:
            proc, read_fd = self._spawn()
        except BaseException as exc:
            self._start_error = exc
            self._started.set()
            self._finished.set()
            return
        self._proc = proc
        self._started.set()
        if self._stop_requested:  # stop() raced with start()
            self._signal(proc, signal.SIGTERM)
        log.info("workload %s started: pid %d", self.workload or self.workload_file, proc.pid)
        try:
            self._read_events(proc, read_fd)
        finally:
            os.close(read_fd)
        returncode = proc.wait()
        self._remove_child_path()
        log.info("workload pid %d ended: %s", proc.pid, describe_exit(returncode))
        try:
            if self.on_exit is not None:
                self.on_exit(returncode)
        except Exception:
            log.exception("on_exit callback failed")
        finally:
            self._finished.set()

    def _read_events(self, proc: subprocess.Popen[bytes], read_fd: int) -> None:
        """Read lines until EOF, or until the child is gone (a grandchild may hold the pipe).

        The child's exit is watched through a pidfd where the kernel has them (Linux 5.3+): the
        reader then sleeps until a line or the exit arrives, with no periodic wake-up. Elsewhere
        it looks every ``_POLL_S``.
        """
        poller = select.poll()
        poller.register(read_fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        pidfd = _open_pidfd(proc.pid)
        if pidfd is not None:
            poller.register(pidfd, select.POLLIN)
        timeout_ms = None if pidfd is not None else _POLL_S * 1000
        buffer = b""
        exited = False
        try:
            while True:
                ready = {fd for fd, _ in poller.poll(0 if exited else timeout_ms)}
                if read_fd in ready:
                    chunk = os.read(read_fd, 65536)
                    if not chunk:
                        break
                    buffer = self._dispatch_lines(buffer + chunk)
                elif exited:
                    break  # the child is gone and nothing more is readable
                elif pidfd in ready or (pidfd is None and proc.poll() is not None):
                    exited = True  # one more poll to drain what it wrote last
                    if pidfd is not None:
                        poller.unregister(pidfd)
        finally:
            if pidfd is not None:
                os.close(pidfd)
        if buffer.strip():
            self._dispatch_lines(buffer + b"\n")

    def _dispatch_lines(self, data: bytes) -> bytes:
        *lines, rest = data.split(b"\n")
        for line in lines:
            if line.strip():
                try:
                    event = parse_event(line)
                except ValueError as exc:
                    log.warning("ignoring a bad event line from the workload (%s): %.200r", exc,
                                line)
                    continue
                self._deliver(event)
        return rest

    def _deliver(self, event: ProgressEvent) -> None:
        if event.kind == events.PHASE and event.phase is not None:
            self.phase = event.phase
        elif event.kind == events.INFO:
            self.info = {**self.info, **event.info}  # replaced, never mutated: safe to read
        elif event.kind == events.ERROR and self._error_event is None:
            self._error_event = event
        elif event.kind == events.DONE:
            self.done = event
            self.phase = Phase.DONE
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:
                log.exception("on_event callback failed")
