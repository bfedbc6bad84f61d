"""The integrator against analytic power traces (docs/measurement.md rules 1-3 and 10)."""

from __future__ import annotations

import math
import random

import pytest

from carbontop.energy import CounterIntegrator, TrapezoidIntegrator, rectangle_1s_energy_j


def integrate(samples: list[tuple[float, float | None]], interval_s: float) -> TrapezoidIntegrator:
    integ = TrapezoidIntegrator(interval_s)
    for t, w in samples:
        integ.add(t, w)
    return integ


def test_constant_power_is_power_times_time() -> None:
    r = integrate([(i * 0.5, 12.0) for i in range(21)], 0.5).reading()
    assert r.energy_j == pytest.approx(12.0 * 10.0)
    assert r.samples == 21
    assert r.measured_s == pytest.approx(10.0)
    assert r.unmeasured_s == 0


def test_ramp_is_exact_under_trapezoid() -> None:
    # P(t) = 2 t over 0..10 s -> E = t^2 = 100 J
    r = integrate([(i * 0.1, 2 * i * 0.1) for i in range(101)], 0.1).reading()
    assert r.energy_j == pytest.approx(100.0, rel=1e-9)


def test_square_wave_with_jittered_timestamps() -> None:
    rng = random.Random(7)
    samples = []
    t = 0.0
    while t < 60.0:
        samples.append((t, 20.0 if int(t // 1.0) % 2 == 0 else 5.0))
        t += 0.1 + rng.uniform(-0.02, 0.02)
    r = integrate(samples, 0.1).reading()
    expected = 12.5 * samples[-1][0]  # mean of a 2 s square wave between 20 W and 5 W
    assert r.energy_j == pytest.approx(expected, rel=0.02)


def test_uneven_intervals_use_real_timestamps_not_a_fixed_second() -> None:
    # 10 W at t = 0, 0.5, 2.0: 20 J over 2 s; the original script counted 1 s per row: 30 J.
    r = integrate([(0.0, 10.0), (0.5, 10.0), (2.0, 10.0)], 0.5).reading()
    assert r.energy_j == pytest.approx(20.0)
    assert rectangle_1s_energy_j([10.0, 10.0, 10.0]) == 30.0


def test_repeated_timestamps_are_dropped() -> None:
    r = integrate([(0.0, 10.0), (1.0, 10.0), (1.0, 10.0), (1.0, 99.0), (2.0, 10.0)], 1.0).reading()
    assert r.samples == 3
    assert r.energy_j == pytest.approx(20.0)


def test_gap_longer_than_three_intervals_is_unmeasured_not_bridged() -> None:
    samples = [(float(t), 10.0) for t in range(0, 6)] + [(float(t), 10.0) for t in range(20, 26)]
    r = integrate(samples, 1.0).reading()
    assert r.energy_j == pytest.approx(100.0)  # 5 s + 5 s measured at 10 W
    assert r.unmeasured_s == pytest.approx(15.0)
    assert r.measured_s == pytest.approx(10.0)


def test_gap_of_three_intervals_is_still_bridged() -> None:
    r = integrate([(0.0, 10.0), (3.0, 10.0)], 1.0).reading()
    assert r.energy_j == pytest.approx(30.0)
    assert r.unmeasured_s == 0


def test_marked_gap_is_not_bridged_even_when_short() -> None:
    integ = TrapezoidIntegrator(1.0)
    integ.add(0.0, 10.0)
    integ.add(1.0, 10.0)
    integ.mark_gap()
    integ.add(2.0, 10.0)
    integ.add(3.0, 10.0)
    r = integ.reading()
    assert r.energy_j == pytest.approx(20.0)
    assert r.unmeasured_s == pytest.approx(1.0)


def test_negative_power_is_clamped() -> None:
    r = integrate([(0.0, -5.0), (1.0, -5.0), (2.0, 10.0)], 1.0).reading()
    assert r.energy_j == pytest.approx(5.0)


def test_missing_reading_no_longer_than_the_gap_rule_is_bridged() -> None:
    r = integrate([(0.0, 10.0), (1.0, None), (2.0, 10.0), (3.0, 10.0)], 1.0).reading()
    assert r.energy_j == pytest.approx(30.0)
    assert r.unmeasured_s == 0.0


def test_missing_readings_longer_than_the_gap_rule_are_unmeasured() -> None:
    samples = [(0.0, 10.0), (1.0, None), (2.0, None), (3.0, None), (4.0, 10.0), (5.0, 10.0)]
    r = integrate(samples, 1.0).reading()
    assert r.energy_j == pytest.approx(10.0)  # only 4 -> 5 s; 0 -> 4 s is a 4 s gap
    assert r.unmeasured_s == pytest.approx(4.0)


def test_milliwatts_mistake_from_the_original_script() -> None:
    # gpu_log.csv of the original: 6472 "W" per row, 1 s per row -> 1.8 Wh a second.
    # The same readings as what they are (mW) at their real 1.002 s spacing give 6.47 W.
    t0, t1 = 0.0, 1.001940
    r = integrate([(t0, 6472 / 1000), (t1, 6470 / 1000)], 1.0).reading()
    assert r.mean_w == pytest.approx(6.471, abs=1e-3)
    assert r.energy_kwh == pytest.approx(6.471 * 1.00194 / 3.6e6, rel=1e-4)
    original_kwh_per_row = 6472.00 * 1 / 3600 / 1000
    assert original_kwh_per_row == pytest.approx(0.00179778, rel=1e-5)
    assert 990 < original_kwh_per_row / r.energy_kwh < 1000


def test_counter_integrator_uses_counter_deltas() -> None:
    c = CounterIntegrator()
    for t, j in [(0.0, 1000.0), (1.0, 1100.0), (1.0, 1100.0), (10.0, 2000.0)]:
        c.add(t, j)
    r = c.reading()
    assert r.energy_j == pytest.approx(1000.0)
    assert r.samples == 3
    assert r.measured_s == pytest.approx(10.0)


def test_sine_power_converges() -> None:
    # P = 10 + 5 sin(t): integral over 0..2pi*5 = 10 * 10 pi
    n = 2000
    end = 10 * math.pi
    r = integrate([(end * i / n, 10 + 5 * math.sin(end * i / n)) for i in range(n + 1)], end / n)
    assert r.reading().energy_j == pytest.approx(100 * math.pi, rel=1e-4)
