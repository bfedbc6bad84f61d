"""A rail that fails to read on the simulated board, read through the real JtopSource logic.

The simulator mirrors jtop (tests/integration/test_jtop_service.py checks the real service the
same way): a rail whose files do not read is left out of ``power['rail']``; on a sum-of-rails
board ``tot`` is the sum of the rest, and a failed input rail makes ``tot`` that plain sum.
"""

from __future__ import annotations

import pytest

from carbontop.model import BoardBasis
from carbontop.sources.sim import make_sim_source, sim_service
from tests.recorder import Recorder

FAST = 20.0  # simulated seconds per real second: a 0.5 s interval lasts 25 ms


def test_a_sum_of_rails_tick_missing_a_rail_has_no_board_figure() -> None:
    source = make_sim_source("agx-orin", time_scale=FAST)
    service = sim_service(source)
    rec = Recorder()
    source.open()
    source.start(rec)
    try:
        before = rec.wait_sample(lambda s: True)
        service.fail_rail("VDD_CPU_CV")
        bad = rec.wait_sample(lambda s: "VDD_CPU_CV" not in dict(s.rails_w))
        service.restore_rail("VDD_CPU_CV")
        good = rec.wait_sample(lambda s: "VDD_CPU_CV" in dict(s.rails_w))
    finally:
        source.close()
    # the board figure is the sum of all four rails when all read, and absent when one does not
    assert len(before.rails_w) == 4
    assert before.board_w == pytest.approx(sum(w for _, w in before.rails_w), abs=1e-9)
    assert len(bad.rails_w) == 3
    assert bad.board_basis is BoardBasis.SUM_OF_RAILS
    assert bad.board_w is None
    assert bad.cpu_rail_w is None  # VDD_CPU_CV is this board's CPU rail
    assert bad.gpu_w == dict(bad.rails_w)["VDD_GPU_SOC"]
    assert good.board_w == pytest.approx(sum(w for _, w in good.rails_w), abs=1e-9)


def test_a_failed_input_rail_is_not_taken_for_the_board() -> None:
    source = make_sim_source("orin-nx", time_scale=FAST)
    service = sim_service(source)
    rec = Recorder()
    source.open()
    source.start(rec)
    try:
        rec.wait_sample(lambda s: True)
        service.fail_rail("VDD_IN")
        bad = rec.wait_sample(lambda s: s.board_basis is BoardBasis.SUM_OF_RAILS)
        service.restore_rail("VDD_IN")
        good = rec.wait_sample(lambda s: s.board_basis is BoardBasis.INPUT_RAIL)
    finally:
        source.close()
    assert bad.board_w is None and bad.board_rail is None
    assert bad.gpu_w is not None
    assert good.board_rail == "VDD_IN" and good.board_w is not None


def test_failing_an_unknown_rail_names_the_board() -> None:
    service = sim_service(make_sim_source("agx-orin", time_scale=FAST))
    with pytest.raises(ValueError, match="'VDD_IN' is not a rail of agx-orin"):
        service.fail_rail("VDD_IN")
