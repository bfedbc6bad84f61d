"""The idle baseline: the machine doing nothing, so sessions can report energy above idle."""

from __future__ import annotations

import time

from carbontop.workload import Step, Workload


class Idle(Workload):
    """Sleeps in short naps; each step reports the seconds it slept. No torch, no numpy."""

    name = "idle"
    description = "Does nothing (sleeps): the idle power baseline; unit second"
    unit = "second"
    defaults = {"nap_s": 0.1}
    warmup_s = 1.0

    def step(self) -> Step:
        start = time.monotonic()
        time.sleep(max(0.001, self.float_param("nap_s")))
        return Step(units=time.monotonic() - start)

    def info(self) -> dict[str, str]:
        return {**super().info(), "device": "none"}
