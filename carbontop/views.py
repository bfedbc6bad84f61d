"""What the engine shows the faces: immutable values, built under the engine's lock.

The dashboard, ``carbontop run`` and the Prometheus exporter read these and nothing else of the
engine's state: a :class:`Snapshot` of now (live watts, the running session, the idle totals) and
the chart's :class:`HistoryPoint` list. Building them is the engine's job (carbontop/engine.py);
the protocol the faces call is carbontop/engine_api.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from carbontop.carbon import CarbonIntensity, co2_kg
from carbontop.meter import WindowTotals
from carbontop.model import FinalStatus, Phase, SourceInfo
from carbontop.subphases import SubphaseReport
from carbontop.summary import Efficiency, SessionSummary


@dataclass(frozen=True)
class HistoryPoint:
    """One point of the live chart (watts; None where not measured)."""

    t_unix_s: float
    gpu_w: float | None
    board_w: float | None
    cpu_rail_w: float | None
    cpu_w: float | None
    ram_w: float | None


@dataclass(frozen=True)
class LiveFigures:
    """The latest readings: the power source's (measured) and CodeCarbon's."""

    gpu_w: float | None = None
    board_w: float | None = None
    cpu_rail_w: float | None = None
    gpu_load_pct: float | None = None
    cpu_w: float | None = None  # CodeCarbon
    ram_w: float | None = None  # CodeCarbon
    sample_age_s: float | None = None


@dataclass(frozen=True)
class SessionView:
    """The running session so far."""

    run_id: str
    workload: str
    params: dict[str, Any]
    phase: Phase
    started_unix_s: float
    elapsed_s: float
    duration_s: float
    measuring_elapsed_s: float
    whole: WindowTotals
    window: WindowTotals | None
    efficiency: Efficiency
    status: FinalStatus | None = None
    failure_reason: str | None = None
    subphases: SubphaseReport | None = None  # prefill, decode... so far (placed intervals only)

    @property
    def progress(self) -> float | None:
        if self.phase is not Phase.MEASURING or self.duration_s <= 0:
            return None
        return min(1.0, self.measuring_elapsed_s / self.duration_s)


@dataclass(frozen=True)
class Snapshot:
    """The monitor now.

    ``cpu_mode`` is how CodeCarbon gets its CPU figure (e.g. "RAPL (measured)");
    ``cpu_provenance`` is what that figure is: ``measured``, ``estimated``, or ``unavailable``
    where CodeCarbon does not run (the word the summaries' ``cpu_provenance`` column holds).
    """

    t_unix_s: float
    source: SourceInfo
    source_connected: bool
    source_message: str
    intensity: CarbonIntensity
    live: LiveFigures
    cpu_ram_error: str | None
    cpu_mode: str
    cpu_provenance: str
    session: SessionView | None
    last_summary: SessionSummary | None
    idle: WindowTotals

    @property
    def state(self) -> str:
        if self.session is not None:
            return self.session.phase.value
        return "idle"

    def co2_kg(self, kwh: float | None) -> float | None:
        return co2_kg(kwh, self.intensity)
