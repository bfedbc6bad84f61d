"""Totals never count a joule twice (docs/measurement.md rule 5); windows integrate their span."""

from __future__ import annotations

import pytest

from carbontop.meter import WindowMeter, total_and_basis
from carbontop.model import BoardBasis, CpuRamReading, PowerSample, Scope, SourceInfo

ORIN_NX = SourceInfo(kind="jtop", device_name="Orin NX", gpu_rail="VDD_CPU_GPU_CV",
                     gpu_scope=Scope.CPU_GPU_CV_SHARED, board_rail="VDD_IN",
                     board_basis=BoardBasis.INPUT_RAIL, interval_s=1.0)
AGX_ORIN = SourceInfo(kind="jtop", device_name="AGX Orin", gpu_rail="VDD_GPU_SOC",
                      gpu_scope=Scope.GPU_SOC_SHARED, board_basis=BoardBasis.SUM_OF_RAILS,
                      cpu_rail="VDD_CPU_CV", interval_s=1.0)
DESKTOP = SourceInfo(kind="nvml", device_name="RTX", gpu_count=1, gpu_rail="NVML",
                     gpu_scope=Scope.GPU_ONLY, interval_s=1.0)
SHARED_NO_INPUT = SourceInfo(kind="jtop", device_name="x", gpu_rail="VDD_CPU_GPU",
                             gpu_scope=Scope.CPU_GPU_SHARED, interval_s=1.0)
NO_GPU = SourceInfo(kind="none", device_name="no GPU measured", interval_s=1.0)


def test_input_rail_is_the_total() -> None:
    total, basis = total_and_basis(ORIN_NX, gpu_kwh=1.0, board_kwh=3.0, cpu_kwh=0.5, ram_kwh=0.2)
    assert total == 3.0
    assert "VDD_IN" in basis


def test_sum_of_rails_is_the_total() -> None:
    total, basis = total_and_basis(AGX_ORIN, 1.0, 4.0, 0.5, 0.2)
    assert total == 4.0 and "sum" in basis


def test_dedicated_gpu_adds_codecarbon_cpu_and_ram() -> None:
    total, basis = total_and_basis(DESKTOP, 1.0, None, 0.5, 0.2)
    assert total == pytest.approx(1.7)
    assert "CodeCarbon" in basis


def test_shared_gpu_rail_is_never_added_to_codecarbon_cpu() -> None:
    total, basis = total_and_basis(SHARED_NO_INPUT, 1.0, None, 0.5, 0.2)
    assert total == pytest.approx(1.2)
    assert "shared" in basis


def test_no_gpu_is_cpu_and_ram() -> None:
    total, basis = total_and_basis(NO_GPU, None, None, 0.5, 0.2)
    assert total == pytest.approx(0.7)
    assert "no GPU" in basis


def sample(t: float, gpu: float, board: float, basis: BoardBasis = BoardBasis.INPUT_RAIL
           ) -> PowerSample:
    return PowerSample(t_s=t, t_sensor_s=t, t_unix_s=1000.0 + t, gpu_w=gpu, board_w=board,
                       board_basis=basis, board_rail="VDD_IN")


def test_window_uses_board_only_while_its_basis_holds() -> None:
    m = WindowMeter(ORIN_NX, start_unix_s=1000.0)
    for t in range(5):
        m.add_sample(sample(float(t), 5.0, 10.0))
    m.add_sample(sample(5.0, 5.0, 7.0, BoardBasis.SUM_OF_RAILS))  # input read failed
    m.add_sample(sample(6.0, 5.0, 10.0))
    totals = m.totals(1006.0)
    assert totals.board_kwh == pytest.approx(40.0 / 3.6e6)  # 4 s measured, 2 s not
    assert totals.unmeasured_s == pytest.approx(2.0)
    assert totals.gpu_kwh == pytest.approx(30.0 / 3.6e6)


def test_codecarbon_interval_is_prorated_at_window_edges() -> None:
    m = WindowMeter(DESKTOP, start_unix_s=1000.5)
    m.add_cpu_ram(CpuRamReading(t_s=1001.0, t_unix_s=1001.0, duration_s=1.0, cpu_energy_kwh=2.0,
                                ram_energy_kwh=1.0, cpu_w=0, ram_w=0))
    m.close(1001.75)
    m.add_cpu_ram(CpuRamReading(t_s=1002.0, t_unix_s=1002.0, duration_s=1.0, cpu_energy_kwh=2.0,
                                ram_energy_kwh=1.0, cpu_w=0, ram_w=0))
    totals = m.totals(1002.0)
    assert totals.cpu_kwh == pytest.approx(1.0 + 1.5)
    assert totals.ram_kwh == pytest.approx(0.5 + 0.75)


def test_window_holds_last_sample_to_its_edges() -> None:
    m = WindowMeter(DESKTOP, start_unix_s=1000.5)
    m.start_from(PowerSample(t_s=0.0, t_sensor_s=0.0, t_unix_s=1000.0, gpu_w=10.0))
    m.add_sample(PowerSample(t_s=1.0, t_sensor_s=1.0, t_unix_s=1001.0, gpu_w=10.0))
    m.close(1001.5)
    assert m.totals(1001.5).gpu_kwh == pytest.approx(10.0 / 3.6e6)  # 1 s at 10 W


@pytest.mark.parametrize("counter", [False, True])
def test_window_edges_between_samples_give_exactly_the_window(counter: bool) -> None:
    info = DESKTOP if not counter else SourceInfo(
        kind="nvml", device_name="H200", gpu_count=1, gpu_rail="NVML energy counter",
        gpu_scope=Scope.GPU_ONLY, interval_s=1.0, has_energy_counter=True)

    def at(t: float) -> PowerSample:
        return PowerSample(t_s=t, t_sensor_s=t, t_unix_s=1000.0 + t, gpu_w=10.0,
                           gpu_counter_j=10.0 * t if counter else None)

    m = WindowMeter(info, start_unix_s=1000.9)
    m.start_from(at(0.0))
    for t in (1.0, 2.0, 3.0):
        m.add_sample(at(t))
    m.close(1003.9)
    totals = m.totals(1003.9)
    assert totals.gpu_kwh * 3.6e6 == pytest.approx(30.0)  # 3.0 s at 10 W, nothing from outside
    assert totals.gpu_samples == 3


def test_agx_orin_without_a_board_figure_adds_the_cpu_rail() -> None:
    total, basis = total_and_basis(
        SourceInfo(kind="jtop", device_name="AGX Orin", gpu_rail="VDD_GPU_SOC",
                   gpu_scope=Scope.GPU_SOC_SHARED, cpu_rail="VDD_CPU_CV", interval_s=1.0),
        gpu_kwh=1.0, board_kwh=None, cpu_kwh=0.5, ram_kwh=0.2, cpu_rail_kwh=0.3)
    assert total == pytest.approx(1.5)
    assert "CPU rail" in basis
