"""A workload's run in the child: loading, warm-up, then the measured loop of ``step()`` calls.

Every call into workload code goes through :meth:`Signals.call
<carbontop.child.signals.Signals.call>`, so SIGTERM interrupts a long ``step()`` at once.
``synchronize()`` (queued CUDA work) runs before every window edge is stamped. The workload's
``progress`` hook (:class:`HookProgress`) applies its sub-phases and units to the same
:class:`~carbontop.child.phases.Phases` as the loop.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import sys

from carbontop import events
from carbontop.child.failure import describe
from carbontop.child.loading import load_workload_class
from carbontop.child.phases import Phases
from carbontop.child.signals import Signals
from carbontop.clock import session_time_s
from carbontop.errors import BadInput
from carbontop.model import Phase
from carbontop.progress import subphase_name
from carbontop.workload import Progress, Workload

log = logging.getLogger(__name__)


class WorkloadLoop:
    """Runs one Workload through its phases; :meth:`teardown_quietly` releases it after."""

    def __init__(self, phases: Phases, signals: Signals, duration_s: float | None) -> None:
        self.phases = phases
        self.signals = signals
        self.duration_s = duration_s
        self.workload: Workload | None = None

    def run(self, name: str | None, workload_file: str | None, class_name: str | None,
            target: str | None, params_json: str, memory_limit_bytes: int | None) -> str:
        """Everything from import to the end of the window; returns why measuring ended."""
        phases, signals, emit = self.phases, self.signals, self.phases.events
        phases.enter(Phase.LOADING)
        params = json.loads(params_json)
        if not isinstance(params, dict):
            raise BadInput("--params must be a JSON object")
        cls, found = signals.call(
            lambda: load_workload_class(name, workload_file, class_name, target)
        )
        emit.unit = cls.unit
        workload = signals.call(lambda: cls(params))
        workload.progress = HookProgress(phases)
        self.workload = workload
        signals.call(workload.setup)
        info = {
            "workload": cls.name or name or cls.__name__,
            "target": found,
            "unit": cls.unit,
            "pid": str(os.getpid()),
            "python": sys.version.split()[0],
            **signals.call(workload.info),
        }
        if self.duration_s is not None:
            info["duration_s"] = f"{self.duration_s:g}"
        if memory_limit_bytes:
            info["memory_limit_bytes"] = str(memory_limit_bytes)
        emit.emit(events.INFO, info=info)
        emit.unit = info.get("unit") or cls.unit  # a workload's mode may name its unit
        log.info("running %s (%s): %s", info["workload"], found, info)

        signals.call(workload.synchronize)
        phases.enter(Phase.WARMUP)
        if self.steps(workload, workload.warmup_s, at_least_one=False):
            return "workload finished during warm-up"  # nothing was measured
        signals.call(workload.synchronize)
        phases.report_units()
        phases.enter(Phase.MEASURING)
        ended = self.steps(workload, self.duration_s, at_least_one=True)
        signals.call(workload.synchronize)
        phases.close_window(session_time_s())  # the real edge: the queued work has finished
        return "workload finished" if ended else "duration"

    def steps(self, workload: Workload, seconds: float | None, *, at_least_one: bool) -> bool:
        """Steps until ``seconds`` pass (None: forever); True when the workload said it ended."""
        phases = self.phases
        start = last_report = session_time_s()
        first = at_least_one
        while first or seconds is None or session_time_s() - start < seconds:
            first = False
            step = self.signals.call(workload.step)  # raises Terminated on SIGTERM
            phases.add_units(step.units, step.flops)
            if step.last:
                return True
            now = session_time_s()
            if now - last_report >= phases.units_every_s:
                last_report = now
                self.signals.check()  # PR_SET_PDEATHSIG's fallback, at the reporting pace
                phases.report_units()
        return False

    def teardown_quietly(self) -> None:
        """``teardown()`` once, whatever happened; a failure in it is only logged."""
        workload, self.workload = self.workload, None
        if workload is None:
            return
        try:
            self.signals.call(workload.teardown)
        except BaseException as exc:  # already failing or done: log and go on
            log.warning("teardown failed: %s", describe(exc))
        del workload
        gc.collect()


class HookProgress(Progress):
    """A workload's ``progress`` inside the child: the calls a user's program makes through
    :mod:`carbontop.progress`, applied to the run's phases directly."""

    def __init__(self, phases: Phases) -> None:
        self.phases = phases

    @property
    def window_start_s(self) -> float | None:
        phases = self.phases
        return phases.phase_start if phases.phase is Phase.MEASURING else None

    def subphase(self, name: str | None, t_s: float | None = None) -> None:
        self.phases.enter_subphase(subphase_name(name), t_s)

    def units(self, amount: float) -> None:
        self.phases.add_units(amount)

    def results(self, figures: dict[str, str]) -> None:
        if figures and self.phases.phase is Phase.MEASURING:
            self.phases.events.emit(events.INFO, info=figures)
