"""Efficiency over the measured window, and the rule that a too-short window gives no figure.

Expected values are worked by hand from the constructed windows (J = W x s; kWh = J / 3.6e6).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from carbontop.carbon import CarbonIntensity
from carbontop.meter import WindowTotals
from carbontop.model import FinalStatus, SourceInfo
from carbontop.summary import Baseline, Efficiency, SessionSummary
from carbontop.text import format_summary
from carbontop.units import J_PER_KWH

T0 = 1_714_564_800.0
INFO = SourceInfo(kind="nvml", device_name="Test GPU", gpu_count=1, interval_s=0.5)
INTENSITY = CarbonIntensity(g_per_kwh=100.0, origin="test", source="override")


def window(duration_s: float, joules: float, start: float = T0) -> WindowTotals:
    kwh = joules / J_PER_KWH
    return WindowTotals(start, start + duration_s, start, start + duration_s, kwh, None, None,
                        None, None, kwh,
                        "GPU only (measured)", None, 1, 0, 0, 0.0)


def test_a_window_of_two_sample_periods_gives_its_figures() -> None:
    # 1.0 s at 20 W = 20 J for 50 samples: 50 /s, 0.4 J/sample, 2.5 sample/J, 50/s / 20 W = 2.5,
    # 4e10 FLOP = 40 GFLOP over 20 J = 2 GFLOP/J.
    e = Efficiency.compute(50.0, "sample", 4e10, window(1.0, 20.0), sample_period_s=0.5)
    assert e.too_short is None
    assert e.throughput_per_s == pytest.approx(50.0)
    assert e.energy_per_unit_j == pytest.approx(0.4)
    assert e.units_per_j == pytest.approx(2.5)
    assert e.units_per_s_per_w == pytest.approx(2.5)
    assert e.gflop_per_j == pytest.approx(2.0)


@pytest.mark.parametrize(("duration_s", "period_s", "shown"), [
    (0.3, 0.5, "0.3 s < 2 sample periods of 0.5 s"),
    (0.0, 0.5, "0 s < 2 sample periods of 0.5 s"),
    (0.19, 0.1, "0.19 s < 2 sample periods of 0.1 s"),
])
def test_a_window_under_two_sample_periods_is_too_short(
    duration_s: float, period_s: float, shown: str
) -> None:
    # 74 samples in 0.3 s would otherwise read 247 sample/s from one interpolated sample.
    e = Efficiency.compute(74.0, "sample", 1e9, window(duration_s, 3.0), sample_period_s=period_s)
    assert e.too_short == f"window too short to measure ({shown})"
    assert (e.throughput_per_s, e.energy_per_unit_j, e.units_per_j, e.units_per_s_per_w,
            e.gflop_per_j) == (None, None, None, None, None)
    assert e.units == 74.0 and e.unit == "sample"  # the work done is still reported


def summary_of(win: WindowTotals, baseline: Baseline | None = None) -> SessionSummary:
    whole = window(win.duration_s + 2.0, 50.0, start=win.start_unix_s - 1.0)
    return SessionSummary(
        run_id="r", status=FinalStatus.FINISHED, workload="command: python s.py", params={},
        source=INFO, intensity=INTENSITY, whole=whole, window=win,
        # computed without the period, as a caller that does not know it would
        efficiency=Efficiency.compute(74.0, "sample", None, win), baseline=baseline)


def test_the_summary_says_too_short_instead_of_a_figure(tmp_path: Path) -> None:
    s = summary_of(window(0.3, 3.0), baseline=Baseline(duration_s=5.0, idle_w=1.0, samples=10))
    note = "window too short to measure (0.3 s < 2 sample periods of 0.5 s)"
    assert s.efficiency.too_short == note
    row = s.emissions_row()
    for key in ("throughput_per_s", "energy_per_unit_j", "units_per_j", "units_per_s_per_w",
                "gflop_per_j", "net_energy_per_unit_j"):
        assert row[key] is None, key
    assert row["units"] == 74.0
    assert s.to_json()["window_too_short"] == note
    text = format_summary(s, [tmp_path / "emissions.csv"])
    assert f"  throughput  none: {note}" in text.splitlines()
    assert "sample/s" not in text and "J/sample" not in text


def test_a_long_enough_window_keeps_its_figures_in_the_summary(tmp_path: Path) -> None:
    s = summary_of(window(4.0, 40.0))  # 74 samples in 4 s on 40 J: 18.5 /s, 0.5405... J/sample
    assert s.efficiency.too_short is None and s.to_json()["window_too_short"] is None
    assert s.efficiency.throughput_per_s == pytest.approx(18.5)
    assert s.efficiency.energy_per_unit_j == pytest.approx(40.0 / 74.0)
    assert "  throughput  18.50 sample/s, 0.5405 J/sample" in format_summary(s, []).splitlines()
