"""gpu_log.csv keeps every sample up to 10 per second and one row per 0.1 s above, with the
cumulative energy of the last sample always written."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from carbontop.model import PowerSample, SourceInfo
from carbontop.results import schema
from carbontop.results.store import ResultStore, RowThinner

INFO = SourceInfo(kind="sysfs", device_name="test board", gpu_rail="VDD_GPU")


def feed(store: ResultStore, period_s: float, seconds: float, phase_at: float | None = None,
         jitter_s: float = 0.0) -> float:
    """Samples of a constant 2 W every ``period_s``; returns the last cumulative kWh given."""
    n = round(seconds / period_s)
    kwh = 0.0
    for k in range(n + 1):
        t = 100.0 + k * period_s + (jitter_s if k % 2 else -jitter_s)
        kwh = 2.0 * k * period_s / 3.6e6  # 2 W x elapsed seconds, in kWh
        phase = "measuring" if phase_at is not None and k * period_s >= phase_at else "warm-up"
        store.add_sample(PowerSample(t_s=t, t_unix_s=1.7e9 + t, gpu_w=2.0), INFO, "run-1",
                         "idle", phase, kwh, None)
    return kwh


def written(tmp_path: Path) -> list[dict[str, str]]:
    with (tmp_path / schema.GPU_LOG).open(newline="") as f:
        return list(csv.DictReader(f))


def test_up_to_ten_per_second_every_sample_is_a_row(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    feed(store, 0.1, 2.0, jitter_s=0.002)  # 21 samples, 0.1 s apart give or take 2 ms
    store.flush_all(final=True)
    assert len(written(tmp_path)) == 21


def test_above_ten_per_second_one_row_per_tenth_and_exact_last_energy(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    last = feed(store, 0.01, 2.0, phase_at=1.0)  # 201 samples at 100/s over 2 s
    store.flush_all(final=True)
    rows = written(tmp_path)
    # 10 rows per second per phase (1 s each: 0.0..0.9 and 1.0..1.9) plus each phase's last
    # sample: 11 + 11, give or take one at the edges of float time steps.
    assert 20 <= len(rows) <= 24
    assert float(rows[-1]["gpu_energy_kwh"]) == pytest.approx(last)  # 2 W x 2 s, nothing lost
    assert float(rows[-1]["gpu_energy_kwh"]) == pytest.approx(4.0 / 3.6e6)
    warm = [r for r in rows if r["phase"] == "warm-up"]
    # The warm-up's last sample (t = 0.99 s) is written: its energy is 2 W x 0.99 s.
    assert float(warm[-1]["gpu_energy_kwh"]) == pytest.approx(2.0 * 0.99 / 3.6e6)


def test_thinner_holds_only_the_latest_dropped_row() -> None:
    thinner = RowThinner()
    key = ("run", "measuring")
    assert thinner.offer(0.0, key, {"n": 0}) == [{"n": 0}]
    assert thinner.offer(0.03, key, {"n": 1}) == []
    assert thinner.offer(0.06, key, {"n": 2}) == []
    assert thinner.offer(0.1, key, {"n": 3}) == [{"n": 3}]  # covers 1 and 2 (cumulative)
    assert thinner.offer(0.13, key, {"n": 4}) == []
    assert thinner.release() == [{"n": 4}]
    assert thinner.release() == []
