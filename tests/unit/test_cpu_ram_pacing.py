"""CodeCarbon paced by carbontop (``CpuRamTracker.tick``) gives CodeCarbon's own tracker's figures.

carbontop runs CodeCarbon's two schedules itself instead of its timer threads (cpu_ram.py,
"Pacing"). That leans on CodeCarbon's internals, so: a check that fails when they change, and a
replayed CPU load trace fed at once to the stock ``OfflineEmissionsTracker`` (its schedules called
as its own timers call them) and to carbontop's tracker ticked on the same seconds: every
interval's CPU and RAM energy must be equal, and equal to the CPU-load model worked out by hand.
"""

from __future__ import annotations

import time
from typing import Any

import psutil
import pytest

from carbontop.carbon import resolve_intensity
from carbontop.cpu_ram import CpuRamTracker, check_codecarbon_internals

LOAD = [0.10, 0.90, 0.50, 0.00, 1.00, 0.30, 0.70, 0.20]  # busy fraction of each replayed second
J_PER_KWH = 3.6e6


def test_codecarbon_internals_carbontop_paces_are_there() -> None:
    assert check_codecarbon_internals() == []


def test_codecarbon_minor_version_is_the_pinned_one() -> None:
    import codecarbon

    major, minor = (int(x) for x in codecarbon.__version__.split(".")[:2])
    assert (major, minor) == (3, 3), "cpu_ram.py paces CodeCarbon 3.3's internals: check them"


class Replay:
    """A fake clock (``time.perf_counter``) and machine CPU times that follow ``LOAD``."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.t0 = self.now
        self.kind = type(psutil.cpu_times())

    def busy(self) -> float:
        elapsed = self.now - self.t0
        whole = int(elapsed)
        done = sum(LOAD[:whole])
        return done + (LOAD[whole] * (elapsed - whole) if whole < len(LOAD) else 0.0)

    def cpu_times(self, percpu: bool = False) -> Any:
        busy = self.busy()
        fields = {f: 0.0 for f in self.kind._fields}
        fields["user"] = 500.0 + busy
        fields["idle"] = 9000.0 + (self.now - self.t0) - busy
        return self.kind(**fields)


def test_paced_figures_equal_the_stock_trackers_on_a_replayed_load(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from codecarbon import OfflineEmissionsTracker
    from codecarbon.output_methods.base_output import BaseOutput

    replay = Replay()
    monkeypatch.setattr(time, "perf_counter", lambda: replay.now)
    monkeypatch.setattr(psutil, "cpu_times", replay.cpu_times)

    class Keep(BaseOutput):  # type: ignore[misc]
        def __init__(self) -> None:
            self.deltas: list[Any] = []

        def live_out(self, total: Any, delta: Any) -> None:
            self.deltas.append(delta)

    keep = Keep()
    stock = OfflineEmissionsTracker(
        measure_power_secs=1, save_to_file=False, country_iso_code="FRA", log_level="error",
        api_call_interval=1, output_handlers=[keep], allow_multiple_runs=True,
        force_carbon_intensity_g_co2e_kwh=56.0)
    mine = CpuRamTracker(resolve_intensity("FRA", None, None), exclude_gpu=True,
                         external_pacing=True)
    got: list[Any] = []
    stock.start()
    # the stock tracker's timers would call these two on their own threads: stop the timers and
    # call them at the replayed seconds instead, as the timers would
    stock._scheduler.stop()
    stock._scheduler_monitor_power.stop()
    mine.start(got.append)
    deadline = time.monotonic() + 30
    while not mine.running and mine.error is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert mine.running, mine.error
    assert not any(t.name.startswith("Thread-") and "Timer" in type(t).__name__
                   for t in __import__("threading").enumerate() if t.is_alive()
                   and getattr(t, "function", None) in (mine._tracker._measure_power_and_energy,
                                                        mine._tracker._monitor_power))
    base = mine._next_monitor_s - 1.0  # the session-clock second CodeCarbon started at
    keep.deltas.clear()  # start()'s own zero-length measurement
    first = len(got)
    for k in range(1, len(LOAD) + 1):
        replay.now = replay.t0 + k
        stock._scheduler_monitor_power.function()
        stock._scheduler.function()
        mine.tick(now_s=base + k)
    ours = got[first:]
    mine.stop()
    stock.stop()

    cpu_hw = next(h for h in mine._tracker._hardware if type(h).__name__ == "CPU")
    assert cpu_hw._mode == "cpu_load", "the replay drives CodeCarbon's CPU-load model"
    assert len(keep.deltas) == len(LOAD)
    # the first reading of ours holds start()'s zero-length interval merged in (MIN_READING_S)
    assert len(ours) == len(LOAD)
    tdp = float(cpu_hw._tdp)
    ncpu = 1  # the load meter compares machine-wide busy and total times: one "CPU" here
    for k, (a, b) in enumerate(zip(keep.deltas, ours, strict=True)):
        assert b.cpu_energy_kwh == pytest.approx(a.cpu_energy, rel=1e-12, abs=1e-18), k
        assert b.ram_energy_kwh == pytest.approx(a.ram_energy, rel=1e-12, abs=1e-18), k
        assert b.duration_s == pytest.approx(1.0, abs=1e-9)
        # by hand: CodeCarbon's machine CPU-load model, TDP x (0.1 + 0.9 x load^3), for 1 s
        load = LOAD[k] * ncpu
        assert b.cpu_energy_kwh * J_PER_KWH == pytest.approx(
            tdp * (0.1 + 0.9 * load ** 3), rel=1e-9), k
