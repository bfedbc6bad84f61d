"""One-off check (2026-11-29 10:25 UTC): is a carbontop child slower because of how carbontop
spawns it? cnn-inference three ways, interleaved: the bare child as ``benchmarks.perturbation``
starts it; the same child spawned exactly as carbontop's runner does (``--parent-pid``, stdout and
stderr to a log file, events read line by line); and ``carbontop run --gpu-source none``.

Run: ``python -m benchmarks.one_off.spawn_check 8``. Its output is quoted in
docs/performance.md (section 2); the logic is the script that produced it, only reformatted.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys

from benchmarks._common import Sandbox
from benchmarks.perturbation import run_bare, run_carbontop


def bare_like_carbontop(workload: str, box: Sandbox) -> float:
    """The child as carbontop's runner spawns it; throughput over its measuring phase."""
    read_fd, write_fd = os.pipe()
    argv = [sys.executable, "-m", "carbontop.child", "--events-fd", str(write_fd),
            "--parent-pid", str(os.getpid()), "--workload", workload,
            "--params", json.dumps({"warmup_s": 2.0}, default=str), "--duration", repr(5.0)]
    env = box.env()
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.setdefault("PYTHONFAULTHANDLER", "1")
    with open(box.root / "child.log", "ab") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, pass_fds=(write_fd,), close_fds=True,
                                env=env, cwd=box.tree)
    os.close(write_fd)
    data = b""
    with os.fdopen(read_fd, "rb") as pipe:
        for line in pipe:  # line by line, as carbontop's reader does
            data += line
    proc.wait()
    events = [json.loads(line) for line in data.splitlines() if line.strip()]
    start = next(e for e in events if e["kind"] == "phase" and e.get("phase") == "measuring")
    done = next(e for e in events if e["kind"] == "done")
    return float(done["units"]) / (float(done["t_unix_s"]) - float(start["t_unix_s"]))


def main() -> None:
    box = Sandbox()
    res: dict[str, list[float]] = {"bare": [], "bare as carbontop spawns it": [],
                                   "carbontop none": []}
    try:
        for i in range(int(sys.argv[1])):
            keys = list(res) if i % 2 == 0 else list(reversed(res))
            for k in keys:
                if k == "bare":
                    v = run_bare("cnn-inference", 5.0, 2.0, box)["throughput_per_s"]
                elif k == "carbontop none":
                    v = run_carbontop("cnn-inference", 5.0, 2.0, box,
                                      source=("--gpu-source", "none"))["throughput_per_s"]
                else:
                    v = bare_like_carbontop("cnn-inference", box)
                res[k].append(v)
            print(i, {k: round(v[-1], 1) for k, v in res.items()}, flush=True)
    finally:
        box.cleanup()
    print({k: (round(statistics.median(v), 1), round(min(v), 1), round(max(v), 1))
           for k, v in res.items()})


if __name__ == "__main__":
    main()
