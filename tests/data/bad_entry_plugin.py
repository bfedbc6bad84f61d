"""A module whose import would be noticed: the registry must list it without running it."""

from __future__ import annotations

import os

from carbontop.workload import Step, Workload

MARKER = os.environ.get("CARBONTOP_TEST_IMPORT_MARKER")
if MARKER:
    with open(MARKER, "w", encoding="utf-8") as marker:
        marker.write("imported")


class Noisy(Workload):
    """Listed by reading its source."""

    name = "noisy"
    unit = "bang"

    def step(self) -> Step:
        return Step(units=1)
