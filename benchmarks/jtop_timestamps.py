"""How far each candidate time of a jtop sample is from the moment its power rails were read.

The real jtop service runs on the emulated AGX Orin of ``tests/jtop_harness.py`` (with its fake
``nvpmodel``, which the service runs on every tick after reading the rails, as on a board) and its
stamp log on: each tick records CLOCK_MONOTONIC around ``PowerService.get_status`` (the rail files'
read; its midpoint is the truth here) and the ``uptime`` it sends. A :class:`JtopSource` reads it
through jtop's own client; the sink notes CLOCK_MONOTONIC when each sample arrives. Compared, per
sample matched by ``uptime``:

- ``uptime``: the service's stamp (CLOCK_BOOTTIME, taken at the START of its decode, truncated to
  10 ms by /proc/uptime) converted to CLOCK_MONOTONIC with the offset read once at open
  (monotonic - boottime, both from clock_gettime), plus 5 ms (the mean truncation);
- ``received``: when the sample reached carbontop's sink;
- ``t_s``: what :class:`JtopSource` put in ``PowerSample.t_s``.

Each runs idle and beside CPU-saturating processes (one busy loop per core), and with an extra
decode delay (the process scan sleeps, as on a busy board with many processes). Needs root.
Run: ``python -m benchmarks.jtop_timestamps [--samples N] [--interval S]``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

from benchmarks._common import machine_info, markdown_table, save_json
from carbontop.model import PowerSample
from carbontop.sources.base import SourceEvent
from carbontop.sources.jtop import JtopSource
from tests.jtop_harness import AGX_ORIN_MODES, jtop_service, skip_reason

UPTIME_TRUNCATION_S = 0.005  # /proc/uptime truncates to 10 ms: on average 5 ms early


@contextlib.contextmanager
def cpu_saturated(active: bool) -> Iterator[None]:
    """One busy-loop process per core while inside (nothing when not ``active``)."""
    procs: list[subprocess.Popen[bytes]] = []
    if active:
        for _ in range(os.cpu_count() or 1):
            procs.append(subprocess.Popen([sys.executable, "-c", "while True: pass"]))
    try:
        yield
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))
    return ordered[k]


def measure(samples: int, interval: float, loaded: bool, decode_delay_s: float) -> dict[str, Any]:
    """Errors (s) of each candidate stamp against the rails' read, for one condition."""
    arrivals: list[tuple[PowerSample, float]] = []
    lock = threading.Lock()
    done = threading.Event()

    def sink(event: SourceEvent) -> None:
        now = time.monotonic()
        if isinstance(event, PowerSample):
            with lock:
                arrivals.append((event, now))
                if len(arrivals) >= samples:
                    done.set()

    with jtop_service(
        "agx-orin", nvpmodel=AGX_ORIN_MODES, stamp_log=True, decode_delay_s=decode_delay_s
    ) as service:
        source = JtopSource(interval, client_factory=service.client_factory)
        offset = time.monotonic() - time.clock_gettime(time.CLOCK_BOOTTIME)
        source.open()
        with cpu_saturated(loaded):
            source.start(sink)
            done.wait(samples * max(interval, decode_delay_s) * 4 + 10)
            source.close()
        time.sleep(0.2)
        by_uptime = {round(s["uptime"], 2): s for s in service.stamps() if "power_start" in s}
    errors: dict[str, list[float]] = {"uptime": [], "received": [], "t_s": []}
    decode_to_rails: list[float] = []
    rails_to_published: list[float] = []
    with lock:
        got = list(arrivals)
    for sample, arrived in got:
        stamp = by_uptime.get(round(sample.t_sensor_s or -1.0, 2))
        if stamp is None:
            continue
        rails = (stamp["power_start"] + stamp["power_end"]) / 2
        errors["uptime"].append(sample.t_sensor_s + offset + UPTIME_TRUNCATION_S - rails)
        errors["received"].append(arrived - rails)
        errors["t_s"].append(sample.t_s - rails)
        decode_to_rails.append(rails - stamp["decode_start"])
        rails_to_published.append(stamp["published"] - rails)
    summary: dict[str, Any] = {
        "loaded": loaded,
        "decode_delay_s": decode_delay_s,
        "interval_s": interval,
        "matched": len(errors["t_s"]),
        "decode_start_to_rails_ms": 1000 * statistics.median(decode_to_rails),
        "rails_to_published_ms": 1000 * statistics.median(rails_to_published),
    }
    for name, values in errors.items():
        absolute = [abs(v) for v in values]
        summary[name] = {
            "median_ms": 1000 * statistics.median(values),
            "abs_median_ms": 1000 * statistics.median(absolute),
            "abs_p95_ms": 1000 * percentile(absolute, 0.95),
        }
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--interval", type=float, default=0.25)
    args = parser.parse_args(argv)
    reason = skip_reason()
    if reason:
        print(f"cannot run the jtop service here: {reason}", file=sys.stderr)
        return 2
    cases = []
    for delay in (0.0, 0.1):
        for loaded in (False, True):
            result = measure(args.samples, args.interval, loaded, delay)
            cases.append(result)
            print(result, file=sys.stderr)
    rows = []
    for c in cases:
        rows.append([
            "loaded" if c["loaded"] else "idle", f"{c['decode_delay_s']:g}", c["matched"],
            f"{c['decode_start_to_rails_ms']:.1f}", f"{c['rails_to_published_ms']:.1f}",
            *(f"{c[k]['median_ms']:+.1f} / {c[k]['abs_p95_ms']:.1f}"
              for k in ("uptime", "received", "t_s")),
        ])
    print(markdown_table(
        ["CPU", "extra decode s", "samples", "decode start -> rails ms",
         "rails -> published ms", "uptime: median / p95 |err| ms",
         "received: median / p95 |err| ms", "t_s: median / p95 |err| ms"], rows))
    save_json("jtop_timestamps", {"machine": machine_info(), "cases": cases})
    return 0


if __name__ == "__main__":
    sys.exit(main())
