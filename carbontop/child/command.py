"""A plain command as the workload (``carbontop run -- python train.py``).

Without the progress protocol all of it is measured, one unit ("run") per completed run. A
program that writes protocol lines (:mod:`carbontop.progress`) to the descriptor named by
``$CARBONTOP_PROGRESS_FD`` sets its own phases and units of work instead; each line is handled as
soon as it is written (:mod:`.progress_reader`), at the stamp it carries (or when it was read).
"""

from __future__ import annotations

import contextlib
import functools
import os
import select
import shlex
import signal
import subprocess

from carbontop import events
from carbontop.child.phases import Phases
from carbontop.child.progress_reader import ProgressReader
from carbontop.child.signals import Signals, Terminated, die_with_parent
from carbontop.clock import session_time_s
from carbontop.errors import BadInput, CarbontopError
from carbontop.model import Phase
from carbontop.progress import PROGRESS_FD_ENV

CHECK_EVERY_S = 0.25  # signals, the parent and the duration, while a command runs
EXIT_POLL_S = 0.01  # how often a command's exit is polled where no pidfd is available


class CommandFailed(CarbontopError):
    """The command exited with an error."""


class CommandRun:
    """Runs one command as the measured window; ``duration_s`` ends it early (SIGTERM)."""

    def __init__(self, phases: Phases, signals: Signals, duration_s: float | None) -> None:
        self.phases = phases
        self.signals = signals
        self.duration_s = duration_s

    def run(self, argv: list[str]) -> str:
        """Loading, then the command measured until it exits or the duration ends; returns why
        it ended. A non-zero exit raises :class:`CommandFailed`."""
        phases = self.phases
        phases.events.unit = "run"
        phases.enter(Phase.LOADING)
        if not argv:
            raise BadInput("the command is empty: give it after `--`")
        phases.enter(Phase.MEASURING)
        progress_r, progress_w = os.pipe()
        os.set_blocking(progress_r, False)
        env = {**os.environ, PROGRESS_FD_ENV: str(progress_w)}
        try:
            try:
                proc = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, close_fds=True, pass_fds=(progress_w,),
                    env=env, preexec_fn=die_with_parent,
                )
            finally:
                os.close(progress_w)
            reader = ProgressReader(phases, progress_r, earliest_s=phases.phase_start)
            info = {"workload": "command", "command": shlex.join(argv), "unit": "run"}
            info.update(pid=str(os.getpid()), command_pid=str(proc.pid))
            if self.duration_s is not None:
                info["duration_s"] = f"{self.duration_s:g}"
            phases.events.emit(events.INFO, info=info)
            try:
                ended, end_s = self._watch(proc, reader)
            except Terminated:
                end_command(proc)
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
            phases.units = 1.0 if ended == "command exited" else 0.0
        if phases.phase is Phase.MEASURING:  # a measuring phase lasts until the command ends
            phases.close_window(end_s)
        return ended

    def _watch(self, proc: subprocess.Popen[bytes], reader: ProgressReader) -> tuple[str, float]:
        """Apply the command's progress lines as they come until it exits or the duration ends.

        Returns why it ended and when, on the session clock. One ``select`` waits for a line, for
        the command's exit (a pidfd, where Linux and Python have one; else a short poll) and for
        the next check of signals, the parent and the duration: nothing waits on a fixed tick.
        """
        phases = self.phases
        exit_fd = exit_fd_of(proc.pid)
        try:
            while True:
                timeout = CHECK_EVERY_S if exit_fd is not None else EXIT_POLL_S
                if self.duration_s is not None:
                    deadline = phases.phase_start + self.duration_s
                    timeout = max(0.0, min(timeout, deadline - session_time_s()))
                waiting = [fd for fd in (reader.fd if reader.open else None, exit_fd)
                           if fd is not None]
                self.signals.call(functools.partial(select.select, waiting, [], [], timeout))
                woke_s = session_time_s()
                reader.read()
                if proc.poll() is not None:
                    reader.read()  # what it wrote just before it exited
                    return "command exited", woke_s
                self.signals.check()
                # (the lines just read may have started a phase: its own duration counts)
                if self.duration_s is not None and woke_s >= phases.phase_start + self.duration_s:
                    reader.read()
                    end_command(proc)
                    return "duration", woke_s
        finally:
            if exit_fd is not None:
                _close_quietly(exit_fd)


def end_command(proc: subprocess.Popen[bytes], grace_s: float = 3.0) -> None:
    """SIGTERM the command, then SIGKILL it after ``grace_s``."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def exit_fd_of(pid: int) -> int | None:
    """A descriptor that turns readable when ``pid`` exits (Linux >= 5.3); None where unavailable.

    Taken before the child is reaped, so it also works for a command that has already exited.
    """
    pidfd_open = getattr(os, "pidfd_open", None)  # Python 3.9+
    if pidfd_open is None:
        return None
    try:
        return int(pidfd_open(pid))
    except OSError:
        return None


def _close_quietly(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)
