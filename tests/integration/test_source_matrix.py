"""Issue 11's done-criterion on three boards: ``carbontop run`` (and ``carbontop detect``) through
sysfs, tegrastats and the real jtop service on one emulated tree give the same rails, scopes,
bases and figures, each figure the tree's exact watts to within the readers' whole-milliwatt
truncation. The whole matrix (every board) is ``python -m benchmarks.source_matrix``; the
comparison here is that benchmark's own, so what CI checks is what the benchmark reports.

The boards: Nano (JetPack 4, IIO, input rail POM_5V_IN, CPU rail), Thor (hwmon INA3221 with the
INA238 carrier input VIN, JetPack 7's three-value tegrastats lines) and AGX Orin (sum of rails
over two chips with NC channels). About 12 s a board on 2 cores.
"""

from __future__ import annotations

import pytest

from benchmarks import source_matrix as matrix
from tests.jtop_harness import skip_reason


@pytest.mark.jtop_service
@pytest.mark.slow
@pytest.mark.parametrize("board", matrix.CI_BOARDS)
def test_sysfs_tegrastats_and_jtop_agree(board: str) -> None:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    result = matrix.run_board(board)
    runs = {r["source"]: r for r in result["runs"]}
    assert sorted(runs) == sorted(matrix.SOURCES)
    for source, r in runs.items():
        assert r["ok"], f"{source}: {r['error']}"
        assert r["gpu_samples"] >= 5, (source, r["gpu_samples"])  # ~1.3 s at 0.1 s
    assert result["verdict"] == matrix.AGREE, "\n".join(result["problems"])
    # The figures the verdict rests on were worked out from the tree, not read back.
    want = matrix.expected(board)
    assert want.measured and set(want.exact_w) >= {"gpu", "board", "total"}
    for r in runs.values():
        assert r["roles"]["gpu_rail"] == want.gpu_rail


# -- the judge itself: each kind of disagreement is caught (no service, no session) ----------

def _runs(board: str) -> list[matrix.SourceRun]:
    """Three runs that agree exactly with the board (what a correct carbontop gives)."""
    want = matrix.expected(board)
    basis = f"input rail {want.input_rail}" if want.input_rail else "sum of rails"
    roles = {"gpu_rail": want.gpu_rail, "gpu_scope": want.gpu_scope, "board_basis": basis,
             "cpu_rail": want.cpu_rail, "total_basis": f"board {basis} (measured)"}
    return [matrix.SourceRun(board, s, True, 0, None, dict(roles), dict(want.exact_w),
                             dict.fromkeys(matrix.FIGURES, 0.0), 12)
            for s in matrix.SOURCES]


def test_the_judge_passes_agreeing_runs() -> None:
    for board in ("nano", "agx-orin"):
        assert matrix.judge(matrix.expected(board), _runs(board)) == []


def test_the_judge_allows_truncation_to_whole_milliwatts_per_rail() -> None:
    # AGX Orin's board figure sums 4 rails: down to 4 mW below the exact sum is truncation...
    want = matrix.expected("agx-orin")
    assert want.rails_in["board"] == 4
    runs = _runs("agx-orin")
    runs[1].mean_w["board"] = want.exact_w["board"] - 0.0039
    assert matrix.judge(want, runs) == []
    # ...more than that, or any amount above the exact figure, is not.
    runs[1].mean_w["board"] = want.exact_w["board"] - 0.0041
    assert any("sysfs: board" in p for p in matrix.judge(want, runs))
    runs[1].mean_w["board"] = want.exact_w["board"] + 0.0001
    assert any("sysfs: board" in p for p in matrix.judge(want, runs))
    # a single rail (the GPU's) allows 1 mW
    runs = _runs("agx-orin")
    runs[2].mean_w["gpu"] = want.exact_w["gpu"] - 0.0011
    assert any("tegrastats: gpu" in p for p in matrix.judge(want, runs))


@pytest.mark.parametrize("role", matrix.ROLES)
def test_the_judge_catches_a_role_that_differs(role: str) -> None:
    runs = _runs("thor")
    runs[2].roles[role] = "VDD_SOMETHING_ELSE"
    problems = matrix.judge(matrix.expected("thor"), runs)
    assert any(p.startswith(f"{role} differs") for p in problems), problems


def test_the_judge_catches_wrong_roles_all_sources_share() -> None:
    runs = _runs("nano")
    for r in runs:
        r.roles["cpu_rail"] = None  # all three lost the CPU rail: they agree, and are wrong
        r.mean_w["cpu_rail"] = None
    problems = matrix.judge(matrix.expected("nano"), runs)
    assert any("cpu_rail None, the board's is 'POM_5V_CPU'" in p for p in problems), problems


def test_the_judge_catches_a_source_that_failed_or_had_gaps() -> None:
    runs = _runs("nano")
    runs[0] = matrix.SourceRun("nano", "jtop", False, 2, "carbontop: --gpu-source jtop: ...")
    runs[1].unmeasured_s["gpu"] = 0.5
    problems = matrix.judge(matrix.expected("nano"), runs)
    assert any(p.startswith("jtop: did not measure") for p in problems)
    assert any(p.startswith("sysfs: unmeasured seconds") for p in problems)


def test_a_board_without_monitors_must_be_refused_by_every_source() -> None:
    want = matrix.expected("nano-2gb")
    assert not want.measured
    refused = [matrix.SourceRun("nano-2gb", s, False, 2, f"carbontop: --gpu-source {s}: none")
               for s in matrix.SOURCES]
    assert matrix.judge(want, refused) == []
    refused[1] = matrix.SourceRun("nano-2gb", "sysfs", True, 0)  # measured something: wrong
    assert any(p.startswith("sysfs: a board without monitors") for p in
               matrix.judge(want, refused))


def test_jtop_not_run_is_reported_not_judged() -> None:
    runs = _runs("orin-nx")
    runs[0] = matrix.SourceRun("orin-nx", "jtop", False, None, "not run: needs root")
    assert matrix.judge(matrix.expected("orin-nx"), runs) == []
