"""Totals never count a joule twice (docs/measurement.md rule 5); windows integrate their span."""

from __future__ import annotations

import pytest

from carbontop.meter import Traces, WindowMeter, total_and_basis
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


def closed_window(info: SourceInfo, start: float, end: float,
                  samples: list[PowerSample]) -> WindowMeter:
    traces = Traces(info)
    window = WindowMeter(traces, start, 1000.0 + start)
    for s in samples:
        traces.add_sample(s)
        window.settle()
    window.close(end, 1000.0 + end)
    window.finish()
    return window


def test_window_uses_board_only_while_its_basis_holds() -> None:
    samples = [sample(float(t), 5.0, 10.0) for t in range(5)]
    samples.append(sample(5.0, 5.0, 7.0, BoardBasis.SUM_OF_RAILS))  # input read failed
    samples.append(sample(6.0, 5.0, 10.0))
    totals = closed_window(ORIN_NX, 0.0, 6.0, samples).totals(6.0)
    # The failed tick is a missing reading, bridged (4 -> 6 s is within 3 x 1 s): 6 s at 10 W.
    assert totals.board_kwh == pytest.approx(60.0 / 3.6e6)
    assert totals.unmeasured_s == 0.0
    assert totals.gpu_kwh == pytest.approx(30.0 / 3.6e6)


def test_codecarbon_interval_is_prorated_at_window_edges() -> None:
    traces = Traces(DESKTOP)
    m = WindowMeter(traces, 1000.5, 1000.5)
    traces.add_cpu_ram(CpuRamReading(t_s=1001.0, t_unix_s=1001.0, duration_s=1.0,
                                     cpu_energy_kwh=2.0, ram_energy_kwh=1.0, cpu_w=0, ram_w=0))
    m.close(1001.75, 1001.75)
    traces.add_cpu_ram(CpuRamReading(t_s=1002.0, t_unix_s=1002.0, duration_s=1.0,
                                     cpu_energy_kwh=2.0, ram_energy_kwh=1.0, cpu_w=0, ram_w=0))
    m.finish()
    totals = m.totals(1002.0)
    assert totals.cpu_kwh == pytest.approx(1.0 + 1.5)
    assert totals.ram_kwh == pytest.approx(0.5 + 0.75)
    assert totals.cpu_ram_readings == 2


def test_window_holds_last_sample_to_its_end_edge() -> None:
    samples = [PowerSample(t_s=t, t_unix_s=1000.0 + t, gpu_w=10.0) for t in (0.0, 1.0)]
    window = closed_window(DESKTOP, 0.5, 1.5, samples)
    assert window.totals(1.5).gpu_kwh == pytest.approx(10.0 / 3.6e6)  # 1 s at 10 W


@pytest.mark.parametrize("counter", [False, True])
def test_window_edges_between_samples_give_exactly_the_window(counter: bool) -> None:
    info = DESKTOP if not counter else SourceInfo(
        kind="nvml", device_name="H200", gpu_count=1, gpu_rail="NVML energy counter",
        gpu_scope=Scope.GPU_ONLY, interval_s=1.0, has_energy_counter=True)

    def at(t: float) -> PowerSample:
        return PowerSample(t_s=t, t_sensor_s=t, t_unix_s=1000.0 + t, gpu_w=10.0,
                           gpu_counter_j=10.0 * t if counter else None)

    window = closed_window(info, 0.9, 3.9, [at(t) for t in (0.0, 1.0, 2.0, 3.0, 4.0)])
    totals = window.totals(3.9)
    assert totals.gpu_kwh * 3.6e6 == pytest.approx(30.0)  # 3.0 s at 10 W, nothing from outside
    assert totals.gpu_samples == 3


def test_agx_orin_without_a_board_figure_adds_the_cpu_rail() -> None:
    total, basis = total_and_basis(
        SourceInfo(kind="jtop", device_name="AGX Orin", gpu_rail="VDD_GPU_SOC",
                   gpu_scope=Scope.GPU_SOC_SHARED, cpu_rail="VDD_CPU_CV", interval_s=1.0),
        gpu_kwh=1.0, board_kwh=None, cpu_kwh=0.5, ram_kwh=0.2, cpu_rail_kwh=0.3)
    assert total == pytest.approx(1.5)
    assert "CPU rail" in basis
