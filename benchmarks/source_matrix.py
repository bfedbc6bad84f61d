"""The source matrix: every emulated Jetson through sysfs, tegrastats and the real jtop service.

Issue 11's done-criterion: ``carbontop run`` measures on every emulated board through ``sysfs``
and through ``tegrastats`` with the same rails, scopes and totals as through ``jtop``. For every
board of ``tests/sysfs_trees.py`` this runs, on ONE tree:

- the real jtop service (``tests/jtop_harness.py``: jetson-stats reading ``/fake_sys``, root
  only; the tree is built there, and the three sources read that same ``/fake_sys``);
- ``carbontop detect --gpu-source S --json`` then ``carbontop run idle --gpu-source S --json``
  for S in sysfs, tegrastats (the stand-in ``tests/fake_tegrastats.py`` first on ``PATH``, printing
  the board's JetPack format from the tree's files) and jtop (its client pointed at the service's
  private socket, as ``benchmarks/accuracy_e2e.py`` and the tests do). Both commands run through
  ``carbontop.cli.main`` in one child process per source, as a user runs them; ``detect`` is
  there for the CPU rail's name, which the run's summary does not carry.

Where jtop cannot run (not root, no jetson-stats) the tree is built in a scratch directory and
sysfs and tegrastats are compared with each other and with the expectations alone.

What must agree, source against source and against the board's expectations
(``tests/sysfs_trees.py``: roles worked out from docs/jetson-power.md, rail figures from the
millivolts and milliamps written):

- roles: ``gpu_rail``, ``gpu_scope``, ``board_basis`` (its label), ``cpu_rail`` (from detect) and
  ``total_basis``, as exact strings;
- figures: the mean watts of the GPU, board, CPU-rail and total energies of the whole session
  (energy / measured seconds, from the summary's unrounded ``whole``). The trees hold constant
  power, so each mean is the rail's reading exactly (the integral of a constant; the float error
  is ~1e-15 W). The readers differ only in rounding: carbontop's sysfs reader computes
  mV x mA / 1000 exactly, jtop takes ``int()`` of it, tegrastats prints whole milliwatts, and on
  JetPack 4 (IIO) all three read the driver's whole-milliwatt ``in_powerN_input``. So each reader's
  rail lies in (exact - 1 mW, exact], and a figure summing k rails (a sum-of-rails board) in
  (exact - k mW, exact]. The tolerance is that and nothing more: each source's mean must lie in
  [exact - k mW - 1 uW, exact + 1 uW], which bounds any two sources' difference below k mW.

A board without monitors (Nano 2GB) must be refused by every source (exit 2, one line).

Run: ``python -m benchmarks.source_matrix [--boards a,b] [--interval S] [--duration S]
[--out DIR]``. Writes ``source_matrix.json`` and ``.csv`` under ``benchmarks/results/`` (or
``--out``), prints the table per board with its verdict; exit 1 when any board MISMATCHes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks._common import (
    RESULTS_DIR,
    Sandbox,
    machine_info,
    markdown_table,
    save_csv,
    save_json,
)

SOURCES = ("jtop", "sysfs", "tegrastats")
ROLES = ("gpu_rail", "gpu_scope", "board_basis", "cpu_rail", "total_basis")
FIGURES = ("gpu", "board", "cpu_rail", "total")
RAIL_MW_SLACK = 1.0  # a reader may truncate each rail to whole milliwatts, never more
FLOAT_SLACK_W = 1e-6
J_PER_KWH = 3.6e6
INTERVAL_S = 0.1
DURATION_S = 1.0
RUN_TIMEOUT_S = 120.0
NAME = "source_matrix"
AGREE, MISMATCH = "AGREE", "MISMATCH"
# The full sessions CI runs: one IIO JetPack 4 board with an input rail, one hwmon board with
# Thor's INA238 carrier input (JetPack 7's three-value lines), one sum-of-rails board (AGX Orin:
# two chips, NC channels).
CI_BOARDS = ("nano", "thor", "agx-orin")
NO_MONITOR_BOARD_BASE = "nano-2gb"  # the jtop harness's board with no rails: CPU, GPU, thermal

# One child per source: ``carbontop detect`` then ``carbontop run`` through carbontop.cli.main,
# each printing its JSON line. argv[1]: the jtop service's socket ("" for the other sources);
# argv[2], argv[3]: the two commands' arguments as JSON lists.
_DRIVER = """\
import json, sys
if sys.argv[1]:
    import jtop.service
    jtop.service.JTOP_PIPE = sys.argv[1]
from carbontop.cli import main
for argv in (json.loads(sys.argv[2]), json.loads(sys.argv[3])):
    code = main(argv)
    sys.stdout.flush()
    if code != 0:
        sys.exit(code)
"""


# -- what each board must show -----------------------------------------------------------------

@dataclass(frozen=True)
class Expected:
    """A board's roles and rail figures, from tests/sysfs_trees.py's Board alone."""

    board: str
    layout: str
    jetpack: str
    measured: bool  # False: the board has no power monitor; every source must refuse it
    gpu_rail: str | None = None
    gpu_scope: str | None = None
    input_rail: str | None = None  # None: the board figure is the sum of its rails
    cpu_rail: str | None = None
    exact_w: dict[str, float] = field(default_factory=dict)  # figure -> mV x mA / 1e6
    rails_in: dict[str, int] = field(default_factory=dict)  # figure -> rails it sums (k)


def expected(board_key: str) -> Expected:
    from tests.sysfs_trees import BOARDS

    b = BOARDS[board_key]
    rails = {r.name: r.volt_mv * r.curr_ma / 1e6 for r in b.rails}
    if b.ina238 is not None:
        rails[b.ina238.name] = b.ina238.volt_mv * b.ina238.curr_ma / 1e6
    if not rails or b.gpu_rail is None:
        return Expected(b.key, b.layout, b.jetpack, measured=False)
    exact: dict[str, float] = {"gpu": rails[b.gpu_rail]}
    k: dict[str, int] = {"gpu": 1}
    if b.input_rail is not None:
        exact["board"], k["board"] = rails[b.input_rail], 1
    else:  # every connected module rail (the INA238 is only on Thor, which has an input rail)
        exact["board"], k["board"] = sum(rails.values()), len(rails)
    exact["total"], k["total"] = exact["board"], k["board"]  # the board figure is the total
    if b.cpu_rail is not None:
        exact["cpu_rail"], k["cpu_rail"] = rails[b.cpu_rail], 1
    return Expected(b.key, b.layout, b.jetpack, True, b.gpu_rail, b.scope, b.input_rail,
                    b.cpu_rail, exact, k)


# -- one source on one tree --------------------------------------------------------------------

@dataclass
class SourceRun:
    board: str
    source: str
    ok: bool
    exit_code: int | None = None
    error: str | None = None  # the one line carbontop printed, or why it did not run
    roles: dict[str, str | None] = field(default_factory=dict)
    mean_w: dict[str, float | None] = field(default_factory=dict)
    unmeasured_s: dict[str, float] = field(default_factory=dict)
    gpu_samples: int | None = None
    sample_interval_s: float | None = None
    duration_s: float | None = None
    wall_s: float | None = None


def mean_watts(whole: dict[str, Any]) -> tuple[dict[str, float | None], dict[str, float]]:
    """Each figure's energy over its measured seconds (the summary's unrounded ``whole``)."""
    span = float(whole["end_s"]) - float(whole["start_s"])
    means: dict[str, float | None] = {}
    gaps: dict[str, float] = {}
    for figure in FIGURES:
        kwh = whole.get(f"{figure}_kwh")
        gap = float(whole.get("unmeasured_s" if figure == "total" else f"{figure}_unmeasured_s")
                    or 0.0)
        gaps[figure] = gap
        seconds = span - gap
        means[figure] = float(kwh) * J_PER_KWH / seconds if kwh is not None and seconds > 0 \
            else None
    return means, gaps


def run_source(board: str, source: str, sys_root: Path, bin_dir: Path, sandbox: Sandbox,
               interval_s: float, duration_s: float, jtop_pipe: str = "") -> SourceRun:
    """``carbontop detect`` and ``carbontop run idle`` through ``source`` on the tree."""
    common = ["--gpu-source", source, "--interval", f"{interval_s:g}", "--country", "FRA",
              "--output-dir", str(sandbox.output_dir / source)]
    detect = ["detect", *common, "--json"]
    run = ["run", "idle", *common, "--duration", f"{duration_s:g}", "--param", "warmup_s=0",
           "--json"]
    env = sandbox.env({"CARBONTOP_SYS_ROOT": str(sys_root),
                       "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', os.defpath)}"})
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", _DRIVER, jtop_pipe, json.dumps(detect),
                           json.dumps(run)], capture_output=True, text=True, env=env,
                          timeout=RUN_TIMEOUT_S + duration_s)
    wall = time.monotonic() - started
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.startswith("carbontop:")]
        error = lines[-1] if lines else done.stderr.strip()[-500:] or sandbox.log_tail(500)
        return SourceRun(board, source, False, done.returncode, error, wall_s=round(wall, 2))
    out = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if len(out) != 2:
        return SourceRun(board, source, False, done.returncode,
                         f"expected two JSON lines (detect, run), got {len(out)}",
                         wall_s=round(wall, 2))
    found, summary = json.loads(out[0]), json.loads(out[1])
    means, gaps = mean_watts(summary["whole"])
    roles = {"gpu_rail": summary.get("gpu_rail"), "gpu_scope": summary.get("gpu_scope"),
             "board_basis": summary.get("board_basis"), "cpu_rail": found.get("cpu_rail"),
             "total_basis": summary["whole"].get("total_basis")}
    return SourceRun(board, source, summary.get("gpu_source") == source, 0,
                     None if summary.get("gpu_source") == source
                     else f"measured through {summary.get('gpu_source')}, not {source}",
                     roles, means, gaps, summary.get("gpu_samples"),
                     summary.get("sample_interval_s"), summary.get("duration_s"), round(wall, 2))


# -- one board ---------------------------------------------------------------------------------

@contextlib.contextmanager
def board_tree(board: str, scratch: Path, with_jtop: bool) -> Iterator[tuple[Any, str]]:
    """The board's tree (a SysfsTree) and the jtop service's socket ("" without jtop).

    With jtop the service builds the tree at /fake_sys (under its lock) and starts; the tree is
    then built again there, before any client connects (the same files, the same values), only
    for the SysfsTree object that writes the stand-in tegrastats' spec."""
    from tests.sysfs_trees import SysfsTree

    if not with_jtop:
        yield SysfsTree(board, scratch / "sys").build(), ""
        return
    from tests.jtop_harness import FAKE_SYS, JtopService

    with JtopService(NO_MONITOR_BOARD_BASE, sysfs_tree=board) as service:
        yield SysfsTree(board, FAKE_SYS).build(), service.pipe


def run_board(board: str, interval_s: float = INTERVAL_S, duration_s: float = DURATION_S,
              sources: Sequence[str] = SOURCES) -> dict[str, Any]:
    """Every source on one tree; the runs, the expectations and the verdict."""
    from tests.jtop_harness import skip_reason

    jtop_why_not = skip_reason() if "jtop" in sources else None
    with_jtop = "jtop" in sources and jtop_why_not is None
    sandbox = Sandbox()
    runs: list[SourceRun] = []
    try:
        with board_tree(board, sandbox.root, with_jtop) as (tree, pipe):
            bin_dir = sandbox.root / "bin"
            tree.install_tegrastats(bin_dir)
            for source in sources:
                if source == "jtop" and not with_jtop:
                    runs.append(SourceRun(board, source, False, None,
                                          f"not run: {jtop_why_not}"))
                    continue
                runs.append(run_source(board, source, tree.root, bin_dir, sandbox, interval_s,
                                       duration_s, pipe if source == "jtop" else ""))
    finally:
        sandbox.cleanup()
    want = expected(board)
    problems = judge(want, runs)
    return {"board": board, "layout": want.layout, "jetpack": want.jetpack,
            "expected": asdict(want), "runs": [asdict(r) for r in runs],
            "jtop": "run" if with_jtop else f"not run: {jtop_why_not}",
            "verdict": MISMATCH if problems else AGREE, "problems": problems}


def judge(want: Expected, runs: Sequence[SourceRun]) -> list[str]:
    """Every disagreement, one line each (none: the sources agree with each other and the board)."""
    problems: list[str] = []
    ran = [r for r in runs if r.exit_code is not None]  # jtop not run is not a disagreement
    if not want.measured:
        for r in ran:
            if r.ok or r.exit_code != 2 or not r.error:
                problems.append(f"{r.source}: a board without monitors must be refused (exit 2, "
                                f"one line); got exit {r.exit_code}: {r.error}")
        return problems
    for r in ran:
        if not r.ok:
            problems.append(f"{r.source}: did not measure: {r.error}")
    good = [r for r in ran if r.ok]
    must = {"gpu_rail": want.gpu_rail, "gpu_scope": want.gpu_scope, "cpu_rail": want.cpu_rail}
    for r in good:
        for role, value in must.items():
            if r.roles.get(role) != value:
                problems.append(f"{r.source}: {role} {r.roles.get(role)!r}, the board's is "
                                f"{value!r}")
        basis = r.roles.get("board_basis") or ""
        named = want.input_rail in basis if want.input_rail else basis == "sum of rails"
        if not named:
            problems.append(f"{r.source}: board_basis {basis!r} does not name "
                            f"{want.input_rail or 'the sum of rails'}")
    for role in ROLES:
        values = {r.source: r.roles.get(role) for r in good}
        if len(set(values.values())) > 1:
            problems.append(f"{role} differs: {values}")
    for figure, exact in want.exact_w.items():
        k = want.rails_in[figure]
        low = exact - k * RAIL_MW_SLACK / 1000.0 - FLOAT_SLACK_W
        high = exact + FLOAT_SLACK_W
        for r in good:
            got = r.mean_w.get(figure)
            if got is None or not low <= got <= high:
                problems.append(f"{r.source}: {figure} {got} W, expected {exact:.6f} W "
                                f"(down to -{k:g} mW: {k} rail(s) truncated)")
    for r in good:
        if any(gap > 0 for gap in r.unmeasured_s.values()):
            problems.append(f"{r.source}: unmeasured seconds on a steady tree: {r.unmeasured_s}")
    return problems


# -- the matrix --------------------------------------------------------------------------------

def run(boards: Sequence[str], interval_s: float = INTERVAL_S,
        duration_s: float = DURATION_S) -> dict[str, Any]:
    started = time.monotonic()
    results = [run_board(b, interval_s, duration_s) for b in boards]
    return {"benchmark": NAME, "machine": machine_info(),
            "command": f"python -m benchmarks.source_matrix --boards {','.join(boards)} "
                       f"--interval {interval_s:g} --duration {duration_s:g}",
            "interval_s": interval_s, "duration_s": duration_s,
            "tolerance": f"each figure in [exact - k x {RAIL_MW_SLACK:g} mW, exact] "
                         f"(k rails summed; whole-mW truncation), +-{FLOAT_SLACK_W:g} W",
            "wall_s": round(time.monotonic() - started, 1), "boards": results}


def csv_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for board in result["boards"]:
        for r in board["runs"]:
            rows.append({"board": board["board"], "layout": board["layout"],
                         "jetpack": board["jetpack"], "source": r["source"], "ok": r["ok"],
                         "exit_code": r["exit_code"], "error": r["error"],
                         **{role: r["roles"].get(role) for role in ROLES},
                         **{f"{f}_mean_w": r["mean_w"].get(f) for f in FIGURES},
                         **{f"{f}_exact_w": board["expected"]["exact_w"].get(f)
                            for f in FIGURES},
                         "gpu_samples": r["gpu_samples"],
                         "sample_interval_s": r["sample_interval_s"],
                         "duration_s": r["duration_s"], "wall_s": r["wall_s"],
                         "board_verdict": board["verdict"]})
    return rows


def _w(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def table(result: dict[str, Any]) -> str:
    parts = []
    for board in result["boards"]:
        rows = []
        for r in board["runs"]:
            if not r["ok"]:
                rows.append([r["source"], r["error"] or "-", "", "", "", "", "", "", "", "", ""])
                continue
            roles, w = r["roles"], r["mean_w"]
            rows.append([r["source"], roles["gpu_rail"], roles["gpu_scope"],
                         roles["board_basis"], roles["cpu_rail"] or "-", roles["total_basis"],
                         _w(w["gpu"]), _w(w["board"]), _w(w["cpu_rail"]), _w(w["total"]),
                         r["gpu_samples"]])
        exact = board["expected"]["exact_w"]
        if exact:
            rows.append(["(exact)", "", "", "", "", "", _w(exact.get("gpu")),
                         _w(exact.get("board")), _w(exact.get("cpu_rail")),
                         _w(exact.get("total")), ""])
        head = (f"**{board['board']}** ({board['layout']}, JetPack {board['jetpack']} format): "
                f"{board['verdict']}")
        parts.append(head + "\n\n" + markdown_table(
            ["source", "gpu_rail", "gpu_scope", "board_basis", "cpu_rail", "total_basis",
             "GPU W", "board W", "CPU rail W", "total W", "samples"], rows))
    return "\n\n".join(parts)


def verdicts(result: dict[str, Any]) -> list[str]:
    lines = []
    for board in result["boards"]:
        why = "; ".join(board["problems"]) if board["problems"] else (
            "every source refused it in one line" if not board["expected"]["measured"]
            else "same rails, scopes, bases and figures through every source run")
        note = "" if board["jtop"] == "run" else f" (jtop {board['jtop']})"
        lines.append(f"{board['board']}: {board['verdict']}{note}: {why}")
    return lines


def main(argv: list[str] | None = None) -> int:
    from tests.sysfs_trees import BOARDS

    parser = argparse.ArgumentParser(prog="python -m benchmarks.source_matrix",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--boards", default=",".join(BOARDS),
                        help=f"comma-separated boards (default: all: {','.join(BOARDS)})")
    parser.add_argument("--interval", type=float, default=INTERVAL_S)
    parser.add_argument("--duration", type=float, default=DURATION_S)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    boards = [b.strip() for b in args.boards.split(",") if b.strip()]
    unknown = [b for b in boards if b not in BOARDS]
    if unknown:
        print(f"source_matrix: unknown board(s) {', '.join(unknown)}; known: "
              f"{', '.join(BOARDS)}", file=sys.stderr)
        return 2
    result = run(boards, args.interval, args.duration)
    save_json(NAME, result, args.out)
    save_csv(NAME, csv_rows(result), args.out)
    print(table(result))
    print()
    print("\n".join(verdicts(result)))
    return 1 if any(b["verdict"] == MISMATCH for b in result["boards"]) else 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
    sys.exit(130)
