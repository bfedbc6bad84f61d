"""Power into energy: the trapezoid rule over the sensor's own timestamps, or counter deltas.

measurement.md rules 1-3: integrate raw samples over the timestamps the sensor gives, never a fixed
interval and never a smoothed average; drop repeated samples; do not bridge a gap longer than a few
delivered intervals but count it as unmeasured time; clamp negative power to zero.
"""

from __future__ import annotations

from dataclasses import dataclass

GAP_INTERVALS = 3.0  # a step longer than this many delivered intervals is a gap, not a measurement


@dataclass(frozen=True)
class EnergyReading:
    """Energy integrated so far, and what it rests on."""

    energy_j: float
    samples: int
    measured_s: float
    unmeasured_s: float

    @property
    def energy_kwh(self) -> float:
        return self.energy_j / 3.6e6

    @property
    def mean_w(self) -> float | None:
        return self.energy_j / self.measured_s if self.measured_s > 0 else None


class TrapezoidIntegrator:
    """Integrates one power channel (watts) over sensor timestamps (seconds).

    ``interval_s`` is the interval the source actually delivers; a step longer than
    ``GAP_INTERVALS`` times it is not integrated but added to ``unmeasured_s``.
    """

    def __init__(self, interval_s: float) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self._max_step_s = GAP_INTERVALS * interval_s
        self._last_t: float | None = None
        self._last_w: float | None = None
        self._energy_j = 0.0
        self._measured_s = 0.0
        self._unmeasured_s = 0.0
        self._samples = 0

    def add(self, t_s: float, power_w: float | None, counted: bool = True) -> None:
        """Adds one sample. ``None`` power (a missed reading) breaks the chain like a gap.

        ``counted=False`` marks a point held at a window edge: integrated, but not a sample.
        """
        if self._last_t is not None and t_s <= self._last_t:
            return  # repeated or out-of-order sample: the sensor has not moved on
        if power_w is None:
            if self._last_t is not None:
                self._unmeasured_s += t_s - self._last_t
            self._last_t, self._last_w = t_s, None
            return
        power_w = max(0.0, power_w)
        self._samples += 1 if counted else 0
        if self._last_t is not None:
            dt = t_s - self._last_t
            if self._last_w is None or dt > self._max_step_s:
                self._unmeasured_s += dt
            else:
                self._energy_j += 0.5 * (self._last_w + power_w) * dt
                self._measured_s += dt
        self._last_t, self._last_w = t_s, power_w

    def mark_gap(self) -> None:
        """The source was lost: the next sample starts a new chain instead of bridging."""
        self._last_w = None

    def reading(self) -> EnergyReading:
        return EnergyReading(self._energy_j, self._samples, self._measured_s, self._unmeasured_s)


class CounterIntegrator:
    """Energy from a cumulative hardware counter (NVML ``TotalEnergyConsumption``), joules.

    Reads the counter at the window edges (every sample is an edge of a sub-window), so gaps cost
    nothing: the counter kept counting. A counter that goes backwards (driver reload) restarts.
    """

    def __init__(self) -> None:
        self._first_t: float | None = None
        self._last_t: float | None = None
        self._last_j: float | None = None
        self._energy_j = 0.0
        self._samples = 0

    def add(self, t_s: float, counter_j: float | None, counted: bool = True) -> None:
        if counter_j is None or (self._last_t is not None and t_s <= self._last_t):
            return
        self._samples += 1 if counted else 0
        if self._last_j is not None and counter_j >= self._last_j:
            self._energy_j += counter_j - self._last_j
        if self._first_t is None:
            self._first_t = t_s
        self._last_t, self._last_j = t_s, counter_j

    def mark_gap(self) -> None:
        """A lost source does not break a hardware counter."""

    def reading(self) -> EnergyReading:
        if self._first_t is None or self._last_t is None:
            return EnergyReading(self._energy_j, self._samples, 0.0, 0.0)
        measured = self._last_t - self._first_t
        return EnergyReading(self._energy_j, self._samples, measured, 0.0)


def rectangle_1s_energy_j(powers_w: list[float]) -> float:
    """The original script's method: each sample taken as exactly one second (comparison only)."""
    return float(sum(powers_w))
