"""Power of a Jetson board from NVIDIA's ``tegrastats`` (``--gpu-source tegrastats``).

tegrastats reads the same monitor files as the sysfs source and names the rails NVIDIA's way; it
is the fallback for a layout carbontop's sysfs reader does not know (a new module or JetPack).
The ``tegrastats`` found on ``PATH`` runs as a child process with ``--interval MS`` and is ended
with the source (and, should carbontop die, by SIGPIPE on its next line). Each line it prints is
one sample, stamped on the session clock when the line arrives: tegrastats' own line rate sets
the sample period.

Power fields are ``NAME cur/avg`` in every format in use, and only the first number (the current
value) is used, never the average:

- JetPack 4: ``POM_5V_IN 933/933`` (no unit, mW); AGX Xavier's rails are the bare
  ``GPU 463/463`` and ``CPU 618/618``, beside the ``CPU [..]`` load field;
- JetPack 5 and 6: ``VDD_IN 5079mW/5079mW``;
- JetPack 7 and Thor: ``VDD_GPU 1962mW/1962mW/1962mW`` (current/average/peak), lines without
  ``GR3D_FREQ``, often with a date prefix.

Negative values (a calibration offset at idle) count as 0 and are logged once per rail; ``NC``
(unconnected) channels are skipped. A field needs a number right after the name and a slash
right after the number: ``RAM 1180/3965MB`` (MB, not mW), ``CPU [..]``, ``GR3D_FREQ 0%@76``,
``NVENC 716`` and temperatures never match.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

from carbontop.clock import session_time_s
from carbontop.model import PowerSample, SourceInfo
from carbontop.sources.base import SourceUnavailable, ThreadedSource
from carbontop.sources.rails import NegativeNote, RailRoles
from carbontop.sources.sysfs import board_model, sys_root

log = logging.getLogger(__name__)

FIRST_LINE_TIMEOUT_S = 5.0  # plus two intervals
RESTART_DELAY_S = 1.0
STOP_TIMEOUT_S = 2.0
MIN_INTERVAL_MS = 10
LINES_WITHOUT_POWER = 3  # this many lines without a power field: the board has no monitor

_NUMBER = r"(-?\d+(?:\.\d+)?)(?:mW)?"
POWER_FIELD = re.compile(
    rf"(?<!\S)([A-Za-z][A-Za-z0-9_]*) {_NUMBER}/{_NUMBER}(?:/{_NUMBER})?(?!\S)"
)


def parse_power(line: str) -> dict[str, float]:
    """The power fields of one tegrastats line: rail name -> current milliwatts (the first
    number; negatives kept, the caller clamps). ``NC`` channels are left out."""
    rails: dict[str, float] = {}
    for match in POWER_FIELD.finditer(line):
        name = match.group(1)
        if name.upper() == "NC" or name in rails:
            continue
        rails[name] = float(match.group(2))
    return rails


def find_tegrastats() -> str | None:
    return shutil.which("tegrastats")


class TegrastatsSource(ThreadedSource):
    """A :class:`~carbontop.sources.base.PowerSource` parsing a ``tegrastats`` child's lines."""

    kind = "tegrastats"

    def __init__(self, interval_s: float = 0.5, executable: str | None = None,
                 clock: Callable[[], float] = session_time_s) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        super().__init__()
        self._interval_ms = max(MIN_INTERVAL_MS, round(interval_s * 1000))
        self._executable = executable
        self._clock = clock
        self.info = SourceInfo(kind=self.kind, device_name="Jetson (not opened)",
                               interval_s=self._interval_ms / 1000.0)
        self._roles: RailRoles | None = None
        self._negatives = NegativeNote("tegrastats")
        self._proc: subprocess.Popen[str] | None = None
        self._proc_lock = threading.Lock()
        self._first: tuple[str, float, float] | None = None  # the line read at open
        self._stderr: Any = None

    # -- the child ----------------------------------------------------------------------------
    def _spawn(self) -> subprocess.Popen[str]:
        exe = self._executable or find_tegrastats()
        if exe is None:
            raise SourceUnavailable(
                "tegrastats is not on PATH (L4T installs it in /usr/bin; L4T containers do not "
                "have it): use --gpu-source sysfs"
            )
        # stderr goes to a file, not a pipe nobody drains: a chatty tegrastats never blocks.
        self._stderr = tempfile.TemporaryFile(  # noqa: SIM115 - lives as long as the child
            mode="w+", prefix="carbontop-tegrastats-")
        try:
            return subprocess.Popen(
                [exe, "--interval", str(self._interval_ms)],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._stderr,
                text=True, bufsize=1, errors="replace", start_new_session=True,
            )
        except OSError as exc:
            raise SourceUnavailable(f"cannot run {exe} ({exc.strerror}): check that it is "
                                    "executable, or use --gpu-source sysfs") from None

    def _end(self, proc: subprocess.Popen[str] | None) -> None:
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT_S)

    def _first_power_line(self, proc: subprocess.Popen[str]) -> tuple[str, float, float]:
        """Reads lines until one has power fields; SourceUnavailable when none comes in time."""
        result: dict[str, object] = {}
        assert proc.stdout is not None
        stdout = proc.stdout

        def read() -> None:
            for count, line in enumerate(stdout, start=1):
                if parse_power(line):
                    result["line"] = (line, self._clock(), time.time())
                    return
                result["other"] = line.strip()
                if count >= LINES_WITHOUT_POWER:
                    return

        reader = threading.Thread(target=read, name="carbontop-tegrastats-open", daemon=True)
        reader.start()
        reader.join(FIRST_LINE_TIMEOUT_S + 2 * self._interval_ms / 1000.0)
        if "line" in result:
            line = result["line"]
            assert isinstance(line, tuple)
            return line
        self._end(proc)
        reader.join(1.0)
        self._stderr.seek(0)
        err = self._stderr.read().strip().splitlines()
        if "other" in result:
            raise SourceUnavailable("tegrastats prints no power rails on this board (no power "
                                    "monitor: a Jetson Nano 2GB?)")
        why = f": {err[-1]}" if err else ""
        raise SourceUnavailable(f"tegrastats printed nothing{why}: check `tegrastats "
                                f"--interval {self._interval_ms}` by hand")

    # -- PowerSource --------------------------------------------------------------------------
    def open(self) -> SourceInfo:
        if self._roles is not None:
            return self.info
        self._stop.clear()
        proc = self._spawn()
        first = self._first_power_line(proc)
        self._proc, self._first = proc, first
        self._roles = RailRoles.from_names(parse_power(first[0]))
        interval = self._interval_ms / 1000.0
        self.info = self._roles.source_info(
            self.kind, board_model(sys_root()) or "NVIDIA Jetson (model unknown)", interval,
            f"{self._roles.board_note()}; rails named by tegrastats")
        log.info("tegrastats source open: rails %s, GPU rail %s, interval %d ms",
                 ", ".join(self._roles.names), self.info.gpu_rail, self._interval_ms)
        return self.info

    def _interrupt(self) -> None:
        """Ending the child ends the thread's read of its lines."""
        with self._proc_lock:
            proc, self._proc = self._proc, None
        self._end(proc)

    def _join_timeout_s(self) -> float:
        return STOP_TIMEOUT_S + 1.0

    @property
    def pid(self) -> int | None:
        """The tegrastats child's process id while it runs (tests check it is ended)."""
        proc = self._proc
        return proc.pid if proc is not None else None

    # -- sampling -----------------------------------------------------------------------------
    def sample_from_line(self, line: str, t_s: float, t_unix_s: float) -> PowerSample | None:
        """One line as a sample (a rail missing from the line is a gap); None without power."""
        roles = self._roles
        if roles is None:
            raise RuntimeError("TegrastatsSource is not open")
        found = parse_power(line)
        if not found:
            return None
        mw = {name: self._negatives.clamp(name, found.get(name)) for name in roles.names}
        return roles.sample(mw, t_s=t_s, t_unix_s=t_unix_s, t_sensor_s=t_s)

    def _run(self) -> None:
        first = self._first
        if first is not None:
            sample = self.sample_from_line(*first)
            if sample is not None:
                self._emit(sample)
        while not self._stop.is_set():
            proc = self._proc
            if proc is None or proc.stdout is None:
                return
            for line in proc.stdout:
                t_s, t_unix = self._clock(), time.time()
                sample = self.sample_from_line(line, t_s, t_unix)
                if sample is not None and not self._emit(sample):
                    return
            if self._stop.is_set():
                return
            code = proc.poll()
            message = f"tegrastats ended (exit code {code}); restarting it every " \
                      f"{RESTART_DELAY_S:g} s"
            log.warning("%s", message)
            self._status(False, message)
            if not self._restart():
                return

    def _restart(self) -> bool:
        while not self._stop.wait(RESTART_DELAY_S):
            try:
                proc = self._spawn()
            except SourceUnavailable as exc:
                log.debug("tegrastats restart failed: %s", exc)
                continue
            with self._proc_lock:
                if self._stop.is_set():
                    self._end(proc)
                    return False
                self._proc = proc
            self._status(True, "tegrastats running again")
            return True
        return False
