"""The monitor's cost, per process and per thread, side by side with CodeCarbon's tracker alone.

Every configuration of a group runs at the same time (side by side: the same seconds, the same
load from other programs), each in its own fresh process, started in a shuffled order. Once every
one has started (its log says CodeCarbon runs) and settled, the CPU time of each is read at the
edges of ``windows`` consecutive windows; each window is one interleaved set of measurements
(one "pair" per configuration against the reference). ``rounds`` fresh starts of the group.

CPU time is read in nanoseconds, not in 10 ms ticks:

- the whole process: the kernel's process CPU clock (``clock_gettime`` on the clock id
  ``CPUCLOCK_SCHED`` of the pid, the sum of ``sum_exec_runtime`` over the thread group, threads
  that ended included);
- each thread: ``/proc/PID/task/TID/schedstat`` (its first field: ns on a CPU). Thread names
  come from one ``py-spy dump`` per process after settling (``--py-spy PATH``; without it the
  threads are named by their kernel ``comm``). A thread that ended during a window, or started and
  ended in it (CodeCarbon starts a new ``threading.Timer`` thread for every measurement), is in
  the row "short-lived threads": the process total minus the threads alive at the window's end.

Groups:

- ``headless``: CodeCarbon's ``OfflineEmissionsTracker(measure_power_secs=1)`` with an output
  handler receiving every measurement (``api_call_interval=1``), alone in a Python process (the
  reference); ``carbontop run idle`` at 1 s with ``--gpu-source none``, ``sim`` and ``sysfs`` (an
  emulated Orin NX tree from ``tests/sysfs_trees.py``, ``CARBONTOP_SYS_ROOT``); the dashboard
  (``carbontop``, idle, on an 80x24 pty whose output is read and discarded) with ``none`` and
  ``sysfs``.
- ``emulated`` (root; the real jtop service on ``/fake_sys``, serialised with the tests on the
  harness's file lock): at 1, 0.1 and 0.01 s, carbontop with ``sysfs`` on ``/fake_sys``, carbontop
  with ``jtop`` and the jtop service's processes (the service and its children), one interval at
  a time, the service restarted for each.

The carbontop processes are measured without their workload child (the idle workload).

Run: ``python -m benchmarks.monitor_cost --group headless --rounds 3 --windows 4 --window-s 15
--py-spy /tmp/pyspy-venv/bin/py-spy``; results in ``benchmarks/results/monitor-cost-GROUP.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from benchmarks._common import (
    ROOT,
    PtyProcess,
    Sandbox,
    carbontop_exe,
    end_process,
    machine_info,
    markdown_table,
    python_env,
    save_json,
    stats,
)

STARTED_LINE = "CodeCarbon running"  # carbontop.cpu_ram logs it once its tracker measures
REFERENCE = "CodeCarbon tracker alone 1 s"
SHORT_LIVED = "short-lived threads"
SYSFS_BOARD = "orin-nx"
EMULATED_TREE = "agx-orin"  # built at /fake_sys beside the jtop harness's own files
CPUCLOCK_SCHED = 2
PY_SPY_THREAD = re.compile(r'^Thread (\d+) \([^)]*\): "(.*)"$')


# -- CPU time in nanoseconds -----------------------------------------------------------------

def process_cpu_ns(pid: int) -> int:
    """CPU time of the whole thread group of ``pid`` (ended threads included), in ns."""
    return time.clock_gettime_ns(((~pid) << 3) | CPUCLOCK_SCHED)


def thread_cpu_ns(pid: int) -> dict[int, int]:
    """{tid: ns on a CPU} for each thread alive now, from ``/proc/PID/task/TID/schedstat``."""
    out: dict[int, int] = {}
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                schedstat = Path(f"/proc/{pid}/task/{tid}/schedstat").read_text()
                out[int(tid)] = int(schedstat.split()[0])
    return out


def thread_names(pid: int, py_spy: str | None) -> dict[int, str]:
    """{tid: Python thread name} from ``py-spy dump``; the kernel's comm where py-spy is absent."""
    names: dict[int, str] = {}
    for tid in thread_cpu_ns(pid):
        with contextlib.suppress(OSError):
            names[tid] = "comm " + Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
    if py_spy:
        try:
            text = subprocess.run([py_spy, "dump", "--pid", str(pid)], capture_output=True,
                                  text=True, timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            text = ""
        for line in text.splitlines():
            match = PY_SPY_THREAD.match(line.strip())
            if match:
                names[int(match.group(1))] = match.group(2)
    return names


@dataclass
class Measured:
    """One running configuration: the pids whose CPU counts, and what each thread is called."""

    name: str
    pids: list[int]  # the carbontop (or service) process and, for the service, its children
    names: dict[int, str] = field(default_factory=dict)
    total0: int = 0
    threads0: dict[int, int] = field(default_factory=dict)

    def read(self) -> tuple[int, dict[int, int]]:
        total, threads = process_cpu_ns(self.pids[0]), {}  # raises if it ended
        threads.update(thread_cpu_ns(self.pids[0]))
        for pid in self.pids[1:]:
            with contextlib.suppress(OSError):
                total += process_cpu_ns(pid)
            threads.update(thread_cpu_ns(pid))
        return total, threads

    def begin(self) -> None:
        self.total0, self.threads0 = self.read()

    def end(self, seconds: float) -> dict[str, float]:
        """Per-thread-name and total CPU % of one core since :meth:`begin`; begins the next."""
        total1, threads1 = self.read()
        by_name: dict[str, float] = {}
        alive = 0
        for tid, ns in threads1.items():
            delta = ns - self.threads0.get(tid, 0)
            alive += delta
            name = self.names.get(tid, SHORT_LIVED)  # a timer thread born after naming
            by_name[name] = by_name.get(name, 0.0) + delta
        by_name[SHORT_LIVED] = by_name.get(SHORT_LIVED, 0.0) + max(
            0, (total1 - self.total0) - alive)
        out = {k: 100.0 * v / 1e9 / seconds for k, v in by_name.items()}
        out["total"] = 100.0 * (total1 - self.total0) / 1e9 / seconds
        self.total0, self.threads0 = total1, threads1
        return out


# -- what runs -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Config:
    name: str
    kind: str  # "codecarbon", "headless", "dashboard", "jtop-service"
    source: str = "-"
    interval_s: float = 1.0
    sys_root: str | None = None  # CARBONTOP_SYS_ROOT
    jtop_pipe: str | None = None  # carbontop talks to the jtop service on this socket
    tree: str | None = None  # another checkout whose carbontop runs (before/after side by side)


@dataclass
class Running:
    config: Config
    proc: subprocess.Popen[bytes]
    pty: PtyProcess | None
    ready_file: Path
    measured: Measured | None = None

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.config.name}: exited with {self.proc.returncode} "
                               f"while starting:\n{_tail(self.ready_file)}")
        if self.config.kind == "codecarbon":
            return self.ready_file.exists()
        try:
            return STARTED_LINE in self.ready_file.read_text(errors="replace")
        except OSError:
            return False

    def stop(self) -> None:
        if self.pty is not None:
            self.pty.close()
        else:
            end_process(self.proc, signal.SIGTERM)


def _tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-2000:]
    except OSError:
        return ""


def start(cfg: Config, sandbox: Sandbox, index: int) -> Running:
    log_file = sandbox.root / f"{index}-{re.sub(r'[^a-z0-9]+', '-', cfg.name.lower())}.log"
    if cfg.kind == "codecarbon":
        argv = [sys.executable, "-m", "benchmarks.monitor_cost", "--codecarbon-reference",
                str(log_file)]
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=python_env(sandbox))
        return Running(cfg, proc, None, log_file)
    out = sandbox.root / f"out-{index}"
    out.mkdir(exist_ok=True)
    common = ["--gpu-source", cfg.source, "--interval", f"{cfg.interval_s:g}",
              "--output-dir", str(out), "--country", "FRA"]
    # Each its own lock folder: two sessions on "the board" would refuse each other.
    extra = {"CARBONTOP_LOG_FILE": str(log_file), "CARBONTOP_LOCK_DIR": str(out / "locks")}
    if cfg.sys_root:
        extra["CARBONTOP_SYS_ROOT"] = cfg.sys_root
    env = (Sandbox(root=sandbox.root, tree=Path(cfg.tree)) if cfg.tree else sandbox).env(extra)
    exe = [carbontop_exe()]
    if cfg.jtop_pipe:
        exe = [sys.executable, "-m", "benchmarks.monitor_cost", "--carbontop-on-pipe",
               cfg.jtop_pipe, "--"]
    if cfg.kind == "headless":
        argv = [*exe, "run", "idle", *common, "--duration", "36000"]
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=env, cwd=sandbox.tree)
        return Running(cfg, proc, None, log_file)
    pty = PtyProcess([*exe, *common], env=env, cwd=sandbox.tree)
    return Running(cfg, pty.proc, pty, log_file)


def wait_ready(running: Sequence[Running], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    waiting = list(running)
    while waiting:
        waiting = [r for r in waiting if not r.ready()]
        if waiting and time.monotonic() > deadline:
            raise RuntimeError("not started: " + ", ".join(r.config.name for r in waiting))
        time.sleep(0.2)


def measure_windows(measured: Sequence[Measured], windows: int, window_s: float
                    ) -> list[dict[str, dict[str, float]]]:
    """``windows`` windows, all processes read at the same edges: [{config: {thread: %}}]."""
    out = []
    for m in measured:
        m.begin()
    t0 = time.monotonic()
    for _ in range(windows):
        time.sleep(window_s)
        t1 = time.monotonic()
        out.append({m.name: m.end(t1 - t0) for m in measured})
        t0 = t1
    return out


def run_group(configs: Sequence[Config], sandbox: Sandbox, rounds: int, windows: int,
              window_s: float, settle_s: float, py_spy: str | None,
              service_pids: Sequence[int] = ()) -> list[dict[str, Any]]:
    """Rounds of fresh starts of ``configs`` side by side; the windows, one dict each."""
    rows: list[dict[str, Any]] = []
    for r in range(rounds):
        order = list(configs)
        random.shuffle(order)
        running: list[Running] = []
        try:
            for i, cfg in enumerate(order):
                running.append(start(cfg, sandbox, r * 100 + i))
            wait_ready(running, 60.0)
            time.sleep(settle_s)
            measured = []
            for run in running:
                m = Measured(run.config.name, [run.proc.pid])
                m.names = thread_names(run.proc.pid, py_spy)
                measured.append(m)
            if service_pids:
                pids = list(service_pids)
                for pid in service_pids:
                    with contextlib.suppress(psutil.Error):
                        pids += [c.pid for c in psutil.Process(pid).children(recursive=True)]
                service = Measured("jtop service", pids)
                for pid in pids:
                    service.names.update({tid: "service" for tid in thread_cpu_ns(pid)})
                measured.append(service)
            for w, window in enumerate(measure_windows(measured, windows, window_s)):
                rows.append({"round": r, "window": w, "window_s": window_s,
                             "loadavg_1min": os.getloadavg()[0], "cpu_pct": window})
                print(f"  round {r} window {w}: " + ", ".join(
                    f"{k} {v['total']:.3f}" for k, v in window.items()), file=sys.stderr,
                    flush=True)
        finally:
            for run in running:
                run.stop()
    return rows


# -- summaries -------------------------------------------------------------------------------

def summarise(rows: Sequence[dict[str, Any]], reference: str | None) -> dict[str, Any]:
    """Per configuration: total CPU % stats, ratio to the reference per window, threads."""
    names = sorted({k for row in rows for k in row["cpu_pct"]})
    out: dict[str, Any] = {}
    for name in names:
        windows = [row["cpu_pct"][name] for row in rows if name in row["cpu_pct"]]
        totals = [w["total"] for w in windows]
        entry: dict[str, Any] = {"total_pct": stats(totals)}
        if reference and name != reference:
            ratios = [row["cpu_pct"][name]["total"] / row["cpu_pct"][reference]["total"]
                      for row in rows if name in row["cpu_pct"] and reference in row["cpu_pct"]
                      and row["cpu_pct"][reference]["total"] > 0]
            if ratios:
                entry["ratio_to_reference"] = stats(ratios)
        threads = sorted({t for w in windows for t in w if t != "total"})
        entry["threads_pct_median"] = {
            t: stats([w.get(t, 0.0) for w in windows])["median"] for t in threads}
        out[name] = entry
    return out


def table(summary: dict[str, Any]) -> str:
    rows = []
    for name, s in summary.items():
        t = s["total_pct"]
        ratio = s.get("ratio_to_reference")
        rows.append([name, f"{t['median']:.3f} %", f"{t['q1']:.3f}–{t['q3']:.3f} %",
                     f"{t['min']:.3f}–{t['max']:.3f} %", t["n"],
                     f"{ratio['median']:.2f}x ({ratio['q1']:.2f}–{ratio['q3']:.2f})"
                     if ratio else "-"])
    return markdown_table(["configuration", "CPU, median", "IQR", "min–max", "windows",
                           "ratio to reference, median (IQR)"], rows)


def thread_table(summary: dict[str, Any]) -> str:
    rows = []
    for name, s in summary.items():
        for thread, pct in sorted(s["threads_pct_median"].items(), key=lambda kv: -kv[1]):
            if pct >= 0.0005:
                rows.append([name, thread, f"{pct:.3f} %"])
    return markdown_table(["configuration", "thread", "CPU, median"], rows)


# -- groups ----------------------------------------------------------------------------------

def headless_configs(sandbox: Sandbox, dashboards: bool = True) -> list[Config]:
    sys.path.insert(0, str(ROOT))
    from tests.sysfs_trees import build

    tree = build(SYSFS_BOARD, sandbox.root / "sys")
    root = str(tree.root)
    configs = [
        Config(REFERENCE, "codecarbon"),
        Config("headless none 1 s", "headless", "none"),
        Config("headless sim 1 s", "headless", "sim"),
        Config(f"headless sysfs 1 s ({SYSFS_BOARD})", "headless", "sysfs", sys_root=root),
    ]
    if dashboards:
        configs += [
            Config("dashboard none 1 s", "dashboard", "none"),
            Config(f"dashboard sysfs 1 s ({SYSFS_BOARD})", "dashboard", "sysfs", sys_root=root),
        ]
    return configs


def run_emulated(sandbox: Sandbox, rounds: int, windows: int, window_s: float, settle_s: float,
                 py_spy: str | None, intervals: Sequence[float]) -> list[dict[str, Any]]:
    sys.path.insert(0, str(ROOT))
    from tests.jtop_harness import FAKE_SYS, JtopService

    rows: list[dict[str, Any]] = []
    with JtopService("nano-2gb", sysfs_tree=EMULATED_TREE) as service:
        for r in range(rounds):
            order = list(intervals)
            random.shuffle(order)
            for interval in order:
                service.restart()
                assert service._proc is not None
                configs = [
                    Config(f"carbontop sysfs {interval:g} s", "headless", "sysfs", interval,
                           sys_root=str(FAKE_SYS)),
                    Config(f"carbontop jtop {interval:g} s", "headless", "jtop", interval,
                           jtop_pipe=service.pipe),
                ]
                got = run_group(configs, sandbox, 1, windows, window_s, settle_s, py_spy,
                                service_pids=[service._proc.pid])
                for row in got:
                    row["round"] = r
                    pct = row["cpu_pct"]
                    pct[f"jtop service {interval:g} s"] = pct.pop("jtop service")
                    both = pct[f"carbontop jtop {interval:g} s"]["total"] + \
                        pct[f"jtop service {interval:g} s"]["total"]
                    pct[f"carbontop jtop + service {interval:g} s"] = {"total": both}
                rows += got
    return rows


def emulated_ratios(summary: dict[str, Any], intervals: Sequence[float]) -> list[str]:
    def med(name: str) -> float | None:
        s = summary.get(name)
        return s["total_pct"]["median"] if s else None

    lines = []
    service_1s = med("jtop service 1 s")
    for i in intervals:
        sysfs, both = med(f"carbontop sysfs {i:g} s"), med(f"carbontop jtop + service {i:g} s")
        if sysfs is not None and both:
            lines.append(f"emulated, {i:g} s: carbontop sysfs / (carbontop jtop + service) = "
                         f"{sysfs / both:.2f}")
        if sysfs is not None and service_1s:
            lines.append(f"emulated: carbontop sysfs {i:g} s / jtop service alone 1 s = "
                         f"{sysfs / service_1s:.2f}")
    return lines


# -- helper processes ------------------------------------------------------------------------

def codecarbon_reference(ready_file: Path) -> None:
    """CodeCarbon alone, measuring every second, every measurement handed to an output handler."""
    import logging

    logging.disable(logging.CRITICAL)
    from codecarbon import OfflineEmissionsTracker
    from codecarbon.output_methods.base_output import BaseOutput

    class Keep(BaseOutput):  # type: ignore[misc]
        def __init__(self) -> None:
            self.seen = 0

        def live_out(self, total: Any, delta: Any) -> None:
            self.seen += 1

        def out(self, total: Any, delta: Any) -> None:
            self.seen += 1

    tracker = OfflineEmissionsTracker(measure_power_secs=1, save_to_file=False,
                                      country_iso_code="FRA", log_level="error",
                                      api_call_interval=1, output_handlers=[Keep()],
                                      allow_multiple_runs=True)
    stop = {"now": False}

    def on_term(_signum: int, _frame: Any) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_term)
    tracker.start()
    ready_file.write_text("started\n")
    while not stop["now"]:
        time.sleep(0.5)
    tracker.stop()


def carbontop_on_pipe(pipe: str, argv: list[str]) -> int:
    """carbontop's CLI with the jtop client pointed at a private service socket."""
    import jtop.service

    jtop.service.JTOP_PIPE = pipe
    from carbontop.cli import main as carbontop_main

    return carbontop_main(argv)


@contextlib.contextmanager
def _sandbox() -> Iterator[Sandbox]:
    sandbox = Sandbox()
    try:
        yield sandbox
    finally:
        sandbox.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--group", choices=("headless", "emulated"), default="headless")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--windows", type=int, default=4)
    parser.add_argument("--window-s", type=float, default=15.0)
    parser.add_argument("--settle-s", type=float, default=8.0)
    parser.add_argument("--no-dashboard", action="store_true")
    parser.add_argument("--intervals", default="1,0.1,0.01")
    parser.add_argument("--py-spy", help="py-spy executable, to name the threads")
    parser.add_argument("--label", default="", help="suffix of the result file")
    parser.add_argument("--before-tree", help="also run each carbontop row from this checkout, "
                        "side by side, labelled 'before: '")
    parser.add_argument("--codecarbon-reference", help=argparse.SUPPRESS)
    parser.add_argument("--carbontop-on-pipe", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.codecarbon_reference:
        codecarbon_reference(Path(args.codecarbon_reference))
        return
    if args.carbontop_on_pipe:
        raise SystemExit(carbontop_on_pipe(args.carbontop_on_pipe,
                                           [a for a in rest if a != "--"]))
    intervals = [float(x) for x in args.intervals.split(",")]
    with _sandbox() as sandbox:
        if args.group == "headless":
            configs = headless_configs(sandbox, dashboards=not args.no_dashboard)
            if args.before_tree:
                configs += [dataclasses.replace(c, name="before: " + c.name,
                                                tree=args.before_tree)
                            for c in configs if c.kind != "codecarbon"]
            rows = run_group(configs, sandbox, args.rounds, args.windows, args.window_s,
                             args.settle_s, args.py_spy)
            reference: str | None = REFERENCE
        else:
            rows = run_emulated(sandbox, args.rounds, args.windows, args.window_s, args.settle_s,
                                args.py_spy, intervals)
            reference = None
    summary = summarise(rows, reference)
    command = "python -m benchmarks.monitor_cost " + " ".join(sys.argv[1:])
    result = {"benchmark": "monitor_cost", "group": args.group, "machine": machine_info(),
              "command": command, "summary": summary, "raw": rows}
    path = save_json(f"monitor-cost-{args.group}{'-' + args.label if args.label else ''}",
                     result)
    print(table(summary))
    print()
    print(thread_table(summary))
    if args.group == "emulated":
        print("\n".join(emulated_ratios(summary, intervals)))
    print(f"\nsaved {path}", file=sys.stderr)
    print(json.dumps({"commit": result["machine"]["carbontop_commit"]}))


if __name__ == "__main__":
    main()
