"""A real Prometheus scrapes a real engine's exporter; every Grafana dashboard query runs on it.

Needs the ``prometheus`` binary (Debian: ``apt-get install -y prometheus``); skipped without it.
Prometheus listens on loopback only, keeps its data in tmp_path, and is always terminated.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from carbontop.config import Settings
from carbontop.engine_api import SessionRequest
from carbontop.exporter import Exporter, start_exporter
from carbontop.session_factory import build_engine
from tests.strict_skips import NO_PROMETHEUS, NO_PROMTOOL

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana-carbontop.json"
PROMETHEUS_YML = ROOT / "deploy" / "prometheus.yml"
JOB = "carbontop"  # the job name the dashboard's "Exporter scraped" panel expects
INSTALL_HINT = "install it with: apt-get install -y prometheus (gives /usr/bin/prometheus)"


def prometheus_binary() -> str | None:
    """CARBONTOP_PROMETHEUS if set, else prometheus on PATH, else Debian's /usr/bin/prometheus."""
    override = os.environ.get("CARBONTOP_PROMETHEUS")
    if override:
        return override if Path(override).is_file() else None
    found = shutil.which("prometheus")
    if found is None and Path("/usr/bin/prometheus").is_file():
        found = "/usr/bin/prometheus"
    return found


needs_prometheus = pytest.mark.skipif(prometheus_binary() is None,
                                      reason=f"{NO_PROMETHEUS}: {INSTALL_HINT}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@dataclass
class Prometheus:
    base: str
    proc: subprocess.Popen[bytes]
    log: Path

    def get(self, path: str, **params: str | list[str]) -> dict[str, Any]:
        query = urllib.parse.urlencode(params, doseq=True)
        url = f"{self.base}{path}?{query}" if query else f"{self.base}{path}"
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                body = json.loads(r.read())
        except urllib.error.HTTPError as exc:  # 400/422: a bad query; the body says why
            body = json.loads(exc.read() or b"{}")
        return body  # type: ignore[no-any-return]

    def query(self, expr: str) -> list[dict[str, Any]]:
        body = self.get("/api/v1/query", query=expr)
        assert body.get("status") == "success", f"{expr!r}: {body.get('error')}"
        data = body["data"]
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        return data["result"]  # type: ignore[no-any-return]

    def values(self, expr: str) -> list[float]:
        return [float(r["value"][1]) for r in self.query(expr)]

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"prometheus exited: {self.log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{self.base}/-/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("CARBONTOP_LOCK_DIR", str(tmp_path / "locks"))
    settings = Settings(gpu_source="sim", interval_s=0.2, output_dir=tmp_path / "out",
                        duration_s=120)
    eng = build_engine(settings, cpu_ram=True)  # CodeCarbon too: the CPU and RAM panels
    eng.open()
    try:
        yield eng
    finally:
        eng.close()


@pytest.fixture
def exporter(engine: Any) -> Iterator[Exporter]:
    exp = start_exporter(engine)
    try:
        yield exp
    finally:
        exp.close()


@pytest.fixture
def prometheus(tmp_path: Path, exporter: Exporter) -> Iterator[Prometheus]:
    binary = prometheus_binary()
    if binary is None:
        pytest.skip(f"{NO_PROMETHEUS} on PATH: {INSTALL_HINT}")
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n  evaluation_interval: 1s\n"
        f"scrape_configs:\n  - job_name: {JOB}\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{exporter.port}']\n")
    port = free_port()
    log = tmp_path / "prometheus.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path)
    prom = Prometheus(f"http://127.0.0.1:{port}", proc, log)
    try:
        wait_for(prom.ready, 20, "prometheus /-/ready")
        yield prom
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def grafana_regex_escape(value: str) -> str:
    """What Grafana does to a multi-value variable's value inside a Prometheus =~ matcher."""
    out = value.replace("\\", "\\\\\\\\")
    for ch in "$^*{}[]'+?.()|":
        out = out.replace(ch, "\\\\" + ch)
    return out


def dashboard_exprs() -> list[tuple[str, str, str]]:
    """(panel title, refId, expr) of every query of the dashboard, rows included."""
    def walk(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for p in panels:
            yield p
            yield from walk(p.get("panels", []))

    dash = json.loads(DASHBOARD.read_text())
    return [(p["title"], t["refId"], t["expr"]) for p in walk(dash["panels"])
            for t in p.get("targets", []) if t.get("expr")]


def substitute(expr: str, board: str, instance: str) -> str:
    return (expr.replace("$board", grafana_regex_escape(board))
            .replace("$instance", grafana_regex_escape(instance))
            .replace("$__rate_interval", "4s").replace("$__range", "1m")
            .replace("$__interval", "1s"))


@needs_prometheus
def test_prometheus_scrapes_the_exporter_and_runs_every_dashboard_query(
        engine: Any, exporter: Exporter, prometheus: Prometheus) -> None:
    started = time.monotonic()
    run_id = engine.start_session(SessionRequest("idle", {"warmup_s": "0.2"}, 120))
    prom = prometheus
    instance = f"127.0.0.1:{exporter.port}"
    board = engine.info.device_name

    wait_for(lambda: prom.values(f'up{{job="{JOB}"}}') == [1.0], 15, "the first scrape")
    wait_for(lambda: prom.query(f'carbontop_session_info{{run_id="{run_id}", status="running", '
                                f'phase="measuring"}}'), 15, "a scrape of the measuring session")
    # CodeCarbon's first reading, and enough scrapes for increase() and rate().
    # CodeCarbon runs on every machine (CPU by its model when no RAPL): the CPU and RAM panels
    # must have data, so its failing to start fails this test.
    assert engine.cpu_ram is not None, "build_engine(cpu_ram=True) made no CodeCarbon tracker"
    wait_for(lambda: engine.cpu_ram.running or engine.cpu_ram.error, 30, "CodeCarbon to start")
    assert engine.cpu_ram.error is None, engine.cpu_ram.error
    wait_for(lambda: prom.query('carbontop_power_watts{component="ram"}'), 15,
             "CodeCarbon's RAM watts")
    wait_for(lambda: prom.query('carbontop_power_watts{component="cpu"}'), 15,
             "CodeCarbon's CPU watts")
    wait_for(lambda: prom.query(
        'count_over_time(carbontop_energy_joules_total{component="total", workload="idle"}[1m])'
        ' >= 4'), 15, "four scrapes of the session")

    # Values read back through Prometheus.
    gpu = prom.query('carbontop_power_watts{component="gpu"}')
    assert len(gpu) == 1
    labels = gpu[0]["metric"]
    assert labels["board"] == board and labels["source"] == "sim"
    assert labels["instance"] == instance and labels["workload"] == "idle"
    assert labels["provenance"] == "measured" and labels["gpu_scope"] == "GPU+SOC shared"
    assert 0 < float(gpu[0]["value"][1]) < 100
    first = prom.values('sum(carbontop_energy_joules_total{component="gpu"})')[0]
    wait_for(lambda: prom.values('sum(carbontop_energy_joules_total{component="gpu"})')[0]
             > first, 5, "the energy counter to grow")
    assert prom.values('increase(carbontop_energy_joules_total{component="total", '
                       'workload="idle"}[1m])')[0] > 0
    info = prom.query("carbontop_session_info")
    assert len(info) == 1 and info[0]["metric"]["run_id"] == run_id
    assert info[0]["metric"]["workload"] == "idle"
    assert prom.values("carbontop_session_active") == [1.0]
    assert prom.values("carbontop_source_up") == [1.0]
    assert prom.values("carbontop_throughput_units_per_second")[0] > 0
    # Run ids never become labels of the measurement series.
    assert prom.values('count({__name__=~"carbontop_.+", run_id!=""})') == [1.0]

    # The dashboard's variables: label_values(carbontop_source_up, board) and its instances.
    boards = prom.get("/api/v1/label/board/values", **{"match[]": "carbontop_source_up"})
    assert boards["data"] == [board]
    instances = prom.get("/api/v1/label/instance/values", **{
        "match[]": f'carbontop_source_up{{board=~"{grafana_regex_escape(board)}"}}'})
    assert instances["data"] == [instance]

    # Every query of the dashboard parses and runs, for "All" and for the selected machine,
    # and returns data (CPU and RAM from CodeCarbon; every other figure exists on the sim).
    exprs = dashboard_exprs()
    assert len(exprs) >= 14
    for title, ref, expr in exprs:
        for b, i in ((board, instance), (".*", ".*")):
            concrete = substitute(expr, b, i) if b != ".*" else (
                expr.replace('"$board"', '".*"').replace('"$instance"', '".*"')
                .replace("$__rate_interval", "4s").replace("$__range", "1m"))
            assert "$" not in concrete, (title, concrete)
            result = prom.query(concrete)
            assert result, f"{title} ({ref}) returned nothing: {concrete}"
            for r in result:
                assert r["value"][1] not in ("NaN", "+Inf", "-Inf"), (title, r)
    assert time.monotonic() - started < 60


def test_example_fleet_config_is_valid() -> None:
    promtool = shutil.which("promtool") or (
        "/usr/bin/promtool" if Path("/usr/bin/promtool").is_file() else None)
    if promtool is None:
        pytest.skip(f"{NO_PROMTOOL} on PATH: {INSTALL_HINT}")
    proc = subprocess.run([promtool, "check", "config", str(PROMETHEUS_YML)],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dashboard_is_a_grafana_dashboard() -> None:
    dash = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert {"datasource", "board", "instance"} <= set(variables)
    titles = {p["title"] for p in dash["panels"]}
    assert {"GPU power", "Board power", "CPU power", "RAM power", "Energy per board",
            "CO2 per board", "Throughput", "Energy per unit", "Power source up",
            "Sessions (running, else the last one)"} <= titles
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    for title, _, expr in dashboard_exprs():
        assert 'board=~"$board"' in expr or title == "Exporter scraped", title
        assert 'instance=~"$instance"' in expr, title
