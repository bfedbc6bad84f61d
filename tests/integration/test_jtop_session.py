"""A whole session on the real jtop service (emulated Orin NX) that stops and restarts mid-way."""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from carbontop.carbon import world_average
from carbontop.config import Settings
from carbontop.engine import Engine
from carbontop.engine_api import SessionRequest
from carbontop.results import schema
from carbontop.sources.jtop import JtopSource
from tests.jtop_harness import JtopService
from tests.waiting import wait_until

pytestmark = pytest.mark.jtop_service
INTERVAL = 0.25


def test_service_restart_mid_session_is_a_gap_not_energy(
        jtop_service: Callable[..., JtopService], tmp_path: Path) -> None:
    service = jtop_service("orin-nx")
    gpu_mw = service.set_rail("VDD_CPU_GPU_CV", 4000)
    service.set_rail("VDD_IN", 9000)
    source = JtopSource(INTERVAL, client_factory=service.client_factory, reconnect_delay_s=0.25)
    info = source.open()
    engine = Engine(Settings(gpu_source="jtop", interval_s=INTERVAL, output_dir=tmp_path),
                    source, world_average())
    messages: list[tuple[str, str]] = []
    engine.add_listener(lambda level, message: messages.append((level, message)))
    engine.open()
    engine.start_session(SessionRequest("idle", {"warmup_s": "0"}, duration_s=60.0))
    try:
        wait_until(lambda: engine.snapshot().state == "measuring", 30, "the measured window")
        time.sleep(1.5)
        service.stop()
        wait_until(lambda: not engine.snapshot().source_connected, 30,
                   "carbontop to see the service gone")
        assert engine.snapshot().live.gpu_w is None  # lost is shown as lost, not as old watts
        time.sleep(3.0)
        service.start()
        wait_until(lambda: engine.snapshot().source_connected, 60,
                   "carbontop to reconnect to the restarted service")
        time.sleep(1.5)
        assert engine.session_running  # the session went on
    finally:
        engine.stop_session()
        summary = engine.wait_session(30)
        engine.close()
    assert summary is not None and summary.status.value == "stopped"
    whole = summary.whole
    assert info.board_rail == "VDD_IN"
    assert whole.unmeasured_s > 3.0  # the outage, not integrated
    # Energy rests only on measured time: gpu watts x measured seconds, no bridged gap.
    measured_s = whole.duration_s - whole.unmeasured_s
    # A constant 4 W: the energy is 4 W x the measured seconds, to within one sample interval
    # (4 W x 0.25 s = 1 J) where the edges of the outage fall between samples.
    assert whole.gpu_kwh * 3.6e6 == pytest.approx(gpu_mw / 1000 * measured_s,
                                                  abs=gpu_mw / 1000 * INTERVAL)
    assert whole.gpu_kwh * 3.6e6 < gpu_mw / 1000 * (whole.duration_s - 2.5)
    # The user was told, in order: the service was lost (a warning), then it came back.
    lost = [i for i, (level, m) in enumerate(messages)
            if level == "warning" and m.startswith("lost the jtop service (")
            and m.endswith("); retrying every 0.25 s")]
    back = [i for i, (level, m) in enumerate(messages)
            if level == "info" and m == f"jtop service back (interval {INTERVAL:g} s)"]
    assert lost and back and lost[0] < back[0], messages
    with (tmp_path / schema.EMISSIONS).open() as f:
        row = next(csv.DictReader(f))
    assert float(row["unmeasured_s"]) == pytest.approx(whole.unmeasured_s, abs=1e-3)
