"""Human-readable figures: each ladder's steps on both sides of its bounds; None is n/a."""

from __future__ import annotations

import pytest

from carbontop.units import (
    compact,
    human_co2,
    human_energy,
    human_joules,
    human_power,
    human_rate,
    human_throughput,
)


@pytest.mark.parametrize("kwh, text", [
    (1.0 / 3.6e6, "1.0 J"), (3599.0 / 3.6e6, "3599.0 J"), (3600.0 / 3.6e6, "1.000 Wh"),
    (0.5, "500.000 Wh"), (1.0, "1.000 kWh"), (12.3456, "12.346 kWh"), (None, "n/a")])
def test_energy(kwh: float | None, text: str) -> None:
    assert human_energy(kwh) == text


@pytest.mark.parametrize("j, text", [
    (2e-4, "200 uJ"), (0.0842, "84.2 mJ"), (1.0, "1.00 J"), (999.0, "999 J"),
    (12345.0, "12.3 kJ"), (2.5e6, "2.50 MJ"), (None, "n/a")])
def test_joules(j: float | None, text: str) -> None:
    assert human_joules(j) == text


@pytest.mark.parametrize("kg, text", [
    (5e-4, "500.0 mg"), (0.001, "1.00 g"), (0.25, "250.00 g"), (1.0, "1.000 kg")])
def test_co2_and_rate(kg: float, text: str) -> None:
    assert human_co2(kg) == text
    assert human_rate(kg / 3600.0) == text + "/h"


def test_power_throughput_and_compact() -> None:
    assert human_power(999.94) == "999.9 W" and human_power(1500.0) == "1.50 kW"
    assert [compact(v) for v in (1.234, 12.34, 1234.0, 12345.0, 2.5e6)] == [
        "1.23", "12.3", "1234", "12.3k", "2.5M"]
    assert human_throughput(12.34, "token") == "12.3 tok/s"
    assert human_throughput(None, "token") == "n/a"
