"""The end-to-end accuracy benchmark, small: its arithmetic by hand, then two real cases.

The real cases run ``carbontop run`` on the real jtop service (emulated Orin NX) beside an
independent jtop client, a steady schedule at 0.5 s and an off-grid one at 0.1 s, with 5 s
windows. The test fails when a case's verdict is MISSED: carbontop's session or window energy
(GPU or board) outside 0.1 % (steady) or 0.5 % (off-grid) of the independent client's trapezoid
over carbontop's own edges.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import accuracy_e2e
from benchmarks.accuracy_e2e import (
    MET,
    MISSED,
    Case,
    clipped_trapezoid_j,
    edges_of,
    end_held_j,
    judge,
    step_integral_j,
)
from tests.jtop_harness import skip_reason


def test_clipped_trapezoid_by_hand() -> None:
    samples = [(0.0, 2.0), (1.0, 4.0), (2.0, 4.0)]
    # Edges at 0.5 s (3 W, half-way from 2 W to 4 W) and 1.5 s (4 W):
    # (3 + 4) / 2 x 0.5 s + (4 + 4) / 2 x 0.5 s = 1.75 J + 2.0 J.
    assert clipped_trapezoid_j(samples, 0.5, 1.5) == pytest.approx(3.75)
    # Both edges between the same two samples: 2.5 W at 0.25 s, 3.5 W at 0.75 s -> 3 W x 0.5 s.
    assert clipped_trapezoid_j(samples, 0.25, 0.75) == pytest.approx(1.5)
    # The whole span: (2 + 4) / 2 + (4 + 4) / 2 = 7 J.
    assert clipped_trapezoid_j(samples, 0.0, 2.0) == pytest.approx(7.0)
    assert clipped_trapezoid_j(samples, -0.1, 1.0) is None  # an edge before the first sample
    assert clipped_trapezoid_j(samples, 1.0, 2.1) is None  # an edge after the last


def test_end_held_by_hand() -> None:
    samples = [(0.0, 2.0), (1.0, 4.0), (2.0, 8.0)]
    # Start edge interpolated (3 W at 0.5 s), 4 W held from 1.0 s to the end edge at 1.5 s:
    # (3 + 4) / 2 x 0.5 s + 4 W x 0.5 s = 1.75 J + 2.0 J; interpolating to the next sample
    # instead (6 W at 1.5 s) gives 1.75 J + (4 + 6) / 2 x 0.5 s = 4.25 J.
    assert end_held_j(samples, 0.5, 1.5) == pytest.approx(3.75)
    assert clipped_trapezoid_j(samples, 0.5, 1.5) == pytest.approx(4.25)


def test_step_integral_by_hand() -> None:
    writes = [(0.0, 2.0), (1.0, 6.0), (1.5, 1.0)]
    # 2 W from 0.5 to 1.0 s, 6 W from 1.0 to 1.5 s, 1 W from 1.5 to 2.5 s: 1 + 3 + 1 = 5 J.
    assert step_integral_j(writes, 0.5, 2.5) == pytest.approx(5.0)
    # A spike shorter than a sample period still counts in the truth: 6 W x 0.5 s.
    assert step_integral_j(writes, 1.0, 1.5) == pytest.approx(3.0)
    assert step_integral_j(writes, -1.0, 1.0) is None  # before the first write: unknown


def test_edges_prefer_the_session_clock_fields() -> None:
    wall = {"whole": {"start_unix_s": 1000.0, "end_unix_s": 1010.0},
            "window": {"start_unix_s": 1002.0, "end_unix_s": 1009.0}}
    moved = edges_of(wall, wall_to_session_s=900.0)  # wall = session clock + 900 s
    assert moved.session == (100.0, 110.0) and moved.window == (102.0, 109.0)
    assert moved.source.startswith("wall clock")
    own = dict(wall, session_start_s=50.0, session_end_s=60.0, window_start_s=52.5,
               window_end_s=59.5)
    read = edges_of(own, wall_to_session_s=900.0)
    assert read.session == (50.0, 60.0) and read.window == (52.5, 59.5)
    assert read.source.startswith("session clock")


def test_judge_misses_a_figure_out_of_tolerance_or_missing() -> None:
    assert judge([{"within": True}, {"within": True}]) == MET
    assert judge([{"within": True}, {"within": False}]) == MISSED
    assert judge([]) == MISSED  # no figure at all is no pass


@pytest.mark.jtop_service
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_two_small_cases_meet_their_tolerance(tmp_path: Path) -> None:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    cases = [Case("steady", 0.5, "idle"), Case("off-grid", 0.1, "idle")]
    argv = ["--duration", "5", "--out", str(tmp_path)]
    for case in cases:
        argv += ["--case", case.name]
    code = accuracy_e2e.main(argv)
    result = json.loads((tmp_path / "accuracy_e2e.json").read_text())
    assert (tmp_path / "accuracy_e2e.csv").exists()
    report = accuracy_e2e.table(result) + "\n" + "\n".join(accuracy_e2e.verdicts(result))
    assert [c["case"] for c in result["cases"]] == [c.name for c in cases], report
    for case in result["cases"]:
        assert len(case["rows"]) == 4, report  # session and window, GPU and board
        for row in case["rows"]:
            assert row["independent_j"] is not None and row["truth_j"] is not None, report
    assert all(c["verdict"] == MET for c in result["cases"]), report
    assert code == 0, report
