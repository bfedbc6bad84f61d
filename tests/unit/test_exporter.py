"""The Prometheus exporter: a real engine on the simulated board, scraped over loopback HTTP."""

from __future__ import annotations

import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from carbontop.carbon import CarbonIntensity
from carbontop.config import Settings
from carbontop.engine_api import SessionRequest
from carbontop.errors import BadInput
from carbontop.exporter import EnergyLedger, start_exporter
from carbontop.meter import WindowTotals
from carbontop.model import FinalStatus, Phase, Scope, SourceInfo
from carbontop.session_factory import build_engine
from carbontop.summary import Efficiency, SessionSummary
from carbontop.units import J_PER_KWH
from carbontop.views import LiveFigures, SessionView, Snapshot

Samples = dict[str, list[tuple[dict[str, str], float]]]


def scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((dict(s.labels), s.value))
    return out


def value(samples: Samples, name: str, **labels: str) -> float | None:
    found = [v for lab, v in samples.get(name, []) if all(lab.get(k) == x
                                                           for k, x in labels.items())]
    assert len(found) <= 1, (name, labels, found)
    return found[0] if found else None


def num(samples: Samples, name: str, **labels: str) -> float:
    found = value(samples, name, **labels)
    assert found is not None, (name, labels)
    return found


def total_over_workloads(samples: Samples, name: str, component: str) -> float:
    return sum(v for lab, v in samples.get(name, []) if lab["component"] == component)


# -- a real engine -------------------------------------------------------------------------------

@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("CARBONTOP_LOCK_DIR", str(tmp_path / "locks"))
    settings = Settings(gpu_source="sim", interval_s=0.2, output_dir=tmp_path / "out",
                        duration_s=2)
    eng = build_engine(settings, cpu_ram=False)
    eng.open()
    try:
        yield eng
    finally:
        eng.close()


def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_idle_engine_is_scraped_on_loopback(engine: Any) -> None:
    exporter = start_exporter(engine)
    try:
        assert exporter.host == "127.0.0.1"
        assert exporter._server.server_address[0] == "127.0.0.1"
        assert exporter.port > 0 and exporter.url == f"http://127.0.0.1:{exporter.port}/metrics"
        wait_for(lambda: engine.snapshot().live.gpu_w is not None
                 and (engine.snapshot().idle.total_kwh or 0) > 0, timeout=30)
        # The counter is read between two snapshots: it lies between their figures.
        before_j = (engine.snapshot().idle.total_kwh or 0) * J_PER_KWH
        s = scrape(exporter.url)
        after_j = (engine.snapshot().idle.total_kwh or 0) * J_PER_KWH
        const = {"board": engine.info.device_name, "source": "sim",
                 "gpu_scope": Scope.GPU_SOC_SHARED.value}
        gpu = value(s, "carbontop_power_watts", component="gpu", provenance="measured",
                    workload="none", **const)
        assert gpu is not None and 0 < gpu < 100
        assert num(s, "carbontop_power_watts", component="board") > gpu
        assert value(s, "carbontop_power_watts", component="cpu") is None  # no CodeCarbon here
        assert value(s, "carbontop_session_active", workload="none", **const) == 0
        assert value(s, "carbontop_source_up", **const) == 1
        assert value(s, "carbontop_carbon_intensity_grams_per_kwh") == engine.intensity.g_per_kwh
        total_j = num(s, "carbontop_energy_joules_total", component="total", workload="none",
                      **const)
        assert 0 < before_j <= total_j <= after_j, (before_j, total_j, after_j)
        assert value(s, "carbontop_session_info", run_id="", workload="none", status="none",
                     phase="idle", **const) == 1
        assert "carbontop_throughput_units_per_second" not in s  # no session: absent, not 0
        # Every series carries the four constant labels.
        for name, series in s.items():
            for labels, _ in series:
                assert {"board", "source", "gpu_scope", "workload"} <= set(labels), name
        # Its own registry: nothing from the process-wide one, and nothing of ours in it.
        assert not any(n.startswith(("process_", "python_")) for n in s)
        assert REGISTRY.get_sample_value("carbontop_session_active") is None
    finally:
        exporter.close()
    exporter.close()  # twice is harmless
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(exporter.url, timeout=2)


def test_counters_never_decrease_across_a_session(engine: Any) -> None:
    exporter = start_exporter(engine)
    scrapes: list[Samples] = []
    stop = threading.Event()

    def scraper() -> None:
        while not stop.is_set():
            scrapes.append(scrape(exporter.url))
            time.sleep(0.1)

    def during(s: Samples) -> bool:
        return value(s, "carbontop_session_active", workload="idle") == 1

    def over_and_idle_grew() -> bool:
        """A scrape after the session shows it finished and the idle counter past its value in
        the last scrape during the session (idle measuring resumed)."""
        seen = list(scrapes)
        running = [s for s in seen if during(s)]
        if not running or during(seen[-1]):
            return False
        last = seen[-1]
        return (value(last, "carbontop_session_info", run_id=run_id, workload="idle",
                      phase="idle", status="finished") == 1
                and (value(last, "carbontop_energy_joules_total", workload="none",
                           component="gpu") or 0)
                > num(running[-1], "carbontop_energy_joules_total", workload="none",
                      component="gpu"))

    thread = threading.Thread(target=scraper, daemon=True)
    try:
        # Energy series exist once something was integrated (empty is not 0).
        wait_for(lambda: engine.snapshot().idle.total_kwh is not None, timeout=30)
        thread.start()
        wait_for(lambda: len(scrapes) >= 3, timeout=30)  # scrapes before the session
        run_id = engine.start_session(SessionRequest("idle", {"warmup_s": "0.2"}, 2))
        summary = engine.wait_session(60)
        assert summary is not None and summary.status is FinalStatus.FINISHED
        wait_for(over_and_idle_grew, timeout=30)
    finally:
        stop.set()
        thread.join(10)
        exporter.close()

    running = [s for s in scrapes if during(s)]
    assert running and not during(scrapes[0]) and not during(scrapes[-1])
    assert any(value(s, "carbontop_session_info", run_id=run_id, status="running") == 1
               for s in running)
    assert any((value(s, "carbontop_throughput_units_per_second") or 0) > 0 for s in running)
    assert any((value(s, "carbontop_energy_per_unit_joules") or 0) > 0 for s in running)
    assert value(scrapes[-1], "carbontop_power_watts", component="gpu", workload="none")

    # Every (workload, component) series, and their sum, never goes down.
    for name in ("carbontop_energy_joules_total", "carbontop_co2_grams_total"):
        last: dict[tuple[str, str], float] = {}
        last_sum = 0.0
        for s in scrapes:
            for labels, v in s.get(name, []):
                key = (labels["workload"], labels["component"])
                assert v >= last.get(key, 0.0), (name, key)
                last[key] = v
            total = total_over_workloads(s, name, "gpu")
            assert total >= last_sum - 1e-9, name
            last_sum = total
        # Once seen, a workload's series stays exported.
        assert {k[0] for k in last} == {"none", "idle"}
        assert all(s[name] for s in scrapes)

    final = scrapes[-1]
    session_j = value(final, "carbontop_energy_joules_total", workload="idle", component="gpu")
    assert session_j == pytest.approx(summary.whole.gpu_kwh * J_PER_KWH)
    co2 = value(final, "carbontop_co2_grams_total", workload="idle", component="total")
    assert co2 == pytest.approx(summary.whole.total_kwh * engine.intensity.g_per_kwh)
    # idle restarted after the session and kept counting: what over_and_idle_grew waited for


def test_busy_port_is_a_one_line_bad_input(engine: Any) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(BadInput, match="--prometheus-port"):
            start_exporter(engine, port=port)
    with pytest.raises(BadInput):
        start_exporter(engine, port=70000)


# -- the ledger and the collector on hand-made snapshots ------------------------------------------

INFO = SourceInfo(kind="sim", device_name="Board X", gpu_count=1, gpu_rail="VDD_GPU",
                  gpu_scope=Scope.GPU_ONLY, interval_s=0.5)
INTENSITY = CarbonIntensity(g_per_kwh=100.0, origin="test", source="override")


def totals(start: float, end: float, gpu_j: float) -> WindowTotals:
    kwh = gpu_j / J_PER_KWH
    return WindowTotals(start, end, start, end, kwh, None, None, None, None, kwh, "GPU only", None,
                        1, 0, 0, 0.0)


def snap(idle: WindowTotals, session: SessionView | None = None,
         last: SessionSummary | None = None, connected: bool = True,
         live: LiveFigures | None = None) -> Snapshot:
    return Snapshot(t_unix_s=idle.end_unix_s, source=INFO, source_connected=connected,
                    source_message="", intensity=INTENSITY,
                    live=live or LiveFigures(gpu_w=5.0), cpu_ram_error=None, cpu_mode="",
                    cpu_provenance="estimated",
                    session=session, last_summary=last, idle=idle)


def view(run_id: str, whole: WindowTotals) -> SessionView:
    return SessionView(run_id=run_id, workload="w", params={}, phase=Phase.MEASURING,
                       started_unix_s=whole.start_unix_s, elapsed_s=whole.duration_s,
                       duration_s=10, measuring_elapsed_s=0, whole=whole, window=None,
                       efficiency=Efficiency.compute(None, None, None, None))


def summary(run_id: str, whole: WindowTotals) -> SessionSummary:
    return SessionSummary(run_id=run_id, status=FinalStatus.FINISHED, workload="w", params={},
                          source=INFO, intensity=INTENSITY, whole=whole, window=whole,
                          efficiency=Efficiency.compute(None, None, None, whole))


def gpu_j(result: dict[tuple[str, str], tuple[float, float]], workload: str) -> float:
    return result.get((workload, "gpu"), (0.0, 0.0))[0]


def test_ledger_folds_windows_and_keeps_finished_sessions() -> None:
    ledger = EnergyLedger()
    idle_a = totals(0, 10, 10.0)
    r = ledger.update(snap(idle_a))
    assert gpu_j(r, "none") == pytest.approx(10.0)
    # A session runs: idle A is frozen, the session grows.
    r = ledger.update(snap(replace(idle_a, end_unix_s=12), view("s1", totals(10, 12, 4.0))))
    assert (gpu_j(r, "none"), gpu_j(r, "w")) == pytest.approx((10.0, 4.0))
    # The engine is between "summary stored" and "session done": both views show s1.
    final1 = totals(10, 15, 9.0)
    idle_b = totals(15, 15, 0.0)
    r = ledger.update(snap(idle_b, view("s1", final1), summary("s1", final1)))
    assert gpu_j(r, "w") == pytest.approx(9.0)
    # Finished: its final figures count once, idle B adds to A.
    r = ledger.update(snap(replace(idle_b, end_unix_s=16, gpu_kwh=2.0 / J_PER_KWH),
                           last=summary("s1", final1)))
    assert (gpu_j(r, "none"), gpu_j(r, "w")) == pytest.approx((12.0, 9.0))
    # A session that began and ended between two scrapes is still counted, from its summary.
    idle_c = totals(20, 21, 1.0)
    r = ledger.update(snap(idle_c, last=summary("s2", totals(17, 20, 30.0))))
    assert gpu_j(r, "w") == pytest.approx(39.0)
    # B folded with the last figures seen (2 J), plus C.
    assert gpu_j(r, "none") == pytest.approx(13.0)
    # Seeing the same summary again adds nothing; the grams follow the intensity.
    before = dict(r)
    r = ledger.update(snap(idle_c, last=summary("s2", totals(17, 20, 30.0))))
    assert r == before
    assert r[("w", "gpu")][1] == pytest.approx(39.0 / J_PER_KWH * 100.0)


def test_lost_source_drops_live_watts_and_sets_source_down(tmp_path: Path) -> None:
    class FakeEngine:
        cpu_ram = None

        def __init__(self) -> None:
            self.snapshot_value = snap(totals(0, 1, 1.0), connected=False,
                                       live=LiveFigures(gpu_w=None, cpu_w=3.0, ram_w=1.0))

        def snapshot(self) -> Snapshot:
            return self.snapshot_value

    with start_exporter(FakeEngine()) as exporter:
        s = scrape(exporter.url)
    assert value(s, "carbontop_source_up") == 0
    assert value(s, "carbontop_power_watts", component="gpu") is None
    assert value(s, "carbontop_power_watts", component="cpu", provenance="estimated") == 3.0
    assert value(s, "carbontop_power_watts", component="ram", provenance="estimated") == 1.0
    energy = value(s, "carbontop_energy_joules_total", component="gpu", workload="none")
    assert energy == pytest.approx(1.0)
