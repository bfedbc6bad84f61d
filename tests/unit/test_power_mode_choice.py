"""The power-mode choice of ``carbontop run --power-modes ... --min-throughput X``, worked by hand.

Each mode's trials are real SessionSummary values (10 s measured windows); their statistics go
through carbontop.comparison exactly as ``carbontop run`` sends them. Every expected figure is
computed in the comments from the windows' joules and units.
"""

from __future__ import annotations

import math

import pytest

from carbontop.carbon import CarbonIntensity
from carbontop.comparison import (
    ModePoint,
    cheapest_keeping,
    comparison_json,
    dominated_by,
    mode_points,
    pareto_front,
    trial_stats,
)
from carbontop.meter import WindowTotals
from carbontop.model import FinalStatus, Scope, SourceInfo
from carbontop.summary import Efficiency, SessionSummary

J_PER_KWH = 3.6e6  # written out: the expected values are worked by hand
ORIN = SourceInfo(kind="jtop", device_name="Jetson AGX Orin", gpu_count=1,
                  gpu_rail="VDD_GPU_SOC", gpu_scope=Scope.GPU_SOC_SHARED, interval_s=0.25)
INTENSITY = CarbonIntensity(g_per_kwh=100.0, origin="test", source="override")
BASIS = "sum of all board rails (measured)"


def trial(units: float, total_j: float, gpu_j: float,
          status: FinalStatus = FinalStatus.FINISHED) -> SessionSummary:
    """A trial whose measured window lasts 10 s and holds ``units`` tokens."""
    window = WindowTotals(
        start_s=100.0, end_s=110.0, start_unix_s=100.0, end_unix_s=110.0,
        gpu_kwh=gpu_j / J_PER_KWH, board_kwh=total_j / J_PER_KWH, cpu_rail_kwh=None,
        cpu_kwh=None, ram_kwh=None, total_kwh=total_j / J_PER_KWH, total_basis=BASIS,
        original_total_kwh=None, gpu_samples=40, board_samples=40, cpu_ram_readings=0,
        unmeasured_s=0.0)
    return SessionSummary(run_id="r", status=status, workload="llm-generate", params={},
                          source=ORIN, intensity=INTENSITY, whole=window, window=window,
                          efficiency=Efficiency.compute(units, "token", None, window, 0.25))


def sweep() -> dict[str, list[SessionSummary]]:
    return {
        # 360 tokens / 10 s = 36/s at 1800 J = 5 J/token; 440 / 10 = 44/s at 2200 J = 5 J/token.
        # GPU: 540 J / 360 = 1.5 and 660 J / 440 = 1.5 J/token.  Mean: 40/s, 5 J, 1.5 J.
        "15W": [trial(360, 1800, 540), trial(440, 2200, 660)],
        # 60/s; 3600 J / 600 = 6 J/token; GPU 1500 / 600 = 2.5
        "30W": [trial(600, 3600, 1500)],
        # 55/s; 4400 / 550 = 8 J/token (slower and dearer than 30W); GPU 2200 / 550 = 4
        "50W": [trial(550, 4400, 2200)],
        # 80/s; 8000 / 800 = 10 J/token; GPU 4000 / 800 = 5. Its second trial failed: not counted.
        "MAXN": [trial(800, 8000, 4000), trial(10, 9999, 9999, FinalStatus.FAILED)],
        # every trial failed: no figures, in no choice
        "10W": [trial(300, 900, 300, FinalStatus.FAILED)],
    }


def test_each_modes_figures_from_its_finished_trials() -> None:
    s15 = trial_stats(sweep()["15W"])
    assert s15["energy_per_unit_j"]["mean"] == pytest.approx(5.0, rel=1e-12)
    assert s15["gpu_energy_per_unit_j"]["mean"] == pytest.approx(1.5, rel=1e-12)
    assert s15["throughput_per_s"]["mean"] == pytest.approx(40.0, rel=1e-12)
    # sample sd of 36 and 44: sqrt((4^2 + 4^2) / 1) = sqrt(32)
    assert s15["throughput_per_s"]["stdev"] == pytest.approx(math.sqrt(32), rel=1e-12)
    assert s15["unit"] == "token" and s15["total_basis"] == BASIS
    maxn = trial_stats(sweep()["MAXN"])
    assert (maxn["trials"], maxn["finished"]) == (2, 1)
    assert maxn["energy_per_unit_j"]["mean"] == pytest.approx(10.0, rel=1e-12)
    failed = trial_stats(sweep()["10W"])
    assert failed["finished"] == 0 and failed["energy_per_unit_j"]["mean"] is None


def test_the_front_and_the_cheapest_mode_that_keeps_a_throughput() -> None:
    points = mode_points({m: trial_stats(s) for m, s in sweep().items()})
    assert [p.mode for p in points] == ["15W", "30W", "50W", "MAXN"]  # 10W has no figures
    by = {p.mode: p for p in points}
    assert by["30W"].gpu_energy_per_unit_j == pytest.approx(2.5, rel=1e-12)
    # 50W (55/s, 8 J) is beaten by 30W (60/s, 6 J) on both; the others trade speed for joules.
    assert [p.mode for p in pareto_front(points)] == ["15W", "30W", "MAXN"]
    beaten_by = dominated_by(by["50W"], points)
    assert beaten_by is not None and beaten_by.mode == "30W"
    # At least 50/s: 30W (6 J), 50W (8 J), MAXN (10 J) -> 30W. Exactly 60/s still keeps 60.
    chosen = {x: cheapest_keeping(points, x) for x in (1.0, 50.0, 60.0, 61.0, 80.0, 81.0)}
    assert {x: p.mode if p else None for x, p in chosen.items()} == {
        1.0: "15W", 50.0: "30W", 60.0: "30W", 61.0: "MAXN", 80.0: "MAXN", 81.0: None}


def test_ties_favour_the_faster_mode_and_equal_modes_both_stay_on_the_front() -> None:
    a, b = ModePoint("A", 40.0, 5.0), ModePoint("B", 50.0, 5.0)
    # B is as cheap and faster: it dominates A, and is the cheapest at any throughput A keeps.
    assert b.dominates(a) and not a.dominates(b)
    assert cheapest_keeping([a, b], 10.0) == b
    assert pareto_front([a, b]) == [b]
    same = ModePoint("C", 50.0, 5.0)  # as fast and as cheap as B: neither beats the other
    assert not same.dominates(b) and not b.dominates(same)
    assert {p.mode for p in pareto_front([b, same])} == {"B", "C"}


def test_the_json_names_the_front_and_the_choice() -> None:
    mode_stats = {m: trial_stats(s) for m, s in sweep().items()}
    result = comparison_json(mode_stats, 50.0)
    assert result["pareto_front"] == ["15W", "30W", "MAXN"]
    assert result["best"] == {"least_energy_per_unit": "15W", "highest_throughput": "MAXN"}
    assert result["cheapest_keeping_min_throughput"] == {"min_throughput_per_s": 50.0,
                                                         "mode": "30W"}
    assert comparison_json(mode_stats, 100.0)["cheapest_keeping_min_throughput"] == {
        "min_throughput_per_s": 100.0, "mode": None}
    assert "cheapest_keeping_min_throughput" not in comparison_json(mode_stats, None)
