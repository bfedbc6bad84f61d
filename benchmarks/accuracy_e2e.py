"""End-to-end accuracy: carbontop's energies against an independent jtop client on the real service.

Three parties share one emulated Jetson (Orin NX, ``tests/jtop_harness.py``: the real jetson-stats
service reading ``/fake_sys``):

- a schedule writer (a thread here) changes the rails' currents on a schedule: steady, or off the
  sampling grid (steps, a ramp written as a 20 ms staircase, spikes of 37 ms and 230 ms). Each
  write replaces one file atomically (``os.replace``; the voltage never changes, so a rail's power
  changes at one instant) and is stamped on the session clock right after: that is the analytic
  truth, a piecewise-constant power per rail;
- an independent client (a plain ``jtop.jtop`` in its own process, started first, so it fixes the
  service's interval) logs every sample: the service's ``uptime`` and each rail's milliwatts;
- carbontop runs as a user runs it, ``carbontop run WORKLOAD --gpu-source jtop --interval I
  --duration D --json``, its jtop client pointed at the service's private socket as the tests do.

For carbontop's whole session and measured window, its GPU and board energies are compared with
the trapezoid over the independent client's samples clipped at carbontop's own edges (linear
between the two samples that bracket each edge): within 0.1 % on steady schedules and 0.5 % on
off-grid ones, else the case is MISSED. Against the truth the figures are reported, not held: a
spike shorter than a sample period is invisible to any sampler.

Clocks: carbontop's edges are read from the summary's session-clock fields when it has them
(``session_start_s``/``session_end_s``/``window_start_s``/``window_end_s``, CLOCK_MONOTONIC), else
from its wall-clock edges (``whole``/``window`` ``start_unix_s``/``end_unix_s``) moved onto the
session clock by ``time.time() - time.monotonic()`` read here. The service's ``uptime`` is
``/proc/uptime`` (CLOCK_BOOTTIME, truncated to 10 ms), moved by ``CLOCK_BOOTTIME - CLOCK_MONOTONIC``
read here (constant while the machine does not suspend).

Run (root, jetson-stats installed): ``python -m benchmarks.accuracy_e2e [--quick] [--duration S]
[--case NAME ...]``. Writes ``benchmarks/results/accuracy_e2e.json`` and ``.csv`` (``--quick``:
under ``benchmarks/results/quick/``) and prints the table with one verdict per case.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks._common import (
    RESULTS_DIR,
    Sandbox,
    end_process,
    machine_info,
    markdown_table,
    save_csv,
    save_json,
)

BOARD = "orin-nx"  # VDD_IN is the board's input rail, VDD_CPU_GPU_CV the (shared) GPU rail
GPU_RAIL = "VDD_CPU_GPU_CV"
BOARD_RAIL = "VDD_IN"
STEADY_TOLERANCE_PCT = 0.1
OFF_GRID_TOLERANCE_PCT = 0.5
WARMUP_S = 1.0
STAIR_S = 0.02  # a ramp is written as stairs this long
LOGGER_READY_TIMEOUT_S = 30.0
RUN_TIMEOUT_EXTRA_S = 120.0  # carbontop's start, warm-up and end, beyond --duration
J_PER_KWH = 3.6e6
MET, MISSED = "MET", "MISSED"

Points = list[tuple[float, float]]  # (t on the session clock, watts)


# -- schedules -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Schedule:
    """Rail powers as a function of time since the schedule's start (seconds, watts)."""

    name: str
    steady: bool
    tolerance_pct: float

    def changes(self) -> Iterator[tuple[float, float, float]]:
        """(t since start, GPU W, board W) at every change, in time order, without end."""
        if self.steady:
            yield 0.0, 4.0, 9.0
            return
        period = OFF_GRID_PERIOD_S
        k = 0
        while True:
            for t, gpu_w, extra_w in _off_grid_period():
                yield k * period + t, gpu_w, BOARD_BASE_W + gpu_w + extra_w
            k += 1


OFF_GRID_PERIOD_S = 7.31  # no whole number of 0.1 s or 0.5 s periods
BOARD_BASE_W = 4.1  # the board input rail carries the GPU rail and this much more


def _off_grid_period() -> list[tuple[float, float, float]]:
    """One period of the off-grid schedule: (t, GPU W, board-only extra W) at each change.

    Steps at 1.13 s and 2.71 s, a ramp 6 W -> 1.5 W from 2.71 s to 4.53 s in 20 ms stairs, a 37 ms
    spike to 12 W at 5.03 s (shorter than any sample period here), a 230 ms spike to 9 W at
    5.61 s (longer than 0.1 s, shorter than 0.5 s) and a board-only step of 1.5 W at 6.47 s.
    """
    out: list[tuple[float, float, float]] = [(0.0, 2.0, 0.0), (1.13, 6.0, 0.0)]
    ramp_start, ramp_end, w0, w1 = 2.71, 4.53, 6.0, 1.5
    stairs = round((ramp_end - ramp_start) / STAIR_S)
    for i in range(stairs):
        mid = (i + 0.5) / stairs  # each stair holds the ramp's value at its middle
        out.append((ramp_start + i * STAIR_S, w0 + (w1 - w0) * mid, 0.0))
    out += [(4.53, 3.0, 0.0), (5.03, 12.0, 0.0), (5.067, 3.0, 0.0), (5.61, 9.0, 0.0),
            (5.84, 4.2, 0.0), (6.47, 4.2, 1.5)]
    return out


SCHEDULES = {
    "steady": Schedule("steady", steady=True, tolerance_pct=STEADY_TOLERANCE_PCT),
    "off-grid": Schedule("off-grid", steady=False, tolerance_pct=OFF_GRID_TOLERANCE_PCT),
}


@dataclass(frozen=True)
class Case:
    """One measurement: a schedule, carbontop's sampling interval and its workload."""

    schedule: str
    interval_s: float
    workload: str  # "idle", or "cpu-stress" to saturate the CPU

    @property
    def name(self) -> str:
        return f"{self.schedule} {self.interval_s:g} s {self.workload}"


CASES: list[Case] = [Case(s, i, w) for w in ("idle", "cpu-stress") for s in SCHEDULES
                     for i in (0.5, 0.1)]
QUICK_CASES: list[Case] = [Case("steady", 0.5, "idle"), Case("off-grid", 0.1, "idle")]


# -- the rails: the writer and the truth -----------------------------------------------------

class RailWriter:
    """Writes a schedule onto the emulated board's rails; records when each write landed."""

    def __init__(self, service: Any, schedule: Schedule) -> None:
        self.service = service
        self.schedule = schedule
        self.writes: dict[str, Points] = {GPU_RAIL: [], BOARD_RAIL: []}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _set(self, rail: str, watts: float) -> None:
        mw = self.service.set_rail(rail, round(watts * 1000.0))  # returns jtop's exact mW
        self.writes[rail].append((time.monotonic(), mw / 1000.0))

    def write_first(self) -> None:
        """The schedule's first values, written before anyone samples."""
        _, gpu_w, board_w = next(self.schedule.changes())
        self._set(GPU_RAIL, gpu_w)
        self._set(BOARD_RAIL, board_w)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="rail-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        t0 = time.monotonic()
        changes = self.schedule.changes()
        next(changes)  # written by write_first
        last = {GPU_RAIL: self.writes[GPU_RAIL][-1][1], BOARD_RAIL: self.writes[BOARD_RAIL][-1][1]}
        for t, gpu_w, board_w in changes:
            if self._stop.wait(max(0.0, t0 + t - time.monotonic())):
                return
            for rail, watts in ((GPU_RAIL, gpu_w), (BOARD_RAIL, board_w)):
                if abs(watts - last[rail]) > 1e-9:
                    self._set(rail, watts)
                    last[rail] = watts

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)


def step_integral_j(writes: Points, a: float, b: float) -> float | None:
    """Energy of a piecewise-constant power (each value holds until the next write), a..b."""
    if not writes or a < writes[0][0] or b < a:
        return None
    energy = 0.0
    for i, (t, w) in enumerate(writes):
        t_next = writes[i + 1][0] if i + 1 < len(writes) else float("inf")
        lo, hi = max(a, t), min(b, t_next)
        if hi > lo:
            energy += w * (hi - lo)
    return energy


def clipped_trapezoid_j(samples: Points, a: float, b: float) -> float | None:
    """Trapezoid over ``samples`` from ``a`` to ``b``, each edge a point linear between the two
    samples that bracket it. None when the samples do not cover a..b."""
    if len(samples) < 2 or b < a or a < samples[0][0] or b > samples[-1][0]:
        return None
    times = [t for t, _ in samples]

    def at(t: float) -> float:
        i = bisect.bisect_right(times, t)
        if i >= len(samples):
            return samples[-1][1]
        (ta, wa), (tb, wb) = samples[i - 1], samples[i]
        return wa + (wb - wa) * (t - ta) / (tb - ta)

    inside = [(t, w) for t, w in samples if a < t < b]
    points = [(a, at(a))] + inside + [(b, at(b))]
    return sum(0.5 * (w0 + w1) * (t1 - t0)
               for (t0, w0), (t1, w1) in zip(points, points[1:], strict=False))


def end_held_j(samples: Points, a: float, b: float) -> float | None:
    """Like :func:`clipped_trapezoid_j`, but the last sample before ``b`` is held up to ``b``
    instead of interpolated towards the next one: how carbontop's meter closes a window today
    (``meter._held_at``). A diagnosis: when carbontop equals this and not the reference, the
    difference is its end edge."""
    before = [(t, w) for t, w in samples if t <= b]
    if not before:
        return None
    return clipped_trapezoid_j(before + [(b + 1e-9, before[-1][1])], a, b)


# -- the independent client ------------------------------------------------------------------

def log_samples(pipe: str, interval_s: float, out: Path) -> int:
    """The independent client's process: every sample's uptime and rail milliwatts, one JSON
    line each, until SIGTERM. A plain ``jtop.jtop``, nothing of carbontop."""
    import jtop.service

    jtop.service.JTOP_PIPE = pipe  # read when the client connects
    from jtop import jtop as jtop_client

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    with out.open("w") as f, jtop_client(interval=interval_s) as jetson:
        while not stop.is_set() and jetson.ok():
            received = time.monotonic()
            for _ in range(3):  # uptime and power from one sample
                before = jetson.uptime
                power = jetson.power
                if jetson.uptime == before:
                    break
            rails = {name: r.get("power") for name, r in (power.get("rail") or {}).items()}
            tot = power.get("tot") or {}
            f.write(json.dumps({"uptime_s": before.total_seconds(), "received_s": received,
                                "rails_mw": rails, "tot_name": tot.get("name"),
                                "tot_mw": tot.get("power"), "interval_s": jetson.interval}) + "\n")
            f.flush()
    return 0


@dataclass
class IndependentLog:
    """The independent client's samples, each once (a repeated uptime is the same sample)."""

    rows: list[dict[str, Any]] = field(default_factory=list)

    @staticmethod
    def read(path: Path) -> IndependentLog:
        rows: list[dict[str, Any]] = []
        for line in path.read_text().splitlines():
            row = json.loads(line)
            if not rows or row["uptime_s"] > rows[-1]["uptime_s"]:
                rows.append(row)
        return IndependentLog(rows)

    def points(self, rail: str, uptime_to_session_s: float, by: str = "uptime") -> Points:
        """(t on the session clock, watts) of one rail; ``by``: "uptime" (the service's stamp)
        or "received" (when this client had it). jtop gives the input rail as 'tot' only."""
        out: Points = []
        for row in self.rows:
            mw = row["tot_mw"] if row.get("tot_name") == rail else row["rails_mw"].get(rail)
            if mw is None:
                continue
            t = row["uptime_s"] - uptime_to_session_s if by == "uptime" else row["received_s"]
            out.append((t, mw / 1000.0))
        return out

    def steps_s(self) -> list[float]:
        ups = [r["uptime_s"] for r in self.rows]
        return [b - a for a, b in zip(ups, ups[1:], strict=False)]


def _delay_stats(delays: list[float]) -> dict[str, float] | None:
    if not delays:
        return None
    data = sorted(delays)
    return {"median": data[len(data) // 2], "p95": data[int(0.95 * (len(data) - 1))],
            "max": data[-1]}


def cross_check(log: IndependentLog, gpu_log: Path, wall_to_session_s: float,
                uptime_to_session_s: float) -> dict[str, Any]:
    """Sample by sample, carbontop's ``gpu_log.csv`` against the independent client's log,
    matched by the service's uptime: which samples one of them lacks, which values differ, and
    how long after the service's stamp each client had each sample (carbontop's row timestamp is
    when it received the sample). It tells a difference in what was read from one in when."""
    import csv
    from datetime import datetime

    theirs = {round(r["uptime_s"], 2): r for r in log.rows}
    ours: dict[float, dict[str, str]] = {}
    if gpu_log.exists():
        with gpu_log.open(newline="") as f:
            for row in csv.DictReader(f):
                if row.get("sensor_time_s"):
                    ours[round(float(row["sensor_time_s"]), 2)] = row
    if not ours:
        return {"compared": 0}
    first, last = min(ours), max(ours)
    span = [t for t in theirs if first <= t <= last]
    mismatches = []
    for t in sorted(set(ours) & set(theirs)):
        gpu_mw = theirs[t]["rails_mw"].get(GPU_RAIL)
        board_mw = theirs[t]["tot_mw"]
        for column, mw in (("gpu_power_w", gpu_mw), ("board_power_w", board_mw)):
            value = ours[t].get(column)
            if mw is not None and value and abs(float(value) - mw / 1000.0) > 0.01:
                mismatches.append({"uptime_s": t, "column": column, "carbontop_w": float(value),
                                   "independent_w": mw / 1000.0})
    carbontop_delays = [
        datetime.fromisoformat(row["timestamp"]).timestamp() - wall_to_session_s
        - (float(row["sensor_time_s"]) - uptime_to_session_s) for row in ours.values()]
    independent_delays = [r["received_s"] - (r["uptime_s"] - uptime_to_session_s)
                          for t, r in theirs.items() if t in ours]
    return {"compared": len(set(ours) & set(theirs)),
            "carbontop_delay_s": _delay_stats(carbontop_delays),
            "independent_delay_s": _delay_stats(independent_delays),
            "only_carbontop": sorted(set(ours) - set(theirs))[:20],
            "only_independent": sorted(set(span) - set(ours))[:20],
            "value_mismatches": mismatches[:20]}


# -- carbontop -------------------------------------------------------------------------------

def run_carbontop(pipe: str, case: Case, duration_s: float, sandbox: Sandbox) -> dict[str, Any]:
    """``carbontop run`` as a user runs it, talking to the service at ``pipe``; its summary."""
    code = ("import sys, jtop.service\n"
            f"jtop.service.JTOP_PIPE = {pipe!r}\n"
            "from carbontop.cli import main\n"
            "sys.exit(main(sys.argv[1:]))\n")
    argv = [sys.executable, "-c", code, "run", case.workload, "--gpu-source", "jtop",
            "--interval", f"{case.interval_s:g}", "--duration", f"{duration_s:g}",
            "--param", f"warmup_s={WARMUP_S:g}", "--output-dir", str(sandbox.output_dir),
            "--json"]
    done = subprocess.run(argv, capture_output=True, text=True, env=sandbox.env(),
                          timeout=duration_s + RUN_TIMEOUT_EXTRA_S)
    if done.returncode != 0:
        raise RuntimeError(f"carbontop exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    summary: dict[str, Any] = json.loads(done.stdout)
    return summary


@dataclass(frozen=True)
class Edges:
    """carbontop's session and window edges on the session clock, and where they were read."""

    session: tuple[float, float]
    window: tuple[float, float] | None
    source: str


SESSION_CLOCK_FIELDS = ("session_start_s", "session_end_s", "window_start_s", "window_end_s")


def edges_of(summary: dict[str, Any], wall_to_session_s: float) -> Edges:
    """The edges from the summary's session-clock fields, else its wall-clock edges moved."""
    if all(summary.get(k) is not None for k in SESSION_CLOCK_FIELDS[:2]):
        window = None
        if all(summary.get(k) is not None for k in SESSION_CLOCK_FIELDS[2:]):
            window = (float(summary["window_start_s"]), float(summary["window_end_s"]))
        return Edges((float(summary["session_start_s"]), float(summary["session_end_s"])),
                     window, "session clock (" + "/".join(SESSION_CLOCK_FIELDS) + ")")
    whole, win = summary["whole"], summary.get("window")

    def moved(part: dict[str, Any]) -> tuple[float, float]:
        return (part["start_unix_s"] - wall_to_session_s, part["end_unix_s"] - wall_to_session_s)

    return Edges(moved(whole), moved(win) if win else None,
                 "wall clock (whole/window start_unix_s, end_unix_s) - (time.time - monotonic)")


def _kwh_j(kwh: Any) -> float | None:
    return None if kwh is None else float(kwh) * J_PER_KWH


def carbontop_energies_j(summary: dict[str, Any]) -> dict[tuple[str, str], float | None]:
    """{(span, channel): joules} of carbontop's summary; span "session"/"window"."""
    whole, win = summary["whole"], summary.get("window") or {}
    return {("session", "gpu"): _kwh_j(whole.get("gpu_kwh")),
            ("session", "board"): _kwh_j(whole.get("board_kwh")),
            ("window", "gpu"): _kwh_j(win.get("gpu_kwh")),
            ("window", "board"): _kwh_j(win.get("board_kwh"))}


# -- one case --------------------------------------------------------------------------------

def _pct(value: float | None, reference: float | None) -> float | None:
    if value is None or reference is None or reference == 0:
        return None
    return 100.0 * (value - reference) / reference


def _clock_offsets() -> tuple[float, float]:
    """(wall - session clock, boot-time - session clock), each read as close together as can be."""
    mono = time.monotonic()
    wall = time.time()
    boot = time.clock_gettime(time.CLOCK_BOOTTIME)
    mono2 = time.monotonic()
    mid = 0.5 * (mono + mono2)
    return wall - mid, boot - mid


def _wait_for_lines(path: Path, n: int, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = path.with_suffix(".err")
            tail = err.read_text(errors="replace")[-1500:] if err.exists() else ""
            raise RuntimeError(f"the independent client exited {proc.returncode}: {tail}")
        if path.exists() and len(path.read_text().splitlines()) >= n:
            return
        time.sleep(0.05)
    raise RuntimeError("the independent client logged no samples")


def _keep(folder: Path, case: Case, log_path: Path, sandbox: Sandbox, writer: RailWriter) -> None:
    """Copies one case's raw material into ``folder/<case>/`` for a closer look."""
    dest = folder / case.name.replace(" ", "_")
    dest.mkdir(parents=True, exist_ok=True)
    if log_path.exists():
        shutil.copy(log_path, dest / "independent.jsonl")
    for csv_file in sandbox.output_dir.glob("*.csv"):
        shutil.copy(csv_file, dest / csv_file.name)
    (dest / "writes.json").write_text(json.dumps(writer.writes))


def judge(rows: Sequence[dict[str, Any]]) -> str:
    """MET when every figure of a case is within its tolerance; a figure missing is MISSED."""
    return MET if rows and all(r["within"] for r in rows) else MISSED


def run_case(service: Any, case: Case, duration_s: float, workdir: Path,
             keep: Path | None = None) -> dict[str, Any]:
    """Runs one case on a (re)started service; returns its rows and verdict. ``keep``: a folder
    that receives the independent client's log, carbontop's CSVs and the rail writes."""
    schedule = SCHEDULES[case.schedule]
    writer = RailWriter(service, schedule)
    writer.write_first()
    service.restart()  # a fresh service: the independent client below fixes its interval
    log_path = workdir / f"independent-{case.schedule}-{case.interval_s:g}-{case.workload}.jsonl"
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent) + os.pathsep + \
        env.get("PYTHONPATH", "")
    logger_proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.accuracy_e2e", "log-samples", service.pipe,
         f"{case.interval_s:g}", str(log_path)], env=env, stdout=subprocess.DEVNULL,
        stderr=log_path.with_suffix(".err").open("wb"))
    sandbox = Sandbox()
    wall_before, boot_before = _clock_offsets()
    try:
        _wait_for_lines(log_path, 3, logger_proc, LOGGER_READY_TIMEOUT_S)
        writer.start()
        summary = run_carbontop(service.pipe, case, duration_s, sandbox)
        time.sleep(2.5 * case.interval_s + 0.2)  # a sample past carbontop's end edge
    finally:
        writer.stop()
        end_process(logger_proc)
        log = IndependentLog.read(log_path)
        samples = cross_check(log, sandbox.output_dir / "gpu_log.csv", wall_before, boot_before)
        if keep is not None:
            _keep(keep, case, log_path, sandbox, writer)
        sandbox.cleanup()
    wall_after, boot_after = _clock_offsets()
    edges = edges_of(summary, 0.5 * (wall_before + wall_after))
    boot_offset = 0.5 * (boot_before + boot_after)
    ours = carbontop_energies_j(summary)
    rows: list[dict[str, Any]] = []
    for (span, channel), carbontop_j in ours.items():
        rail = GPU_RAIL if channel == "gpu" else BOARD_RAIL
        a_b = edges.session if span == "session" else edges.window
        ind_j = ind_recv_j = held_j = truth_j = None
        if a_b is not None:
            a, b = a_b
            ind_j = clipped_trapezoid_j(log.points(rail, boot_offset), a, b)
            received = log.points(rail, boot_offset, "received")
            ind_recv_j = clipped_trapezoid_j(received, a, b)
            held_j = end_held_j(received, a, b)
            truth_j = step_integral_j(writer.writes[rail], a, b)
        err = _pct(carbontop_j, ind_j)
        rows.append({
            "case": case.name, "schedule": case.schedule, "interval_s": case.interval_s,
            "workload": case.workload, "span": span, "channel": channel, "rail": rail,
            "start_s": a_b[0] if a_b else None, "end_s": a_b[1] if a_b else None,
            "length_s": (a_b[1] - a_b[0]) if a_b else None,
            "carbontop_j": carbontop_j, "independent_j": ind_j,
            "error_pct": err, "tolerance_pct": schedule.tolerance_pct,
            "within": err is not None and abs(err) <= schedule.tolerance_pct,
            "independent_received_j": ind_recv_j,
            "error_vs_received_pct": _pct(carbontop_j, ind_recv_j),
            "received_end_held_j": held_j, "error_vs_end_held_pct": _pct(carbontop_j, held_j),
            "truth_j": truth_j, "carbontop_vs_truth_pct": _pct(carbontop_j, truth_j),
            "independent_vs_truth_pct": _pct(ind_j, truth_j),
        })
    steps = sorted(log.steps_s())
    whole, win = summary["whole"], summary.get("window") or {}
    return {
        "case": case.name, "schedule": case.schedule, "interval_s": case.interval_s,
        "workload": case.workload, "duration_s": duration_s, "tolerance_pct":
        schedule.tolerance_pct, "verdict": judge(rows),
        "rows": rows, "edges_from": edges.source, "samples": samples,
        "independent": {"samples": len(log.rows),
                        "median_step_s": steps[len(steps) // 2] if steps else None,
                        "max_step_s": steps[-1] if steps else None,
                        "served_interval_s": log.rows[-1]["interval_s"] if log.rows else None},
        "carbontop": {"status": summary.get("status"),
                      "session_gpu_samples": whole.get("gpu_samples"),
                      "window_gpu_samples": win.get("gpu_samples"),
                      "session_unmeasured_s": whole.get("unmeasured_s"),
                      "window_unmeasured_s": win.get("unmeasured_s"),
                      "total_basis": whole.get("total_basis")},
        "clock_offsets": {"wall_minus_session_s": [wall_before, wall_after],
                          "boottime_minus_session_s": [boot_before, boot_after]},
        "writes": {rail: len(points) for rail, points in writer.writes.items()},
    }


def run(cases: Sequence[Case], duration_s: float, keep: Path | None = None) -> dict[str, Any]:
    """Every case on one emulated board (the service restarted between cases)."""
    from tests.jtop_harness import JtopService, skip_reason

    command = f"python -m benchmarks.accuracy_e2e --duration {duration_s:g}"
    if list(cases) != CASES:
        command += "".join(f" --case '{c.name}'" for c in cases)
    result: dict[str, Any] = {"benchmark": "accuracy_e2e", "machine": machine_info(),
                              "command": command, "board": BOARD, "cases": []}
    reason = skip_reason()
    if reason:
        result["skipped"] = reason
        return result
    workdir = Path(tempfile.mkdtemp(prefix="carbontop-accuracy-e2e-"))
    with contextlib.ExitStack() as cleanup, JtopService(BOARD) as service:
        cleanup.callback(shutil.rmtree, workdir, ignore_errors=True)
        for case in cases:
            print(f"   {case.name}", file=sys.stderr, flush=True)
            try:
                result["cases"].append(run_case(service, case, duration_s, workdir, keep))
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                result["cases"].append({"case": case.name, "verdict": MISSED,
                                        "error": str(exc), "rows": []})
    return result


# -- reporting -------------------------------------------------------------------------------

def _f(x: float | None, fmt: str) -> str:
    return "n/a" if x is None else format(x, fmt)


def table(result: dict[str, Any]) -> str:
    if result.get("skipped"):
        return f"not run: {result['skipped']}"
    header = ["case", "span", "channel", "length", "carbontop", "independent", "error",
              "hold", "vs received", "vs end held", "truth", "carbontop vs truth",
              "independent vs truth"]
    rows = []
    for case in result["cases"]:
        for r in case["rows"]:
            rows.append([case["case"], r["span"], r["channel"], _f(r["length_s"], ".3f") + " s",
                         _f(r["carbontop_j"], ".3f") + " J", _f(r["independent_j"], ".3f") + " J",
                         _f(r["error_pct"], "+.3f") + " %", f"{r['tolerance_pct']:g} %",
                         _f(r["error_vs_received_pct"], "+.3f") + " %",
                         _f(r.get("error_vs_end_held_pct"), "+.3f") + " %",
                         _f(r["truth_j"], ".3f") + " J",
                         _f(r["carbontop_vs_truth_pct"], "+.2f") + " %",
                         _f(r["independent_vs_truth_pct"], "+.2f") + " %"])
    return markdown_table(header, rows)


def verdicts(result: dict[str, Any]) -> list[str]:
    if result.get("skipped"):
        return [f"accuracy_e2e: not run ({result['skipped']})"]
    out = []
    for case in result["cases"]:
        if case.get("error"):
            out.append(f"{MISSED}: {case['case']}: {case['error']}")
            continue
        worst = max(case["rows"], key=lambda r: abs(r["error_pct"])
                    if r["error_pct"] is not None else float("inf"))
        ind, ours = case["independent"], case["carbontop"]
        out.append(
            f"{case['verdict']}: {case['case']}: carbontop within {case['tolerance_pct']:g} % of "
            f"the independent client (worst: {worst['span']} {worst['channel']} "
            f"{_f(worst['error_pct'], '+.3f')} %; service step median "
            f"{_f(ind['median_step_s'], '.3f')} s, max {_f(ind['max_step_s'], '.3f')} s; "
            f"carbontop unmeasured {ours['session_unmeasured_s']} s; {_samples_text(case)})")
    return out


def _samples_text(case: dict[str, Any]) -> str:
    s = case.get("samples") or {}
    if not s.get("compared"):
        return "samples not compared"
    return (f"{s['compared']} samples matched by uptime, {len(s['only_independent'])} missed "
            f"by carbontop, {len(s['only_carbontop'])} unknown to the independent client, "
            f"{len(s['value_mismatches'])} read differently; received after the service's stamp: "
            f"carbontop {_delays_text(s['carbontop_delay_s'])}, independent "
            f"{_delays_text(s['independent_delay_s'])}")


def _delays_text(d: dict[str, float] | None) -> str:
    if not d:
        return "n/a"
    return f"median {d['median'] * 1000:.0f} ms, p95 {d['p95'] * 1000:.0f} ms, max " \
        f"{d['max'] * 1000:.0f} ms"


def csv_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [dict(r, verdict=c["verdict"]) for c in result["cases"] for r in c["rows"]]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["log-samples"] and len(argv) == 4:
        return log_samples(argv[1], float(argv[2]), Path(argv[3]))
    names = {c.name: c for c in CASES}
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two cases, 4 s windows")
    parser.add_argument("--duration", type=float, help="carbontop's measured window, s "
                        "(default 20, --quick 4)")
    parser.add_argument("--case", action="append", choices=sorted(names), metavar="NAME",
                        help="run only this case (repeatable): " + ", ".join(names))
    parser.add_argument("--out", type=Path, help="where the results go")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="keep each case's raw samples, "
                        "carbontop's CSVs and the rail writes under DIR")
    args = parser.parse_args(argv)
    cases = [names[n] for n in args.case] if args.case else QUICK_CASES if args.quick else CASES
    duration = args.duration or (4.0 if args.quick else 20.0)
    result = run(cases, duration, args.keep)
    out = args.out or (RESULTS_DIR / "quick" if args.quick else RESULTS_DIR)
    save_json("accuracy_e2e", result, out)
    if result["cases"]:
        save_csv("accuracy_e2e", csv_rows(result), out)
    print(table(result))
    print()
    print("\n".join(verdicts(result)))
    return 0 if all(c["verdict"] == MET for c in result["cases"]) else 1


if __name__ == "__main__":
    sys.exit(main())
