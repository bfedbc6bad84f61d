"""The checks that need a CUDA GPU, as one prepared script: ``python -m benchmarks.cuda_check``.

1. The CUDA workloads (matmul fp16, cnn-inference, transformer-inference, training, gpu-stress,
   all ``device=cuda``), each bare (``python -m carbontop.child`` alone) and under
   ``carbontop run ... --gpu-source nvml`` in interleaved pairs: throughput ratio, and what
   carbontop measured (GPU energy of the window, J per unit, samples).
2. NVML's hardware energy counter against integrated power, over the same window: NvmlSource
   samples (``gpu_counter_j`` and ``gpu_w``) while a ~20 s fp16 matmul runs; the samples of the
   measuring window go into :class:`~carbontop.energy.CounterIntegrator` and
   :class:`~carbontop.energy.TrapezoidIntegrator`; the difference is the trapezoid's error
   against the counter.

Without a CUDA device it prints "no CUDA device: nothing to measure" and exits 0. Results go to
``benchmarks/results/cuda_check.json``. About 4 min with the defaults, 1.5 min with ``--quick``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from typing import Any

from benchmarks._common import Sandbox, machine_info, markdown_table, save_json, stats

NO_CUDA = "no CUDA device: nothing to measure"
WORKLOADS: tuple[tuple[str, dict[str, str]], ...] = (
    ("matmul", {"device": "cuda", "dtype": "float16"}),
    ("cnn-inference", {"device": "cuda"}),
    ("transformer-inference", {"device": "cuda"}),
    ("training", {"device": "cuda"}),
    ("gpu-stress", {"device": "cuda"}),
)
NVML_INTERVAL_S = 0.1


def cuda_device() -> tuple[str | None, str]:
    """(GPU name, "") when torch sees a CUDA device, else (None, why not)."""
    try:
        import torch
    except ImportError:
        return None, "torch is not installed"
    try:
        if not torch.cuda.is_available() or torch.cuda.device_count() == 0:
            return None, f"torch {torch.__version__} sees no CUDA device"
        return torch.cuda.get_device_name(0), ""
    except Exception as exc:  # noqa: BLE001 - a broken driver is "no device" here
        return None, f"CUDA unusable: {exc}"


def workload_pairs(pairs: int, duration_s: float, warmup_s: float, sandbox: Sandbox
                   ) -> dict[str, Any]:
    from benchmarks.perturbation import run_bare, run_carbontop

    raw: list[dict[str, Any]] = []
    for i in range(pairs):
        for name, params in WORKLOADS:
            order = ("bare", "carbontop") if i % 2 == 0 else ("carbontop", "bare")
            got: dict[str, dict[str, Any]] = {}
            for side in order:
                try:
                    if side == "bare":
                        got[side] = run_bare(name, duration_s, warmup_s, sandbox, params)
                    else:
                        got[side] = run_carbontop(name, duration_s, warmup_s, sandbox, params,
                                                  source=("--gpu-source", "nvml"))
                except Exception as exc:  # noqa: BLE001 - report it and go on with the others
                    got[side] = {"error": str(exc)[-400:]}
            row: dict[str, Any] = {"pair": i, "workload": name, "params": params,
                                   "order": "/".join(order)}
            bare, under = got["bare"], got["carbontop"]
            row["bare_per_s"] = bare.get("throughput_per_s")
            row["carbontop_per_s"] = under.get("throughput_per_s")
            row["errors"] = [g["error"] for g in got.values() if "error" in g]
            summary = under.get("summary") or {}
            row.update(unit=summary.get("unit"), status=summary.get("status"),
                       window_gpu_kwh=summary.get("window_gpu_energy_kwh"),
                       window_gpu_samples=summary.get("window_gpu_samples"),
                       energy_per_unit_j=summary.get("energy_per_unit_j"),
                       window_s=summary.get("window_duration_s"),
                       device=summary.get("device"))
            if row["bare_per_s"] and row["carbontop_per_s"]:
                row["ratio"] = row["carbontop_per_s"] / row["bare_per_s"]
            raw.append(row)
            print(f"  pair {i} {name:22} bare {row['bare_per_s']}  carbontop "
                  f"{row['carbontop_per_s']}  ratio {row.get('ratio')}  {row['errors'] or ''}",
                  file=sys.stderr, flush=True)
    summary_rows = []
    for name, _params in WORKLOADS:
        mine = [r for r in raw if r["workload"] == name]
        ratios = [r["ratio"] for r in mine if r.get("ratio")]
        gpu_w = [r["window_gpu_kwh"] * 3.6e6 / r["window_s"] for r in mine
                 if r.get("window_gpu_kwh") and r.get("window_s")]
        summary_rows.append({
            "workload": name, "unit": next((r["unit"] for r in mine if r.get("unit")), None),
            "bare_per_s": _stats_or_none([r["bare_per_s"] for r in mine]),
            "carbontop_per_s": _stats_or_none([r["carbontop_per_s"] for r in mine]),
            "ratio": _stats_or_none(ratios),
            "mean_gpu_w": statistics.median(gpu_w) if gpu_w else None,
            "energy_per_unit_j": statistics.median(
                [r["energy_per_unit_j"] for r in mine if r.get("energy_per_unit_j")] or [0.0]),
            "errors": sorted({e for r in mine for e in r["errors"]}),
        })
    return {"raw": raw, "summary": summary_rows}


def _stats_or_none(values: list[float | None]) -> dict[str, float | int] | None:
    present = [v for v in values if v]
    return stats(present) if present else None


def nvml_counter_vs_power(duration_s: float, sandbox: Sandbox) -> dict[str, Any]:
    """Samples NVML in this process while an fp16 matmul child runs; both integrals, one window."""
    from benchmarks.perturbation import run_bare
    from carbontop.energy import CounterIntegrator, TrapezoidIntegrator
    from carbontop.model import PowerSample
    from carbontop.sources.nvml import NvmlSource

    source = NvmlSource(interval_s=NVML_INTERVAL_S)
    info = source.open()
    got: list[PowerSample] = []
    lock = threading.Lock()

    def sink(event: object) -> None:
        if isinstance(event, PowerSample):
            with lock:
                got.append(event)

    source.start(sink)
    try:
        time.sleep(1.0)
        child = run_bare("matmul", duration_s, 3.0, sandbox, {"device": "cuda",
                                                              "dtype": "float16"})
        time.sleep(0.5)
    finally:
        source.close()
    t_start, t_end = child["t_window_unix_s"]
    window = [s for s in got if t_start <= s.t_unix_s <= t_end]
    trapezoid = TrapezoidIntegrator(info.interval_s)
    counter = CounterIntegrator()
    for s in window:
        trapezoid.add(s.t_sensor_s, s.gpu_w)
        counter.add(s.t_sensor_s, s.gpu_counter_j)
    tr, co = trapezoid.reading(), counter.reading()
    steps = [b.t_sensor_s - a.t_sensor_s for a, b in zip(window, window[1:], strict=False)]
    out: dict[str, Any] = {
        "device": info.device_name, "gpu_count": info.gpu_count,
        "has_energy_counter": info.has_energy_counter, "interval_s": info.interval_s,
        "window_s": t_end - t_start, "samples": len(window),
        "median_step_s": statistics.median(steps) if steps else None,
        "max_step_s": max(steps) if steps else None,
        "trapezoid_j": tr.energy_j, "trapezoid_measured_s": tr.measured_s,
        "trapezoid_unmeasured_s": tr.unmeasured_s, "mean_w": tr.mean_w,
        "matmul_gflop_s": child["throughput_per_s"],
    }
    if info.has_energy_counter and co.energy_j > 0:
        out.update(counter_j=co.energy_j, counter_measured_s=co.measured_s,
                   trapezoid_vs_counter_pct=100.0 * (tr.energy_j - co.energy_j) / co.energy_j)
    return out


def tables(result: dict[str, Any]) -> str:
    rows = []
    for s in result["workloads"]["summary"]:
        r = s["ratio"]
        rows.append([
            s["workload"], s["unit"] or "?",
            f"{s['bare_per_s']['median']:.1f}" if s["bare_per_s"] else "n/a",
            f"{s['carbontop_per_s']['median']:.1f}" if s["carbontop_per_s"] else "n/a",
            f"**{r['median']:.3f}** ({r['min']:.3f}–{r['max']:.3f}, n={r['n']})" if r else "n/a",
            f"{s['mean_gpu_w']:.0f} W" if s["mean_gpu_w"] else "n/a",
            f"{s['energy_per_unit_j']:.4g}" if s["energy_per_unit_j"] else "n/a",
            "; ".join(s["errors"])[:120]])
    text = markdown_table(["workload (cuda)", "unit", "bare /s", "under carbontop /s",
                           "ratio median (min–max)", "GPU W (NVML)", "J/unit", "errors"], rows)
    n = result.get("nvml")
    if n:
        counter = f"{n['counter_j']:.1f} J" if "counter_j" in n else "no counter"
        diff = (f"**{n['trapezoid_vs_counter_pct']:+.2f} %**" if "trapezoid_vs_counter_pct" in n
                else "n/a")
        text += "\n\n" + markdown_table(
            ["NVML, fp16 matmul window", "samples", "median step", "counter (CounterIntegrator)",
             "trapezoid (TrapezoidIntegrator)", "trapezoid vs counter", "mean W"],
            [[f"{n['window_s']:.1f} s", n["samples"], f"{n['median_step_s']:.3f} s",
              counter, f"{n['trapezoid_j']:.1f} J", diff, f"{n['mean_w']:.0f} W"]])
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--pairs", type=int)
    parser.add_argument("--duration", type=float, help="measured seconds per workload run")
    parser.add_argument("--nvml-seconds", type=float, default=20.0)
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)
    gpu, why = cuda_device()
    if gpu is None:
        print(f"{NO_CUDA} ({why})")
        return 0
    pairs = args.pairs or (1 if args.quick else 2)
    duration = args.duration or (3.0 if args.quick else 5.0)
    sandbox = Sandbox()
    result: dict[str, Any] = {"benchmark": "cuda_check", "machine": machine_info(), "gpu": gpu,
                              "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
                              "command": "python -m benchmarks.cuda_check"
                              + (" --quick" if args.quick else ""),
                              "settings": {"pairs": pairs, "duration_s": duration,
                                           "warmup_s": 2.0, "nvml_seconds": args.nvml_seconds}}
    try:
        try:
            result["nvml"] = nvml_counter_vs_power(args.nvml_seconds, sandbox)
        except Exception as exc:  # noqa: BLE001 - the workload table is still worth having
            result["nvml_error"] = str(exc)
            print(f"NVML check failed: {exc}", file=sys.stderr)
        result["workloads"] = workload_pairs(pairs, duration, 2.0, sandbox)
    finally:
        sandbox.cleanup()
    if not args.no_save:
        save_json("cuda_check", result)
    print(f"GPU: {gpu}")
    print(tables(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
