"""The simulated boards' catalogue (carbontop/sim/boards.toml) read into typed boards."""

from __future__ import annotations

import pytest

from carbontop.errors import BadInput
from carbontop.sim import DEFAULT_SIM_BOARD
from carbontop.sim.boards import load_catalogue, sim_board, sim_boards

GOOD = """
[agx-orin]
module = "M"
model = "m"
soc = "tegra234"
gpu_name = "ga10b"
l4t = "36.4.3"
jetpack = "6.2"
nvpmodel = "MAXN"
cpus = 12
input_rail = "VDD_IN"
rails = [{ name = "VDD_GPU_SOC", idle_w = 2, peak_w = 30.5, gpu = 1 }]
modes = [{ name = "MAXN", cpu_max_mhz = 2201.6, cores_online = 12, gpu_max_mhz = 1301 }]
"""


def test_a_board_is_read_with_its_types_and_defaults() -> None:
    board = load_catalogue(GOOD)["agx-orin"]
    assert board.key == "agx-orin" and board.cpus == 12 and board.input_rail == "VDD_IN"
    rail = board.rails[0]
    # Whole numbers written for watts and MHz are floats, as the annotations say.
    assert (rail.idle_w, rail.peak_w, rail.gpu, rail.cpu, rail.volt_mv) == (2.0, 30.5, 1.0, 0.0,
                                                                           5000)
    assert type(rail.idle_w) is float and type(board.modes[0].gpu_max_mhz) is float
    assert board.default_mode.name == "MAXN" and board.cpu_min_mhz == 729.6


@pytest.mark.parametrize(("change", "named"), [
    (('cpus = 12', 'cpus = "twelve"'), "[agx-orin]: cpus = 'twelve' is not int"),
    (('cpus = 12', 'cpus = true'), "[agx-orin]: cpus = True is not int"),
    (('cpus = 12', 'cpus = 12.5'), "[agx-orin]: cpus = 12.5 is not int"),
    (('input_rail = "VDD_IN"', 'input_rail = 5'), "input_rail = 5 is not str or None"),
    (('cpus = 12', 'cpus = 12\ncolour = "green"'), "[agx-orin]: unknown field 'colour'"),
    (('cpus = 12\n', ''), "[agx-orin]: cpus is missing"),
    (('idle_w = 2,', 'idle_w = "2",'), "[agx-orin] rails: idle_w = '2' is not float"),
    (('gpu_max_mhz = 1301', 'gpu_max = 1301'), "[agx-orin] modes: unknown field 'gpu_max'"),
    (('nvpmodel = "MAXN"', 'nvpmodel = "15W"'), "nvpmodel '15W' is not one of its modes"),
    (('modes = [{', 'modes = []\nx = [{'), "[agx-orin]: modes must be a non-empty list"),
    (('[agx-orin]', '[orin]'), "no [agx-orin], the default board"),
])
def test_each_mistake_is_named_with_its_board_and_field(change: tuple[str, str],
                                                        named: str) -> None:
    old, new = change
    assert old in GOOD
    with pytest.raises(ValueError, match="boards.toml: ") as caught:
        load_catalogue(GOOD.replace(old, new, 1))
    assert named in str(caught.value)


def test_the_shipped_catalogue_has_the_default_board_and_unique_rails() -> None:
    boards = sim_boards()
    assert DEFAULT_SIM_BOARD in boards and sim_board(DEFAULT_SIM_BOARD) is boards[DEFAULT_SIM_BOARD]
    for board in boards.values():
        names = [r.name for r in board.rails]
        assert len(set(names)) == len(names) and board.input_rail not in names
        assert len({m.name for m in board.modes}) == len(board.modes)


def test_an_unknown_board_lists_the_known_ones() -> None:
    with pytest.raises(BadInput, match="unknown simulated board 'tx9'.*agx-orin.*nano"):
        sim_board("tx9")
