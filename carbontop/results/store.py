"""Where a session's results go: the three CSVs, the workload's log, and the session journal."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from carbontop.errors import BadInput
from carbontop.model import PowerSample, SourceInfo
from carbontop.results import schema
from carbontop.results.csv_files import CsvAppender, default_fallback_dir
from carbontop.summary import SessionSummary, iso_utc

log = logging.getLogger(__name__)

IDLE_ROWS_KEPT = 36_000  # idle gpu_log rows kept for an export between sessions (1 h at 10 Hz)
GPU_LOG_ROW_S = 0.1  # above 10 samples/s, gpu_log.csv keeps one row per 0.1 s
ROW_JITTER_S = 0.005  # a 0.1 s sampler's rows that come a little early are still kept
JOURNAL_DIR = ".carbontop"


def check_output_dir(path: Path) -> None:
    """Exists or can be made, and is writable; else one line naming the fix (exit 2)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (NotADirectoryError, FileExistsError):
        raise BadInput(f"output directory {path} cannot be created: a part of that path is a "
                       f"file; choose another --output-dir") from None
    except OSError as exc:
        raise BadInput(f"output directory {path} cannot be created ({exc.strerror}): "
                       f"choose another --output-dir") from None
    if not path.is_dir():
        raise BadInput(f"output directory {path} is not a directory: choose another --output-dir")
    probe = path / f".carbontop-write-test-{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise BadInput(f"output directory {path} is not writable ({exc.strerror}): "
                       f"choose another --output-dir") from None


def _process_start_time() -> float | None:
    try:
        import psutil

        return float(psutil.Process().create_time())
    except Exception:  # noqa: BLE001
        return None


def gpu_log_row(s: PowerSample, info: SourceInfo, run_id: str, workload: str, phase: str,
                gpu_kwh: float | None, gpu_co2: float | None) -> dict[str, object]:
    return {
        "timestamp": iso_utc(s.t_unix_s), "gpu_power_w": s.gpu_w,
        "gpu_energy_kwh": gpu_kwh, "gpu_co2_kg": gpu_co2, "run_id": run_id,
        "workload": workload, "phase": phase, "gpu_rail": info.gpu_rail,
        "gpu_scope": info.gpu_scope.value if info.gpu_scope else None,
        "board_power_w": s.board_w,
        "board_basis": s.board_basis.value if s.board_basis else None,
        "cpu_rail_power_w": s.cpu_rail_w, "gpu_load_pct": s.gpu_load_pct,
        "sensor_time_s": s.t_s,
    }


class RowThinner:
    """Keeps gpu_log.csv at most about 10 rows per second without losing energy.

    Every sample is integrated by the meters whatever happens here; this only decides which
    samples get a row. A row is written when at least 0.1 s (less 5 ms of timer jitter) passed
    since the last written row of the same run and phase, on the session clock: every sample
    up to 10 per second, one per 0.1 s above that. The rows left out in between are
    summarised by the next written row, because ``gpu_energy_kwh`` is cumulative. The last
    sample of each run and phase is held and written when the phase or run ends (or at
    :meth:`release`), so the last cumulative energy is always in the file.
    """

    def __init__(self, min_row_s: float = GPU_LOG_ROW_S) -> None:
        self._min_gap_s = min_row_s - ROW_JITTER_S
        self._key: tuple[str, str] | None = None
        self._last_t: float | None = None
        self._held: dict[str, object] | None = None

    def offer(self, t_s: float, key: tuple[str, str],
              row: dict[str, object]) -> list[dict[str, object]]:
        """The rows to write now, given one more sample's row."""
        out: list[dict[str, object]] = []
        if key != self._key:
            out.extend(self.release())
            self._key, self._last_t = key, None
        if self._last_t is None or t_s - self._last_t >= self._min_gap_s:
            self._held = None  # this row's cumulative energy covers the held one
            self._last_t = t_s
            out.append(row)
        else:
            self._held = row
        return out

    def release(self) -> list[dict[str, object]]:
        """The held last row, if any (the end of a run or phase)."""
        held, self._held = self._held, None
        return [held] if held is not None else []


class ResultStore:
    """The output directory of one carbontop process."""

    def __init__(self, directory: Path, notify: Callable[[str], None] | None = None,
                 clock: Callable[[], float] = time.time, fallback_dir: Path | None = None
                 ) -> None:
        self.directory = directory
        self._notify = notify or (lambda m: log.warning(m))
        self._clock = clock
        fallback = fallback_dir or default_fallback_dir()
        self.gpu_log = CsvAppender(directory, schema.GPU_LOG, schema.names(schema.GPU_LOG_COLUMNS),
                                   self._notify, fallback, identity=schema.GPU_LOG_IDENTITY)
        self.emissions = CsvAppender(directory, schema.EMISSIONS,
                                     schema.names(schema.EMISSIONS_COLUMNS), self._notify,
                                     fallback, durable=True, identity=schema.EMISSIONS_IDENTITY)
        self.total_summary = CsvAppender(directory, schema.TOTAL_SUMMARY,
                                         schema.total_summary_columns(), self._notify, fallback,
                                         durable=True, identity=schema.TOTAL_SUMMARY_IDENTITY)
        self._lock = threading.Lock()
        self._rows: list[dict[str, object]] = []
        self._idle_rows: deque[dict[str, object]] = deque(maxlen=IDLE_ROWS_KEPT)
        self._thinner = RowThinner()
        self._idle_thinner = RowThinner()
        self.idle_run_id = str(uuid.uuid4())
        self._journal: dict[str, Any] = {}
        self._journal_lock = threading.Lock()

    def check_writable(self) -> None:
        check_output_dir(self.directory)

    def describe(self) -> str:
        return str(self.directory)

    def paths(self) -> list[Path]:
        return [self.gpu_log.path, self.emissions.path, self.total_summary.path]

    def workload_log_path(self, run_id: str) -> Path:
        logs = self.directory / JOURNAL_DIR / "logs"
        try:
            logs.mkdir(parents=True, exist_ok=True)
        except OSError:
            logs = default_fallback_dir() / "logs"
            logs.mkdir(parents=True, exist_ok=True)
        return logs / f"workload-{run_id[:8]}.log"

    # -- gpu_log.csv ---------------------------------------------------------------------------

    def add_sample(self, s: PowerSample, info: SourceInfo, run_id: str, workload: str,
                   phase: str, gpu_kwh: float | None, gpu_co2: float | None) -> None:
        row = gpu_log_row(s, info, run_id, workload, phase, gpu_kwh, gpu_co2)
        with self._lock:
            self._rows.extend(self._thinner.offer(s.t_s, (run_id, phase), row))

    def add_idle_sample(self, s: PowerSample, info: SourceInfo, gpu_kwh: float | None,
                        gpu_co2: float | None) -> None:
        row = gpu_log_row(s, info, self.idle_run_id, "idle-monitoring", "idle", gpu_kwh, gpu_co2)
        with self._lock:
            self._idle_rows.extend(self._idle_thinner.offer(s.t_s, (self.idle_run_id, "idle"),
                                                            row))

    def flush_all(self, final: bool) -> None:
        """Writes queued gpu_log rows (every second while a session runs, and at its end)."""
        with self._lock:
            if final:
                self._rows.extend(self._thinner.release())
            rows, self._rows = self._rows, []
        if rows:
            self.gpu_log.append(rows)
        else:
            self.gpu_log.flush()
        if final:
            for appender in (self.gpu_log, self.emissions, self.total_summary):
                if appender.pending_rows:
                    appender.flush_or_fallback()

    # -- summaries -----------------------------------------------------------------------------

    def write_summary(self, summary: SessionSummary, final: bool) -> list[Path]:
        with self._lock:  # the run's last sample (held by the thinner) ends its rows
            if summary.status.value == "idle":
                self._idle_rows.extend(self._idle_thinner.release())
            else:
                self._rows.extend(self._thinner.release())
        if summary.status.value == "idle":
            with self._lock:
                idle_rows = list(self._idle_rows)
                self._idle_rows.clear()
            if idle_rows:
                self.gpu_log.append(idle_rows)
        self.flush_all(final=False)
        self.emissions.append([summary.emissions_row()])
        self.total_summary.append([summary.total_summary_row()])
        if final:
            self.flush_all(final=True)
            if any(a.pending_rows for a in (self.gpu_log, self.emissions, self.total_summary)):
                self._notify(f"the journal {self.journal_path(summary.run_id)} is kept: some "
                             f"rows could not be written anywhere")
            else:
                self.end_session(summary.run_id)
        return self.paths()

    # -- the journal (kept beside the CSVs while a session runs) -------------------------------

    def begin_session(self, run_id: str, workload: str, meta: dict[str, Any]) -> None:
        with self._journal_lock:
            self._journal = {"run_id": run_id, "pid": os.getpid(),
                             "pid_started": _process_start_time(), **meta}
            self._write_journal()

    def update_journal(self, run_id: str, progress: dict[str, Any]) -> None:
        with self._journal_lock:
            if self._journal.get("run_id") != run_id:
                return  # the session has ended: its journal is gone for good
            self._journal["progress"] = progress
            self._write_journal()

    def end_session(self, run_id: str) -> None:
        with self._journal_lock:
            if self._journal.get("run_id") == run_id:
                self._journal = {}
        path = self.journal_path(run_id)
        if path.exists():
            try:
                path.unlink(missing_ok=True)
            except OSError:
                log.warning("cannot remove journal %s", path, exc_info=True)

    def journal_path(self, run_id: str) -> Path:
        return self.directory / JOURNAL_DIR / f"session-{run_id}.json"

    def journals(self) -> list[Path]:
        return sorted((self.directory / JOURNAL_DIR).glob("session-*.json"))

    def _write_journal(self) -> None:
        path = self.journal_path(str(self._journal.get("run_id")))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self._journal, default=str))
            os.replace(tmp, path)
        except OSError:
            log.warning("cannot write journal %s", path, exc_info=True)
