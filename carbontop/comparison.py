"""Statistics over repeated trials, and the power-mode comparison of ``carbontop run``.

``--repeat N`` gives each figure's mean and sample standard deviation over the trials that
finished. ``--power-modes A,B,C`` gives those per mode, and compares the modes on the two figures
that trade against each other: throughput (units/s, higher is better) and energy per unit (J per
unit on the total's basis, lower is better; the GPU figure beside it). A mode is on the Pareto
front when no other mode is at least as fast and at least as cheap, and better on one of the two;
``--min-throughput X`` names the cheapest mode that keeps X units/s (always one on the front).
Pure functions: the trials are run by carbontop/trials.py, the text is carbontop/text.py's.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypedDict

from carbontop.summary import SessionSummary
from carbontop.units import J_PER_KWH


class Stat(TypedDict):
    """One figure over the finished trials: how many had it, their mean and sample stdev."""

    n: int
    mean: float | None
    stdev: float | None


class TrialStats(TypedDict):
    """The figures of a set of trials (all of ``--repeat``, or one power mode's)."""

    trials: int
    finished: int
    unit: str | None
    total_basis: str | None  # what the total (and so energy_per_unit_j) rests on
    energy_per_unit_j: Stat  # the window's total energy per unit
    gpu_energy_per_unit_j: Stat  # the window's GPU energy per unit
    throughput_per_s: Stat
    window_energy_j: Stat


class BestModes(TypedDict):
    least_energy_per_unit: str | None
    highest_throughput: str | None


def stat(values: Sequence[float]) -> Stat:
    if not values:
        return {"n": 0, "mean": None, "stdev": None}
    return {"n": len(values), "mean": statistics.fmean(values),
            "stdev": statistics.stdev(values) if len(values) > 1 else 0.0}


def trial_stats(summaries: Sequence[SessionSummary]) -> TrialStats:
    """Mean and standard deviation over the trials that finished."""
    done = [s for s in summaries if s.status.value == "finished"]
    per_unit = [s.efficiency.energy_per_unit_j for s in done if s.efficiency.energy_per_unit_j]
    gpu_per_unit = [v for s in done
                    if isinstance(v := s.emissions_row()["window_gpu_energy_per_unit_j"], float)]
    rate = [s.efficiency.throughput_per_s for s in done if s.efficiency.throughput_per_s]
    energy = [s.window.total_kwh * J_PER_KWH for s in done
              if s.window is not None and s.window.total_kwh is not None]
    unit = next((s.efficiency.unit for s in done if s.efficiency.unit), None)
    basis = next((s.window.total_basis for s in done if s.window is not None), None)
    return {"trials": len(summaries), "finished": len(done), "unit": unit, "total_basis": basis,
            "energy_per_unit_j": stat(per_unit), "gpu_energy_per_unit_j": stat(gpu_per_unit),
            "throughput_per_s": stat(rate), "window_energy_j": stat(energy)}


def best_modes(mode_stats: Mapping[str, TrialStats]) -> BestModes:
    """Which mode gives the least energy per unit of work, and which the highest throughput."""
    per_unit = {m: v for m, s in mode_stats.items()
                if (v := s["energy_per_unit_j"]["mean"]) is not None}
    rate = {m: v for m, s in mode_stats.items() if (v := s["throughput_per_s"]["mean"]) is not None}
    return {"least_energy_per_unit": min(per_unit, key=per_unit.__getitem__) if per_unit else None,
            "highest_throughput": max(rate, key=rate.__getitem__) if rate else None}


@dataclass(frozen=True)
class ModePoint:
    """A power mode's mean throughput and energy per unit (total basis; the GPU's beside it)."""

    mode: str
    throughput_per_s: float
    energy_per_unit_j: float
    gpu_energy_per_unit_j: float | None = None

    def dominates(self, other: ModePoint) -> bool:
        """At least as fast and at least as cheap as ``other``, and better on one of the two."""
        return (self.throughput_per_s >= other.throughput_per_s
                and self.energy_per_unit_j <= other.energy_per_unit_j
                and (self.throughput_per_s > other.throughput_per_s
                     or self.energy_per_unit_j < other.energy_per_unit_j))


def mode_points(mode_stats: Mapping[str, TrialStats]) -> list[ModePoint]:
    """The modes that have both figures, in the order given."""
    points = []
    for mode, s in mode_stats.items():
        rate, per_unit = s["throughput_per_s"]["mean"], s["energy_per_unit_j"]["mean"]
        if rate is not None and per_unit is not None:
            points.append(ModePoint(mode, rate, per_unit, s["gpu_energy_per_unit_j"]["mean"]))
    return points


def _cheapest(points: Sequence[ModePoint]) -> ModePoint | None:
    """The least energy per unit; of equals, the fastest."""
    return min(points, key=lambda p: (p.energy_per_unit_j, -p.throughput_per_s), default=None)


def dominated_by(point: ModePoint, points: Sequence[ModePoint]) -> ModePoint | None:
    """The cheapest of the modes that dominate ``point``; None when it is on the front."""
    return _cheapest([p for p in points if p.dominates(point)])


def pareto_front(points: Sequence[ModePoint]) -> list[ModePoint]:
    """The modes no other mode dominates, slowest first."""
    front = [p for p in points if dominated_by(p, points) is None]
    return sorted(front, key=lambda p: (p.throughput_per_s, p.energy_per_unit_j))


def cheapest_keeping(points: Sequence[ModePoint], min_throughput: float) -> ModePoint | None:
    """The mode with the least energy per unit among those with at least ``min_throughput``
    units/s (of equals, the fastest); None when no mode keeps it."""
    return _cheapest([p for p in points if p.throughput_per_s >= min_throughput])


class ModeChoice(TypedDict):
    min_throughput_per_s: float
    mode: str | None


def comparison_json(mode_stats: Mapping[str, TrialStats],
                    min_throughput: float | None) -> dict[str, object]:
    """The comparison's part of ``carbontop run --json``: per mode, the best, the front."""
    points = mode_points(mode_stats)
    result: dict[str, object] = {
        "power_modes": dict(mode_stats), "best": best_modes(mode_stats),
        "pareto_front": [p.mode for p in pareto_front(points)]}
    if min_throughput is not None:
        chosen = cheapest_keeping(points, min_throughput)
        choice: ModeChoice = {"min_throughput_per_s": min_throughput,
                              "mode": chosen.mode if chosen else None}
        result["cheapest_keeping_min_throughput"] = choice
    return result
