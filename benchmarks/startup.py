"""Start-up: ``carbontop --help``, ``carbontop list`` and the dashboard's first frame.

Each repetition runs the three in turn (interleaved). ``--help`` and ``list``: wall time of the
whole command. The dashboard (``carbontop --demo`` on an 80x24 pseudo-terminal): seconds from
spawn to the first byte on the terminal, and to the first frame, i.e. until the workload menu's
text ("Square GEMM", matmul's description) has been written; then it is sent SIGTERM. Once more
with ``--sim-board orin-nx``: a board with an input rail, whose source opens on its first sample
(the default AGX Orin sums its rails, and the jtop source then reads a second sample before it
decides the board basis: one sampling interval before the first frame).

Where time goes: ``python -X importtime`` of each command (top-level imports by cumulative time),
and the dashboard's steps before its first frame timed one by one in a fresh interpreter
(``--stages``). Run: ``python -m benchmarks.startup [--quick] [--reps N]``.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from typing import Any

from benchmarks._common import (
    PtyProcess,
    Sandbox,
    carbontop_exe,
    machine_info,
    markdown_table,
    python_env,
    save_csv,
    save_json,
    stats,
)

TARGETS_S = {"carbontop --help": 0.3, "carbontop list": 0.5, "dashboard first frame": 1.0}
MENU_MARKER = "Square GEMM"  # matmul's description, in the workload menu of the first frame
SOURCE_MARKER = " W  measured, "  # the board row once the first power sample is shown
READY_MARKER = "idle · "  # the state once CodeCarbon runs too: a session may start
INPUT_RAIL_BOARD = ("--sim-board", "orin-nx")


def time_command(argv: list[str], sandbox: Sandbox) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, env=sandbox.env(), cwd=sandbox.tree)
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited with {done.returncode}")
    return elapsed


def time_dashboard(sandbox: Sandbox, timeout_s: float = 30.0, extra: tuple[str, ...] = ()
                   ) -> dict[str, float | None]:
    pty = PtyProcess([carbontop_exe(), "--demo", "--output-dir", str(sandbox.output_dir), *extra],
                     env=sandbox.env(), markers=[MENU_MARKER, SOURCE_MARKER, READY_MARKER],
                     cwd=sandbox.tree)
    try:
        frame = pty.wait_marker(MENU_MARKER, timeout_s)
        source = pty.wait_marker(SOURCE_MARKER, timeout_s)
        ready = pty.wait_marker(READY_MARKER, timeout_s)
        return {"first_byte_s": pty.first_byte_s, "first_frame_s": frame, "source_s": source,
                "ready_s": ready}
    finally:
        pty.close()


def importtime(argv: list[str], sandbox: Sandbox, top: int = 8) -> dict[str, Any]:
    """Modules by cumulative import time (``python -X importtime``): those imported at top level
    and their direct imports (depth 0 and 1), the slowest first; and the total of all imports."""
    done = subprocess.run([sys.executable, "-X", "importtime", *argv], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, env=python_env(sandbox),
                          cwd=sandbox.tree)
    rows: list[tuple[str, int, int]] = []
    total = 0
    for line in done.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)", line)
        if not m:
            continue
        self_us, cum_us, indent, name = int(m[1]), int(m[2]), m[3], m[4]
        total += self_us
        depth = len(indent) // 2
        if depth <= 1 and name not in ("site", "encodings"):
            rows.append((name, cum_us, depth))
    rows.sort(key=lambda r: -r[1])
    return {"total_ms": total / 1000.0,
            "top": [{"module": n, "cumulative_ms": us / 1000.0, "depth": d}
                    for n, us, d in rows[:top]]}


STAGES_SCRIPT = r"""
import json, sys, time
marks = []
t0 = time.perf_counter()
def mark(name):
    marks.append((name, time.perf_counter()))
import carbontop.cli as cli
mark("import carbontop.cli")
from carbontop.logs import setup_logging
setup_logging()
settings = cli.settings_from(cli.build_parser().parse_args(["--demo", "--output-dir", sys.argv[1]]))
mark("logging, arguments, settings")
import carbontop.tui.app
mark("import carbontop.tui.app (Textual, widgets)")
from carbontop.registry import list_workloads
list_workloads(None)
mark("list_workloads (reads the workload sources)")
from carbontop.carbon import resolve_intensity
from carbontop.results.store import check_output_dir
intensity = resolve_intensity(settings.country, settings.region, settings.carbon_intensity)
check_output_dir(settings.output_dir)
mark("resolve_intensity, check_output_dir")
mark("-- App.run(): the first frame; then, in the opening worker:")
from carbontop.sources.detect import open_source
opened = open_source(settings)
mark("open_source (sim: connect, first samples)")
from carbontop.cpu_ram import CpuRamTracker
tracker = CpuRamTracker(intensity, exclude_gpu=True)
mark("CpuRamTracker()")
from carbontop.engine import Engine
engine = Engine(settings, opened.source, intensity, cpu_ram=tracker, sim_load=opened.sim_load)
mark("Engine() (ResultStore: CSV columns)")
opened.source.close()
prev = t0
out = []
for name, t in marks:
    out.append({"stage": name, "ms": 1000 * (t - prev), "at_ms": 1000 * (t - t0)})
    prev = t
print(json.dumps(out))
"""


def stages(sandbox: Sandbox) -> list[dict[str, Any]]:
    """The dashboard's steps before ``App.run()``, timed in a fresh interpreter."""
    import json

    done = subprocess.run([sys.executable, "-c", STAGES_SCRIPT, str(sandbox.output_dir)],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          env=python_env(sandbox), timeout=60, cwd=sandbox.tree)
    if done.returncode != 0:
        raise RuntimeError(f"stage timing failed: {done.stderr[-500:]}")
    result: list[dict[str, Any]] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(quick: bool = False, reps: int | None = None) -> dict[str, Any]:
    reps = reps or (3 if quick else 15)
    sandbox = Sandbox()
    exe = carbontop_exe()
    raw: list[dict[str, Any]] = []
    try:
        # one untimed pass: the page cache holds the files, as for a user's second start
        time_command([exe, "--help"], sandbox)
        time_dashboard(sandbox)
        for i in range(reps):
            raw.append({"rep": i, "what": "carbontop --help",
                        "seconds": time_command([exe, "--help"], sandbox)})
            raw.append({"rep": i, "what": "carbontop list",
                        "seconds": time_command([exe, "list"], sandbox)})
            dash = time_dashboard(sandbox)
            raw.append({"rep": i, "what": "dashboard first frame",
                        "seconds": dash["first_frame_s"]})
            raw.append({"rep": i, "what": "dashboard first byte",
                        "seconds": dash["first_byte_s"]})
            raw.append({"rep": i, "what": "dashboard source open (watts shown)",
                        "seconds": dash["source_s"]})
            raw.append({"rep": i, "what": "dashboard ready (a session may start)",
                        "seconds": dash["ready_s"]})
            # a board with an input rail: the source opens on its first sample (no second one)
            other = time_dashboard(sandbox, extra=INPUT_RAIL_BOARD)
            raw.append({"rep": i, "what": "dashboard first frame, --sim-board orin-nx",
                        "seconds": other["first_frame_s"]})
            print(f"  rep {i}: " + ", ".join(f"{r['what']} {r['seconds']:.3f} s"
                                            for r in raw[-7:] if r["seconds"] is not None),
                  file=sys.stderr, flush=True)
        profile = {
            "carbontop --help": importtime([exe, "--help"], sandbox),
            "carbontop list": importtime([exe, "list"], sandbox),
            "import carbontop.tui.app": importtime(["-c", "import carbontop.tui.app"], sandbox),
            "dashboard stages": stages(sandbox),
        }
    finally:
        sandbox.cleanup()
    summary = []
    for what in ("carbontop --help", "carbontop list", "dashboard first frame",
                 "dashboard first byte", "dashboard source open (watts shown)",
                 "dashboard ready (a session may start)",
                 "dashboard first frame, --sim-board orin-nx"):
        values = [r["seconds"] for r in raw if r["what"] == what and r["seconds"] is not None]
        summary.append({"what": what, "seconds": stats(values) if values else None,
                        "missing": sum(1 for r in raw if r["what"] == what and
                                       r["seconds"] is None),
                        "target_s": TARGETS_S.get(what)})
    return {"benchmark": "startup", "machine": machine_info(),
            "command": "python -m benchmarks.startup" + (" --quick" if quick else ""),
            "settings": {"reps": reps, "terminal": "80x24 pty", "first_frame_marker": MENU_MARKER,
                         "source_marker": SOURCE_MARKER, "ready_marker": READY_MARKER},
            "summary": summary, "profile": profile, "raw": raw}


def table(result: dict[str, Any]) -> str:
    rows = []
    for s in result["summary"]:
        v = s["seconds"]
        target = s["target_s"]
        if v is None:
            rows.append([s["what"], "n/a", "", "", "", "no frame seen"])
            continue
        verdict = "" if target is None else ("met" if v["median"] <= target else "MISSED")
        rows.append([s["what"], f"**{v['median']:.3f} s**", f"{v['q1']:.3f}–{v['q3']:.3f} s",
                     f"{v['min']:.3f}–{v['max']:.3f} s", v["n"],
                     f"{target:g} s: {verdict}" if target is not None else "-"])
    return markdown_table(["what", "median", "IQR", "min–max", "n", "target"], rows)


def profile_text(result: dict[str, Any]) -> str:
    lines = []
    for what, prof in result["profile"].items():
        if what == "dashboard stages":
            lines.append("dashboard's steps, timed one after another in a fresh interpreter "
                         "(the app itself runs the last three in a worker after the first "
                         "frame):")
            lines += [f"  {s['ms']:7.1f} ms  {s['stage']}" if not s["stage"].startswith("--")
                      else f"  {s['stage']}" for s in prof]
            continue
        lines.append(f"{what}: all imports {prof['total_ms']:.0f} ms; slowest (depth 0-1), "
                     "cumulative:")
        lines += [f"  {t['cumulative_ms']:7.1f} ms  {'  ' * t.get('depth', 0)}{t['module']}"
                  for t in prof["top"][:8]]
    return "\n".join(lines)


def verdicts(result: dict[str, Any]) -> list[str]:
    out = []
    for s in result["summary"]:
        if s["target_s"] is None:
            continue
        if s["seconds"] is None:
            out.append(f"{s['what']}: no frame seen: MISSED")
            continue
        med = s["seconds"]["median"]
        ok = "met" if med <= s["target_s"] else "MISSED"
        out.append(f"{s['what']}: median {med:.3f} s (target {s['target_s']:g} s): {ok}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--reps", type=int)
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()
    result = run(args.quick, args.reps)
    if not args.no_save:
        save_json("startup", result)
        save_csv("startup", result["raw"])
    print(table(result))
    print(profile_text(result))
    print("\n".join(verdicts(result)))


if __name__ == "__main__":
    main()
