"""Shared helpers of the benchmarks: statistics, the machine, result files, processes, a pty.

Nothing here imports torch, Textual or CodeCarbon: the benchmark driver itself stays light so that
it disturbs the processes it measures as little as possible.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import platform
import re
import select
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
ANSI = re.compile(rb"\x1b(\[[0-9;?<=>]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[@-Z\\-_])")


# -- statistics ------------------------------------------------------------------------------

def quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    """(Q1, median, Q3); with fewer than two values all three are the value."""
    data = sorted(values)
    if not data:
        raise ValueError("no values")
    if len(data) == 1:
        return data[0], data[0], data[0]
    q1, q2, q3 = statistics.quantiles(data, n=4, method="inclusive")
    return q1, q2, q3


def stats(values: Sequence[float]) -> dict[str, float | int]:
    """n, median, IQR bounds, min and max of ``values``."""
    q1, med, q3 = quartiles(values)
    return {"n": len(values), "median": med, "q1": q1, "q3": q3,
            "min": min(values), "max": max(values)}


# -- the machine -----------------------------------------------------------------------------

def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _package_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def code_version(tree: Path = ROOT) -> str:
    """The commit measured, and how many files of carbontop/ and workloads/ differ from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=tree,
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "carbontop", "workloads"],
                               cwd=tree, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    changed = len([line for line in dirty.splitlines() if line.strip()])
    return f"{head}" + (f" + {changed} changed files" if changed else "")


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on (no torch import: versions come from metadata)."""
    return {
        "carbontop_commit": code_version(),
        "nproc": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": _cpu_model(),
        "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "torch": _package_version("torch"),
        "codecarbon": _package_version("codecarbon"),
        "textual": _package_version("textual"),
        "kernel": platform.release(),
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
    }


# -- results ---------------------------------------------------------------------------------

def save_json(name: str, data: Mapping[str, Any], directory: Path | None = None) -> Path:
    """Writes ``benchmarks/results/<name>.json`` (or under ``directory``)."""
    out = directory or RESULTS_DIR
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path


def save_csv(name: str, rows: Sequence[Mapping[str, Any]], directory: Path | None = None) -> Path:
    """Writes ``benchmarks/results/<name>.csv``, the columns of the first row (raw data)."""
    import csv

    out = directory or RESULTS_DIR
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.csv"
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


# -- processes -------------------------------------------------------------------------------

def carbontop_exe() -> str:
    """The ``carbontop`` console script of this interpreter's environment."""
    beside = Path(sys.executable).parent / "carbontop"
    if beside.exists():
        return str(beside)
    found = shutil.which("carbontop")
    if found is None:
        raise RuntimeError("the carbontop command is not installed (pip install -e .)")
    return found


@dataclass
class Sandbox:
    """A throw-away HOME-like directory: output, log, state and config of the measured runs.

    Commands started with :meth:`env` import carbontop and the workloads from ``tree`` (first on
    ``PYTHONPATH``), so the same benchmark can run a patched copy of the repository beside this one.
    """

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="carbontop-bench-")))
    tree: Path = ROOT  # the carbontop checkout whose code runs (another one: an A/B comparison)

    @property
    def output_dir(self) -> Path:
        path = self.root / "out"
        path.mkdir(exist_ok=True)
        return path

    @property
    def log_file(self) -> Path:
        return self.root / "state" / "carbontop" / "carbontop.log"

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONTOP_")}
        env.update(XDG_STATE_HOME=str(self.root / "state"),
                   XDG_CONFIG_HOME=str(self.root / "config"),
                   CARBONTOP_LOCK_DIR=str(self.root / "locks"),
                   PYTHONPATH=str(self.tree) + os.pathsep + env.get("PYTHONPATH", ""))
        env.update(extra or {})
        return env

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` itself (its children are not counted)."""
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def peak_rss_bytes(pid: int) -> int | None:
    """VmHWM: the highest resident set size the process has had."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def maps_torch(pid: int) -> bool | None:
    """Whether libtorch (or torch's C extension) is mapped into ``pid``; None if unreadable."""
    try:
        text = Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return None
    return "libtorch" in text or "torch/_C" in text


def stack_dump(pid: int) -> str:
    """Every thread's Python stack of ``pid`` and of its children (py-spy), for a hang report."""
    exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(exe).exists():
        return "(py-spy is not installed: pip install py-spy)"
    out = []
    try:
        pids = [pid] + [c.pid for c in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        pids = [pid]
    for p in pids:
        done = subprocess.run([exe, "dump", "-p", str(p)], capture_output=True, text=True,
                              timeout=30)
        out.append(done.stdout or done.stderr)
    return "\n".join(out)


def end_process(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM,
                grace_s: float = 10.0) -> int:
    """Signals the process we started, then SIGKILLs it if it outlives ``grace_s``."""
    if proc.poll() is None:
        try:
            proc.send_signal(sig)
            return proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


class CpuSampler:
    """Samples, every ``period_s``, the machine's busy CPU and the CPU of a process tree.

    ``foreign_cores(t0, t1)``: CPU that neither the tree nor this process used between two wall
    clock times, in cores: other people's programs (and the hypervisor's steal). On a shared
    machine it tells a quiet measurement from a disturbed one.
    """

    def __init__(self, root_pid: int, period_s: float = 0.25) -> None:
        self.root_pid = root_pid  # this process itself: its CPU counts once, as the tree's
        self.period_s = period_s
        self._self_is_root = root_pid == os.getpid()
        self._tree: list[psutil.Process] = []
        self._n = 0
        self.samples: list[tuple[float, float, float, float]] = []  # t, busy, tree, self
        self._procs: dict[int, psutil.Process] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)
        self._thread.start()

    @staticmethod
    def _busy_s() -> float:
        t = psutil.cpu_times()
        total = sum(t)
        idle = t.idle + getattr(t, "iowait", 0.0) + getattr(t, "guest", 0.0) + \
            getattr(t, "guest_nice", 0.0)
        return float(total - idle)

    def _tree_s(self) -> tuple[float, float]:
        """CPU seconds of the whole tree, and of its root process alone."""
        # Listing children scans /proc (~3 ms): done once a second; never for this process.
        if not self._self_is_root and (self._n % 4 == 0 or not self._tree):
            try:
                root = self._procs.setdefault(self.root_pid, psutil.Process(self.root_pid))
                self._tree = [root] + root.children(recursive=True)
            except psutil.Error:
                return float("nan"), float("nan")
        elif self._self_is_root and not self._tree:
            self._tree = [psutil.Process(self.root_pid)]
        self._n += 1
        total = root_s = 0.0
        for proc in self._tree:
            known = self._procs.setdefault(proc.pid, proc)
            try:
                times = known.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
            if proc.pid == self.root_pid:
                root_s = times.user + times.system
        return total, root_s

    def _run(self) -> None:
        while True:
            mine = 0.0 if self._self_is_root else time.process_time()
            tree, root = self._tree_s()
            self.samples.append((time.time(), self._busy_s(), tree, mine, root))
            if self._stop.wait(self.period_s):
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2.0)

    def _edges(self, t0: float, t1: float) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
        inside = [s for s in self.samples if t0 <= s[0] <= t1 and s[2] == s[2]]
        return (inside[0], inside[-1]) if len(inside) >= 2 else None

    def cores(self, t0: float, t1: float) -> tuple[float | None, float | None]:
        """(foreign cores, the tree's cores) between ``t0`` and ``t1`` (unix seconds)."""
        edges = self._edges(t0, t1)
        if edges is None:
            return None, None
        (ta, busy_a, tree_a, self_a, _), (tb, busy_b, tree_b, self_b, _) = edges
        dt = tb - ta
        tree = tree_b - tree_a
        foreign = (busy_b - busy_a) - tree - (self_b - self_a)
        return max(0.0, foreign) / dt, tree / dt

    def root_cores(self, t0: float, t1: float) -> float | None:
        """Cores used by the root process alone (not its children) between ``t0`` and ``t1``:
        for ``carbontop run``, the monitor without its workload child."""
        edges = self._edges(t0, t1)
        if edges is None:
            return None
        (ta, *_, root_a), (tb, *_, root_b) = edges
        return (root_b - root_a) / (tb - ta)


# -- a pseudo-terminal -----------------------------------------------------------------------

class PtyProcess:
    """A command on an 80x24 pseudo-terminal whose output is read (and mostly discarded).

    Remembers when the first byte came and when each ``markers`` string first showed up in the
    output with escape sequences removed (a Textual screen paints text in runs, so a word of the
    menu appears whole once the first frame is written).
    """

    def __init__(self, argv: Sequence[str], env: Mapping[str, str] | None = None,
                 markers: Sequence[str] = (), cols: int = 80, rows: int = 24,
                 keep_bytes: int = 1 << 20, cwd: Path | None = None,
                 keep_text: bool = False) -> None:
        """``keep_text``: keep the escape-free output (its last ``keep_bytes``) after every
        marker was seen, for :attr:`text`; otherwise reading stops decoding then."""
        self.argv = list(argv)
        self.keep_text = keep_text
        self.markers = list(markers)
        self.marker_s: dict[str, float] = {}
        self.first_byte_s: float | None = None
        self.bytes_read = 0
        self._keep = keep_bytes
        self._text = b""  # escape-free tail used to look for markers
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        full_env = dict(env or os.environ)
        full_env.update(TERM="xterm-256color", COLUMNS=str(cols), LINES=str(rows))
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(self.argv, stdin=slave, stdout=slave, stderr=slave,
                                     env=full_env, start_new_session=True, close_fds=True,
                                     cwd=cwd)
        os.close(slave)
        self._master = master
        self._stop = threading.Event()
        self._seen = threading.Condition()
        self._reader = threading.Thread(target=self._read, name="pty-reader", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._master], [], [], 0.1)
            if not ready:
                if self.proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(self._master, 65536)
            except OSError:
                break
            if not chunk:
                break
            now = time.monotonic() - self.t0
            with self._seen:
                if self.first_byte_s is None:
                    self.first_byte_s = now
                self.bytes_read += len(chunk)
                if self.keep_text or len(self.marker_s) < len(self.markers):
                    self._text = (self._text + ANSI.sub(b"", chunk))[-self._keep:]
                    for marker in self.markers:
                        if marker not in self.marker_s and marker.encode() in self._text:
                            self.marker_s[marker] = now
                self._seen.notify_all()

    def wait_marker(self, marker: str, timeout_s: float) -> float | None:
        """Seconds from spawn to ``marker``, or None if it did not appear within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        with self._seen:
            while marker not in self.marker_s:
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    return self.marker_s.get(marker)
                self._seen.wait(min(left, 0.1))
            return self.marker_s[marker]

    @property
    def text(self) -> str:
        """The output so far with escape sequences removed (its tail; see ``keep_text``)."""
        with self._seen:
            return self._text.decode(errors="replace")

    def send(self, data: bytes) -> None:
        with contextlib.suppress(OSError):
            os.write(self._master, data)

    def close(self, grace_s: float = 10.0) -> int:
        """SIGTERM (the dashboard writes its CSVs and leaves), SIGKILL after ``grace_s``."""
        code = end_process(self.proc, signal.SIGTERM, grace_s)
        self._stop.set()
        self._reader.join(2.0)
        with contextlib.suppress(OSError):
            os.close(self._master)
        return code


def python_env(sandbox: Sandbox | None = None) -> dict[str, str]:
    """The environment for a ``python -m`` child of ours: this repository on the path."""
    if sandbox is not None:
        return sandbox.env()
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def fmt_pct(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None else f"{x:.{digits}f} %"


def fmt_mb(x: float | None) -> str:
    return "n/a" if x is None else f"{x / 1e6:.0f} MB"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
