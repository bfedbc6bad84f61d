"""24 hours of samples at 10 Hz through the real pipeline: flat memory, exact energy.

The samples are pushed into the engine as its source would deliver them (without waiting 24
hours): integration, the live chart's history, gpu_log.csv streaming and the summary rows.
"""

from __future__ import annotations

import csv
import gc
from pathlib import Path

import psutil
import pytest

from carbontop.carbon import world_average
from carbontop.config import Settings
from carbontop.engine import Engine
from carbontop.engine_api import SessionRequest
from carbontop.model import BoardBasis, PowerSample, Scope, SourceInfo
from carbontop.results import schema
from tests.waiting import wait_until

HOURS = 24
RATE_HZ = 10


class ReplaySource:
    """A power source whose samples the test pushes (a recorded trace being replayed)."""

    def __init__(self) -> None:
        self.info = SourceInfo(kind="replay", device_name="replayed Orin NX", gpu_count=1,
                               gpu_rail="VDD_CPU_GPU_CV", gpu_scope=Scope.CPU_GPU_CV_SHARED,
                               board_rail="VDD_IN", board_basis=BoardBasis.INPUT_RAIL,
                               interval_s=1.0 / RATE_HZ)
        self.sink = None

    def open(self) -> SourceInfo:
        return self.info

    def start(self, sink) -> None:  # type: ignore[no-untyped-def]
        self.sink = sink

    def close(self) -> None:
        pass


@pytest.mark.slow
def test_24_hours_at_10_hz(tmp_path: Path) -> None:
    source = ReplaySource()
    clock_now = [1_000_000.0]
    engine = Engine(Settings(gpu_source="none", output_dir=tmp_path, duration_s=HOURS * 3600.0),
                    source, world_average(), clock=lambda: clock_now[0],
                    monotonic=lambda: clock_now[0] - 1_000_000.0 + 5000.0)
    engine.open()
    engine.start_session(SessionRequest("idle", {"warmup_s": "0"},
                                        duration_s=2 * HOURS * 3600.0))
    wait_until(lambda: engine.snapshot().state == "measuring", 60, "the measured window")
    process = psutil.Process()
    gc.collect()
    rss_before = process.memory_info().rss
    peak = rss_before
    n = HOURS * 3600 * RATE_HZ
    t0 = 5000.0
    for i in range(n):
        t = t0 + i / RATE_HZ
        clock_now[0] = 1_000_000.0 + i / RATE_HZ
        # 8 W GPU and 12 W board, +4 W on every other hour
        extra = 4.0 if (i // (3600 * RATE_HZ)) % 2 else 0.0
        source.sink(PowerSample(t_s=t, t_sensor_s=t, t_unix_s=clock_now[0], gpu_w=8.0 + extra,
                                board_w=12.0 + extra, board_basis=BoardBasis.INPUT_RAIL,
                                board_rail="VDD_IN"))
        if i % 1000 == 999:
            # At real pace the engine's ticker writes each second's 10 rows; replayed ~3000x
            # faster, the test flushes as often in samples so the queue is as short.
            engine.store.flush_all(final=False)
        if i % 100_000 == 0:
            peak = max(peak, process.memory_info().rss)
    peak = max(peak, process.memory_info().rss)
    snap = engine.snapshot()
    assert snap.session is not None
    gpu_kwh = snap.session.whole.gpu_kwh
    engine.stop_session()
    summary = engine.wait_session(60)
    engine.close()
    # 24 h: 12 h at 8 W and 12 h at 12 W -> 240 Wh, less one interval at the edges
    assert gpu_kwh == pytest.approx(0.240, rel=1e-4)
    # The first sample lies on the session's start edge (not counted in it); the last may fall
    # a rounding error past the end edge.
    assert summary is not None and summary.whole.gpu_samples >= n - 2
    growth_mb = (peak - rss_before) / 2**20
    assert growth_mb < 60, f"memory grew by {growth_mb:.0f} MB over 24 h of samples"
    assert len(engine.history()) <= 6001  # the chart keeps ten minutes
    with (tmp_path / schema.GPU_LOG).open() as f:
        rows = sum(1 for _ in csv.reader(f)) - 1
    assert rows >= n
