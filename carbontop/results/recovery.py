"""After a crash or SIGKILL: turn the unfinished session's journal into summary rows.

While a session runs, the engine keeps ``DIR/.carbontop/session.json`` up to date every second:
the session's metadata and its latest CodeCarbon, GPU, board and unit-of-work totals. The next
carbontop started on that directory finds a journal whose process is gone and writes its
summary rows, marked ``recovered``. gpu_log.csv already holds its samples.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import psutil

from carbontop.attribution import attribute
from carbontop.carbon import CarbonIntensity
from carbontop.meter import WindowTotals
from carbontop.model import BoardBasis, FinalStatus, Scope, SourceInfo
from carbontop.summary import Efficiency, SessionSummary

log = logging.getLogger(__name__)


def journal_meta(info: SourceInfo, intensity: CarbonIntensity) -> dict[str, Any]:
    """What recovery needs beyond the running totals, stored when the session starts."""
    return {"source_info": _plain(asdict(info)), "intensity": _plain(asdict(intensity))}


def _plain(d: dict[str, Any]) -> dict[str, Any]:
    return {k: getattr(v, "value", v) for k, v in d.items()}


def _source_info(d: dict[str, Any]) -> SourceInfo:
    known = {f.name for f in fields(SourceInfo)}
    values = {k: v for k, v in d.items() if k in known}
    if values.get("gpu_scope"):
        values["gpu_scope"] = Scope(values["gpu_scope"])
    if values.get("board_basis"):
        values["board_basis"] = BoardBasis(values["board_basis"])
    return SourceInfo(**values)


def _intensity(d: dict[str, Any]) -> CarbonIntensity:
    known = {f.name for f in fields(CarbonIntensity)}
    return CarbonIntensity(**{k: v for k, v in d.items() if k in known})


def find_orphan(journal_path: Path) -> dict[str, Any] | None:
    """The journal of a session whose carbontop process is gone, else None."""
    try:
        journal = json.loads(journal_path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        log.warning("unreadable journal %s", journal_path, exc_info=True)
        return None
    pid = journal.get("pid")
    if isinstance(pid, int) and pid != os.getpid() and psutil.pid_exists(pid):
        try:
            process = psutil.Process(pid)
            started = journal.get("pid_started")
            same_process = started is None or abs(process.create_time() - float(started)) < 1.0
            if same_process and "carbontop" in " ".join(process.cmdline()):
                return None  # still running
        except psutil.Error:
            pass
    return journal


def recovered_summary(journal: dict[str, Any]) -> SessionSummary:
    info = _source_info(journal["source_info"])
    intensity = _intensity(journal["intensity"])
    progress = journal.get("progress") or {}
    start = float(journal.get("start_unix_s") or 0.0)
    end = float(progress.get("t_unix_s") or start)
    # The session clock's elapsed time, as the journal saved it (a wall-clock step between the
    # two labels must not change the duration); journals of earlier versions lack it.
    elapsed = progress.get("elapsed_s")
    duration = float(elapsed) if elapsed is not None else max(0.0, end - start)
    gpu, board = progress.get("gpu_kwh"), progress.get("board_kwh")
    cpu, ram = progress.get("cpu_kwh"), progress.get("ram_kwh")
    cpu_rail = progress.get("cpu_rail_kwh")
    att = attribute(info, gpu, board, cpu, ram, cpu_rail)
    original = (gpu or 0.0) + cpu + ram if cpu is not None and ram is not None else None
    whole = WindowTotals(
        start_s=0.0, end_s=duration, start_unix_s=start, end_unix_s=end, gpu_kwh=gpu,
        board_kwh=board, cpu_rail_kwh=cpu_rail, cpu_kwh=cpu, ram_kwh=ram,
        total_kwh=att.total_kwh, total_basis=att.basis, original_total_kwh=original,
        gpu_samples=int(progress.get("gpu_samples") or 0), board_samples=0,
        cpu_ram_readings=int(progress.get("cpu_ram_readings") or 0),
        unmeasured_s=float(progress.get("unmeasured_s") or 0.0), components=att.components)
    units = progress.get("units")
    return SessionSummary(
        run_id=journal["run_id"], status=FinalStatus.RECOVERED,
        workload=str(journal.get("workload", "")), params=dict(journal.get("params") or {}),
        source=info, intensity=intensity, whole=whole, window=None,
        efficiency=Efficiency(units, progress.get("unit"), None, None, None, None, None),
        failure_reason="carbontop ended without finishing the session (recovered from journal)")
