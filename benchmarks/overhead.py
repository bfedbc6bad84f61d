"""Monitor overhead: CPU time and memory of the carbontop process itself, in steady state.

Each configuration is started and left to settle (until its log says CodeCarbon runs, the end of
start-up, then ``settle_s`` more), then its own CPU time (user + system of the carbontop pid, the
workload child excluded; 10 ms clock ticks) is read every ``window_s`` seconds for ``windows``
windows; CPU % is of one core. Configurations run one after another, and all of them again in the
next round (interleaved), so a slow drift of the machine touches every row alike.

Rows: ``carbontop run idle`` (headless) and the dashboard on an 80x24 pseudo-terminal, with the
simulated Jetson (``--demo``) at 1, 0.5 and 0.1 s; headless with ``--gpu-source none``; and
CodeCarbon's own ``OfflineEmissionsTracker`` at 1 s alone, the reference. The simulated board
generates its samples inside the carbontop process, so its cost is part of the figure (a real
jtop client reads a socket instead). Run: ``python -m benchmarks.overhead [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from benchmarks._common import (
    PtyProcess,
    Sandbox,
    carbontop_exe,
    cpu_seconds,
    end_process,
    fmt_mb,
    machine_info,
    maps_torch,
    markdown_table,
    peak_rss_bytes,
    python_env,
    save_csv,
    save_json,
    stats,
)

TARGET_HEADLESS_PCT = 1.0  # of one core, at 1 s, headless
TARGET_DASHBOARD_PCT = 3.0  # of one core, at 1 s, dashboard
TARGET_RSS_BYTES = 150e6
STARTED_LINE = "CodeCarbon running"  # carbontop.cpu_ram logs it once its tracker measures


@dataclass(frozen=True)
class Config:
    name: str  # row label
    mode: str  # "headless", "dashboard", "codecarbon"
    source: str  # "sim", "none", "-"
    interval_s: float


def configs(quick: bool) -> list[Config]:
    intervals = (1.0, 0.1) if quick else (1.0, 0.5, 0.1)
    rows = [Config(f"headless sim {i:g} s", "headless", "sim", i) for i in intervals]
    rows.append(Config("headless none 1 s", "headless", "none", 1.0))
    rows += [Config(f"dashboard sim {i:g} s", "dashboard", "sim", i) for i in intervals]
    rows.append(Config("CodeCarbon tracker alone 1 s", "codecarbon", "-", 1.0))
    return rows


def _start(cfg: Config, sandbox: Sandbox, log_file: Path
           ) -> tuple[subprocess.Popen[bytes], PtyProcess | None]:
    exe = carbontop_exe()
    common = ["--gpu-source", cfg.source, "--interval", f"{cfg.interval_s:g}",
              "--output-dir", str(sandbox.output_dir), "--country", "FRA"]
    env = sandbox.env({"CARBONTOP_LOG_FILE": str(log_file)})
    if cfg.mode == "headless":
        argv = [exe, "run", "idle", *common, "--duration", "3600", "--json"]
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=env, cwd=sandbox.tree)
        return proc, None
    if cfg.mode == "dashboard":
        pty = PtyProcess([exe, *common], env=env, cwd=sandbox.tree)
        return pty.proc, pty
    argv = [sys.executable, "-m", "benchmarks.overhead", "--codecarbon-reference"]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=python_env(sandbox))
    return proc, None


def wait_started(proc: subprocess.Popen[bytes], log_file: Path, timeout_s: float) -> float:
    """Seconds until carbontop's log says CodeCarbon runs (the last thing start-up does)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode} while starting")
        try:
            if STARTED_LINE in log_file.read_text(errors="replace"):
                return time.monotonic() - t0
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"not started after {timeout_s:g} s ({STARTED_LINE!r} not logged)")


def measure(cfg: Config, sandbox: Sandbox, settle_s: float, window_s: float, windows: int
            ) -> dict[str, Any]:
    """One run of one configuration: per-window CPU %, RSS, peak RSS, torch mapped or not.

    carbontop: measured from ``settle_s`` after its log says CodeCarbon runs (on a loaded machine
    start-up takes from 3 to 15 s); the CodeCarbon reference: from ``settle_s`` after its start.
    """
    log_file = sandbox.root / f"carbontop-{time.monotonic_ns()}.log"
    proc, pty = _start(cfg, sandbox, log_file)
    started_s = None
    try:
        if cfg.mode != "codecarbon":
            started_s = wait_started(proc, log_file, 90.0)
        time.sleep(settle_s)
        if proc.poll() is not None:
            raise RuntimeError(f"{cfg.name}: exited with {proc.returncode} while settling")
        children = len(psutil.Process(proc.pid).children())
        pcts: list[float] = []
        cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
        for _ in range(windows):
            time.sleep(window_s)
            cpu1, t1 = cpu_seconds(proc.pid), time.monotonic()
            pcts.append(100.0 * (cpu1 - cpu0) / (t1 - t0))
            cpu0, t0 = cpu1, t1
        info = psutil.Process(proc.pid).memory_info()
        row: dict[str, Any] = {
            "config": cfg.name, "mode": cfg.mode, "source": cfg.source,
            "interval_s": cfg.interval_s, "window_s": window_s, "cpu_pct_windows": pcts,
            "rss_bytes": info.rss, "peak_rss_bytes": peak_rss_bytes(proc.pid),
            "torch_mapped": maps_torch(proc.pid), "children": children,
            "loadavg_1min": os.getloadavg()[0], "started_s": started_s,
        }
        if pty is not None:
            row["pty_bytes_read"] = pty.bytes_read
        return row
    finally:
        if pty is not None:
            pty.close()
        else:
            end_process(proc, signal.SIGTERM)


def run(quick: bool = False, rounds: int | None = None, settle_s: float | None = None,
        window_s: float | None = None, windows: int | None = None,
        only: list[str] | None = None) -> dict[str, Any]:
    rounds = rounds or (1 if quick else 2)
    settle_s = settle_s if settle_s is not None else (3.0 if quick else 5.0)
    window_s = window_s or (4.0 if quick else 8.0)
    windows = windows or (1 if quick else 2)
    rows = [c for c in configs(quick) if not only or any(o in c.name for o in only)]
    sandbox = Sandbox()
    raw: list[dict[str, Any]] = []
    try:
        for r in range(rounds):
            for cfg in rows:
                row = measure(cfg, sandbox, settle_s, window_s, windows)
                row["round"] = r
                raw.append(row)
                print(f"  {cfg.name:32} CPU {', '.join(f'{p:.2f}' for p in row['cpu_pct_windows'])}"
                      f" %  RSS {fmt_mb(row['rss_bytes'])}", file=sys.stderr, flush=True)
    finally:
        sandbox.cleanup()
    summary = []
    for cfg in rows:
        mine = [x for x in raw if x["config"] == cfg.name]
        pcts = [p for x in mine for p in x["cpu_pct_windows"]]
        summary.append({
            "config": cfg.name, "mode": cfg.mode, "source": cfg.source,
            "interval_s": cfg.interval_s, "cpu_pct": stats(pcts),
            "rss_bytes_max": max(x["rss_bytes"] for x in mine),
            "peak_rss_bytes_max": max(x["peak_rss_bytes"] or 0 for x in mine),
            "torch_mapped": any(x["torch_mapped"] for x in mine),
        })
    return {"benchmark": "overhead", "machine": machine_info(),
            "command": "python -m benchmarks.overhead" + (" --quick" if quick else ""),
            "settings": {"rounds": rounds, "settle_s": settle_s, "window_s": window_s,
                         "windows": windows},
            "summary": summary, "raw": raw}


def csv_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The raw rows, each window's CPU % joined into one cell."""
    return [{**{k: v for k, v in r.items() if k != "cpu_pct_windows"},
             "cpu_pct_windows": " ".join(f"{p:.3f}" for p in r["cpu_pct_windows"])}
            for r in result["raw"]]


def verdicts(result: dict[str, Any]) -> list[str]:
    out = []
    by_name = {s["config"]: s for s in result["summary"]}
    for name, target in (("headless sim 1 s", TARGET_HEADLESS_PCT),
                         ("dashboard sim 1 s", TARGET_DASHBOARD_PCT)):
        s = by_name.get(name)
        if s:
            med = s["cpu_pct"]["median"]
            ok = "met" if med <= target else "MISSED"
            out.append(f"{name}: {med:.2f} % of one core (target <= {target:g} %): {ok}")
    carbontop = [s for s in result["summary"] if s["mode"] != "codecarbon"]
    if carbontop:
        worst = max(s["peak_rss_bytes_max"] for s in carbontop)
        ok = "met" if worst < TARGET_RSS_BYTES else "MISSED"
        out.append(f"memory: peak RSS {fmt_mb(worst)} at most (target < 150 MB): {ok}")
        torch = [s["config"] for s in carbontop if s["torch_mapped"]]
        out.append("torch in the monitor: " + (f"MAPPED in {', '.join(torch)}" if torch
                                                else "never mapped (met)"))
    return out


def table(result: dict[str, Any]) -> str:
    rows = []
    for s in result["summary"]:
        c = s["cpu_pct"]
        rows.append([s["config"], f"{c['median']:.2f} %", f"{c['min']:.2f}–{c['max']:.2f} %",
                     c["n"], fmt_mb(s["rss_bytes_max"]), fmt_mb(s["peak_rss_bytes_max"]),
                     "yes" if s["torch_mapped"] else "no"])
    return markdown_table(["configuration", "CPU (one core), median", "min–max", "windows",
                           "RSS", "peak RSS", "libtorch mapped"], rows)


def codecarbon_reference() -> None:
    """CodeCarbon alone, as a user of it would run it: a tracker measuring every second."""
    import logging

    logging.disable(logging.CRITICAL)
    from codecarbon import OfflineEmissionsTracker

    tracker = OfflineEmissionsTracker(measure_power_secs=1, save_to_file=False,
                                      country_iso_code="FRA", log_level="error")
    stop = {"now": False}

    def on_term(_signum: int, _frame: Any) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_term)
    tracker.start()
    while not stop["now"]:
        time.sleep(0.2)
    tracker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--only", action="append", help="rows whose name contains this")
    parser.add_argument("--no-save", action="store_true")
    parser.add_argument("--codecarbon-reference", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.codecarbon_reference:
        codecarbon_reference()
        return
    result = run(args.quick, rounds=args.rounds, only=args.only)
    if not args.no_save:
        save_json("overhead", result)
        save_csv("overhead", csv_rows(result))
    print(table(result))
    print("\n".join(verdicts(result)))


if __name__ == "__main__":
    main()
