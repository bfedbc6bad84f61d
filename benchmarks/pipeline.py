"""Pipeline: power samples per second through integration and CSV writing; a 24 h session.

Every sample goes the way the engine sends a sample of a measuring session: into the whole
session's and the measured window's :class:`~carbontop.meter.WindowMeter`, the GPU energy so far
(``gpu_energy_kwh``) and its CO2, a row for ``gpu_log.csv`` (``ResultStore.add_sample``), a point
of the live chart's bounded history; ``ResultStore.flush_all`` once per second of sample time (as
the engine's ticker does) and at the end. Samples look like the simulated AGX Orin's at 10 Hz
(four rails, board = sum of rails, a CPU rail).

The 24-hour session (864,000 samples at 10 Hz) is replayed in a fresh interpreter, so that its
resident memory is its own: wall time, samples/s, RSS before and after, the peak RSS (VmHWM) and,
in a second fresh interpreter, the peak of Python allocations (tracemalloc, slower).
Run: ``python -m benchmarks.pipeline [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks._common import (
    Sandbox,
    machine_info,
    markdown_table,
    python_env,
    save_json,
    stats,
)
from carbontop.carbon import co2_kg, world_average
from carbontop.meter import Traces, WindowMeter
from carbontop.model import BoardBasis, PowerSample, Scope, SourceInfo
from carbontop.results.store import ResultStore

RATE_HZ = 10.0
T0_S = 4242.0  # the replayed samples start here on the session clock
DAY_SAMPLES = 864_000
HISTORY_POINTS = 6001  # the engine's live chart history at 0.1 s (600 s)
RAILS = (("VDD_CPU_CV", 0.8, 12.0), ("VDD_GPU_SOC", 2.4, 30.0), ("VDDQ_VDD2_1V8AO", 0.6, 3.2),
         ("VIN_SYS_5V0", 3.2, 6.5))

INFO = SourceInfo(kind="sim", device_name="Simulated Jetson AGX Orin (64GB)", gpu_count=1,
                  gpu_rail="VDD_GPU_SOC", gpu_scope=Scope.GPU_SOC_SHARED,
                  board_basis=BoardBasis.SUM_OF_RAILS, cpu_rail="VDD_CPU_CV",
                  interval_s=1.0 / RATE_HZ)


def samples(n: int, t0_unix: float = 1.7e9) -> Iterator[PowerSample]:
    """``n`` samples at 10 Hz with a slow load wave; made on the fly (they are not stored)."""
    for i in range(n):
        t = i / RATE_HZ
        level = 0.5 + 0.5 * math.sin(t / 30.0)
        rails = tuple((name, round(idle + (peak - idle) * level, 3)) for name, idle, peak in RAILS)
        by_name = dict(rails)
        yield PowerSample(t_s=T0_S + t, t_sensor_s=T0_S + t, t_unix_s=t0_unix + t,
                          gpu_w=by_name["VDD_GPU_SOC"], board_w=sum(w for _, w in rails),
                          board_basis=BoardBasis.SUM_OF_RAILS, cpu_rail_w=by_name["VDD_CPU_CV"],
                          gpu_load_pct=round(100 * level, 1), rails_w=rails)


class Pipeline:
    """The engine's per-sample path for a measuring session, without threads or a workload."""

    def __init__(self, directory: Path, t0_unix: float = 1.7e9) -> None:
        self.store = ResultStore(directory, fallback_dir=directory / "fallback")
        self.traces = Traces(INFO)
        self.whole = WindowMeter(self.traces, T0_S, t0_unix)
        self.window = WindowMeter(self.traces, T0_S, t0_unix)
        self.history: deque[tuple[float, float | None, float | None]] = deque(
            maxlen=HISTORY_POINTS)
        self.intensity = world_average()
        self._per_flush = int(RATE_HZ)
        self._count = 0

    def add(self, s: PowerSample) -> None:
        self.traces.add_sample(s)
        self.whole.settle()
        self.window.settle()
        self.history.append((s.t_unix_s, s.gpu_w, s.board_w))
        gpu_kwh = self.whole.gpu_energy_kwh(s.t_s)
        self.store.add_sample(s, INFO, "bench-run", "matmul", "measuring", gpu_kwh,
                              co2_kg(gpu_kwh, self.intensity))
        self._count += 1
        if self._count % self._per_flush == 0:
            self.store.flush_all(final=False)

    def finish(self, t_end_s: float, t_end_unix: float) -> dict[str, Any]:
        for meter in (self.whole, self.window):
            meter.close(t_end_s, t_end_unix)
            meter.finish()
        self.store.flush_all(final=True)
        totals = self.whole.totals(t_end_s)
        return {"gpu_kwh": totals.gpu_kwh, "board_kwh": totals.board_kwh,
                "gpu_samples": totals.gpu_samples, "unmeasured_s": totals.unmeasured_s,
                "csv_bytes": self.store.gpu_log.path.stat().st_size}


def throughput(n: int, directory: Path) -> dict[str, Any]:
    """Samples per second (wall and CPU) through the whole path, ``n`` samples."""
    pipe = Pipeline(directory)
    made = list(samples(n))  # made beforehand: only the path is timed
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    for s in made:
        pipe.add(s)
    out = pipe.finish(made[-1].t_s + 0.1, made[-1].t_unix_s + 0.1)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return {"samples": n, "wall_s": wall, "cpu_s": cpu, "samples_per_s": n / wall,
            "us_per_sample": 1e6 * wall / n, **out}


def parts(n: int, directory: Path) -> dict[str, float]:
    """Microseconds per sample of each step alone (integration, row, CSV flush)."""
    made = list(samples(n))
    out: dict[str, float] = {}
    traces = Traces(INFO)
    meter = WindowMeter(traces, T0_S, 1.7e9)
    t0 = time.perf_counter()
    for s in made:
        traces.add_sample(s)
        meter.settle()
        meter.gpu_energy_kwh(s.t_s)
    out["Traces.add_sample + settle + gpu_energy_kwh (one window)"] = (
        1e6 * (time.perf_counter() - t0) / n)
    store = ResultStore(directory / "parts", fallback_dir=directory / "fallback")
    co2 = co2_kg(1e-5, world_average())
    t0 = time.perf_counter()
    for s in made:
        store.add_sample(s, INFO, "bench-run", "matmul", "measuring", 1e-5, co2)
    out["ResultStore.add_sample (row dict)"] = 1e6 * (time.perf_counter() - t0) / n
    t0 = time.perf_counter()
    store.flush_all(final=True)
    out["ResultStore.flush_all (CSV encode + write), per row"] = (
        1e6 * (time.perf_counter() - t0) / n)
    return out


def _rss_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * resource.getpagesize()


def _hwm_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def replay(n: int, directory: Path, trace: bool) -> dict[str, Any]:
    """Body of the fresh interpreter: the 24 h replay, samples made on the fly."""
    import tracemalloc

    pipe = Pipeline(directory)
    rss0, hwm0 = _rss_bytes(), _hwm_bytes()
    if trace:
        tracemalloc.start()
    rss_marks = []
    t0 = time.perf_counter()
    last = None
    for i, s in enumerate(samples(n)):
        pipe.add(s)
        last = s
        if i % (n // 8 or 1) == 0:
            rss_marks.append(_rss_bytes())
    assert last is not None
    out = pipe.finish(last.t_s + 0.1, last.t_unix_s + 0.1)
    wall = time.perf_counter() - t0
    result = {"samples": n, "wall_s": wall, "samples_per_s": n / wall, "rss_start_bytes": rss0,
              "rss_end_bytes": _rss_bytes(), "hwm_start_bytes": hwm0, "hwm_end_bytes": _hwm_bytes(),
              "rss_marks_bytes": rss_marks, "tracemalloc": trace, **out}
    if trace:
        current, peak = tracemalloc.get_traced_memory()
        result.update(tracemalloc_current_bytes=current, tracemalloc_peak_bytes=peak)
    return result


def replay_in_child(n: int, sandbox: Sandbox, trace: bool) -> dict[str, Any]:
    directory = sandbox.root / ("replay-traced" if trace else "replay")
    argv = [sys.executable, "-m", "benchmarks.pipeline", "--replay-child", str(n),
            "--dir", str(directory)] + (["--trace"] if trace else [])
    done = subprocess.run(argv, capture_output=True, text=True, env=python_env(sandbox),
                          timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"replay failed: {done.stderr[-800:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(quick: bool = False) -> dict[str, Any]:
    n_rate = 20_000 if quick else 100_000
    n_day = 36_000 if quick else DAY_SAMPLES
    reps = 3
    sandbox = Sandbox()
    try:
        rates = [throughput(n_rate, sandbox.root / f"rate-{i}") for i in range(reps)]
        step_costs = parts(n_rate, sandbox.root)
        day = replay_in_child(n_day, sandbox, trace=False)
        day_traced = replay_in_child(n_day // (1 if quick else 4), sandbox, trace=True)
    finally:
        sandbox.cleanup()
    return {"benchmark": "pipeline", "machine": machine_info(),
            "command": "python -m benchmarks.pipeline" + (" --quick" if quick else ""),
            "settings": {"rate_samples": n_rate, "reps": reps, "day_samples": n_day,
                         "traced_samples": day_traced["samples"], "rate_hz": RATE_HZ},
            "rate": {"samples_per_s": stats([r["samples_per_s"] for r in rates]),
                     "us_per_sample": stats([r["us_per_sample"] for r in rates]),
                     "raw": rates},
            "parts_us_per_sample": step_costs, "day": day, "day_traced": day_traced}


def table(result: dict[str, Any]) -> str:
    r = result["rate"]["samples_per_s"]
    day = result["day"]
    traced = result["day_traced"]
    mb = 1e6
    rows = [
        ["samples/s through the path (median of 3)", f"**{r['median']:,.0f}**",
         f"{r['min']:,.0f}–{r['max']:,.0f}; "
         f"{result['rate']['us_per_sample']['median']:.1f} µs/sample"],
        *[[f"  of which {name}", f"{us:.1f} µs/sample", ""]
          for name, us in result["parts_us_per_sample"].items()],
        [f"{day['samples']:,} samples replayed (10 Hz)", f"**{day['wall_s']:.1f} s** wall",
         f"{day['samples_per_s']:,.0f} samples/s; {day['samples'] / RATE_HZ / day['wall_s']:,.0f}x"
         " real time"],
        ["  RSS before → after", f"{day['rss_start_bytes'] / mb:.1f} → "
         f"{day['rss_end_bytes'] / mb:.1f} MB",
         "during: " + ", ".join(f"{x / mb:.1f}" for x in day["rss_marks_bytes"]) + " MB"],
        ["  peak RSS (VmHWM)", f"{day['hwm_end_bytes'] / mb:.1f} MB",
         f"{day['hwm_start_bytes'] / mb:.1f} MB before the replay"],
        ["  gpu_log.csv written", f"{day['csv_bytes'] / mb:.1f} MB",
         f"{day['gpu_samples']:,} GPU samples integrated"],
        [f"  tracemalloc peak ({traced['samples']:,} samples)",
         f"{traced['tracemalloc_peak_bytes'] / mb:.2f} MB",
         f"current at the end {traced['tracemalloc_current_bytes'] / mb:.2f} MB"],
    ]
    return markdown_table(["pipeline", "value", "detail"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-save", action="store_true")
    parser.add_argument("--replay-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.replay_child:
        print(json.dumps(replay(args.replay_child, args.dir, args.trace)))
        return
    result = run(args.quick)
    if not args.no_save:
        save_json("pipeline", result)
    print(table(result))


if __name__ == "__main__":
    main()
