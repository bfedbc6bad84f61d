"""The session clock: the one clock that places edges, measures durations and integrates power.

It is ``CLOCK_MONOTONIC`` (``time.monotonic()``), which every process on a Linux machine shares:
the workload child stamps its phase edges with it, the power sources stamp their samples with it
(or convert their sensor's own clock to it once), and CodeCarbon's readings are stamped with it
when they arrive. An NTP step of the wall clock (Jetsons without an RTC battery get one after
boot) moves none of them. Wall time (``time.time()``) is read only to label rows, never subtracted.
"""

from __future__ import annotations

import time

session_time_s = time.monotonic
"""Seconds on the session clock (``CLOCK_MONOTONIC``), comparable across processes."""
