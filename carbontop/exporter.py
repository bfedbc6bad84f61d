"""A Prometheus exporter for a running engine: watts, joules, grams of CO2, sessions.

The exporter has its own :class:`CollectorRegistry` (nothing from the process-wide default
registry leaks in) and one collector that reads ``engine.snapshot()`` at scrape time: no thread
polls the engine between scrapes.

Series (units in the names, Prometheus conventions):

- ``carbontop_power_watts{component, provenance}``: gpu, board, cpu_rail (measured); cpu (RAPL:
  measured, else estimated) and ram (estimated) from CodeCarbon. A figure that is not measured
  right now (source lost, no board rail) is absent, never zero.
- ``carbontop_energy_joules_total{workload, component}`` and ``carbontop_co2_grams_total``: since
  the process started, by the workload the energy was spent under (``none``: between sessions).
  Each series only grows, and every workload's series is exported all the time, so
  ``sum(increase(...))`` over workloads counts every joule once and ``increase()`` of one
  workload is its energy. ``component="total"`` is the figure that never counts a joule twice (a
  board rail contains the GPU rail): sum the components yourself and some joules count twice.
- ``carbontop_throughput_units_per_second`` and ``carbontop_energy_per_unit_joules``: the running
  session's measured window (absent between sessions and before the window has work).
- ``carbontop_carbon_intensity_grams_per_kwh``, ``carbontop_session_active`` (0/1),
  ``carbontop_source_up`` (1 connected, 0 lost).
- ``carbontop_session_info{run_id, workload, phase, status}``: the running session, else the last
  finished one (``phase="idle"``), else ``run_id=""``, ``workload="none"``, ``status="none"``.
  The run id lives only here, so the other series do not multiply with sessions.

Every series carries ``board``, ``source``, ``gpu_scope`` and ``workload``: the running workload
(or ``none``) on the gauges; on the counters the workload the energy belongs to; on the info
metric the session it describes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from carbontop.engine_api import SnapshotSource
from carbontop.errors import BadInput
from carbontop.meter import J_PER_KWH, WindowTotals
from carbontop.views import Snapshot

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
IDLE_WORKLOAD = "none"  # the workload label of energy spent between sessions
COMPONENTS = ("gpu", "board", "cpu_rail", "cpu", "ram", "total")

_WindowKey = tuple[str, str]  # ("idle", start time) or ("session", run id)
_Figures = dict[str, tuple[float, float]]  # component -> (joules, grams CO2)


def window_figures(totals: WindowTotals, g_per_kwh: float) -> _Figures:
    """Joules and grams of CO2 of each measured component of one window."""
    kwh = {"gpu": totals.gpu_kwh, "board": totals.board_kwh, "cpu_rail": totals.cpu_rail_kwh,
           "cpu": totals.cpu_kwh, "ram": totals.ram_kwh, "total": totals.total_kwh}
    return {c: (v * J_PER_KWH, v * g_per_kwh) for c, v in kwh.items() if v is not None}


class EnergyLedger:
    """Process-life energy and CO2 per workload, built from successive snapshots; never decreases.

    Energy is attributed to the workload it was spent under: a session's to its workload, idle
    time's to ``"none"``. So each ``(workload, component)`` series only grows, and summing the
    workloads counts every joule once.

    Each window the engine measures (an idle stretch, a session) is tracked by its key with the
    largest figures seen for it. A window that is no longer current is folded into the closed
    totals: with its final figures when they are known (a finished session's summary), else with
    the last figures seen. What a window gained after the last scrape is lost only when the engine
    replaced it before any scrape saw it end (a session shorter than a scrape interval that is
    followed by another session before the next scrape, or the idle time just before a session).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._closed: dict[tuple[str, str], list[float]] = {}
        self._open: dict[_WindowKey, tuple[str, _Figures]] = {}
        self._folded: set[_WindowKey] = set()
        self._emitted: dict[tuple[str, str], tuple[float, float]] = {}

    def update(self, snap: Snapshot) -> dict[tuple[str, str], tuple[float, float]]:
        """Takes one snapshot; returns (workload, component) -> (joules, grams) so far."""
        g = float(snap.intensity.g_per_kwh)
        current: dict[_WindowKey, tuple[str, _Figures]] = {
            ("idle", repr(snap.idle.start_unix_s)): (IDLE_WORKLOAD,
                                                     window_figures(snap.idle, g))}
        if snap.session is not None:
            current[("session", snap.session.run_id)] = (
                snap.session.workload, window_figures(snap.session.whole, g))
        final: tuple[_WindowKey, tuple[str, _Figures]] | None = None
        last = snap.last_summary
        if last is not None:
            final = (("session", last.run_id),
                     (last.workload, window_figures(last.whole, float(last.intensity.g_per_kwh))))
        with self._lock:
            if final is not None and final[0] not in self._folded:
                self._merge(final[0], *final[1])
                self._fold(final[0])
            for key, (workload, figures) in current.items():
                if key not in self._folded:
                    self._merge(key, workload, figures)
            for key in [k for k in self._open if k not in current]:
                self._fold(key)
            # A folded window never comes back, except as the last summary or a current window.
            self._folded &= set(current) | ({final[0]} if final is not None else set())
            totals = {k: (v[0], v[1]) for k, v in self._closed.items()}
            for workload, figures in self._open.values():
                for c, (j, co2) in figures.items():
                    tj, tg = totals.get((workload, c), (0.0, 0.0))
                    totals[(workload, c)] = (tj + j, tg + co2)
            # Sums in another order may differ in the last bit: a counter must never go down.
            for k, (j, co2) in totals.items():
                old_j, old_g = self._emitted.get(k, (0.0, 0.0))
                self._emitted[k] = (max(old_j, j), max(old_g, co2))
            return dict(self._emitted)

    def _merge(self, key: _WindowKey, workload: str, figures: _Figures) -> None:
        seen = self._open.setdefault(key, (workload, {}))[1]
        for c, (j, co2) in figures.items():
            old_j, old_g = seen.get(c, (0.0, 0.0))
            seen[c] = (max(old_j, j), max(old_g, co2))

    def _fold(self, key: _WindowKey) -> None:
        workload, figures = self._open.pop(key, (IDLE_WORKLOAD, {}))
        for c, (j, co2) in figures.items():
            acc = self._closed.setdefault((workload, c), [0.0, 0.0])
            acc[0] += j
            acc[1] += co2
        self._folded.add(key)


def _label(value: object) -> str:
    if value is None or value == "":
        return "none"
    return str(getattr(value, "value", value))


class EngineCollector(Collector):
    """Reads the engine's snapshot on every scrape."""

    def __init__(self, engine: SnapshotSource) -> None:
        self.engine = engine
        self.ledger = EnergyLedger()

    def describe(self) -> Iterable[Metric]:
        return []  # no scrape at registration time

    def collect(self) -> Iterator[Metric]:
        snap = self.engine.snapshot()
        if snap is None:  # nothing measured yet: no series
            return
        src = snap.source
        session = snap.session
        base = {"board": _label(src.device_name), "source": _label(src.kind),
                "gpu_scope": _label(src.gpu_scope)}
        const = {**base, "workload": session.workload if session is not None else "none"}
        names = list(const)
        values = list(const.values())

        power = GaugeMetricFamily(
            "carbontop_power_watts", "Power now, by component; absent when not measured",
            labels=[*names, "component", "provenance"])
        live = snap.live
        for component, watts, provenance in (
                ("gpu", live.gpu_w, "measured"), ("board", live.board_w, "measured"),
                ("cpu_rail", live.cpu_rail_w, "measured"),
                ("cpu", live.cpu_w, snap.cpu_provenance),
                ("ram", live.ram_w, "estimated")):
            if watts is not None:
                power.add_metric([*values, component, provenance], float(watts))
        yield power

        totals = self.ledger.update(snap)
        energy = CounterMetricFamily(
            "carbontop_energy_joules", "Energy since carbontop started, by the workload it was "
            "spent under (none: between sessions) and component; component=total never counts "
            "a joule twice", labels=[*base, "workload", "component"])
        co2 = CounterMetricFamily(
            "carbontop_co2_grams", "CO2e since carbontop started, by workload and component, at "
            "the one carbon intensity", labels=[*base, "workload", "component"])
        order = {c: i for i, c in enumerate(COMPONENTS)}
        for workload, component in sorted(totals, key=lambda k: (k[0], order.get(k[1], 99))):
            joules, grams = totals[(workload, component)]
            energy.add_metric([*base.values(), workload, component], joules)
            co2.add_metric([*base.values(), workload, component], grams)
        yield energy
        yield co2

        eff = session.efficiency if session is not None else None
        throughput = GaugeMetricFamily(
            "carbontop_throughput_units_per_second",
            "Units of work per second over the running session's measured window", labels=names)
        per_unit = GaugeMetricFamily(
            "carbontop_energy_per_unit_joules",
            "Energy per unit of work over the running session's measured window", labels=names)
        if eff is not None and eff.throughput_per_s is not None:
            throughput.add_metric(values, float(eff.throughput_per_s))
        if eff is not None and eff.energy_per_unit_j is not None:
            per_unit.add_metric(values, float(eff.energy_per_unit_j))
        yield throughput
        yield per_unit

        for name, doc, value in (
                ("carbontop_carbon_intensity_grams_per_kwh",
                 "Grid carbon intensity applied to every component", snap.intensity.g_per_kwh),
                ("carbontop_session_active", "1 while a workload session runs",
                 1.0 if session is not None else 0.0),
                ("carbontop_source_up", "1 while the power source delivers, 0 when lost",
                 1.0 if snap.source_connected else 0.0)):
            gauge = GaugeMetricFamily(name, doc, labels=names)
            gauge.add_metric(values, float(value))
            yield gauge

        info = InfoMetricFamily(
            "carbontop_session", "The running session, else the last one (phase idle)",
            labels=list(base))
        info.add_metric(list(base.values()), _session_info(snap))
        yield info


def _session_info(snap: Snapshot) -> dict[str, str]:
    session = snap.session
    if session is not None:
        return {"run_id": session.run_id, "workload": session.workload,
                "phase": _label(session.phase), "status": "running"}
    last = snap.last_summary
    if last is not None:
        return {"run_id": last.run_id, "workload": last.workload, "phase": "idle",
                "status": _label(last.status)}
    return {"run_id": "", "workload": "none", "phase": "idle", "status": "none"}


@dataclass
class Exporter:
    """A running exporter: its HTTP server, bound address and registry."""

    host: str
    port: int
    registry: CollectorRegistry
    collector: EngineCollector
    _server: WSGIServer | None
    _thread: threading.Thread | None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        """Stops the HTTP server and frees the port. Safe to call twice."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        log.info("Prometheus exporter on %s stopped", self.url)

    def __enter__(self) -> Exporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_exporter(engine: SnapshotSource, host: str = DEFAULT_HOST, port: int = 0) -> Exporter:
    """Serves ``/metrics`` for ``engine`` on ``host:port`` (port 0: any free port).

    Loopback by default: pass ``host="0.0.0.0"`` (or the LAN address) for a Prometheus on another
    machine. Raises :class:`BadInput` when the address cannot be bound.
    """
    if not 0 <= port <= 65535:
        raise BadInput(f"Prometheus port {port} is out of range: give 0-65535 (0: any free port)")
    registry = CollectorRegistry(auto_describe=False)
    collector = EngineCollector(engine)
    registry.register(collector)
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise BadInput(f"cannot serve Prometheus metrics on {host}:{port} "
                       f"({exc.strerror or exc}): choose another --prometheus-port or "
                       f"--prometheus-host") from None
    exporter = Exporter(host=host, port=int(server.server_port), registry=registry,
                        collector=collector, _server=server, _thread=thread)
    log.info("Prometheus metrics on %s", exporter.url)
    return exporter


__all__ = ["DEFAULT_HOST", "EnergyLedger", "EngineCollector", "Exporter", "start_exporter"]
