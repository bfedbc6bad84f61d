"""JtopSource against the REAL jtop service (jetson-stats) on emulated Jetson boards."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from itertools import pairwise
from typing import Any

import pytest

from carbontop.model import BoardBasis, Scope
from carbontop.sources.base import SourceUnavailable
from carbontop.sources.jtop import JtopSource
from carbontop.sources.jtop_connect import jetson_stats_version
from tests.jtop_harness import JtopService
from tests.recorder import Recorder

pytestmark = pytest.mark.jtop_service

INTERVAL = 0.25  # we are the service's first client, so this is what it delivers

StartService = Callable[..., JtopService]


# board: GPU rail, scope, basis, board rail, CPU rail, module name
BOARDS: dict[str, tuple[str, Scope, BoardBasis, str | None, str | None, str]] = {
    "nano": (
        "POM_5V_GPU",
        Scope.GPU_ONLY,
        BoardBasis.INPUT_RAIL,
        "POM_5V_IN",
        "POM_5V_CPU",
        "NVIDIA Jetson Nano (4 GB ram)",
    ),
    "orin-nx": (
        "VDD_CPU_GPU_CV",
        Scope.CPU_GPU_CV_SHARED,
        BoardBasis.INPUT_RAIL,
        "VDD_IN",
        None,
        "NVIDIA Jetson Orin NX (16GB ram)",
    ),
    "agx-orin": (
        "VDD_GPU_SOC",
        Scope.GPU_SOC_SHARED,
        BoardBasis.SUM_OF_RAILS,
        None,
        "VDD_CPU_CV",
        "NVIDIA Jetson AGX Orin (64GB ram)",
    ),
}


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_board_rails_watts_basis_and_clock(jtop_service: StartService, board: str) -> None:
    gpu_rail, scope, basis, board_rail, cpu_rail, module = BOARDS[board]
    service = jtop_service(board)
    source = JtopSource(INTERVAL, client_factory=service.client_factory)
    rec = Recorder()
    info = source.open()
    try:
        assert info.kind == "jtop"
        assert info.device_name == module
        assert (info.gpu_rail, info.gpu_scope) == (gpu_rail, scope)
        assert info.board_basis is basis
        assert info.board_rail == board_rail
        assert info.cpu_rail == cpu_rail
        assert info.interval_s == INTERVAL
        assert info.jetson_stats_version == jetson_stats_version()
        assert info.l4t == service.board.hardware["L4T"]
        assert info.jetpack == service.board.hardware["Jetpack"]

        source.start(rec)
        # Known millivolts and milliamps in, watts out (jtop computes int(mV * mA / 1000) mW).
        gpu_mw = service.set_rail_raw(gpu_rail, 5000, 1234)
        assert gpu_mw == 6170
        input_mw = service.set_rail_raw(board_rail, 5100, 2000) if board_rail else None
        service.set_gpu_load(42.0)
        sample = rec.wait_sample(lambda s: s.gpu_w == 6.17)
        if board_rail:
            sample = rec.wait_sample(lambda s: s.board_w == 10.2)
            assert input_mw == 10200
            assert sample.board_basis is BoardBasis.INPUT_RAIL
            assert sample.board_rail == board_rail
            assert board_rail not in dict(sample.rails_w)
        else:
            assert sample.board_basis is BoardBasis.SUM_OF_RAILS
            assert sample.board_rail is None
            assert sample.board_w == pytest.approx(sum(w for _, w in sample.rails_w), abs=1e-9)
        assert dict(sample.rails_w)[gpu_rail] == 6.17
        if cpu_rail:
            assert sample.cpu_rail_w == dict(sample.rails_w)[cpu_rail]
        rec.wait_sample(lambda s: s.gpu_load_pct == 42.0)
        rec.wait_for(lambda r: len(r.samples) >= 8)
    finally:
        source.close()
    times = [s.t_sensor_s for s in rec.samples]
    assert all(b > a for a, b in pairwise(times)), times
    steps = [b - a for a, b in pairwise(times)]
    assert min(steps) >= INTERVAL * 0.5 and max(steps) < INTERVAL * 3
    assert not rec.statuses


def test_service_restart_mid_stream(jtop_service: StartService) -> None:
    service = jtop_service("orin-nx")
    source = JtopSource(INTERVAL, client_factory=service.client_factory, reconnect_delay_s=0.25)
    rec = Recorder()
    source.open()
    source.start(rec)
    try:
        rec.wait_for(lambda r: len(r.samples) >= 3)
        service.stop()
        rec.wait_for(lambda r: len(r.statuses) >= 1, timeout=10)
        lost = rec.statuses[0]
        assert not lost.connected
        count = len(rec.samples)
        time.sleep(0.6)  # a few failed reconnect attempts while the service is down
        assert len(rec.samples) == count
        service.set_rail("VDD_CPU_GPU_CV", 3000)
        service.start()
        rec.wait_for(lambda r: any(s.connected for s in r.statuses), timeout=15)
        rec.wait_for(lambda r: len(r.samples) >= count + 3)
    finally:
        source.close()
    assert [s.connected for s in rec.statuses] == [False, True]
    times = [s.t_sensor_s for s in rec.samples]
    assert all(b > a for a, b in pairwise(times))
    after = rec.samples[count:]
    assert after[0].t_sensor_s - rec.samples[count - 1].t_sensor_s > 3 * INTERVAL  # a gap
    assert after[-1].gpu_w == 3.0


def test_input_rail_failing_for_a_while_is_not_taken_for_the_board(
    jtop_service: StartService,
) -> None:
    service = jtop_service("orin-nx")
    source = JtopSource(INTERVAL, client_factory=service.client_factory)
    rec = Recorder()
    source.open()
    source.start(rec)
    try:
        rec.wait_for(lambda r: len(r.samples) >= 2)
        service.fail_rail("VDD_IN")  # jtop then silently makes 'tot' the sum of the others
        bad = rec.wait_sample(lambda s: s.board_basis is BoardBasis.SUM_OF_RAILS)
        service.restore_rail("VDD_IN")
        good = rec.wait_sample(lambda s: s.board_basis is BoardBasis.INPUT_RAIL)
    finally:
        source.close()
    assert bad.board_w is None and bad.board_rail is None
    assert bad.gpu_w is not None  # the other rails were still measured
    assert good.board_w is not None and good.board_rail == "VDD_IN"


def test_interval_is_fixed_by_the_first_client(jtop_service: StartService) -> None:
    service = jtop_service("nano")
    box: dict[str, Any] = {}

    def first_client() -> None:  # e.g. the jtop GUI, already running at 0.5 s
        client = service.client_factory(0.5)
        client.start()
        box["client"] = client

    thread = threading.Thread(target=first_client)
    thread.start()
    thread.join(10)
    first = box["client"]
    source = JtopSource(0.2, client_factory=service.client_factory)
    rec = Recorder()
    try:
        info = source.open()
        assert info.interval_s == 0.5  # what the service delivers, not what we asked
        source.start(rec)
        rec.wait_for(lambda r: len(r.samples) >= 4, timeout=10)
    finally:
        source.close()
        first.close()
    assert not rec.statuses  # a client asking 0.2 s would have stopped after one sample
    times = [s.t_sensor_s for s in rec.samples]
    assert all(0.3 < b - a < 1.0 for a, b in pairwise(times)), times


def test_board_without_power_sensors_is_unavailable(jtop_service: StartService) -> None:
    service = jtop_service("nano-2gb")
    source = JtopSource(INTERVAL, client_factory=service.client_factory)
    with pytest.raises(SourceUnavailable, match="reports no power rails"):
        source.open()
    source.close()


def test_version_mismatch_names_the_fix(jtop_service: StartService) -> None:
    service = jtop_service("orin-nx", service_version="4.3.2")
    source = JtopSource(INTERVAL, client_factory=service.client_factory)
    with pytest.raises(SourceUnavailable) as err:
        source.open()
    client = ".".join((jetson_stats_version() or "").split(".")[:2])
    assert str(err.value) == (
        f"jetson-stats client {client} does not match the jtop service 4.3: install carbontop "
        "in a venv with --system-site-packages, or pip install 'jetson-stats==4.3.*'"
    )


def test_no_service_is_unavailable(tmp_path: Any) -> None:
    def factory(interval: float) -> Any:
        import jtop.service

        jtop.service.JTOP_PIPE = str(tmp_path / "absent.sock")
        from jtop import jtop

        return jtop(interval=interval)

    source = JtopSource(INTERVAL, client_factory=factory)
    with pytest.raises(SourceUnavailable, match="jtop service is not running"):
        source.open()


@pytest.mark.parametrize("gpu_source", ["auto", "jtop"])
def test_carbontop_refuses_a_mismatched_service_with_one_line(
    jtop_service: StartService, gpu_source: str, tmp_path: Any
) -> None:
    import subprocess
    import sys

    service = jtop_service("orin-nx", service_version="4.3.2")
    code = (
        "import sys, jtop.service\n"
        f"jtop.service.JTOP_PIPE = {service.pipe!r}\n"
        "from carbontop.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, "run", "idle", "--gpu-source", gpu_source,
         "--output-dir", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "does not match the jtop service 4.3" in lines[0]
    assert "jetson-stats==4.3.*" in lines[0]


def test_a_service_too_slow_for_the_interval_is_measured_at_a_pace_it_keeps(
    jtop_service: StartService,
) -> None:
    # The first client asks 0.1 s of a service whose decode takes 0.35 s (+ a few ms of its own
    # work): jtop's client waits 3 x 0.1 s for its first sample and gives up ("Error
    # connection"). carbontop times the pace the service keeps (0.35-0.40 s), waits for the
    # service to drop it and asks that pace x 1.25 rounded up to 0.05 s: 0.45 or 0.5 s.
    service = jtop_service("orin-nx", decode_delay_s=0.35, stamp_log=True)
    source = JtopSource(0.1, client_factory=service.client_factory)
    rec = Recorder()
    started = time.monotonic()
    info = source.open()
    open_s = time.monotonic() - started
    try:
        assert info.interval_s in (0.45, 0.5)
        assert info.pace_note.startswith("the jtop service cannot keep 0.1 s (its decode takes")
        assert info.pace_note.endswith(f"measuring every {info.interval_s:g} s")
        assert info.note.startswith(info.pace_note)  # the one line the user sees at start
        assert info.board_rail == "VDD_IN"
        source.start(rec)
        rec.wait_for(lambda r: len(r.samples) >= 6, timeout=20)
    finally:
        source.close()
    assert not rec.statuses
    # What the service itself did: each tick's decode starts one served interval after the
    # previous one (it sleeps what is left of the interval), measured on its own clock.
    sample_uptimes = {round(s.t_sensor_s or 0.0, 2) for s in rec.samples}
    served = [s for s in service.stamps() if round(s["uptime"], 2) in sample_uptimes]
    starts = [s["decode_start"] for s in served]
    steps = [b - a for a, b in pairwise(starts)]
    assert len(steps) >= 4
    assert all(abs(step - info.interval_s) < 0.03 for step in steps), steps
    # and the samples' own clock (10 ms steps) agrees
    uptimes = [s.t_sensor_s or 0.0 for s in rec.samples]
    assert all(abs(b - a - info.interval_s) < 0.03 for a, b in pairwise(uptimes)), uptimes
    assert open_s < 15.0  # 0.3 s + 3 probe steps + the service's 3 s drop + a connection


def test_a_rail_missing_from_a_sum_of_rails_tick_is_not_the_board_figure(
    jtop_service: StartService,
) -> None:
    # Emulated AGX Orin, board = sum of rails: 5 V x (800 + 300 + 600 + 100) mA = 4.0 + 1.5 +
    # 3.0 + 0.5 = 9.0 W. With VIN_SYS_5V0 unreadable jtop sums the rest (6.0 W): not the board.
    service = jtop_service("agx-orin")
    source = JtopSource(INTERVAL, client_factory=service.client_factory)
    rec = Recorder()
    info = source.open()
    assert info.board_basis is BoardBasis.SUM_OF_RAILS
    source.start(rec)
    try:
        before = rec.wait_sample(lambda s: s.board_w is not None)
        service.fail_rail("VIN_SYS_5V0")
        bad = rec.wait_sample(lambda s: "VIN_SYS_5V0" not in dict(s.rails_w))
        more_bad = rec.wait_sample(lambda s: True)
        service.restore_rail("VIN_SYS_5V0")
        good = rec.wait_sample(lambda s: "VIN_SYS_5V0" in dict(s.rails_w))
    finally:
        source.close()
    assert before.board_w == pytest.approx(9.0, abs=1e-9)
    for tick in (bad, more_bad):
        assert tick.board_w is None
        assert tick.board_basis is BoardBasis.SUM_OF_RAILS  # what jtop said: a sum, short a rail
        assert tick.gpu_w == pytest.approx(4.0, abs=1e-9)  # the rails that read still count
        assert tick.cpu_rail_w == pytest.approx(1.5, abs=1e-9)
    assert more_bad.t_sensor_s is not None and bad.t_sensor_s is not None
    assert more_bad.t_sensor_s > bad.t_sensor_s
    assert good.board_w == pytest.approx(9.0, abs=1e-9)
    assert not rec.statuses


def test_thor_vin_is_the_carrier_input_and_never_replaced_by_another_figure(
    jtop_service: StartService,
) -> None:
    # Emulated AGX Thor: module rails on an INA3221, VIN (19 V x 600 mA = 11.4 W) on an INA238.
    service = jtop_service("thor")
    source = JtopSource(INTERVAL, client_factory=service.client_factory)
    rec = Recorder()
    info = source.open()
    try:
        assert (info.board_basis, info.board_rail) == (BoardBasis.INPUT_RAIL, "VIN")
        assert info.note == (
            "board = carrier input VIN (INA238): the module and the carrier board together "
            "(not the wall)"
        )
        assert (info.gpu_rail, info.gpu_scope) == ("VDD_GPU", Scope.GPU_ONLY)
        source.start(rec)
        first = rec.wait_sample(lambda s: s.board_w is not None)
        service.fail_rail("VIN")  # jtop then sums the module rails: 4.5 + 3.5 + 2.5 = 10.5 W
        bad = rec.wait_sample(lambda s: s.board_rail is None)
        service.restore_rail("VIN")
        good = rec.wait_sample(lambda s: s.board_rail == "VIN")
    finally:
        source.close()
    assert first.board_w == pytest.approx(11.4, abs=1e-9)
    assert first.board_rail == "VIN"
    assert bad.board_w is None
    assert bad.gpu_w == pytest.approx(4.5, abs=1e-9)
    assert good.board_w == pytest.approx(11.4, abs=1e-9)


def test_carbontop_run_measures_a_too_slow_service_and_says_so(
    jtop_service: StartService, tmp_path: Any
) -> None:
    import json
    import subprocess
    import sys

    service = jtop_service("orin-nx", decode_delay_s=0.35)
    code = (
        "import sys, jtop.service\n"
        f"jtop.service.JTOP_PIPE = {service.pipe!r}\n"
        "from carbontop.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, "run", "idle", "--gpu-source", "jtop", "--interval", "0.1",
         "--duration", "3", "--json", "--output-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["sample_interval_s"] in (0.45, 0.5)  # 0.35-0.40 s x 1.25, up to 0.05 s
    note = summary["sample_pace_note"]
    assert note.startswith("the jtop service cannot keep 0.1 s (its decode takes about 0.3")
    assert note.endswith(f"measuring every {summary['sample_interval_s']:g} s")
    assert summary["board_basis"] == "input rail VDD_IN"
    # 5 V x 1400 mA on VDD_IN = 7.0 W the whole session long
    assert summary["board_energy_kwh"] * 3.6e6 / summary["duration_s"] == pytest.approx(
        7.0, rel=0.02)
