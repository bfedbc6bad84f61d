"""Before/after: this checkout against another one (a patched copy), interleaved in one run.

``python -m benchmarks.ab --tree /tmp/patched --label journal [--what overhead --what startup]``

``overhead``: CPU % of one core of the carbontop process, the configurations named by ``--config``
(default: headless and dashboard, sim at 1 s), A then B then A... for ``--rounds`` rounds.
``startup``: the dashboard's first frame, A and B alternately, ``--reps`` times. Both trees run
with this interpreter and its packages; only ``carbontop`` and ``workloads`` come from each tree.
Results: ``benchmarks/results/ab-<label>.json``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from benchmarks import overhead, startup
from benchmarks._common import ROOT, Sandbox, machine_info, markdown_table, save_json, stats


def run(tree_b: Path, what: list[str], configs: list[str], rounds: int, reps: int,
        settle_s: float, window_s: float, windows: int) -> dict[str, Any]:
    boxes = {"A": Sandbox(tree=ROOT), "B": Sandbox(tree=tree_b)}
    raw: list[dict[str, Any]] = []
    try:
        if "overhead" in what:
            chosen = [c for c in overhead.configs(False) if c.name in configs]
            for r in range(rounds):
                for cfg in chosen:
                    for side in ("A", "B") if r % 2 == 0 else ("B", "A"):
                        row = overhead.measure(cfg, boxes[side], settle_s, window_s, windows)
                        raw.append({"what": "overhead", "side": side, "round": r, **row})
                        print(f"  {side} {cfg.name}: "
                              f"{', '.join(f'{p:.2f}' for p in row['cpu_pct_windows'])} %",
                              file=sys.stderr, flush=True)
        if "startup" in what:
            for i in range(reps):
                for side in ("A", "B") if i % 2 == 0 else ("B", "A"):
                    dash = startup.time_dashboard(boxes[side])
                    raw.append({"what": "startup", "side": side, "rep": i, **dash})
                    print(f"  {side} first frame {dash['first_frame_s']}", file=sys.stderr,
                          flush=True)
    finally:
        for box in boxes.values():
            box.cleanup()
    summary: list[dict[str, Any]] = []
    for name in configs:
        a = [p for x in raw if x.get("config") == name and x["side"] == "A"
             for p in x["cpu_pct_windows"]]
        b = [p for x in raw if x.get("config") == name and x["side"] == "B"
             for p in x["cpu_pct_windows"]]
        if a and b:
            summary.append({"what": f"CPU % {name}", "A": stats(a), "B": stats(b)})
    for key, label in (("first_frame_s", "dashboard first frame, s"),
                       ("source_s", "dashboard source open (watts shown), s"),
                       ("ready_s", "dashboard ready (a session may start), s")):
        fa = [x[key] for x in raw if x["what"] == "startup" and x["side"] == "A"
              and x.get(key) is not None]
        fb = [x[key] for x in raw if x["what"] == "startup" and x["side"] == "B"
              and x.get(key) is not None]
        if fa and fb:
            summary.append({"what": label, "A": stats(fa), "B": stats(fb)})
    return {"benchmark": "ab", "machine": machine_info(), "tree_a": str(ROOT),
            "tree_b": str(tree_b), "settings": {"rounds": rounds, "reps": reps,
                                                "settle_s": settle_s, "window_s": window_s,
                                                "windows": windows},
            "summary": summary, "raw": raw}


def table(result: dict[str, Any]) -> str:
    rows = []
    for s in result["summary"]:
        a, b = s["A"], s["B"]
        rows.append([s["what"], f"{a['median']:.3f} ({a['min']:.3f}–{a['max']:.3f})",
                     f"{b['median']:.3f} ({b['min']:.3f}–{b['max']:.3f})", a["n"],
                     f"{b['median'] / a['median']:.2f}" if a["median"] else "n/a"])
    return markdown_table(["measure", "A: this checkout, median (min–max)",
                           "B: the other tree, median (min–max)", "n each", "B / A"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, required=True, help="the other checkout (B)")
    parser.add_argument("--label", required=True, help="names the results file")
    parser.add_argument("--what", action="append", choices=("overhead", "startup"))
    parser.add_argument("--config", action="append",
                        help="overhead configuration name (default: headless and dashboard, "
                             "sim 1 s)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--settle", type=float, default=5.0)
    parser.add_argument("--window", type=float, default=8.0)
    parser.add_argument("--windows", type=int, default=2)
    args = parser.parse_args()
    configs = args.config or ["headless sim 1 s", "dashboard sim 1 s"]
    result = run(args.tree.resolve(), args.what or ["overhead"], configs, args.rounds, args.reps,
                 args.settle, args.window, args.windows)
    result["command"] = "python -m benchmarks.ab " + " ".join(sys.argv[1:])
    save_json(f"ab-{args.label}", result)
    print(table(result))


if __name__ == "__main__":
    main()
