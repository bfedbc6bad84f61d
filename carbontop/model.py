"""Small immutable values that cross threads and processes.

Units are in the field names: ``_w`` watts, ``_j`` joules, ``_kwh`` kilowatt-hours, ``_s`` seconds,
``_kg`` kilograms of CO2-equivalent. ``None`` always means "not measured", never zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Scope(str, Enum):
    """What the GPU figure really contains (docs/jetson-power.md, "Rails by board")."""

    GPU_ONLY = "GPU only"
    CPU_GPU_SHARED = "CPU+GPU shared"
    CPU_GPU_CV_SHARED = "CPU+GPU+CV shared"
    GPU_SOC_SHARED = "GPU+SOC shared"

    @property
    def is_shared(self) -> bool:
        return self is not Scope.GPU_ONLY


class BoardBasis(str, Enum):
    """How the board figure was obtained."""

    INPUT_RAIL = "input rail"  # a measured module input: VDD_IN, POM_5V_IN, VIN
    SUM_OF_RAILS = "sum of rails"  # jtop's plain sum of every rail it found


class Provenance(str, Enum):
    MEASURED = "measured"
    ESTIMATED = "estimated"


@dataclass(frozen=True)
class PowerSample:
    """One reading of a power source.

    ``t_s`` is when the power was read, on the session clock (``carbontop.clock``): the only clock
    used for integration and window edges. ``t_unix_s`` labels the row. ``t_sensor_s`` is the
    sensor's own stamp where it has one (jtop: the service's uptime), kept for the log and for
    dropping repeated samples.
    """

    t_s: float
    t_unix_s: float
    t_sensor_s: float | None = None
    gpu_w: float | None = None
    board_w: float | None = None
    board_basis: BoardBasis | None = None
    board_rail: str | None = None
    cpu_rail_w: float | None = None
    gpu_load_pct: float | None = None
    # Cumulative hardware energy counter (NVML, Volta+), joules since an arbitrary origin.
    gpu_counter_j: float | None = None
    rails_w: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class SourceInfo:
    """What a power source measures, fixed when it opens."""

    kind: str  # "jtop", "nvml", "sim", "none"
    device_name: str  # board/module name, GPU name(s), or "no GPU"
    gpu_count: int = 0
    gpu_rail: str | None = None
    gpu_scope: Scope | None = None
    board_rail: str | None = None  # input rail name, or None when summed / absent
    board_basis: BoardBasis | None = None
    cpu_rail: str | None = None
    interval_s: float = 0.5  # the interval the source actually delivers
    has_energy_counter: bool = False
    jetpack: str | None = None
    l4t: str | None = None
    jetson_stats_version: str | None = None
    note: str = ""  # a plain sentence shown to the user, e.g. why "auto" chose this
    # One line when the source samples at another pace than the one asked, and why (e.g. a jtop
    # service too slow for --interval); carried into the session summary. "" when as asked.
    pace_note: str = ""

    @property
    def measures_gpu(self) -> bool:
        return self.gpu_rail is not None or self.kind == "nvml"


@dataclass(frozen=True)
class SourceStatus:
    """A change in a source's health: lost, regained, or a problem worth showing."""

    t_unix_s: float
    connected: bool
    message: str


@dataclass(frozen=True)
class CpuRamReading:
    """One CodeCarbon measurement interval (energies are deltas over ``duration_s``).

    ``t_s`` is the interval's end on the session clock; ``t_unix_s`` only labels it.
    """

    t_s: float
    t_unix_s: float
    duration_s: float
    cpu_energy_kwh: float
    ram_energy_kwh: float
    cpu_w: float
    ram_w: float
    cpu_mode: str = ""  # e.g. "RAPL", "TDP estimate"
    cpu_provenance: Provenance = Provenance.ESTIMATED
    ram_provenance: Provenance = Provenance.ESTIMATED


class Phase(str, Enum):
    IDLE = "idle"
    BASELINE = "baseline"  # idle power measured before the workload starts (--baseline)
    LOADING = "loading"
    WARMUP = "warm-up"
    MEASURING = "measuring"
    DONE = "done"


class FinalStatus(str, Enum):
    FINISHED = "finished"
    STOPPED = "stopped"
    INTERRUPTED = "interrupted"
    FAILED = "failed"
    PARTIAL = "partial"  # an export taken while the session still runs
    IDLE = "idle"  # monitoring between sessions, exported on request
    RECOVERED = "recovered"  # summary rebuilt from the journal after a crash


@dataclass(frozen=True)
class ProgressEvent:
    """What a workload child reports to the monitor (one JSON line each)."""

    kind: str  # "phase", "subphase", "units", "info", "error", "done"
    t_unix_s: float
    phase: Phase | None = None
    units: float | None = None  # cumulative units of work done in the current phase
    unit: str | None = None  # "image", "token", "iteration", "sample", "GFLOP"...
    flops: float | None = None  # cumulative floating point operations in the current phase
    message: str = ""
    info: dict[str, str] = field(default_factory=dict)
    # When it happened on the session clock, stamped by the writer; None: when it was read.
    t_s: float | None = None
    # A "subphase" event's sub-phase (None: the window's "other" time from here on).
    subphase: str | None = None
    # Cumulative units per sub-phase of the measuring phase so far (units, subphase, done).
    subphase_units: dict[str, float] = field(default_factory=dict)
