"""The recovery journal's bookkeeping: what a running session keeps in it, and the sessions
found unfinished when carbontop opens.

While a session runs, the store keeps ``DIR/.carbontop/session-RUN.json`` (carbontop/results/
store.py): :func:`journal_meta` once at the start, :func:`journal_progress` every
:data:`JOURNAL_EVERY_S` and at each phase edge. A carbontop killed mid-session leaves its journal;
the next one opened on the directory writes that session's summary rows, marked ``recovered``
(:func:`recover_orphans`, from carbontop/results/recovery.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from carbontop.carbon import CarbonIntensity
from carbontop.meter import WindowTotals
from carbontop.model import Phase, SourceInfo
from carbontop.results.recovery import find_orphan, recovered_summary
from carbontop.results.recovery import journal_meta as recovery_meta
from carbontop.results.store import ResultStore
from carbontop.summary import SessionSummary

log = logging.getLogger(__name__)

# The journal's progress: rewriting it (json, a temporary file, a rename) was 0.3 ms of CPU a
# second, the engine ticker's largest part. A killed session's recovered CPU/RAM figures may miss
# its last few seconds; its gpu_log rows are on disk every second.
JOURNAL_EVERY_S = 5.0


def journal_meta(workload: str, params: Mapping[str, Any], start_unix_s: float,
                 info: SourceInfo, intensity: CarbonIntensity) -> dict[str, Any]:
    """What the journal holds from the session's start: enough to rebuild its summary."""
    return {"workload": workload, "params": dict(params), "start_unix_s": start_unix_s,
            **recovery_meta(info, intensity)}


def journal_progress(phase: Phase, units: float | None, unit: str | None, totals: WindowTotals,
                     t_unix_s: float, failure_reason: str | None) -> dict[str, Any]:
    """The session's running totals so far (its whole span), as the journal keeps them."""
    return {"phase": phase.value, "units": units, "unit": unit,
            "cpu_kwh": totals.cpu_kwh, "ram_kwh": totals.ram_kwh,
            "gpu_kwh": totals.gpu_kwh, "board_kwh": totals.board_kwh,
            "cpu_rail_kwh": totals.cpu_rail_kwh, "elapsed_s": totals.duration_s,
            "gpu_samples": totals.gpu_samples, "unmeasured_s": totals.unmeasured_s,
            "cpu_ram_readings": totals.cpu_ram_readings,
            "t_unix_s": t_unix_s, "failure_reason": failure_reason}


def recover_orphans(store: ResultStore, notify: Callable[[str], None]) -> list[SessionSummary]:
    """Writes the summaries of sessions whose carbontop was killed, from their journals."""
    recovered = []
    for path in store.journals():
        journal = find_orphan(path)
        if journal is None:
            continue
        try:
            summary = recovered_summary(journal)
        except (KeyError, TypeError, ValueError):
            log.exception("journal %s cannot be recovered", path)
            notify(f"an unfinished session's journal is damaged: left as {path}")
            continue
        store.write_summary(summary, final=True)
        notify(f"recovered the unfinished session {summary.run_id[:8]} "
               f"({summary.workload}): summary rows written, marked recovered")
        recovered.append(summary)
    return recovered
