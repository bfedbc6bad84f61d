"""Every benchmark, one after another: ``python -m benchmarks.run_all [--quick] [--only NAME]``.

Writes the raw data of each to ``benchmarks/results/<name>.json`` (and ``.csv`` where there are
rows), and all the tables with their verdicts to ``benchmarks/results/report.md`` (printed too);
``--quick`` writes under ``benchmarks/results/quick/`` instead.
Order: the light ones first; the harness (which imports torch into this process) after the
process measurements; the CUDA check last (it only says "no CUDA device" without one).
The full run takes about 25 minutes on 2 cores; ``--quick`` about 4. ``accuracy_e2e`` needs root
and jetson-stats (the real jtop service on an emulated board); elsewhere it says why not.
``--only NAME`` runs one (its results replace that benchmark's files); ``--report-only`` rebuilds
``report.md`` from the saved results of every benchmark.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import accuracy, accuracy_e2e, overhead, perturbation, pipeline, startup
from benchmarks._common import RESULTS_DIR, machine_info, python_env, save_csv, save_json

Step = tuple[str, Callable[[bool], dict[str, Any]], Callable[[dict[str, Any]], str],
             Callable[[dict[str, Any]], list[str]]]


def _accuracy(quick: bool) -> dict[str, Any]:
    seconds = 60.0 if quick else 300.0
    return {"benchmark": "accuracy", "machine": machine_info(),
            "command": f"python -m benchmarks.accuracy --seconds {seconds:g}",
            "results": accuracy.run(seconds)}


def _accuracy_e2e(quick: bool) -> dict[str, Any]:
    """Needs root and jetson-stats (the real jtop service); says why when it cannot run."""
    if quick:
        return accuracy_e2e.run(accuracy_e2e.QUICK_CASES, 4.0)
    return accuracy_e2e.run(accuracy_e2e.CASES, 20.0)


def _harness(quick: bool) -> dict[str, Any]:
    from benchmarks import harness  # imports torch: only when its turn comes

    return harness.run(quick)


def _harness_table(result: dict[str, Any]) -> str:
    from benchmarks import harness

    return harness.table(result)


def _harness_verdicts(result: dict[str, Any]) -> list[str]:
    from benchmarks import harness

    return harness.verdicts(result)


def _llm_harness(quick: bool) -> dict[str, Any]:
    from benchmarks import llm_harness  # imports torch: only when its turn comes

    return llm_harness.run(quick, threads=1)


def _llm_harness_table(result: dict[str, Any]) -> str:
    from benchmarks import llm_harness

    return llm_harness.table(result)


def _llm_harness_verdicts(result: dict[str, Any]) -> list[str]:
    from benchmarks import llm_harness

    return llm_harness.verdicts(result)


def _no_verdicts(_result: dict[str, Any]) -> list[str]:
    return []


STEPS: list[Step] = [
    ("accuracy", _accuracy, lambda r: accuracy.table(r["results"]), _no_verdicts),
    ("accuracy_e2e", _accuracy_e2e, accuracy_e2e.table, accuracy_e2e.verdicts),
    ("pipeline", pipeline.run, pipeline.table, _no_verdicts),
    ("startup", startup.run, lambda r: startup.table(r) + "\n\n```\n"
     + startup.profile_text(r) + "\n```", startup.verdicts),
    ("overhead", overhead.run, overhead.table, overhead.verdicts),
    ("perturbation", perturbation.run, perturbation.table, perturbation.verdicts),
    ("harness", _harness, _harness_table, _harness_verdicts),
    ("llm_harness", _llm_harness, _llm_harness_table, _llm_harness_verdicts),
]


def _save_raw(name: str, result: dict[str, Any], directory: Path) -> None:
    save_json(name, result, directory)
    if name == "overhead":
        save_csv(name, overhead.csv_rows(result), directory)
    elif name == "accuracy":
        save_csv(name, result["results"], directory)
    elif name == "accuracy_e2e":
        if result["cases"]:
            save_csv(name, accuracy_e2e.csv_rows(result), directory)
    elif name == "pipeline":
        save_csv(name, result["rate"]["raw"], directory)
    elif isinstance(result.get("raw"), list) and result["raw"]:
        save_csv(name, result["raw"], directory)


def cuda_check(quick: bool) -> str:
    argv = [sys.executable, "-m", "benchmarks.cuda_check"] + (["--quick"] if quick else [])
    done = subprocess.run(argv, capture_output=True, text=True, env=python_env())
    return (done.stdout.strip() or done.stderr.strip()[-500:]) + f" (exit {done.returncode})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few repetitions")
    parser.add_argument("--only", action="append", help="run only this benchmark (repeatable)")
    parser.add_argument("--out", type=Path, help="where results go (default: benchmarks/results, "
                        "or benchmarks/results/quick with --quick)")
    parser.add_argument("--report-only", action="store_true",
                        help="run nothing: rebuild report.md from the saved results")
    args = parser.parse_args(argv)
    out: Path = args.out or (RESULTS_DIR / "quick" if args.quick else RESULTS_DIR)
    names = [s[0] for s in STEPS] + ["cuda_check"]
    unknown = sorted(set(args.only or []) - set(names))
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]}: choose from {', '.join(names)}")
    report = ["# carbontop benchmarks" + (" (--quick)" if args.quick else ""), ""]
    machine = machine_info()
    report += ["machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()), ""]
    verdicts: list[str] = []
    for name, fn, table, judge in STEPS:
        if args.report_only:
            saved = out / f"{name}.json"
            if not saved.exists():
                continue
            result = json.loads(saved.read_text())
        else:
            if args.only and name not in args.only:
                continue
            print(f"== {name}", file=sys.stderr, flush=True)
            t0 = time.monotonic()
            result = fn(args.quick)
            result["wall_s"] = time.monotonic() - t0
            _save_raw(name, result, out)
        mine = judge(result)
        verdicts += mine
        when = result.get("machine", {}).get("date_utc", "")
        commit = result.get("machine", {}).get("carbontop_commit", "")
        report += [f"## {name}", "", f"`{result.get('command', name)}` "
                   f"({result.get('wall_s', 0):.0f} s; {when} UTC; carbontop {commit})", "",
                   table(result), ""]
        report += [f"- {v}" for v in mine] + ([""] if mine else [])
        print(f"   {name}: {result.get('wall_s', 0):.0f} s", file=sys.stderr, flush=True)
    if not args.report_only and (not args.only or "cuda_check" in args.only):
        report += ["## cuda_check", "", cuda_check(args.quick), ""]
    report += ["## targets", ""] + [f"- {v}" for v in verdicts]
    text = "\n".join(report) + "\n"
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
