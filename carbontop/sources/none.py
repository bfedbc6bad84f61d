"""No GPU power source: CPU and RAM only (CodeCarbon), said plainly.

By default it delivers no samples at all. A session's duration comes from the engine's clock,
CPU and RAM from CodeCarbon's readings; a sample with every power field ``None`` would only
add empty rows to gpu_log.csv and, in a trapezoid integrator, count as unmeasured time.
``heartbeat=True`` delivers such an empty sample (timestamps only) every ``interval_s`` for a
consumer that wants a tick (a chart), knowing that every power field is ``None``.
"""

from __future__ import annotations

import logging
import threading
import time

from carbontop.model import PowerSample, SourceInfo
from carbontop.sources.base import SourceSink

logger = logging.getLogger(__name__)

NO_GPU_NOTE = "no GPU power measured: CPU and RAM only (CodeCarbon)"


class NoneSource:
    """A source that measures nothing; ``info.measures_gpu`` is False."""

    def __init__(self, interval_s: float = 0.5, heartbeat: bool = False) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self.interval_s = float(interval_s)
        self.heartbeat = heartbeat
        self.info = self._info()
        self._sink: SourceSink | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._emit_lock = threading.Lock()

    def _info(self) -> SourceInfo:
        return SourceInfo(kind="none", device_name="no GPU measured", gpu_count=0,
                          interval_s=self.interval_s, note=NO_GPU_NOTE)

    def open(self) -> SourceInfo:
        return self.info

    def start(self, sink: SourceSink) -> None:
        """Remembers the sink; with ``heartbeat`` starts the empty-sample thread."""
        if self._sink is not None:
            raise RuntimeError("NoneSource already started")
        self._sink = sink
        self._stop.clear()
        if self.heartbeat:
            self._thread = threading.Thread(target=self._run, name="carbontop-none",
                                            daemon=True)
            self._thread.start()
        logger.info("no GPU source: %s", self.info.note)

    def close(self) -> None:
        """Stops the heartbeat; nothing is delivered after this returns."""
        with self._emit_lock:
            self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=max(1.0, 2.0 * self.interval_s))

    def _run(self) -> None:
        next_t = time.monotonic()
        while True:
            next_t = max(next_t + self.interval_s, time.monotonic())
            if self._stop.wait(next_t - time.monotonic()):
                return
            with self._emit_lock:
                sink = self._sink
                if self._stop.is_set() or sink is None:
                    return
                try:
                    now = time.monotonic()
                    sink(PowerSample(t_s=now, t_sensor_s=now, t_unix_s=time.time()))
                except Exception:  # a broken sink must not kill the source
                    logger.exception("power sink failed on a heartbeat")
