"""Accuracy: energy error against analytic power traces, carbontop's integrator vs the original.

Traces (exact energy known in closed form): constant, a 2 s square wave, short spikes, a ramp.
Each is sampled at 1, 0.5 and 0.1 s with timestamp jitter (as a real sensor delivers), integrated
by carbontop's trapezoid over the sensor timestamps and by the original script's method (each
sample counted as exactly one second). Run: ``python -m benchmarks.accuracy [--seconds 300]``.
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Callable

from carbontop.energy import TrapezoidIntegrator, rectangle_1s_energy_j

Trace = tuple[str, Callable[[float], float], Callable[[float], float]]  # name, P(t), E(0..t)


def _square(t: float) -> float:
    return 20.0 if int(t // 1.0) % 2 == 0 else 5.0


def _square_energy(t: float) -> float:
    full, rest = divmod(t, 2.0)
    return full * 25.0 + min(rest, 1.0) * 20.0 + max(0.0, rest - 1.0) * 5.0


def _spikes(t: float) -> float:
    return 40.0 if (t % 5.0) < 0.2 else 8.0


def _spikes_energy(t: float) -> float:
    full, rest = divmod(t, 5.0)
    return full * (0.2 * 40.0 + 4.8 * 8.0) + min(rest, 0.2) * 40.0 + max(0.0, rest - 0.2) * 8.0


TRACES: list[Trace] = [
    ("constant 15 W", lambda t: 15.0, lambda t: 15.0 * t),
    ("square 20/5 W, 2 s", _square, _square_energy),
    ("spikes 40 W 0.2 s / 5 s", _spikes, _spikes_energy),
    ("ramp 0..30 W", lambda t: 0.1 * t, lambda t: 0.05 * t * t),
]


def sample_times(duration_s: float, interval_s: float, jitter: float, rng: random.Random
                 ) -> list[float]:
    times, t = [], 0.0
    while t <= duration_s:
        times.append(t)
        t += interval_s * (1.0 + rng.uniform(-jitter, jitter))
    return times


def run(duration_s: float = 300.0, jitter: float = 0.1, seed: int = 1) -> list[dict[str, object]]:
    rng = random.Random(seed)
    results = []
    for name, power, energy in TRACES:
        for interval in (1.0, 0.5, 0.1):
            times = sample_times(duration_s, interval, jitter, rng)
            watts = [power(t) for t in times]
            integ = TrapezoidIntegrator(interval)
            for t, w in zip(times, watts, strict=True):
                integ.add(t, w)
            exact = energy(times[-1])
            ours = integ.reading().energy_j
            original = rectangle_1s_energy_j(watts)
            results.append({
                "trace": name, "interval_s": interval, "samples": len(times),
                "exact_j": exact,
                "carbontop_error_pct": 100.0 * (ours - exact) / exact,
                "original_error_pct": 100.0 * (original - exact) / exact,
            })
    return results


def table(results: list[dict[str, object]]) -> str:
    lines = ["| trace | interval | samples | carbontop error | original (1 s rectangles) error |",
             "|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['trace']} | {r['interval_s']} s | {r['samples']} | "
                     f"{r['carbontop_error_pct']:+.2f} % | {r['original_error_pct']:+.1f} % |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--jitter", type=float, default=0.1, help="timestamp jitter, fraction")
    args = parser.parse_args()
    print(table(run(args.seconds, args.jitter)))


if __name__ == "__main__":
    main()
