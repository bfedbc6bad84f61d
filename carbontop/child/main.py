"""The child's command line, its process setup, and how its run ends: done, error or stopped.

``python -m carbontop.child`` calls :func:`main` (see :mod:`carbontop.child` for what the child
does); :mod:`carbontop.runner` builds the argument list.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import traceback

from carbontop import events
from carbontop.child.command import CommandRun
from carbontop.child.failure import describe, is_out_of_memory
from carbontop.child.loop import WorkloadLoop
from carbontop.child.phases import UNITS_EVERY_S, Phases
from carbontop.child.signals import Signals, Terminated, set_parent_death_signal
from carbontop.child.writer import EventWriter
from carbontop.clock import session_time_s
from carbontop.errors import BadInput
from carbontop.model import Phase

log = logging.getLogger(__name__)

PROG = "python -m carbontop.child"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG, description="carbontop's workload child: runs "
                                     "one workload or command, writing event lines to a pipe")
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
    signals = Signals()
    signals.install()
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    args = parse_args(argv)
    if not args.units_every > 0:
        raise SystemExit("--units-every must be positive seconds, e.g. 0.25")
    signals.parent_pid = args.parent_pid
    writer = EventWriter(args.events_fd)
    phases = Phases(writer, args.units_every)
    loop = WorkloadLoop(phases, signals, args.duration)
    try:
        set_parent_death_signal(args.parent_pid)
        apply_memory_limit(args.memory_limit_bytes)
        if args.command_json is not None:
            ended = CommandRun(phases, signals, args.duration).run(_command(args.command_json))
        else:
            ended = loop.run(args.workload, args.workload_file, args.class_name, args.target,
                             args.params, args.memory_limit_bytes)
    except Terminated as stop:
        return _terminated(phases, stop)
    except BaseException as exc:
        return _failed(phases, loop, exc)
    units, flops, seconds = phases.measured
    log.info("done (%s): %g %s in %.3f s measured", ended, units, writer.unit, seconds)
    # "done" marks the end of the window, stamped where it ended; it goes out before teardown
    end_s = phases.window_end_s if phases.window_end_s is not None else session_time_s()
    info = {"ended": ended, "measured_s": f"{seconds:.6f}", "t_monotonic_s": f"{end_s:.6f}"}
    try:
        writer.emit(events.DONE, phase=Phase.DONE, units=units, flops=flops, info=info, t_s=end_s,
                    subphase_units=phases.subphase_units)
    except Terminated:
        return 1
    phases.phase = Phase.DONE
    loop.teardown_quietly()  # the measurement is complete: a failing teardown is only logged
    return 0


def _command(text: str) -> list[str]:
    argv = json.loads(text)
    if not isinstance(argv, list) or not all(isinstance(arg, str) for arg in argv):
        raise BadInput("--command-json must be a JSON list of strings")
    return argv


def apply_memory_limit(limit_bytes: int | None) -> None:
    """Cap the address space (RLIMIT_AS): allocations beyond it fail with MemoryError."""
    if not limit_bytes:
        return
    import resource  # Unix only, like the child

    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit_bytes = min(limit_bytes, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, hard))
    log.info("address space limited to %d bytes", limit_bytes)


def _failed(phases: Phases, loop: WorkloadLoop, exc: BaseException) -> int:
    """Report the error (after freeing memory when it was an OOM), log the traceback, exit 1."""
    oom = is_out_of_memory(exc)
    message = describe(exc)
    phase = phases.phase
    try:
        if oom:
            loop.teardown_quietly()
        phases.events.emit(events.ERROR, phase=phase, message=message,
                           info={"type": type(exc).__name__})
    except (Terminated, MemoryError):
        pass
    try:
        log.error("workload failed in %s: %s", phase.value, message)
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    except MemoryError:
        pass
    if not oom:
        loop.teardown_quietly()
    return 1


def _terminated(phases: Phases, stop: Terminated) -> int:
    """Report what was done so far, then die of the signal (no teardown: exit must be prompt)."""
    log.info("%s", stop.reason)
    try:
        end_s = session_time_s()
        info = {"ended": "stopped", "t_monotonic_s": f"{end_s:.6f}"}
        units, flops = 0.0, None
        if phases.phase in (Phase.WARMUP, Phase.MEASURING):
            phases.report_units(t_s=end_s)
        if phases.phase is Phase.MEASURING:
            units, flops = phases.units, phases.flops
            info["measured_s"] = f"{end_s - phases.phase_start:.6f}"
        phases.events.emit(
            events.DONE, phase=Phase.DONE, units=units, flops=flops, message=stop.reason,
            info=info, t_s=end_s, subphase_units=phases.subphase_units,
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


def exit_now(code: int) -> None:
    """Flush and leave without interpreter shutdown, which takes most of a second after torch.

    Atexit handlers do not run: a workload cleans up in ``teardown()``.
    """
    _flush()
    os._exit(code)
