"""CpuRamTracker: the real CodeCarbon tracker for a few seconds, then the pieces around it."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from carbontop.carbon import resolve_intensity, world_average
from carbontop.cpu_ram import (
    NOT_STARTED,
    STARTING,
    UNAVAILABLE,
    CpuRamTracker,
    _codecarbon_classes,
    describe_cpu_mode,
    describe_hardware,
)
from carbontop.model import CpuRamReading, Provenance
from tests.waiting import wait_until

HOSTILE_CONFIG = """\
[codecarbon]
measure_power_secs = 30
api_call_interval = 8
save_to_file = true
output_methods = csv
log_level = debug
allow_multiple_runs = false
tracking_mode = process
electricitymaps_api_token = not-a-token
force_carbon_intensity_g_co2e_kwh = 9999
pue = 3
"""


class Collected:
    def __init__(self) -> None:
        self.readings: list[CpuRamReading] = []
        self.statuses: list[str | None] = []
        self.threads: set[str] = set()
        self.cond = threading.Condition()

    def reading(self, r: CpuRamReading) -> None:
        with self.cond:
            self.readings.append(r)
            self.threads.add(threading.current_thread().name)
            self.cond.notify_all()

    def status(self, s: str | None) -> None:
        with self.cond:
            self.statuses.append(s)
            self.cond.notify_all()

    def wait_status(self, timeout: float = 30.0) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: self.statuses, timeout), "no status"


@pytest.fixture
def hostile_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory and environment that would change a plain CodeCarbon tracker."""
    (tmp_path / ".codecarbon.config").write_text(HOSTILE_CONFIG)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("CODECARBON_MEASURE_POWER_SECS", "60")
    monkeypatch.setenv("CODECARBON_SAVE_TO_FILE", "true")
    monkeypatch.setenv("CODECARBON_OUTPUT_DIR", str(tmp_path))
    monkeypatch.setenv("CODECARBON_LOG_LEVEL", "debug")
    return tmp_path


@pytest.mark.slow
def test_real_tracker_delivers_quiet_per_second_readings(
    hostile_cwd: Path, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import codecarbon.core.gpu as cc_gpu

    gpu_probes: list[str] = []

    def probe(name: str, answer: bool) -> Any:
        def is_system() -> bool:
            gpu_probes.append(name)
            return answer
        return is_system

    monkeypatch.setattr(cc_gpu, "is_nvidia_system", probe("nvidia", True))
    monkeypatch.setattr(cc_gpu, "is_rocm_system", probe("rocm", False))
    caplog.set_level(logging.INFO)

    intensity = resolve_intensity("FRA", None, None)
    tracker = CpuRamTracker(intensity, exclude_gpu=True)
    got = Collected()
    assert tracker.cpu_mode == NOT_STARTED and tracker.error is None
    tracker.start(got.reading, got.status)
    # returns before CodeCarbon is up (it starts on a thread and takes seconds): no status yet
    assert tracker.cpu_mode == STARTING and got.statuses == []
    got.wait_status()
    assert got.statuses == [None] and tracker.error is None and tracker.running
    logging.getLogger("codecarbon").warning("routed probe")  # as CodeCarbon would log
    # three per-second readings, however long a loaded machine takes to deliver them
    with got.cond:
        assert got.cond.wait_for(lambda: len(got.readings) >= 3, 60), got.readings
    # then stop well inside an interval (0.3 s after a reading, the next one ~0.7 s away), so
    # that stop()'s own last interval is long enough to be delivered as a reading
    wait_until(lambda: time.time() - got.readings[-1].t_unix_s >= 0.3, 30,
               "a moment 0.3 s after a CodeCarbon reading", poll_s=0.01)
    stop_t = time.time()
    tracker.stop()
    stop_end = time.time()
    tracker.stop()  # idempotent
    # stop() flushes one last reading at once: it does not wait out a 1 s (or 30 s) interval
    assert stop_end - stop_t < 5.0

    readings = got.readings
    assert len(readings) >= 4, readings  # the three waited for, and stop()'s flush
    # nothing from CodeCarbon on the terminal, no file of its own in the working directory
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    assert sorted(p.name for p in hostile_cwd.iterdir()) == [".codecarbon.config"]
    # its log lines went to carbontop's logger instead
    assert any(r.name == "codecarbon" and r.getMessage() == "routed probe"
               for r in caplog.records)

    # about once a second (not config's 30/60 s), contiguous, energies positive, W = E / t
    for r in readings:
        assert r.cpu_energy_kwh > 0 and r.ram_energy_kwh > 0
        assert r.cpu_w == pytest.approx(r.cpu_energy_kwh * 3.6e6 / r.duration_s, rel=1e-9)
        assert r.ram_w == pytest.approx(r.ram_energy_kwh * 3.6e6 / r.duration_s, rel=1e-9)
        assert 0 < r.cpu_w < 2000 and 0 < r.ram_w < 500
        assert r.cpu_mode == tracker.cpu_mode
        assert r.ram_provenance is Provenance.ESTIMATED
    # every second (a timer late on a loaded machine stretches one step, never to 30 or 60 s)
    for r in readings[:-1]:
        assert 0.5 < r.duration_s < 5.0, [x.duration_s for x in readings]
    gaps = [b.t_unix_s - b.duration_s - a.t_unix_s for a, b in itertools.pairwise(readings)]
    assert all(abs(g) < 0.1 for g in gaps), gaps
    # the final flush came during stop()
    assert stop_t - 0.01 <= readings[-1].t_unix_s <= stop_end + 0.01
    # CodeCarbon's schedules ran on the tracker's one pacing thread, never on timer threads
    assert "carbontop-codecarbon" in got.threads
    assert not any(name.startswith("Thread-") or "Timer" in name for name in got.threads)

    # what CodeCarbon chose, and GPU left alone
    assert tracker.cpu_mode not in (NOT_STARTED, STARTING, UNAVAILABLE)
    assert tracker.cpu_mode.endswith("(measured)") == (
        tracker.cpu_provenance is Provenance.MEASURED)
    assert gpu_probes == []
    cc = tracker._tracker
    assert not any(type(h).__name__ == "GPU" for h in cc._hardware)
    # the explicit settings won over the config file and the CODECARBON_* variables
    assert cc._measure_power_secs == 1.0 and cc._api_call_interval == 1
    assert cc._output_methods == [] and cc._allow_multiple_runs is True
    assert cc._tracking_mode == "machine" and cc._pue == 1.0
    assert cc._electricitymaps_api_token is None
    # one intensity: CodeCarbon's own emissions use exactly the session's factor
    final = cc.final_emissions_data
    assert final.emissions / final.energy_consumed * 1000 == pytest.approx(intensity.g_per_kwh)

    hw = tracker.hardware_info()
    import codecarbon

    assert hw["codecarbon_version"] == codecarbon.__version__
    assert hw["tracking_mode"] == "machine" and hw["cpu_tracking"] == tracker.cpu_mode
    assert float(hw["ram_total_size"]) > 0 and int(hw["cpu_count"]) > 0 and hw["cpu_model"]
    assert hw["gpu_tracking"].startswith("excluded")
    assert all(isinstance(v, str) for v in hw.values())

    # the same detection without timers, for `carbontop detect`
    assert describe_cpu_mode() == tracker.cpu_mode
    assert capfd.readouterr() == ("", "")


def test_start_failure_sets_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    from codecarbon.core.resource_tracker import ResourceTracker

    def broken(self: Any) -> None:
        raise RuntimeError("no CPU\nhere")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(ResourceTracker, "set_CPU_tracking", broken)
    tracker = CpuRamTracker(world_average())
    got = Collected()
    tracker.start(got.reading, got.status)
    got.wait_status()
    tracker.stop()
    assert tracker.error == "CodeCarbon could not start: RuntimeError: no CPU here"
    assert got.statuses == [tracker.error]
    assert tracker.cpu_mode == UNAVAILABLE and not tracker.running
    assert got.readings == []
    assert capfd.readouterr() == ("", "")
    assert list(tmp_path.iterdir()) == []
    hw = tracker.hardware_info()  # still gives what it can
    assert hw["os"] and hw["cpu_tracking"] == UNAVAILABLE


def test_stop_before_start_and_twice_never_raises() -> None:
    tracker = CpuRamTracker(world_average())
    tracker.stop()
    tracker.stop()
    assert tracker.error is None


def test_bad_interval() -> None:
    with pytest.raises(ValueError):
        CpuRamTracker(world_average(), measure_interval_s=0)


# -- the output handler, fed by hand ----------------------------------------------------------

def handler_for(tracker: CpuRamTracker, got: Collected) -> Any:
    tracker._sink = got.reading
    return _codecarbon_classes().handler(tracker)


def delta(duration: Any, cpu: Any, ram: Any) -> SimpleNamespace:
    return SimpleNamespace(duration=duration, cpu_energy=cpu, ram_energy=ram)


def test_handler_converts_kwh_deltas_to_watts() -> None:
    tracker, got = CpuRamTracker(world_average()), Collected()
    handler = handler_for(tracker, got)
    handler.live_out(None, delta(2.0, 10 / 3.6e6, 4 / 3.6e6))  # 10 J and 4 J over 2 s
    (r,) = got.readings
    assert r.duration_s == 2.0 and r.cpu_w == pytest.approx(5.0) and r.ram_w == pytest.approx(2.0)
    assert r.cpu_energy_kwh == pytest.approx(10 / 3.6e6)
    assert abs(r.t_unix_s - time.time()) < 1


def test_handler_merges_short_intervals_into_the_next() -> None:
    tracker, got = CpuRamTracker(world_average()), Collected()
    handler = handler_for(tracker, got)
    handler.live_out(None, delta(0.1, 1 / 3.6e6, 1 / 3.6e6))  # the measurement start() takes
    assert got.readings == []
    handler.live_out(None, delta(0.9, 9 / 3.6e6, 4 / 3.6e6))
    (r,) = got.readings
    assert r.duration_s == pytest.approx(1.0)
    assert r.cpu_w == pytest.approx(10.0) and r.ram_w == pytest.approx(5.0)


def test_final_sliver_keeps_its_energy_and_the_last_watts() -> None:
    tracker, got = CpuRamTracker(world_average()), Collected()
    handler = handler_for(tracker, got)
    handler.live_out(None, delta(1.0, 8 / 3.6e6, 3 / 3.6e6))
    handler.out(None, delta(0.001, 0.5 / 3.6e6, 0.0))  # what stop() delivers after live_out
    tracker._shutdown()
    assert [r.duration_s for r in got.readings] == [1.0, 0.001]
    last = got.readings[-1]
    assert last.cpu_energy_kwh == pytest.approx(0.5 / 3.6e6)
    assert (last.cpu_w, last.ram_w) == pytest.approx((8.0, 3.0))
    handler.live_out(None, delta(1.0, 1e-6, 1e-6))  # after stop: dropped
    assert len(got.readings) == 2


def test_handler_never_raises() -> None:
    tracker, got = CpuRamTracker(world_average()), Collected()
    handler = handler_for(tracker, got)
    handler.live_out(None, object())
    handler.live_out(None, delta("x", None, float("nan")))
    handler.live_out(None, delta(1.0, -1e-6, 1e-6))  # a negative delta is clamped
    assert got.readings[-1].cpu_energy_kwh == 0.0

    def broken(r: CpuRamReading) -> None:
        raise RuntimeError("broken sink")

    tracker._sink = broken
    handler.live_out(None, delta(1.0, 1e-6, 1e-6))


def test_measurement_errors_are_reported_then_cleared() -> None:
    tracker, got = CpuRamTracker(world_average()), Collected()
    tracker._on_status = got.status
    tracker._on_measure_error(OSError("RAPL file vanished"))
    tracker._on_measure_error(OSError("RAPL file vanished"))  # reported once
    assert tracker.error == "CodeCarbon measurement failed: OSError: RAPL file vanished"
    tracker._on_measure_ok()
    assert tracker.error is None
    assert got.statuses == ["CodeCarbon measurement failed: OSError: RAPL file vanished", None]


# -- what CodeCarbon chose --------------------------------------------------------------------

def hw(kind: str, **attrs: Any) -> Any:
    return type(kind, (), attrs)()


def test_describe_hardware_modes() -> None:
    ram = hw("RAM")
    assert describe_hardware([ram, hw("CPU", _mode="intel_rapl")]) == (
        "RAPL (measured)", Provenance.MEASURED, Provenance.ESTIMATED)
    mode, prov, _ = describe_hardware([ram, hw("CPU", _mode="cpu_load", _model="Xeon",
                                               _tdp=150, _is_generic_tdp=True)])
    assert mode == "generic TDP: Xeon, 150 W x load (estimated)" and prov is Provenance.ESTIMATED
    mode, _, _ = describe_hardware([hw("CPU", _mode="constant", _model="X", _tdp=85,
                                       _is_generic_tdp=True)])
    assert mode.endswith("x 50% (estimated)")
    assert describe_hardware([hw("Raspberry", chip_part="CPU"), hw("Raspberry", chip_part="RAM")]
                             ) == ("Raspberry Pi PMIC (measured)", Provenance.MEASURED,
                                   Provenance.MEASURED)
    assert describe_hardware([ram])[0].startswith("none")
