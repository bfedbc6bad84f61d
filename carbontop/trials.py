"""Running the trials of ``carbontop run``: one session, ``--repeat N`` of them with a cool-down
between, or each of them under every ``--power-modes`` mode (the board's mode put back after).

The engine measures; this module only starts its sessions one after another and follows each to
its summary, with a live status line on a terminal and a plain line every few seconds otherwise.
A signal (recorded in ``received`` by the caller's handler) ends the sweep after the session it
stops. The statistics are carbontop/comparison.py's, the text carbontop/text.py's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from carbontop.engine_api import EngineFace, SessionRequest
from carbontop.errors import BadInput, CarbontopError
from carbontop.model import FinalStatus
from carbontop.sources.base import BoardControl
from carbontop.summary import SessionSummary
from carbontop.text import status_line
from carbontop.views import Snapshot

log = logging.getLogger(__name__)

PLAIN_EVERY_S = 5.0  # a plain progress line (output not a terminal) this often
SIGNAL_END_S = 60.0  # a session still running this long after a signal is an error
COOL_DOWN_MARGIN = (1.1, 0.5)  # near idle: within 10 % + 0.5 W of the idle figure
COOL_DOWN_MIN_S = 1.0


@dataclass(frozen=True)
class TrialPlan:
    """``repeat`` trials in each of ``modes`` (none: the board's mode as it is)."""

    repeat: int = 1
    modes: tuple[str, ...] = ()
    cooldown_max_s: float = 60.0

    @property
    def trials(self) -> int:
        return self.repeat * max(1, len(self.modes))


@dataclass
class TrialResults:
    summaries: list[SessionSummary] = field(default_factory=list)
    by_mode: dict[str, list[SessionSummary]] = field(default_factory=dict)  # "" without modes


def run_trials(engine: EngineFace, request: SessionRequest, plan: TrialPlan,
               received: Sequence[int], out: TextIO,
               on_summary: Callable[[SessionSummary], None] | None = None) -> TrialResults:
    """Runs the plan's sessions on the opened ``engine``; stops after a failed one or a signal."""
    results = TrialResults()
    experiment_id = str(uuid.uuid4()) if plan.trials > 1 else None
    idle_w = wait_idle_power(engine)
    plan_modes: list[str | None] = list(plan.modes) or [None]
    with restoring_mode(engine.source, bool(plan.modes)):
        for mode in plan_modes:
            if received or (results.summaries and
                            results.summaries[-1].status is FinalStatus.FAILED):
                break
            if mode is not None:
                print(f"power mode {mode}", file=out)
                set_power_mode(engine.source, mode)
            for k in range(plan.repeat):
                if received:
                    break
                if results.summaries:
                    cool_down(engine, idle_w, plan.cooldown_max_s, received, out)
                label = f"{k + 1}/{plan.repeat}" if experiment_id else None
                if mode is not None:
                    label = f"{mode} {label}"
                engine.start_session(dataclasses.replace(
                    request, experiment_id=experiment_id, trial=label))
                summary = follow(engine, out, received)
                if summary is None:
                    raise CarbontopError("the session ended without a summary (see the log)")
                results.summaries.append(summary)
                results.by_mode.setdefault(mode or "", []).append(summary)
                if on_summary is not None:
                    on_summary(summary)
                if summary.status is FinalStatus.FAILED:
                    break
    return results


# -- following one session ---------------------------------------------------------------------

def follow(engine: EngineFace, out: TextIO,
           received: Sequence[int] | None = None) -> SessionSummary | None:
    """Waits for the running session's summary: a live status line on a terminal, plain
    periodic lines otherwise."""
    tty = out.isatty()
    last_plain = 0.0
    signalled_at: float | None = None
    while True:
        if received and signalled_at is None:
            signalled_at = time.monotonic()
        if signalled_at is not None and time.monotonic() - signalled_at > SIGNAL_END_S:
            raise CarbontopError(f"the session did not end within {SIGNAL_END_S:.0f} s of the "
                                 "signal (see the log file)")
        # Not a terminal: wake only for the next plain line (the session's end wakes it at once).
        wait_s = 0.5 if tty else max(0.1, min(1.0 if received else PLAIN_EVERY_S,
                                              last_plain + PLAIN_EVERY_S - time.monotonic()))
        summary = engine.wait_session(timeout=wait_s)
        if summary is not None:
            if tty:
                out.write("\r\x1b[K")
                out.flush()
            return summary
        snap = engine.snapshot()
        if snap is None:
            continue
        if tty:
            line = status_line(snap)
            out.write("\r\x1b[K" + line[: os.get_terminal_size(out.fileno()).columns - 1])
            out.flush()
        elif time.monotonic() - last_plain >= PLAIN_EVERY_S - 0.05:
            print(status_line(snap), file=out, flush=True)
            last_plain = time.monotonic()


# -- cool-downs ----------------------------------------------------------------------------------

def idle_power(snap: Snapshot | None) -> float | None:
    """The power figure a cool-down waits on: board, else GPU, else CodeCarbon's CPU."""
    if snap is None:
        return None
    live = snap.live
    for value in (live.board_w, live.gpu_w, live.cpu_w):
        if value is not None:
            return float(value)
    return None


def wait_idle_power(engine: EngineFace, timeout_s: float = 5.0) -> float | None:
    """The idle figure a cool-down returns to, once the first reading has arrived."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = idle_power(engine.snapshot())
        if value is not None:
            return value
        time.sleep(0.1)
    return None


def cool_down(engine: EngineFace, idle_w: float | None, cap_s: float, received: Sequence[int],
              out: TextIO) -> None:
    """Waits until power is back near idle (within 10 % + 0.5 W), at most ``cap_s`` seconds."""
    factor, margin_w = COOL_DOWN_MARGIN
    start = time.monotonic()
    while time.monotonic() - start < cap_s and not received:
        now_w = idle_power(engine.snapshot())
        near_idle = idle_w is None or now_w is None or now_w <= idle_w * factor + margin_w
        if near_idle and time.monotonic() - start >= COOL_DOWN_MIN_S:
            return
        time.sleep(0.25)
    print(f"cool-down capped at {cap_s:.0f} s: power has not returned to idle", file=out)


# -- power modes (the board's control: jtop's service sets nvpmodel) -----------------------------

def check_power_modes(source: object, modes: list[str]) -> None:
    """Every mode asked for exists on this board, before anything runs."""
    if not isinstance(source, BoardControl):
        raise BadInput("--power-modes needs a Jetson (the jtop service sets nvpmodel): use "
                       "--gpu-source jtop, or --demo to try it on the simulated board")
    available = source.power_modes()
    if not available:
        raise BadInput("this board reports no nvpmodel power modes: drop --power-modes")
    known = {m.lower() for m in available} | {str(i) for i in range(len(available))}
    unknown = [m for m in modes if m.lower() not in known]
    if unknown:
        listed = ", ".join(f"{m} ({i})" for i, m in enumerate(available))
        raise BadInput(f"unknown power mode '{unknown[0]}': this board's modes are {listed}")


def set_power_mode(source: Any, mode: str) -> None:
    source.set_power_mode(mode)


@contextlib.contextmanager
def restoring_mode(source: Any, active: bool) -> Iterator[None]:
    """Puts the board's original power mode back, also on failure or interrupt."""
    if not active:
        yield
        return
    with source.restoring_power_mode() as original:
        log.info("power modes: original mode %s will be restored", original)
        yield
