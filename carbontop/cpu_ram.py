"""CPU and RAM energy from CodeCarbon's ``OfflineEmissionsTracker``, behind a small interface.

What CodeCarbon 3.3.x does on its own, and what this module does about it
(docs/codecarbon-notes.md):

* Readings: an output handler (``BaseOutput``) receives every measurement through ``live_out``
  (``api_call_interval=1``) and the final one through ``out`` at ``stop()``. Energies are kWh
  deltas; current watts are ``delta energy x 3.6e6 / delta duration``. Intervals shorter than
  :data:`MIN_READING_S` (the measurement ``start()`` and ``stop()`` take themselves) are merged
  into the next reading. The handler never raises: one that raises aborts the rest of ``stop()``.
* Configuration: ``.codecarbon.config`` files and ``CODECARBON_*`` variables are ignored (the
  tracker subclass reads an empty external configuration) and every setting that matters is
  passed explicitly. CodeCarbon's own CSV output is off (``output_methods=[]``); carbontop
  writes every file itself. The carbon intensity is forced to the session's one value.
* Logging: a filter on the ``codecarbon`` logger hands every record to the
  ``carbontop.codecarbon`` logger (so to carbontop's log file) and stops it there; the stream
  handlers CodeCarbon attaches at import and in ``__init__`` are removed as well. Nothing
  reaches the terminal.
* GPU: with ``exclude_gpu`` the tracker's resource tracker never sets up GPU tracking, so
  CodeCarbon neither counts the GPU that carbontop measures nor polls NVML (which on JetPack 6/7
  logs a traceback every second). ``gpu_ids=[]`` alone is not enough in 3.3.2: the GPU object
  still polls every device, and the process-wide hardware cache maps ``[]`` to "all GPUs".
* Pacing: CodeCarbon's tracker runs two ``PeriodicScheduler`` timers that start a new
  ``threading.Timer`` thread for every call (``_measure_power_and_energy`` every
  ``measure_power_secs``, ``_monitor_power`` every second): about 0.16 % of a core at 1 s, most of
  it starting and ending threads. Here those schedulers are inert (:class:`_InertScheduler`) and
  :meth:`CpuRamTracker.tick` calls the same two methods on the same grid, from one long-lived
  thread of its own or from the caller's loop (``external_pacing``: the engine's ticker). The
  figures are CodeCarbon's own (``tests/unit/test_cpu_ram_pacing.py`` replays a load trace
  through both). This leans on CodeCarbon's internals (the two scheduler attributes, the two
  methods, ``_initialize_scheduler_state``): the minor version is pinned in pyproject.toml and
  :func:`check_codecarbon_internals` fails loudly when they change.
* Failures: ``__init__``, ``start()`` and ``stop()`` swallow exceptions in CodeCarbon; they are
  called unwrapped here, the result is checked, and :attr:`CpuRamTracker.error` says why CPU and
  RAM are unavailable. An exception in CodeCarbon's timer threads is caught and reported too
  (uncaught it would print a traceback on the terminal).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import logging
import math
import os
import platform
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from carbontop.carbon import CarbonIntensity, world_average
from carbontop.clock import session_time_s
from carbontop.model import CpuRamReading, Provenance
from carbontop.units import J_PER_KWH

log = logging.getLogger(__name__)

CODECARBON_LOGGER = "codecarbon"
ROUTED_LOGGER = "carbontop.codecarbon"  # where CodeCarbon's records go (then carbontop's log)
MIN_READING_S = 0.25  # shorter CodeCarbon intervals are merged into the next reading
MIN_WATTS_S = 0.05  # a final interval shorter than this keeps the previous watts
MONITOR_POWER_S = 1.0  # CodeCarbon's _scheduler_monitor_power period (fixed in CodeCarbon)
EARLY_S = 0.05  # a tick this much before a due time counts as on time (timer jitter)
START_JOIN_S = 20.0  # stop() waits this long for a start still in progress
NOT_STARTED = "CodeCarbon not started"
STARTING = "CodeCarbon starting"
UNAVAILABLE = "unavailable"
RAM_MODE = "RAM power model (estimated)"

Sink = Callable[[CpuRamReading], None]
StatusSink = Callable[[str | None], None]


class CpuRamMeter(Protocol):
    """CodeCarbon's CPU and RAM meter as the engine sees it; :class:`CpuRamTracker` is the one.

    ``start(sink, on_status)`` returns at once (readings then reach ``sink``, problems
    ``on_status``); ``running`` is true once CodeCarbon measures, ``error`` says why it does not.
    With ``external_pacing`` the caller runs CodeCarbon's schedules by calling ``tick()`` until
    the due time it returns (session clock). ``cpu_mode`` and ``cpu_provenance`` say how the CPU
    figure is had; ``hardware_info()`` is what CodeCarbon found, for total_summary.csv.
    """

    @property
    def external_pacing(self) -> bool: ...

    @property
    def error(self) -> str | None: ...

    @property
    def running(self) -> bool: ...

    @property
    def cpu_mode(self) -> str: ...

    @property
    def cpu_provenance(self) -> Provenance: ...

    def hardware_info(self) -> dict[str, str]: ...

    def start(self, sink: Sink, on_status: StatusSink | None = None) -> None: ...

    def stop(self) -> None: ...

    def tick(self, now_s: float | None = None) -> float: ...


# -- logging ----------------------------------------------------------------------------------

class _RouteToCarbontop(logging.Filter):
    """On the ``codecarbon`` logger: re-emits each record on carbontop's logger, drops it here."""

    def filter(self, record: logging.LogRecord) -> bool:
        target = logging.getLogger(ROUTED_LOGGER)
        try:
            if target.isEnabledFor(record.levelno):
                target.handle(record)
        except Exception:  # noqa: BLE001 - logging must never break a measurement
            pass
        return False


def route_codecarbon_logging() -> None:
    """Sends the ``codecarbon`` logger into carbontop's log and away from the terminal.

    Idempotent; call it before importing CodeCarbon and after constructing a tracker (its
    ``__init__`` attaches a new stderr handler).
    """
    lib = logging.getLogger(CODECARBON_LOGGER)
    if not any(isinstance(f, _RouteToCarbontop) for f in lib.filters):
        lib.addFilter(_RouteToCarbontop())
    for handler in list(lib.handlers):
        if isinstance(handler, logging.StreamHandler) and not isinstance(
            handler, logging.FileHandler
        ):
            lib.removeHandler(handler)
    lib.propagate = False  # records leave only through the filter
    target = logging.getLogger(ROUTED_LOGGER)
    if not any(isinstance(h, logging.NullHandler) for h in target.handlers):
        # With no handler anywhere, logging's last resort would print warnings on stderr.
        target.addHandler(logging.NullHandler())


# -- CodeCarbon classes, made on first use (import codecarbon lazily) -------------------------

class _InertScheduler:
    """Stands in for CodeCarbon's ``PeriodicScheduler``: the same ``start``/``stop``/``_stopped``
    surface, no timer thread. :meth:`CpuRamTracker.tick` calls ``function`` on its grid instead."""

    def __init__(self, interval: float, function: Callable[[], None]) -> None:
        self.interval = interval
        self.function = function
        self._stopped = True

    def start(self) -> None:
        self._stopped = False

    def stop(self) -> None:
        self._stopped = True


# What this module relies on inside CodeCarbon's BaseEmissionsTracker (3.3.x).
_INTERNAL_METHODS = ("_initialize_scheduler_state", "_measure_power_and_energy", "_monitor_power",
                     "_measure_power_and_energy_if_stale")
_INTERNAL_ATTRIBUTES = ("_scheduler", "_scheduler_monitor_power")


def check_codecarbon_internals() -> list[str]:
    """What is missing from CodeCarbon's tracker for carbontop's pacing (empty: all there).

    The stock ``_initialize_scheduler_state`` must build exactly the two schedulers, the first
    calling ``_measure_power_and_energy`` every ``measure_power_secs`` and the second
    ``_monitor_power`` every second: the replacement here builds the same two.
    """
    from codecarbon.emissions_tracker import BaseEmissionsTracker
    from codecarbon.external.scheduler import PeriodicScheduler

    missing = [f"BaseEmissionsTracker.{name}" for name in _INTERNAL_METHODS
               if not callable(getattr(BaseEmissionsTracker, name, None))]
    missing += [f"BaseEmissionsTracker.{name}" for name in _INTERNAL_ATTRIBUTES
                if name not in getattr(BaseEmissionsTracker, "__annotations__", {})]
    if missing:
        return missing

    class Probe:
        _measure_power_secs = 7.0

        def _measure_power_and_energy(self) -> None: ...

        def _monitor_power(self) -> None: ...

    probe: Any = Probe()
    try:
        BaseEmissionsTracker._initialize_scheduler_state(probe)
    except Exception as exc:  # noqa: BLE001 - reported as a mismatch
        return [f"_initialize_scheduler_state raised {_one_line(exc)}"]
    found = [(getattr(probe, name, None)) for name in _INTERNAL_ATTRIBUTES]
    want = [(probe._measure_power_and_energy, 7.0), (probe._monitor_power, MONITOR_POWER_S)]
    for name, sched, (function, interval) in zip(_INTERNAL_ATTRIBUTES, found, want, strict=True):
        if not isinstance(sched, PeriodicScheduler):
            missing.append(f"{name} is not a PeriodicScheduler")
        elif sched.function != function or float(sched.interval) != interval:
            missing.append(f"{name} calls {sched.function} every {sched.interval} s")
    return missing


@dataclass(frozen=True)
class _Classes:
    tracker: type
    handler: type


def _unwrapped(fn: Any) -> Any:
    """The function under CodeCarbon's ``@suppress(Exception)`` (so it raises), or ``fn``."""
    return getattr(fn, "__wrapped__", fn)


@functools.lru_cache(maxsize=1)
def _codecarbon_classes() -> _Classes:
    route_codecarbon_logging()
    from codecarbon import OfflineEmissionsTracker
    from codecarbon.core.resource_tracker import ResourceTracker
    from codecarbon.output_methods.base_output import BaseOutput

    route_codecarbon_logging()  # the import attached a stderr handler

    class NoGpuResourceTracker(ResourceTracker):  # type: ignore[misc]
        """CodeCarbon's resource tracker with GPU tracking left out (carbontop measures it)."""

        def set_GPU_tracking(self) -> None:  # noqa: N802 - CodeCarbon's name
            self.gpu_tracker = "excluded by carbontop"
            self.tracker._gpu_ids = []
            self.tracker._conf["gpu_ids"] = []
            self.tracker._conf["gpu_count"] = 0
            self.tracker._conf["gpu_model"] = ""

    class CarbontopTracker(OfflineEmissionsTracker):  # type: ignore[misc]
        """The offline tracker, deaf to config files and env, with carbontop's hooks."""

        def __init__(self, owner: CpuRamTracker, exclude_gpu: bool, **kwargs: Any) -> None:
            self._carbontop_owner = owner
            self._carbontop_exclude_gpu = exclude_gpu
            self._carbontop_monitor_failed = False
            self._carbontop_stopped = False
            self._carbontop_schedulers: tuple[Any, ...] = ()
            _unwrapped(OfflineEmissionsTracker.__init__)(self, **kwargs)

        def _initialize_scheduler_state(self) -> None:
            # The same two schedules as CodeCarbon's (check_codecarbon_internals), no timers:
            # CpuRamTracker.tick runs them.
            me: Any = self  # CodeCarbon's attributes are typed for its PeriodicScheduler
            me._scheduler = _InertScheduler(me._measure_power_secs, self._measure_power_and_energy)
            me._scheduler_monitor_power = _InertScheduler(MONITOR_POWER_S, self._monitor_power)
            self._carbontop_schedulers = (self._scheduler, self._scheduler_monitor_power)

        def carbontop_retire(self) -> None:
            """After stop(): no further measurement, whoever calls."""
            self._carbontop_stopped = True
            self._carbontop_cancel_timers()

        def _carbontop_cancel_timers(self) -> None:
            for scheduler in self._carbontop_schedulers:
                with contextlib.suppress(Exception):
                    scheduler.stop()

        @property
        def _external_conf(self) -> dict[str, str]:
            return {}

        @_external_conf.setter
        def _external_conf(self, value: Any) -> None:
            if isinstance(value, dict) and value:
                log.info("ignoring CodeCarbon settings from .codecarbon.config files and "
                         "CODECARBON_* variables: %s", ", ".join(sorted(value)))

        def _initialize_hardware_tracking(self) -> None:
            rt: ResourceTracker
            if self._carbontop_exclude_gpu:
                rt = NoGpuResourceTracker(self)
                # Not the process-wide plan cache: it keys gpu_ids [] like None ("all GPUs").
                rt._run_full_hardware_setup()
            else:
                rt = ResourceTracker(self)
                rt.set_CPU_GPU_ram_tracking()
            self._conf["hardware"] = [item.description() for item in self._hardware]
            self._carbontop_owner._on_hardware(self, rt)

        def _measure_power_and_energy(self) -> None:
            if self._carbontop_stopped:
                self._carbontop_cancel_timers()
                return
            try:
                super()._measure_power_and_energy()
            except Exception as exc:  # noqa: BLE001 - in a timer thread it would print
                self._carbontop_owner._on_measure_error(exc)
            else:
                self._carbontop_owner._on_measure_ok()

        def _monitor_power(self) -> None:
            if self._carbontop_stopped:
                self._carbontop_cancel_timers()
                return
            try:
                super()._monitor_power()
            except Exception:  # noqa: BLE001 - in a timer thread it would print
                if not self._carbontop_monitor_failed:
                    self._carbontop_monitor_failed = True
                    log.warning("CodeCarbon power monitor failed", exc_info=True)

    class LiveHandler(BaseOutput):  # type: ignore[misc]
        """Hands each CodeCarbon measurement to its CpuRamTracker; never raises."""

        def __init__(self, owner: CpuRamTracker) -> None:
            self._owner = owner

        def live_out(self, total: Any, delta: Any) -> None:
            self._owner._on_emissions(delta)

        def out(self, total: Any, delta: Any) -> None:
            self._owner._on_emissions(delta)

    return _Classes(tracker=CarbontopTracker, handler=LiveHandler)


# -- what CodeCarbon chose --------------------------------------------------------------------

def _fmt_w(watts: Any) -> str:
    try:
        return f"{float(watts):g} W"
    except (TypeError, ValueError):
        return "? W"


def _is_per_thread_default(model: str) -> bool:
    """True when CodeCarbon did not find the CPU in its table (it then uses 4 W per thread)."""
    try:
        from codecarbon.core import hardware_cache

        tdp = hardware_cache._tdp  # the process-wide TDP lookup, if the setup made one
        if tdp is None:
            return False
        return tdp._get_cpu_power_from_registry(model) is None
    except Exception:  # noqa: BLE001 - only a label
        log.debug("cannot tell whether the CPU is in CodeCarbon's table", exc_info=True)
        return False


def describe_hardware(hardware: list[Any]) -> tuple[str, Provenance, Provenance]:
    """(CPU mode, CPU provenance, RAM provenance) from a tracker's hardware objects."""
    cpu: Any = None
    ram_prov = Provenance.ESTIMATED
    for hw in hardware:
        kind = type(hw).__name__
        part = getattr(hw, "chip_part", None)
        if kind == "Raspberry" and part == "RAM":
            ram_prov = Provenance.MEASURED  # the PMIC measures the DRAM rails
        elif kind == "CPU" or (kind in ("Raspberry", "AppleSiliconChip") and part == "CPU"):
            cpu = hw
    if cpu is None:
        return "none: CodeCarbon found no CPU backend", Provenance.ESTIMATED, ram_prov
    kind = type(cpu).__name__
    if kind == "Raspberry":
        return "Raspberry Pi PMIC (measured)", Provenance.MEASURED, ram_prov
    if kind == "AppleSiliconChip":
        return "powermetrics (measured)", Provenance.MEASURED, ram_prov
    mode = str(getattr(cpu, "_mode", ""))
    measured = {
        "intel_rapl": "RAPL (measured)",
        "windows_emi": "Windows Energy Meter, RAPL (measured)",
        "intel_power_gadget": "Intel Power Gadget (measured)",
    }
    if mode in measured:
        return measured[mode], Provenance.MEASURED, ram_prov
    model = str(getattr(cpu, "_model", None) or "unknown CPU")
    tdp = getattr(cpu, "_tdp", None)
    if getattr(cpu, "_is_generic_tdp", False):
        basis = f"generic TDP: {model}, {_fmt_w(tdp)}"
    elif _is_per_thread_default(model):
        basis = f"constant 4 W/thread: {model}, {_fmt_w(tdp)}"
    else:
        basis = f"TDP model: {model}, {_fmt_w(tdp)}"
    if mode == "cpu_load":
        return f"{basis} x load (estimated)", Provenance.ESTIMATED, ram_prov
    if mode == "constant":
        return f"{basis} x 50% (estimated)", Provenance.ESTIMATED, ram_prov
    return f"{mode or 'unknown mode'}: {model} (estimated)", Provenance.ESTIMATED, ram_prov


def _codecarbon_version() -> str | None:
    try:
        return importlib.metadata.version("codecarbon")
    except importlib.metadata.PackageNotFoundError:
        return None


def _next_on_grid(due: float, period: float, now: float) -> float:
    """The first time ``due + k * period`` (k >= 1) after ``now``: the schedule's next call."""
    if not math.isfinite(due):
        return now + period
    steps = max(1, math.floor((now - due) / period) + 1)
    return due + steps * period


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _finite(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


# -- the tracker ------------------------------------------------------------------------------

class CpuRamTracker:
    """CPU and RAM energy from CodeCarbon, delivered as :class:`CpuRamReading` once per interval.

    ``start()`` returns at once: building and starting CodeCarbon (about 1.5 s) runs on a
    background thread. CodeCarbon's two schedules run from :meth:`tick`: on a thread of this
    tracker (``carbontop-codecarbon``, one wake per due time), or, with ``external_pacing``, from
    the caller's own loop, which must call :meth:`tick` at least every ``measure_interval_s``
    (the engine's ticker does). The sink is called from the pacing thread, from the start thread
    and from the thread that calls ``stop()``; calls never overlap. ``on_status`` gets an error
    text when CPU/RAM becomes unavailable and ``None`` when it runs (again).
    """

    def __init__(
        self,
        intensity: CarbonIntensity,
        exclude_gpu: bool = True,
        measure_interval_s: float = 1.0,
        log_path: Path | None = None,
        *,
        codecarbon_log_level: str = "warning",
        external_pacing: bool = False,
    ) -> None:
        if not (math.isfinite(measure_interval_s) and measure_interval_s > 0):
            raise ValueError("measure_interval_s must be positive")
        self.intensity = intensity
        self.exclude_gpu = exclude_gpu
        self.measure_interval_s = float(measure_interval_s)
        self.log_path = log_path
        self.codecarbon_log_level = codecarbon_log_level
        self.external_pacing = external_pacing
        self._lock = threading.Lock()  # state below
        self._tick_lock = threading.Lock()  # one CodeCarbon call at a time (tick, stop)
        self._pacer: threading.Thread | None = None
        self._pacer_stop = threading.Event()
        self._next_monitor_s = math.inf  # session-clock due times of the two schedules
        self._next_measure_s = math.inf
        self._deliver_lock = threading.Lock()  # serialises sink calls and the pending interval
        self._sink: Sink | None = None
        self._on_status: StatusSink | None = None
        self._thread: threading.Thread | None = None
        self._tracker: Any = None
        self._stop_requested = False
        self._shut_down = False
        self._closed = False  # no reading is delivered once set
        self._pending: tuple[float, float, float] | None = None  # (duration s, cpu kWh, ram kWh)
        self._last_w: tuple[float, float] | None = None  # (cpu W, ram W) of the last reading
        self._error: str | None = None
        self._error_from_measure = False
        self._cpu_mode = NOT_STARTED
        self._cpu_prov = Provenance.ESTIMATED
        self._ram_prov = Provenance.ESTIMATED
        self._hardware: dict[str, str] = {}
        self._file_handler: logging.Handler | None = None
        self.readings = 0  # delivered so far

    # -- public view ----------------------------------------------------------------------
    @property
    def error(self) -> str | None:
        """Why CPU/RAM is unavailable (start failed, or a measurement failed), else None."""
        return self._error

    @property
    def cpu_mode(self) -> str:
        """How CodeCarbon gets the CPU figure, e.g. "RAPL (measured)"."""
        return self._cpu_mode

    @property
    def cpu_provenance(self) -> Provenance:
        return self._cpu_prov

    @property
    def ram_provenance(self) -> Provenance:
        return self._ram_prov

    @property
    def running(self) -> bool:
        """True once CodeCarbon has started and until ``stop()``."""
        tracker = self._tracker
        return (tracker is not None and not self._shut_down
                and getattr(tracker, "_start_time", None) is not None)

    def hardware_info(self) -> dict[str, str]:
        """What CodeCarbon found, as strings, for the total_summary.csv columns."""
        info = {
            "os": platform.platform(),
            "python_version": platform.python_version(),
            "codecarbon_version": _codecarbon_version() or "",
            "cpu_count": str(os.cpu_count() or ""),
            "tracking_mode": "machine",
            "cpu_tracking": self._cpu_mode,
            "ram_tracking": RAM_MODE if self._ram_prov is Provenance.ESTIMATED
            else "measured",
            "gpu_tracking": "excluded: carbontop measures the GPU" if self.exclude_gpu
            else "CodeCarbon",
        }
        info.update(self._hardware)
        info["cpu_tracking"] = self._cpu_mode  # "unavailable" if the start failed after detection
        return {k: v for k, v in info.items() if v}

    # -- life cycle -----------------------------------------------------------------------
    def start(self, sink: Sink, on_status: StatusSink | None = None) -> None:
        """Starts CodeCarbon on a background thread and returns at once."""
        with self._lock:
            if self._thread is not None:
                raise RuntimeError("CpuRamTracker already started")
            self._sink, self._on_status = sink, on_status
            self._cpu_mode = STARTING
            self._thread = threading.Thread(
                target=self._run_start, name="carbontop-codecarbon-start", daemon=True
            )
        self._attach_log_file()
        self._thread.start()

    def stop(self) -> None:
        """Stops CodeCarbon and delivers the last interval. Never raises."""
        try:
            with self._lock:
                if self._stop_requested:
                    return
                self._stop_requested = True
                thread = self._thread
            if thread is not None and thread is not threading.current_thread():
                thread.join(START_JOIN_S)
                if thread.is_alive():
                    log.warning("CodeCarbon still starting after %.0f s; it stops itself when "
                                "its start returns", START_JOIN_S)
                    return
            self._shutdown()
        except Exception:  # noqa: BLE001 - stop never raises
            log.exception("stopping CodeCarbon failed")

    def tick(self, now_s: float | None = None) -> float:
        """Runs whichever of CodeCarbon's two schedules is due; returns the next due time.

        On the session clock. CodeCarbon's ``_monitor_power`` every second and its
        ``_measure_power_and_energy`` every ``measure_interval_s``; when both are due, the
        measurement alone (the monitor only adds power samples for the seconds between
        measurements and the tracker's utilisation averages, which carbontop does not read). A
        late tick runs each due call once and moves on (CodeCarbon's timers do not catch up
        either). Never raises.
        """
        now = session_time_s() if now_s is None else now_s
        with self._tick_lock:
            tracker = self._tracker
            if tracker is None or self._shut_down or getattr(tracker, "_start_time", None) is None:
                return now + self.measure_interval_s
            try:
                monitor_due = now >= self._next_monitor_s - EARLY_S
                measure_due = now >= self._next_measure_s - EARLY_S
                if monitor_due:
                    self._next_monitor_s = _next_on_grid(self._next_monitor_s, MONITOR_POWER_S,
                                                         now)
                    if not measure_due:
                        # A power sample between measurements; when a measurement is due too, its
                        # own closing sample covers the same seconds (the monitor's would be a
                        # zero-length one before it): the energies are the same without it.
                        tracker._scheduler_monitor_power.function()
                if measure_due:
                    self._next_measure_s = _next_on_grid(self._next_measure_s,
                                                         self.measure_interval_s, now)
                    tracker._scheduler.function()
            except Exception:  # noqa: BLE001 - the hooks report their own failures
                log.exception("CodeCarbon tick failed")
            return min(self._next_monitor_s, self._next_measure_s)

    def _pace(self) -> None:
        """The pacing thread: sleeps until the next due time, ticks."""
        due = min(self._next_monitor_s, self._next_measure_s)
        while not self._pacer_stop.wait(max(0.0, due - session_time_s())):
            due = self.tick()

    def probe(self) -> str:
        """Runs CodeCarbon's hardware detection only (no timers, no readings): the CPU mode."""
        try:
            tracker = self._build()
            tracker.get_detected_hardware()
        except Exception as exc:  # noqa: BLE001
            log.warning("CodeCarbon hardware detection failed", exc_info=True)
            return f"{UNAVAILABLE} ({_one_line(exc)})"
        finally:
            route_codecarbon_logging()
        return self._cpu_mode

    # -- start thread ---------------------------------------------------------------------
    def _build(self) -> Any:
        classes = _codecarbon_classes()
        i = self.intensity
        try:
            tracker = classes.tracker(
                self,
                self.exclude_gpu,
                country_iso_code=i.country_iso3,  # None: no country (CodeCarbon's world average)
                region=i.region if i.country_iso3 else None,
                cloud_provider=None,
                cloud_region=None,
                country_2letter_iso_code=None,
                project_name="carbontop",
                experiment_name="carbontop",
                measure_power_secs=self.measure_interval_s,
                api_call_interval=1,  # live_out at every measurement
                output_methods=[],  # no CodeCarbon CSV, API, logger, Prometheus or Logfire
                output_handlers=[classes.handler(self)],
                emissions_endpoint=None,
                output_dir=tempfile.gettempdir(),  # Power Gadget / powermetrics logs, never cwd
                gpu_ids=[] if self.exclude_gpu else None,
                electricitymaps_api_token=None,  # never online
                tracking_mode="machine",
                log_level=self.codecarbon_log_level,
                logger_preamble="",
                force_cpu_power=None,
                force_ram_power=None,
                pue=1.0,
                wue=0.0,
                force_carbon_intensity_g_co2e_kwh=i.g_per_kwh,  # the session's one intensity
                force_mode_cpu_load=False,
                allow_multiple_runs=True,  # no lock file, no SIGINT/SIGTERM handlers
                rapl_include_dram=False,  # RAM is its own figure: never in the CPU's
                rapl_prefer_psys=False,
            )
        finally:
            route_codecarbon_logging()  # __init__ attached a stderr handler again
        if getattr(tracker, "_scheduler", None) is None:
            raise RuntimeError("CodeCarbon's tracker did not initialise (see the log)")
        return tracker

    def _run_start(self) -> None:
        tracker: Any = None
        try:
            tracker = self._build()
            with self._lock:
                self._tracker = tracker
                stop_now = self._stop_requested
            if stop_now:
                self._shutdown()
                return
            _unwrapped(type(tracker).start)(tracker)
            route_codecarbon_logging()
            if getattr(tracker, "_start_time", None) is None:
                raise RuntimeError("CodeCarbon did not start (see the log)")
            kinds = {type(hw).__name__ for hw in getattr(tracker, "_hardware", [])}
            if not kinds & {"CPU", "Raspberry", "AppleSiliconChip"}:
                raise RuntimeError("CodeCarbon found no way to measure or estimate the CPU")
        except Exception as exc:  # noqa: BLE001 - reported through `error`
            log.warning("CodeCarbon could not start", exc_info=True)
            self._fail(f"CodeCarbon could not start: {_one_line(exc)}")
            if tracker is not None and getattr(tracker, "_start_time", None) is not None:
                self._shutdown()
            return
        finally:
            route_codecarbon_logging()
        started = session_time_s()
        with self._tick_lock:  # CodeCarbon's start() armed both schedules now
            self._next_monitor_s = started + MONITOR_POWER_S
            self._next_measure_s = started + self.measure_interval_s
        if not self.external_pacing:
            self._pacer = threading.Thread(target=self._pace, name="carbontop-codecarbon",
                                           daemon=True)
            self._pacer.start()
        log.info("CodeCarbon running: CPU %s, RAM %s, every %.3g s", self._cpu_mode,
                 self._ram_prov.value, self.measure_interval_s)
        self._status(None)
        with self._lock:
            stop_now = self._stop_requested
        if stop_now:  # stop() gave up waiting for this start
            self._shutdown()

    def _shutdown(self) -> None:
        with self._lock:
            if self._shut_down:
                return
            self._shut_down = True
            tracker = self._tracker
            pacer = self._pacer
        self._pacer_stop.set()
        if pacer is not None and pacer is not threading.current_thread():
            pacer.join(5.0)
        try:
            with self._tick_lock:
                if tracker is not None and getattr(tracker, "_start_time", None) is not None:
                    try:
                        _unwrapped(type(tracker).stop)(tracker)
                    except Exception:  # noqa: BLE001 - the final flush is best effort
                        log.warning("CodeCarbon stop failed", exc_info=True)
                if tracker is not None:
                    tracker.carbontop_retire()
            with self._deliver_lock:
                pending, self._pending = self._pending, None
                if pending is not None and (pending[1] + pending[2] > 0 or pending[0] > 0.05):
                    self._deliver(*pending)  # the last short interval: its energy still counts
                self._closed = True
        finally:
            route_codecarbon_logging()
            self._detach_log_file()

    def _fail(self, message: str) -> None:
        self._error = message
        self._error_from_measure = False
        self._cpu_mode = UNAVAILABLE
        self._status(message)

    def _status(self, message: str | None) -> None:
        callback = self._on_status
        if callback is None:
            return
        try:
            callback(message)
        except Exception:  # noqa: BLE001 - a broken callback must not stop CodeCarbon
            log.exception("CPU/RAM status callback failed")

    # -- hooks called by CodeCarbon's threads ---------------------------------------------
    def _on_hardware(self, tracker: Any, resource_tracker: Any) -> None:
        try:
            mode, cpu_prov, ram_prov = describe_hardware(list(tracker._hardware))
            conf = tracker._conf
            hw: dict[str, str] = {}
            for key in ("os", "python_version", "codecarbon_version", "cpu_count",
                        "cpu_physical_count", "cpu_model", "tracking_mode"):
                value = conf.get(key)
                if value not in (None, ""):
                    hw[key] = str(value)
            ram_gb = conf.get("ram_total_size")
            if isinstance(ram_gb, (int, float)):
                hw["ram_total_size"] = f"{float(ram_gb):.3f}"
            hw["cpu_tracking"] = mode
            hw["codecarbon_cpu_tracker"] = str(getattr(resource_tracker, "cpu_tracker", ""))
            hw["codecarbon_ram_tracker"] = str(getattr(resource_tracker, "ram_tracker", ""))
            hw["codecarbon_gpu_tracker"] = str(getattr(resource_tracker, "gpu_tracker", ""))
        except Exception:  # noqa: BLE001 - only labels
            log.warning("cannot describe CodeCarbon's hardware", exc_info=True)
            return
        self._cpu_prov, self._ram_prov, self._hardware = cpu_prov, ram_prov, hw
        self._cpu_mode = mode
        log.info("CodeCarbon hardware: CPU %s; RAM %s; GPU %s", mode, hw["codecarbon_ram_tracker"],
                 hw["codecarbon_gpu_tracker"])

    def _on_measure_error(self, exc: BaseException) -> None:
        message = f"CodeCarbon measurement failed: {_one_line(exc)}"
        if message == self._error:
            log.debug("%s (again)", message)
            return
        log.warning("%s", message, exc_info=True)
        self._error, self._error_from_measure = message, True
        self._status(message)

    def _on_measure_ok(self) -> None:
        if self._error is not None and self._error_from_measure:
            log.info("CodeCarbon measurements work again")
            self._error, self._error_from_measure = None, False
            self._status(None)

    def _on_emissions(self, delta: Any) -> None:
        """One CodeCarbon interval (``EmissionsData`` deltas). Never raises."""
        try:
            duration = _finite(getattr(delta, "duration", None))
            cpu = _finite(getattr(delta, "cpu_energy", None))
            ram = _finite(getattr(delta, "ram_energy", None))
            if duration is None or cpu is None or ram is None:
                log.warning("CodeCarbon gave an unusable interval: %r", delta)
                return
            cpu, ram = max(0.0, cpu), max(0.0, ram)
            with self._deliver_lock:
                if self._closed:
                    return
                if self._pending is not None:
                    d0, c0, r0 = self._pending
                    duration, cpu, ram = duration + d0, cpu + c0, ram + r0
                    self._pending = None
                if duration < MIN_READING_S:
                    self._pending = (max(0.0, duration), cpu, ram)
                    return
                self._deliver(duration, cpu, ram)
        except Exception:  # noqa: BLE001 - a raising handler aborts CodeCarbon's stop()
            log.exception("CodeCarbon reading dropped")

    def _deliver(self, duration: float, cpu_kwh: float, ram_kwh: float) -> None:
        """Calls the sink (the caller holds ``_deliver_lock``)."""
        sink = self._sink
        if sink is None:
            return
        if duration >= MIN_WATTS_S or self._last_w is None:
            watts = (cpu_kwh * J_PER_KWH / max(duration, 1e-9),
                     ram_kwh * J_PER_KWH / max(duration, 1e-9))
        else:  # a sliver at stop(): its energy counts, its watts would be noise
            watts = self._last_w
        self._last_w = watts
        reading = CpuRamReading(
            t_s=session_time_s(),
            t_unix_s=time.time(),
            duration_s=duration,
            cpu_energy_kwh=cpu_kwh,
            ram_energy_kwh=ram_kwh,
            cpu_w=watts[0],
            ram_w=watts[1],
            cpu_mode=self._cpu_mode,
            cpu_provenance=self._cpu_prov,
            ram_provenance=self._ram_prov,
        )
        self.readings += 1
        try:
            sink(reading)
        except Exception:  # noqa: BLE001 - a broken sink must not stop CodeCarbon
            log.exception("CPU/RAM sink failed")

    # -- optional separate log file -------------------------------------------------------
    def _attach_log_file(self) -> None:
        if self.log_path is None:
            return
        try:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            handler = logging.FileHandler(self.log_path, encoding="utf-8")
        except OSError:
            log.warning("cannot open %s for CodeCarbon's log", self.log_path, exc_info=True)
            return
        handler.setFormatter(logging.Formatter(
            "%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s"))
        logging.getLogger(ROUTED_LOGGER).addHandler(handler)
        self._file_handler = handler

    def _detach_log_file(self) -> None:
        handler, self._file_handler = self._file_handler, None
        if handler is not None:
            logging.getLogger(ROUTED_LOGGER).removeHandler(handler)
            handler.close()


def describe_cpu_mode(exclude_gpu: bool = True) -> str:
    """How CodeCarbon would measure the CPU here, e.g. "RAPL (measured)" (about 1.5 s)."""
    return CpuRamTracker(world_average(), exclude_gpu=exclude_gpu).probe()
