"""Perturbation: workload throughput bare vs under carbontop, in interleaved A/B pairs.

Bare: the very child carbontop would start (``python -m carbontop.child``), with our own pipe for
its events and nothing else running; throughput = units over the measuring window, from the
child's own event timestamps (the phase event that opens it, the ``done`` event that closes it),
as the engine computes it. Under carbontop: ``carbontop run WORKLOAD --demo --json``,
``throughput_per_s`` from the JSON. The pairs alternate order (AB, BA, AB, ...) so that neither
side always runs second. Ratio = under carbontop / bare, per pair; the median and its spread are
reported. The machine is shared: a sampler records how much CPU *other* programs used during each
measured window (machine busy time minus the run's own process tree and this driver); a pair is
"quiet" when that stayed under 0.15 cores on both sides, and quiet pairs get their own median.
Run: ``python -m benchmarks.perturbation [--quick] [--pairs N] [--duration S]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks._common import (
    RESULTS_DIR,
    CpuSampler,
    Sandbox,
    carbontop_exe,
    cpu_seconds,
    end_process,
    machine_info,
    markdown_table,
    save_csv,
    save_json,
    stack_dump,
    stats,
)

TARGET_RATIO = 0.98
QUIET_CORES = 0.15  # a pair is quiet when other programs used less than this during both windows
HANG_S = 90.0  # a run this much longer than its warm-up and duration is hung


def save_hang_report(what: str, pid: int, sandbox: Sandbox) -> Path:
    """The stacks of a hung carbontop and its child, and its log's tail, under results/."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"hang-{time.strftime('%Y%m%d-%H%M%S')}.txt"
    path.write_text(f"{what} (pid {pid}) hung\n\n{stack_dump(pid)}\n\n-- log tail --\n"
                    f"{sandbox.log_tail()}\n")
    return path
WORKLOADS = ("matmul", "cnn-inference")


def run_bare(workload: str, duration_s: float, warmup_s: float, sandbox: Sandbox,
             params: dict[str, str] | None = None) -> dict[str, Any]:
    """The child alone; reads its event lines from a pipe like carbontop's runner does."""
    read_fd, write_fd = os.pipe()
    argv = [sys.executable, "-m", "carbontop.child", "--events-fd", str(write_fd),
            "--workload", workload,
            "--params", json.dumps({**(params or {}), "warmup_s": f"{warmup_s:g}"}),
            "--duration", repr(float(duration_s))]
    env = sandbox.env({"PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1"})
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, pass_fds=(write_fd,), env=env,
                            cwd=sandbox.tree)
    sampler = CpuSampler(proc.pid)
    os.close(write_fd)
    data = b""
    try:
        with os.fdopen(read_fd, "rb") as pipe:
            for chunk in iter(lambda: pipe.read(65536), b""):
                data += chunk
        code = proc.wait()
    finally:
        sampler.stop()
    wall = time.monotonic() - t0
    events = [json.loads(line) for line in data.splitlines() if line.strip()]
    errors = [e.get("message") for e in events if e["kind"] == "error"]
    if code != 0 or errors:
        raise RuntimeError(f"{workload} alone failed ({code}): {errors}")
    start = next(e for e in events if e["kind"] == "phase" and e.get("phase") == "measuring")
    done = next(e for e in events if e["kind"] == "done")
    window_s = float(done["t_unix_s"]) - float(start["t_unix_s"])
    units = float(done["units"])
    foreign, own = sampler.cores(float(start["t_unix_s"]), float(done["t_unix_s"]))
    return {"side": "bare", "exit": code, "units": units, "window_s": window_s,
            "foreign_cores": foreign, "own_cores": own,
            "throughput_per_s": units / window_s,
            "child_measured_s": float(done["info"]["measured_s"]), "wall_s": wall,
            "t_window_unix_s": (float(start["t_unix_s"]), float(done["t_unix_s"]))}


def run_carbontop(workload: str, duration_s: float, warmup_s: float, sandbox: Sandbox,
                  params: dict[str, str] | None = None, source: tuple[str, ...] = ("--demo",)
                  ) -> dict[str, Any]:
    """``carbontop run WORKLOAD ... --json``; the summary's figures."""
    argv = [carbontop_exe(), "run", workload, *source, "--duration", f"{duration_s:g}",
            "--param", f"warmup_s={warmup_s:g}", "--output-dir", str(sandbox.output_dir),
            "--json"]
    for key, value in (params or {}).items():
        argv += ["--param", f"{key}={value}"]
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=sandbox.env(), cwd=sandbox.tree)
    sampler = CpuSampler(proc.pid)
    try:
        out, err = proc.communicate(timeout=duration_s + warmup_s + HANG_S)
    except subprocess.TimeoutExpired:
        report = save_hang_report(f"carbontop run {workload}", proc.pid, sandbox)
        proc.kill()
        proc.communicate()
        raise RuntimeError(f"carbontop run {workload} hung: stacks in {report}") from None
    finally:
        sampler.stop()
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"carbontop run {workload} failed ({proc.returncode}): "
                           f"{err.decode(errors='replace')[-500:]}")
    summary = json.loads(out)
    window = summary.get("window") or {}
    foreign, own = (sampler.cores(window["start_unix_s"], window["end_unix_s"])
                    if window else (None, None))
    monitor = sampler.root_cores(window["start_unix_s"], window["end_unix_s"]) if window \
        else None
    return {"side": "carbontop", "exit": proc.returncode, "units": summary["units"],
            "foreign_cores": foreign, "own_cores": own, "monitor_cores": monitor,
            "window_s": summary["window_duration_s"],
            "throughput_per_s": summary["throughput_per_s"], "wall_s": wall,
            "summary": summary}


class EventLog:
    """Reads a child's event lines on a thread: (arrival unix time, event) for each."""

    def __init__(self, read_fd: int) -> None:
        self.events: list[dict[str, Any]] = []
        self._fd = read_fd
        self._thread = threading.Thread(target=self._read, name="events", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        with os.fdopen(self._fd, "rb") as pipe:
            for line in pipe:
                if line.strip():
                    self.events.append(json.loads(line))

    def join(self, timeout_s: float) -> None:
        self._thread.join(timeout_s)

    def measuring(self) -> bool:
        return any(e["kind"] == "phase" and e.get("phase") == "measuring" for e in self.events)

    def units_at(self, t: float) -> float | None:
        """Units done in the measuring phase by unix time ``t`` (linear between reports)."""
        start = next((e for e in self.events
                      if e["kind"] == "phase" and e.get("phase") == "measuring"), None)
        if start is None:
            return None
        points = [(float(start["t_unix_s"]), 0.0)] + [
            (float(e["t_unix_s"]), float(e["units"])) for e in self.events
            if e["kind"] == "units" and e.get("phase") == "measuring"]
        before = [p for p in points if p[0] <= t]
        after = [p for p in points if p[0] >= t]
        if not before or not after:
            return None
        (t0, u0), (t1, u1) = before[-1], after[0]
        return u0 if t1 == t0 else u0 + (u1 - u0) * (t - t0) / (t1 - t0)


def toggled(workload: str, cycles: int, window_s: float, sandbox: Sandbox) -> dict[str, Any]:
    """One long-running bare child; a carbontop monitor (``carbontop run idle --demo``) beside it
    switched on and off. Throughput in each "on" window (monitor in steady state) against the
    neighbouring "off" window, from the child's own units reports: no run-to-run variance."""
    from benchmarks.overhead import wait_started

    read_fd, write_fd = os.pipe()
    argv = [sys.executable, "-m", "carbontop.child", "--events-fd", str(write_fd),
            "--workload", workload, "--params", json.dumps({"warmup_s": "2"}),
            "--duration", "7200"]
    child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, pass_fds=(write_fd,),
                             env=sandbox.env({"PYTHONUNBUFFERED": "1"}), cwd=sandbox.tree)
    os.close(write_fd)
    log = EventLog(read_fd)
    sampler = CpuSampler(child.pid)
    rows: list[dict[str, Any]] = []

    def window(on: bool, cycle: int) -> None:
        monitor = None
        monitor_cpu0 = 0.0
        if on:
            log_file = sandbox.root / f"toggle-{time.monotonic_ns()}.log"
            monitor = subprocess.Popen(
                [carbontop_exe(), "run", "idle", "--demo", "--duration", "3600", "--json",
                 "--output-dir", str(sandbox.output_dir)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                env=sandbox.env({"CARBONTOP_LOG_FILE": str(log_file)}), cwd=sandbox.tree)
            wait_started(monitor, log_file, 90.0)
            time.sleep(2.0)  # past CodeCarbon's first measurement
            monitor_cpu0 = cpu_seconds(monitor.pid)
        t0 = time.time()
        time.sleep(window_s)
        t1 = time.time()
        monitor_cores = None
        if monitor is not None:
            monitor_cores = (cpu_seconds(monitor.pid) - monitor_cpu0) / (t1 - t0)
            end_process(monitor)
            time.sleep(1.0)
        rows.append({"cycle": cycle, "monitor": "on" if on else "off", "t0": t0, "t1": t1,
                     "monitor_cores": monitor_cores})

    try:
        deadline = time.monotonic() + 120
        while not log.measuring():
            if child.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{workload} did not reach its measuring phase")
            time.sleep(0.2)
        time.sleep(1.0)
        for cycle in range(cycles):
            for on in (True, False) if cycle % 2 == 0 else (False, True):
                window(on, cycle)
            print(f"  toggle {workload} cycle {cycle} done", file=sys.stderr, flush=True)
    finally:
        end_process(child)
        sampler.stop()
        log.join(5.0)
    for row in rows:
        u0, u1 = log.units_at(row["t0"]), log.units_at(row["t1"])
        row["throughput_per_s"] = (u1 - u0) / (row["t1"] - row["t0"]) \
            if u0 is not None and u1 is not None else None
        foreign, own = sampler.cores(row["t0"], row["t1"])
        if foreign is not None and row["monitor_cores"] is not None:
            foreign = max(0.0, foreign - row["monitor_cores"])
        row.update(foreign_cores=foreign, child_cores=own)
    ratios = []
    for cycle in range(cycles):
        on_row = next(r for r in rows if r["cycle"] == cycle and r["monitor"] == "on")
        off_row = next(r for r in rows if r["cycle"] == cycle and r["monitor"] == "off")
        if on_row["throughput_per_s"] and off_row["throughput_per_s"]:
            others = max(on_row["foreign_cores"] if on_row["foreign_cores"] is not None else 9.0,
                         off_row["foreign_cores"] if off_row["foreign_cores"] is not None
                         else 9.0)
            ratios.append({"cycle": cycle, "ratio": on_row["throughput_per_s"] /
                           off_row["throughput_per_s"], "quiet": others < QUIET_CORES,
                           "foreign_cores_max": others})
    monitor = [r["monitor_cores"] for r in rows if r["monitor_cores"] is not None]
    quiet = [r["ratio"] for r in ratios if r["quiet"]]
    return {"workload": workload, "cycles": cycles, "window_s": window_s,
            "ratio": stats([r["ratio"] for r in ratios]) if ratios else None,
            "ratio_quiet": stats(quiet) if quiet else None,
            "monitor_cores": stats(monitor) if monitor else None,
            "windows": rows, "ratios": ratios}


def run(quick: bool = False, pairs: int | None = None, duration_s: float | None = None,
        warmup_s: float | None = None, workloads: tuple[str, ...] = WORKLOADS,
        cycles: int | None = None) -> dict[str, Any]:
    pairs = pairs or (2 if quick else 10)
    duration_s = duration_s or (2.0 if quick else 5.0)
    warmup_s = warmup_s if warmup_s is not None else (1.0 if quick else 2.0)
    sandbox = Sandbox()
    raw: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    try:
        for i in range(pairs):
            for workload in workloads:
                order = ("bare", "carbontop") if i % 2 == 0 else ("carbontop", "bare")
                pair: dict[str, dict[str, Any]] = {}
                for side in order:
                    load = os.getloadavg()[0]
                    try:
                        if side == "bare":
                            got = run_bare(workload, duration_s, warmup_s, sandbox)
                        else:
                            got = run_carbontop(workload, duration_s, warmup_s, sandbox)
                    except RuntimeError as exc:  # recorded; the pair does not count
                        print(f"  pair {i} {workload}: {exc}", file=sys.stderr, flush=True)
                        failures.append({"pair": i, "workload": workload, "side": side,
                                         "error": str(exc)})
                        break
                    got.pop("summary", None)
                    got.pop("t_window_unix_s", None)
                    pair[side] = {**got, "loadavg_1min": load}
                if len(pair) < 2:
                    continue
                ratio = pair["carbontop"]["throughput_per_s"] / pair["bare"]["throughput_per_s"]
                foreign = [pair[side]["foreign_cores"] for side in order]
                worst = max(f if f is not None else float("inf") for f in foreign)
                for side in order:
                    raw.append({"pair": i, "workload": workload, "order": "/".join(order),
                                **pair[side], "pair_ratio": ratio,
                                "pair_foreign_cores_max": worst,
                                "pair_quiet": worst < QUIET_CORES})
                print(f"  pair {i} {workload:14} bare {pair['bare']['throughput_per_s']:.2f}"
                      f"  carbontop {pair['carbontop']['throughput_per_s']:.2f}"
                      f"  ratio {ratio:.3f}  others used {worst:.2f} cores",
                      file=sys.stderr, flush=True)
        toggles = [toggled(w, cycles or (2 if quick else 6), 4.0 if quick else 8.0, sandbox)
                   for w in workloads]
    finally:
        sandbox.cleanup()
    summary = []
    for workload in workloads:
        mine = [r for r in raw if r["workload"] == workload]
        bare = [r["throughput_per_s"] for r in mine if r["side"] == "bare"]
        under = [r["throughput_per_s"] for r in mine if r["side"] == "carbontop"]
        ratios = [r["pair_ratio"] for r in mine if r["side"] == "bare"]
        quiet = [r["pair_ratio"] for r in mine if r["side"] == "bare" and r["pair_quiet"]]
        if not ratios:
            continue
        summary.append({"workload": workload, "unit_per_s": "GFLOP/s" if workload == "matmul"
                        else "images/s", "bare": stats(bare), "carbontop": stats(under),
                        "ratio": stats(ratios), "ratio_quiet": stats(quiet) if quiet else None,
                        "monitor_cores": _stats_or_none(
                            [r.get("monitor_cores") for r in mine if r["side"] == "carbontop"])})
    return {"benchmark": "perturbation", "machine": machine_info(),
            "command": "python -m benchmarks.perturbation" + (" --quick" if quick else ""),
            "settings": {"pairs": pairs, "duration_s": duration_s, "warmup_s": warmup_s,
                         "carbontop_interval_s": 0.5, "source": "sim (--demo)",
                         "quiet_below_foreign_cores": QUIET_CORES},
            "summary": summary, "failures": failures, "toggled": toggles, "raw": raw}


def table(result: dict[str, Any]) -> str:
    rows = []
    for s in result["summary"]:
        r, q = s["ratio"], s.get("ratio_quiet")
        rows.append([s["workload"], f"{s['bare']['median']:.2f} {s['unit_per_s']}",
                     f"{s['carbontop']['median']:.2f} {s['unit_per_s']}", r["n"],
                     f"**{r['median']:.3f}**", f"{r['q1']:.3f}–{r['q3']:.3f}",
                     f"{r['min']:.3f}–{r['max']:.3f}",
                     f"{q['median']:.3f} ({q['min']:.3f}–{q['max']:.3f}, n={q['n']})" if q
                     else "none quiet",
                     f"{100 * s['monitor_cores']['median']:.2f} %" if s.get("monitor_cores")
                     else "n/a"])
    quiet = result["settings"].get("quiet_below_foreign_cores", QUIET_CORES)
    text = markdown_table(["workload", "bare, median", "under carbontop, median", "pairs",
                           "ratio, median", "ratio IQR", "ratio min–max",
                           f"quiet pairs (others < {quiet:g} core): ratio median (min–max)",
                           "carbontop's own CPU in the window (one core)"],
                          rows)
    toggles = result.get("toggled") or []
    if toggles:
        trows = []
        for t in toggles:
            r, q, m = t["ratio"], t["ratio_quiet"], t["monitor_cores"]
            trows.append([
                t["workload"], f"{t['cycles']} x {t['window_s']:g} s on / off",
                f"**{r['median']:.3f}**" if r else "n/a",
                f"{r['min']:.3f}–{r['max']:.3f}" if r else "",
                f"{q['median']:.3f} (n={q['n']})" if q else "none quiet",
                f"{100 * m['median']:.2f} %" if m else "n/a"])
        text += "\n\nSame workload process, monitor switched on and off beside it:\n\n"
        text += markdown_table(["workload", "windows", "on / off, median", "min–max",
                                "quiet cycles, median", "monitor CPU (one core)"], trows)
    return text


def verdicts(result: dict[str, Any]) -> list[str]:
    out = [f"{f['workload']} pair {f['pair']} ({f['side']}) FAILED: {f['error'][:300]}"
           for f in result.get("failures", [])]
    for s in result["summary"]:
        med = s["ratio"]["median"]
        ok = "met" if med >= TARGET_RATIO else "MISSED"
        out.append(f"{s['workload']}: throughput ratio {med:.3f} over {s['ratio']['n']} separate "
                   f"run pairs (IQR {s['ratio']['q1']:.3f}-{s['ratio']['q3']:.3f}; target >= "
                   f"{TARGET_RATIO}): {ok}")
    for t in result.get("toggled") or []:
        if t["ratio"]:
            med = t["ratio"]["median"]
            ok = "met" if med >= TARGET_RATIO else "MISSED"
            out.append(f"{t['workload']}: monitor on / off {med:.3f} in one process "
                       f"(target >= {TARGET_RATIO}): {ok}")
    return out


def _stats_or_none(values: list[Any]) -> dict[str, float] | None:
    known = [v for v in values if v is not None]
    return stats(known) if known else None


def sources(reps: int, workloads: tuple[str, ...] = WORKLOADS, duration_s: float = 5.0,
            warmup_s: float = 2.0) -> dict[str, Any]:
    """Separate runs, three ways, interleaved: the bare child, ``carbontop run --demo`` and
    ``carbontop run --gpu-source none``; with carbontop's own CPU (without its child) in the
    measured window. Says whether a gap between bare and carbontop comes from the monitor's work
    (then it grows with the monitor's CPU and with the simulated board) or from run-to-run
    variance."""
    sandbox = Sandbox()
    raw: list[dict[str, Any]] = []
    sides = {"bare": None, "carbontop --demo": ("--demo",),
             "carbontop --gpu-source none": ("--gpu-source", "none")}
    try:
        for i in range(reps):
            for workload in workloads:
                order = list(sides) if i % 2 == 0 else list(reversed(sides))
                for side in order:
                    source = sides[side]
                    got = run_bare(workload, duration_s, warmup_s, sandbox) if source is None \
                        else run_carbontop(workload, duration_s, warmup_s, sandbox, source=source)
                    got.pop("summary", None)
                    got.pop("t_window_unix_s", None)
                    raw.append({"rep": i, "workload": workload, "way": side, **got})
                    print(f"  {i} {workload:14} {side:28} {got['throughput_per_s']:.2f}"
                          + (f"  monitor {100 * got['monitor_cores']:.2f} %"
                             if got.get("monitor_cores") is not None else ""),
                          file=sys.stderr, flush=True)
    finally:
        sandbox.cleanup()
    summary = []
    for workload in workloads:
        for side in sides:
            mine = [r for r in raw if r["workload"] == workload and r["way"] == side]
            summary.append({"workload": workload, "way": side,
                            "throughput": stats([r["throughput_per_s"] for r in mine]),
                            "monitor_cores": _stats_or_none([r.get("monitor_cores")
                                                             for r in mine])})
    return {"benchmark": "perturbation-sources", "machine": machine_info(),
            "command": f"python -m benchmarks.perturbation --sources {reps}",
            "settings": {"reps": reps, "duration_s": duration_s, "warmup_s": warmup_s},
            "summary": summary, "raw": raw}


def sources_table(result: dict[str, Any]) -> str:
    rows = [[s["workload"], s["way"], f"{s['throughput']['median']:.2f}",
             f"{s['throughput']['min']:.2f}–{s['throughput']['max']:.2f}", s["throughput"]["n"],
             f"{100 * s['monitor_cores']['median']:.2f} %" if s["monitor_cores"] else "-"]
            for s in result["summary"]]
    return markdown_table(["workload", "run", "throughput, median", "min–max", "runs",
                           "carbontop's own CPU in the window"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--pairs", type=int)
    parser.add_argument("--duration", type=float, help="measured seconds per run")
    parser.add_argument("--cycles", type=int, help="monitor on/off cycles per workload")
    parser.add_argument("--sources", type=int, metavar="N",
                        help="only the three-way comparison (bare, --demo, --gpu-source none), "
                             "N interleaved rounds; results in perturbation-sources.json")
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()
    if args.sources:
        three = sources(args.sources, duration_s=args.duration or 5.0)
        if not args.no_save:
            save_json("perturbation-sources", three)
        print(sources_table(three))
        return
    result = run(args.quick, pairs=args.pairs, duration_s=args.duration, cycles=args.cycles)
    if not args.no_save:
        save_json("perturbation", result)
        save_csv("perturbation", result["raw"])
    print(table(result))
    print("\n".join(verdicts(result)))


if __name__ == "__main__":
    main()
