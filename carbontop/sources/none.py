"""No GPU power source: CPU and RAM only (CodeCarbon), said plainly.

By default it delivers no samples at all. A session's duration comes from the engine's clock,
CPU and RAM from CodeCarbon's readings; a sample with every power field ``None`` would only
add empty rows to gpu_log.csv and, in a trapezoid integrator, count as unmeasured time.
``heartbeat=True`` delivers such an empty sample (timestamps only) every ``interval_s`` for a
consumer that wants a tick (a chart), knowing that every power field is ``None``.
"""

from __future__ import annotations

import logging
import time

from carbontop.model import PowerSample, SourceInfo
from carbontop.sources.base import SourceSink, ThreadedSource

logger = logging.getLogger(__name__)

NO_GPU_NOTE = "no GPU power measured: CPU and RAM only (CodeCarbon)"


class NoneSource(ThreadedSource):
    """A source that measures nothing; ``info.measures_gpu`` is False."""

    def __init__(self, interval_s: float = 0.5, heartbeat: bool = False) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        super().__init__()
        self.interval_s = float(interval_s)
        self.heartbeat = heartbeat
        self.info = SourceInfo(kind="none", device_name="no GPU measured", gpu_count=0,
                               interval_s=self.interval_s, note=NO_GPU_NOTE)

    def open(self) -> SourceInfo:
        return self.info

    def start(self, sink: SourceSink) -> None:
        """Remembers the sink; with ``heartbeat`` starts the empty-sample thread."""
        super().start(sink)
        logger.info("no GPU source: %s", self.info.note)

    def _runs_thread(self) -> bool:
        return self.heartbeat

    def _run(self) -> None:
        for _ in self._ticks(self.interval_s):
            now = time.monotonic()
            if not self._emit(PowerSample(t_s=now, t_sensor_s=now, t_unix_s=time.time())):
                return
