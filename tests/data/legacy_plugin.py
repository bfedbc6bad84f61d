"""A plugin written against the plugin API's old home, ``workloads.base``: it keeps working for
one release, with a FutureWarning. Leave it as it is (tests/unit/test_child_side.py).
"""

from __future__ import annotations

from workloads.base import Step, Workload


class Legacy(Workload):
    """Three steps of two units, then done."""

    name = "legacy"
    unit = "step"
    defaults = {"steps": 3}
    warmup_s = 0.0

    def setup(self) -> None:
        self.left = self.int_param("steps")

    def step(self) -> Step:
        self.left -= 1
        return Step(units=2, last=self.left <= 0)
