"""Small workloads for the runner tests: no torch, so each child starts in a fraction of a second.

Pick one with ``--workload-file tests/data/plugin_workloads.py --class-name NAME``.
"""

from __future__ import annotations

import signal
import time

from carbontop.workload import Step, Workload


class Counter(Workload):
    """Counts naps; a fast, well-behaved workload."""

    name = "counter"
    description = "Counts short naps"
    unit = "nap"
    defaults = {"nap_s": 0.01, "steps": 0}  # steps 0: unlimited
    warmup_s = 0.1

    def setup(self) -> None:
        self.done = 0

    def step(self) -> Step:
        time.sleep(self.float_param("nap_s"))
        self.done += 1
        limit = self.int_param("steps")
        return Step(units=1, flops=10.0, last=bool(limit) and self.done >= limit)


class Failing(Workload):
    """Raises in the measured window."""

    name = "failing"
    description = "Raises ValueError after a few steps"
    defaults = {"after": 3}
    warmup_s = 0.0

    def setup(self) -> None:
        self.count = 0

    def step(self) -> Step:
        self.count += 1
        if self.count > self.int_param("after"):
            raise ValueError("boom: the workload broke")
        return Step(units=1)


class Hanging(Workload):
    """Sleeps forever in step(); ``ignore_sigterm`` makes it deaf to SIGTERM as well."""

    name = "hanging"
    description = "Never returns from step()"
    defaults = {"ignore_sigterm": False}
    warmup_s = 0.0

    def setup(self) -> None:
        if self.bool_param("ignore_sigterm"):
            signal.signal(signal.SIGTERM, signal.SIG_IGN)

    def step(self) -> Step:
        while True:
            time.sleep(3600)


class SlowEdges(Workload):
    """Queued work at each edge (``synchronize()`` takes ``sync_s``) and a slow ``teardown()``."""

    name = "slow-edges"
    description = "Naps; slow synchronize and teardown"
    unit = "nap"
    defaults = {"nap_s": 0.05, "sync_s": 0.2, "teardown_s": 0.6}
    warmup_s = 0.0

    def step(self) -> Step:
        time.sleep(self.float_param("nap_s"))
        return Step(units=1)

    def synchronize(self) -> None:
        time.sleep(self.float_param("sync_s"))

    def teardown(self) -> None:
        time.sleep(self.float_param("teardown_s"))
