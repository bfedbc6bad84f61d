"""The rail table: every board row of docs/jetson-power.md, "Rails by board"."""

from __future__ import annotations

import pytest

from carbontop import boards
from carbontop.model import BoardBasis, Scope

# (board, rails left in power['rail'], tot name or None for a sum, GPU rail, scope, CPU rail)
ROWS = [
    ("Nano 4GB", ["POM_5V_GPU", "POM_5V_CPU"], "POM_5V_IN", "POM_5V_GPU", Scope.GPU_ONLY,
     "POM_5V_CPU"),
    ("TX1", ["VDD_GPU", "VDD_CPU"], "VDD_IN", "VDD_GPU", Scope.GPU_ONLY, "VDD_CPU"),
    ("TX2", ["VDD_SYS_GPU", "VDD_SYS_SOC", "VDD_SYS_CPU", "VDD_SYS_DDR", "VDD_4V0_WIFI"],
     "VDD_IN", "VDD_SYS_GPU", Scope.GPU_ONLY, "VDD_SYS_CPU"),
    ("TX2 NX", ["VDD_CPU_GPU", "VDD_SOC"], "VDD_IN", "VDD_CPU_GPU", Scope.CPU_GPU_SHARED, None),
    ("AGX Xavier", ["GPU", "CPU", "SOC", "CV", "VDDRQ", "SYS5V"], None, "GPU", Scope.GPU_ONLY,
     "CPU"),
    ("Xavier NX / Orin NX / Orin Nano", ["VDD_CPU_GPU_CV", "VDD_SOC"], "VDD_IN",
     "VDD_CPU_GPU_CV", Scope.CPU_GPU_CV_SHARED, None),
    ("AGX Orin", ["VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0", "VDDQ_VDD2_1V8AO"], None,
     "VDD_GPU_SOC", Scope.GPU_SOC_SHARED, "VDD_CPU_CV"),
    ("AGX Thor", ["VDD_GPU", "VDD_CPU_SOC_MSS", "VIN_SYS_5V0"], "VIN", "VDD_GPU",
     Scope.GPU_ONLY, "VDD_CPU_SOC_MSS"),
]  # fmt: skip

IDS = [row[0] for row in ROWS]


@pytest.mark.parametrize(("board", "rails", "tot", "gpu", "scope", "cpu"), ROWS, ids=IDS)
def test_gpu_rail_and_scope(
    board: str, rails: list[str], tot: str | None, gpu: str, scope: Scope, cpu: str | None
) -> None:
    assert boards.gpu_rail(rails) == (gpu, scope)


@pytest.mark.parametrize(("board", "rails", "tot", "gpu", "scope", "cpu"), ROWS, ids=IDS)
def test_cpu_rail(
    board: str, rails: list[str], tot: str | None, gpu: str, scope: Scope, cpu: str | None
) -> None:
    assert boards.cpu_rail(rails) == cpu


@pytest.mark.parametrize(("board", "rails", "tot", "gpu", "scope", "cpu"), ROWS, ids=IDS)
def test_input_rail(
    board: str, rails: list[str], tot: str | None, gpu: str, scope: Scope, cpu: str | None
) -> None:
    # jtop removes the input rail from 'rail' and names it in 'tot': before that move the full
    # list holds it, and the name in 'tot' is recognised as an input rail.
    assert boards.input_rail(rails) is None
    full = [*rails, tot] if tot else rails
    assert boards.input_rail(full) == tot
    assert (tot in boards.INPUT_RAILS) is (tot is not None)


@pytest.mark.parametrize(("board", "rails", "tot", "gpu", "scope", "cpu"), ROWS, ids=IDS)
def test_order_of_rails_does_not_matter(
    board: str, rails: list[str], tot: str | None, gpu: str, scope: Scope, cpu: str | None
) -> None:
    assert boards.gpu_rail(reversed(rails)) == (gpu, scope)
    assert boards.cpu_rail(reversed(rails)) == cpu


def test_shared_cpu_gpu_cv_rail_is_never_the_cpu_rail() -> None:
    # Substring matching ("CPU" in name) would take the Orin NX's shared rail for the CPU.
    assert boards.cpu_rail(["VDD_CPU_GPU_CV", "VDD_SOC"]) is None
    assert boards.cpu_rail(["VDD_CPU_GPU_CV"]) is None
    assert boards.cpu_rail(["VDD_CPU_GPU"]) is None
    assert boards.gpu_rail(["VDD_CPU_GPU_CV"]) == ("VDD_CPU_GPU_CV", Scope.CPU_GPU_CV_SHARED)


def test_dedicated_gpu_rail_wins_over_shared() -> None:
    assert boards.gpu_rail(["VDD_CPU_GPU_CV", "VDD_GPU"]) == ("VDD_GPU", Scope.GPU_ONLY)
    assert boards.gpu_rail(["VDD_GPU_SOC", "GPU"]) == ("GPU", Scope.GPU_ONLY)


def test_exact_names_only() -> None:
    assert boards.gpu_rail(["VDD_GPU_X", "gpu", "MY_GPU"]) is None
    assert boards.cpu_rail(["cpu", "VDD_CPU_SOC", "CPU0", "VDD_CPU_SOC_MSS_X"]) is None
    assert boards.input_rail(["VIN_SYS_5V0", "VDD_IN_X"]) is None
    assert "VIN_SYS_5V0" not in boards.INPUT_RAILS
    assert boards.input_rail([]) is None


def test_no_rails() -> None:
    assert boards.gpu_rail([]) is None
    assert boards.cpu_rail([]) is None
    assert boards.input_rail([]) is None


def test_cpu_rail_scope() -> None:
    assert boards.cpu_rail_scope("VDD_CPU_CV") == "CPU+CV shared"
    assert boards.cpu_rail_scope("POM_5V_CPU") == "CPU only"


def test_input_rail_preference_follows_jtop() -> None:
    # jtop 7.2.1+ prefers VIN (Thor's INA238) over the module rails.
    assert boards.input_rail(["VDD_IN", "VIN"]) == "VIN"
    assert boards.input_rail(["VDD_IN", "POM_5V_IN"]) == "POM_5V_IN"


def test_thor_vin_is_labelled_as_the_carrier_input() -> None:
    assert boards.is_carrier_input("VIN")
    assert not boards.is_carrier_input("VDD_IN")
    assert not boards.is_carrier_input("POM_5V_IN")
    assert not boards.is_carrier_input("VIN_SYS_5V0")  # a module rail, not an input at all
    assert not boards.is_carrier_input(None)
    assert boards.input_rail_label("VIN") == "carrier input VIN (INA238)"
    assert boards.input_rail_label("VDD_IN") == "input rail VDD_IN"
    assert boards.input_rail_label("POM_5V_IN") == "input rail POM_5V_IN"


def test_board_label_as_shown_and_written() -> None:
    assert boards.board_label(BoardBasis.INPUT_RAIL, "VIN") == "carrier input VIN (INA238)"
    assert boards.board_label(BoardBasis.INPUT_RAIL, "VDD_IN") == "input rail VDD_IN"
    assert boards.board_label(BoardBasis.SUM_OF_RAILS, None) == "sum of rails"
    assert boards.board_label(None, None) is None
