"""Workload harness: GFLOP/s of the ``matmul`` workload vs a bare ``torch.matmul`` loop.

One process, the same matrices. Harness side: the child's own measuring loop
(``carbontop.child.loop``, events written to ``/dev/null`` exactly as to carbontop's pipe:
one ``step()`` per GEMM returning a ``Step``, the signal wrapper, the clock read, a ``units`` event
every 0.25 s). Bare side: ``torch.matmul(a, b, out=c)`` in a plain ``for`` loop, its length
calibrated to last as long, timed once. Blocks alternate (AB, BA, ...) after a warm-up; the ratio
of each pair is harness / bare. Run: ``python -m benchmarks.harness [--quick] [--size N]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from benchmarks._common import (
    CpuSampler,
    machine_info,
    markdown_table,
    save_csv,
    save_json,
    stats,
)

TARGET_RATIO = 0.95
QUIET_CORES = 0.15  # a pair is quiet when other programs used less than this meanwhile


def run(quick: bool = False, size: int = 0, pairs: int | None = None,
        block_s: float | None = None) -> dict[str, Any]:
    import torch

    from carbontop.child.loop import WorkloadLoop
    from carbontop.child.phases import Phases
    from carbontop.child.signals import Signals
    from carbontop.child.writer import EventWriter
    from carbontop.model import Phase
    from workloads.matmul import Matmul

    pairs = pairs or (3 if quick else 30)
    block_s = block_s or (0.5 if quick else 1.0)
    workload = Matmul({"size": size, "device": "cpu", "warmup_s": 0.0})
    workload.setup()
    assert workload.tensors is not None
    a, b, c = workload.tensors
    flop = 2.0 * workload.size**3
    null = os.open(os.devnull, os.O_WRONLY)
    phases = Phases(EventWriter(null, unit=Matmul.unit))
    loop = WorkloadLoop(phases, Signals(), duration_s=block_s)

    def harness_block() -> float:
        phases.enter(Phase.MEASURING)
        t0 = time.monotonic()
        loop.steps(workload, block_s, at_least_one=True)
        workload.synchronize()
        phases.report_units()
        return phases.units / (time.monotonic() - t0)  # GFLOP/s: the workload's unit

    def bare_block(n: int) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            torch.matmul(a, b, out=c)
        return n * flop / 1e9 / (time.perf_counter() - t0)

    # warm-up, and the bare loop's length for one block
    warm = bare_block(3)
    end = time.monotonic() + (0.5 if quick else 2.0)
    while time.monotonic() < end:
        warm = bare_block(3)
    n_bare = max(3, int(block_s * warm * 1e9 / flop))
    raw: list[dict[str, Any]] = []
    sampler = CpuSampler(os.getpid())
    try:
        for i in range(pairs):
            order = ("harness", "bare") if i % 2 == 0 else ("bare", "harness")
            got: dict[str, float] = {}
            t_start = time.time()
            for side in order:
                got[side] = harness_block() if side == "harness" else bare_block(n_bare)
            foreign, _ = sampler.cores(t_start, time.time())
            ratio = got["harness"] / got["bare"]
            raw.append({"pair": i, "order": "/".join(order), "harness_gflop_s": got["harness"],
                        "bare_gflop_s": got["bare"], "ratio": ratio, "foreign_cores": foreign,
                        "quiet": foreign is not None and foreign < QUIET_CORES,
                        "loadavg_1min": os.getloadavg()[0]})
            print(f"  pair {i}: harness {got['harness']:.1f}  bare {got['bare']:.1f} GFLOP/s"
                  f"  ratio {ratio:.3f}  others used {foreign} cores", file=sys.stderr,
                  flush=True)
    finally:
        sampler.stop()
        workload.teardown()
        os.close(null)
    quiet = [r["ratio"] for r in raw if r["quiet"]]
    return {"benchmark": "harness", "machine": machine_info(),
            "command": "python -m benchmarks.harness" + (" --quick" if quick else ""),
            "settings": {"size": workload.size, "dtype": str(a.dtype), "pairs": pairs,
                         "block_s": block_s, "bare_iterations_per_block": n_bare,
                         "torch_threads": torch.get_num_threads()},
            "summary": {"harness": stats([r["harness_gflop_s"] for r in raw]),
                        "bare": stats([r["bare_gflop_s"] for r in raw]),
                        "ratio": stats([r["ratio"] for r in raw]),
                        "ratio_quiet": stats(quiet) if quiet else None},
            "raw": raw}


def table(result: dict[str, Any]) -> str:
    s, st = result["summary"], result["settings"]
    r, q = s["ratio"], s.get("ratio_quiet")
    return markdown_table(
        ["matmul (CPU)", "workload harness, median", "bare torch.matmul, median", "pairs",
         "ratio, median", "ratio IQR", "ratio min–max",
         f"quiet pairs (others < {QUIET_CORES:g} core): ratio median (min–max)"],
        [[f"{st['size']}x{st['size']} {st['dtype'].removeprefix('torch.')}, "
          f"{st['torch_threads']} threads", f"{s['harness']['median']:.1f} GFLOP/s",
          f"{s['bare']['median']:.1f} GFLOP/s", r["n"], f"**{r['median']:.3f}**",
          f"{r['q1']:.3f}–{r['q3']:.3f}", f"{r['min']:.3f}–{r['max']:.3f}",
          f"{q['median']:.3f} ({q['min']:.3f}–{q['max']:.3f}, n={q['n']})" if q
          else "none quiet"]])


def verdicts(result: dict[str, Any]) -> list[str]:
    med = result["summary"]["ratio"]["median"]
    ok = "met" if med >= TARGET_RATIO else "MISSED"
    return [f"matmul harness / bare torch.matmul: {med:.3f} (target >= {TARGET_RATIO}): {ok}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--size", type=int, default=0, help="0: the workload's CPU default")
    parser.add_argument("--pairs", type=int)
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()
    result = run(args.quick, args.size, args.pairs)
    if not args.no_save:
        save_json("harness", result)
        save_csv("harness", result["raw"])
    print(table(result))
    print("\n".join(verdicts(result)))


if __name__ == "__main__":
    main()
