"""The simulated Jetson, read through the real JtopSource logic."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from itertools import pairwise
from typing import Any

import pytest

from carbontop import boards
from carbontop.errors import BadInput
from carbontop.model import BoardBasis, Phase, PowerSample, Scope, SourceStatus
from carbontop.sources.base import SourceEvent, SourceUnavailable
from carbontop.sources.jtop import JtopSource, explain_failure
from carbontop.sources.sim import (
    SIM_BOARDS,
    SIM_UPTIME0_S,
    SimJtopService,
    SimLoad,
    make_sim_source,
    sim_service,
)

FAST = 100.0  # simulated seconds per real second: a 0.5 s interval lasts 5 ms


class Recorder:
    """A thread-safe sink."""

    def __init__(self) -> None:
        self.events: list[SourceEvent] = []
        self._cond = threading.Condition()

    def __call__(self, event: SourceEvent) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    @property
    def samples(self) -> list[PowerSample]:
        with self._cond:
            return [e for e in self.events if isinstance(e, PowerSample)]

    @property
    def statuses(self) -> list[SourceStatus]:
        with self._cond:
            return [e for e in self.events if isinstance(e, SourceStatus)]

    def wait_for(self, predicate: Callable[[Recorder], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out; got {len(self.events)} events")
                self._cond.wait(min(left, 0.05))


def run_source(source: JtopSource, n_samples: int) -> Recorder:
    rec = Recorder()
    source.open()
    source.start(rec)
    try:
        rec.wait_for(lambda r: len(r.samples) >= n_samples)
    finally:
        source.close()
    return rec


EXPECTED = {
    # board: (GPU rail, scope, basis, board rail, CPU rail)
    "agx-orin": ("VDD_GPU_SOC", Scope.GPU_SOC_SHARED, BoardBasis.SUM_OF_RAILS, None, "VDD_CPU_CV"),
    "orin-nx": ("VDD_CPU_GPU_CV", Scope.CPU_GPU_CV_SHARED, BoardBasis.INPUT_RAIL, "VDD_IN", None),
    "orin-nano": ("VDD_CPU_GPU_CV", Scope.CPU_GPU_CV_SHARED, BoardBasis.INPUT_RAIL, "VDD_IN", None),
    "nano": ("POM_5V_GPU", Scope.GPU_ONLY, BoardBasis.INPUT_RAIL, "POM_5V_IN", "POM_5V_CPU"),
    "xavier-nx": ("VDD_CPU_GPU_CV", Scope.CPU_GPU_CV_SHARED, BoardBasis.INPUT_RAIL, "VDD_IN", None),
    "agx-xavier": ("GPU", Scope.GPU_ONLY, BoardBasis.SUM_OF_RAILS, None, "CPU"),
}


def test_every_sim_board_has_an_expectation() -> None:
    assert set(EXPECTED) == set(SIM_BOARDS)


@pytest.mark.parametrize("board", sorted(SIM_BOARDS))
def test_rail_scope_and_basis_per_board(board: str) -> None:
    source = make_sim_source(board, time_scale=FAST)
    try:
        info = source.open()
    finally:
        source.close()
    gpu, scope, basis, board_rail, cpu = EXPECTED[board]
    assert info.kind == "sim"
    assert info.device_name.startswith("Simulated Jetson")
    assert (info.gpu_rail, info.gpu_scope) == (gpu, scope)
    assert info.board_basis is basis
    assert info.board_rail == board_rail
    assert info.cpu_rail == cpu
    assert info.interval_s == 0.5
    assert info.jetpack and info.l4t
    assert info.jetson_stats_version is None  # the sim never imports jtop


def test_default_board_is_agx_orin_with_its_name() -> None:
    source = make_sim_source(time_scale=FAST)
    try:
        info = source.open()
    finally:
        source.close()
    assert info.device_name == "Simulated Jetson AGX Orin (64GB)"
    assert info.board_basis is BoardBasis.SUM_OF_RAILS


def test_unknown_board_lists_the_valid_names() -> None:
    with pytest.raises(BadInput) as err:
        make_sim_source("tx3")
    for name in SIM_BOARDS:
        assert name in str(err.value)


@pytest.mark.parametrize("board", sorted(SIM_BOARDS))
def test_power_dict_is_shaped_like_jtop(board: str) -> None:
    service = SimJtopService(board, time_scale=FAST)
    client = service(0.5)
    client.start()
    assert client.ok()
    power = client.power
    assert set(power) == {"rail", "tot"}
    for values in power["rail"].values():
        assert set(values) == {"volt", "curr", "power", "avg", "online", "warn", "crit"}
        assert all(isinstance(values[k], int) for k in ("volt", "curr", "power", "avg"))
        assert values["power"] == int(values["volt"] * values["curr"] / 1000)
    spec = SIM_BOARDS[board]
    if spec.input_rail:
        assert power["tot"]["name"] == spec.input_rail
        assert spec.input_rail not in power["rail"]
    else:
        assert "name" not in power["tot"]
        assert power["tot"]["power"] == sum(r["power"] for r in power["rail"].values())
    assert isinstance(client.uptime, timedelta)
    assert client.stats["Power TOT"] == power["tot"]["power"]
    assert "GPU" in client.stats
    assert boards.gpu_rail(power["rail"]) is not None
    client.close()
    assert not client.ok()


def test_samples_are_watts_not_milliwatts() -> None:
    source = make_sim_source("nano", time_scale=FAST)
    service = sim_service(source)
    rec = run_source(source, 6)
    for sample in rec.samples:
        index = round((sample.t_sensor_s - SIM_UPTIME0_S) / 0.5)
        raw = service.tick(index).power
        assert sample.gpu_w == raw["rail"]["POM_5V_GPU"]["power"] / 1000
        assert sample.cpu_rail_w == raw["rail"]["POM_5V_CPU"]["power"] / 1000
        assert sample.board_w == raw["tot"]["power"] / 1000
        assert sample.board_basis is BoardBasis.INPUT_RAIL
        assert sample.board_rail == "POM_5V_IN"
        assert sample.gpu_w is not None and 0.0 < sample.gpu_w < 10.0  # a Nano's GPU, in W
        assert sample.board_w is not None and 1.0 < sample.board_w < 15.0
        assert dict(sample.rails_w).keys() == {"POM_5V_GPU", "POM_5V_CPU"}


def test_summed_board_is_the_sum_of_rails() -> None:
    rec = run_source(make_sim_source("agx-orin", time_scale=FAST), 5)
    for sample in rec.samples:
        assert sample.board_basis is BoardBasis.SUM_OF_RAILS
        assert sample.board_rail is None
        assert sample.board_w == pytest.approx(sum(w for _, w in sample.rails_w), abs=1e-9)


def test_repeated_timestamps_are_dropped() -> None:
    service = SimJtopService("orin-nx", time_scale=FAST, repeat_every=2)
    seen: list[float] = []

    def spy(interval: float) -> Any:
        client = service(interval)
        real_ok = client.ok

        def ok(spin: bool = False) -> bool:
            alive = real_ok(spin)
            if alive:
                seen.append(client.uptime.total_seconds())
            return alive

        client.ok = ok  # type: ignore[method-assign]
        return client

    source = JtopSource(0.5, client_factory=spy, kind="sim")
    rec = run_source(source, 8)
    times = [s.t_sensor_s for s in rec.samples]
    assert len(seen) > len(set(seen)), "the sim handed out no repeated sample"
    assert times == sorted(set(times)), "a repeated or backward timestamp got through"
    assert all(b - a >= 0.5 - 0.011 for a, b in pairwise(times))


def test_timestamps_are_the_service_uptime_strictly_increasing() -> None:
    rec = run_source(make_sim_source("orin-nano", time_scale=FAST), 10)
    times = [s.t_sensor_s for s in rec.samples]
    assert all(b > a for a, b in pairwise(times))
    assert times[0] > SIM_UPTIME0_S


def test_same_seed_same_values_other_seed_other_values() -> None:
    def run(seed: int) -> dict[float, tuple[tuple[str, float], ...]]:
        rec = run_source(make_sim_source("xavier-nx", seed=seed, time_scale=FAST), 12)
        return {s.t_sensor_s - s.t_sensor_s % 0.5: s.rails_w for s in rec.samples}

    first, again, other = run(7), run(7), run(8)
    common = set(first) & set(again)
    assert len(common) >= 5
    assert all(first[t] == again[t] for t in common)
    common_other = set(first) & set(other)
    assert any(first[t] != other[t] for t in common_other)


def test_service_values_are_deterministic_per_tick() -> None:
    a = SimJtopService("agx-xavier", seed=3, time_scale=FAST)
    b = SimJtopService("agx-xavier", seed=3, time_scale=FAST)
    for index in (5, 6, 50):
        pa, pb = a.tick(index).power, b.tick(index).power
        assert {k: v["power"] for k, v in pa["rail"].items()} == {
            k: v["power"] for k, v in pb["rail"].items()
        }
        assert a.tick(index).uptime_s == b.tick(index).uptime_s


def test_gpu_rail_follows_the_phase_and_cpu_rail_the_cpu_fraction() -> None:
    load = SimLoad()
    service = SimJtopService("nano", seed=1, load=load, time_scale=FAST)

    def watts(index: int, rail: str) -> float:
        return float(service.tick(index).power["rail"][rail]["power"]) / 1000

    idle = watts(10, "POM_5V_GPU")
    load.set_phase(Phase.LOADING)
    loading = watts(20, "POM_5V_GPU")
    load.set_phase(Phase.WARMUP)
    warm_start = watts(30, "POM_5V_GPU")
    warm_late = watts(30 + 40, "POM_5V_GPU")  # 20 simulated seconds later: ramp done
    load.set_phase(Phase.MEASURING)
    measuring = [watts(i, "POM_5V_GPU") for i in range(100, 120)]
    assert idle < 0.2
    assert idle < loading < warm_start < warm_late
    assert min(measuring) > 3.5 and max(measuring) <= 4.6 * 1.2
    assert len(set(measuring)) > 1  # noise
    assert service.tick(119).gpu_load > 80

    load.set_phase(None)
    cpu_idle = watts(200, "POM_5V_CPU")
    load.set_cpu_fraction(1.0)
    cpu_busy = watts(210, "POM_5V_CPU")
    assert cpu_busy > cpu_idle + 2.0
    load.set_gpu_intensity(0.5)
    load.set_phase(Phase.MEASURING)
    assert watts(300, "POM_5V_GPU") < min(measuring)


def test_input_rail_exceeds_the_module_rails() -> None:
    service = SimJtopService("orin-nx", time_scale=FAST)
    power = service.tick(3).power
    assert power["tot"]["power"] > sum(r["power"] for r in power["rail"].values())


def test_outage_gives_lost_then_regained_and_samples_resume() -> None:
    source = make_sim_source("orin-nx", time_scale=FAST)
    service = sim_service(source)
    rec = Recorder()
    source.open()
    source.start(rec)
    try:
        rec.wait_for(lambda r: len(r.samples) >= 3)
        service.outage(5.0)  # simulated seconds: 10 intervals
        rec.wait_for(lambda r: any(s.connected for s in r.statuses))
        before = len(rec.samples)
        rec.wait_for(lambda r: len(r.samples) >= before + 3)
    finally:
        source.close()
    statuses = rec.statuses
    assert [s.connected for s in statuses] == [False, True]
    assert "lost the jtop service" in statuses[0].message
    events = rec.events
    lost_at, back_at = events.index(statuses[0]), events.index(statuses[1])
    assert not any(isinstance(e, PowerSample) for e in events[lost_at:back_at])
    after = [e for e in events[back_at:] if isinstance(e, PowerSample)]
    last_before = [e for e in events[:lost_at] if isinstance(e, PowerSample)][-1]
    assert after and after[0].t_sensor_s - last_before.t_sensor_s >= 5.0  # a visible gap
    times = [s.t_sensor_s for s in rec.samples]
    assert all(b > a for a, b in pairwise(times))


def test_stalled_service_is_lost_then_regained() -> None:
    source = make_sim_source("agx-orin", time_scale=FAST)
    rec = Recorder()
    source.open()
    source.start(rec)
    try:
        rec.wait_for(lambda r: len(r.samples) >= 2)
        sim_service(source).outage(3.0, stall=True)
        rec.wait_for(lambda r: [s.connected for s in r.statuses] == [False, True])
        before = len(rec.samples)
        rec.wait_for(lambda r: len(r.samples) >= before + 2)
    finally:
        source.close()
    assert "no sample" in rec.statuses[0].message


def test_open_while_the_service_is_down_is_unavailable() -> None:
    source = make_sim_source("nano", time_scale=FAST)
    sim_service(source).outage(1000.0)
    with pytest.raises(SourceUnavailable, match="jtop service is not running"):
        source.open()


def test_close_is_prompt_and_final() -> None:
    source = make_sim_source("nano", interval_s=0.5)  # real time: a sample every 0.5 s
    rec = Recorder()
    source.open()
    source.start(rec)
    rec.wait_for(lambda r: len(r.samples) >= 1, timeout=5)
    started = time.monotonic()
    source.close()
    assert time.monotonic() - started < 0.5
    count = len(rec.events)
    time.sleep(0.7)
    assert len(rec.events) == count


def test_service_interval_is_fixed_by_its_first_client() -> None:
    service = SimJtopService("orin-nx", time_scale=FAST)
    first = service(0.5)
    first.start()
    later = service(0.25)
    later.start()
    assert later.interval == 0.5 and later.interval_user == 0.25
    source = JtopSource(0.25, client_factory=service, kind="sim", reconnect_delay_s=0.01)
    try:
        info = source.open()
    finally:
        source.close()
    assert info.interval_s == 0.5  # adopted what the service delivers


def test_gpu_load_comes_through() -> None:
    load = SimLoad()
    load.set_phase(Phase.MEASURING)
    rec = run_source(make_sim_source("agx-orin", time_scale=FAST, load=load), 4)
    assert all(s.gpu_load_pct is not None and s.gpu_load_pct > 80 for s in rec.samples[1:])


# -- JtopSource logic on scripted clients ---------------------------------------------------


class ScriptedClient:
    """A jtop-like client replaying a list of (uptime s, power dict)."""

    def __init__(self, script: list[tuple[float, dict[str, Any]]], interval: float = 0.5) -> None:
        self._script = list(script)
        self._i = 0
        self.interval = interval
        self.closed = False
        self._fresh = False
        self.gpu = {"gpu": {"status": {"load": 12.5}}}
        self.board = {"hardware": {"Module": "Scripted Jetson", "L4T": "36.4.3", "Jetpack": "6.2"}}

    def start(self) -> None:
        self._fresh = True  # jtop's first ok() after start() returns at once

    def ok(self) -> bool:
        if self._fresh:
            self._fresh = False
            return True
        if self.closed or self._i >= len(self._script) - 1:
            time.sleep(0.01)
            return not self.closed
        self._i += 1
        return True

    def close(self) -> None:
        self.closed = True

    @property
    def uptime(self) -> timedelta:
        return timedelta(seconds=self._script[self._i][0])

    @property
    def power(self) -> dict[str, Any]:
        return self._script[self._i][1]


def _rail(mw: int) -> dict[str, Any]:
    return {"volt": 5000, "curr": mw // 5, "power": mw, "avg": 99999, "online": True}


def _power(gpu_mw: int, tot_mw: int, named: bool = True) -> dict[str, Any]:
    tot: dict[str, Any] = {"power": tot_mw, "avg": 99999}
    if named:
        tot.update(volt=5000, curr=tot_mw // 5, online=True, name="VDD_IN")
    return {"rail": {"VDD_CPU_GPU_CV": _rail(gpu_mw), "VDD_SOC": _rail(1000)}, "tot": tot}


def test_input_rail_missing_for_one_tick_is_not_taken_for_the_board() -> None:
    script = [
        (100.0, _power(3000, 8000)),
        (100.5, _power(3200, 8200)),
        (101.0, _power(3300, 4300, named=False)),  # input read failed: tot is the sum
        (101.5, _power(-40, 8100)),  # negative reading
    ]
    client = ScriptedClient(script)
    source = JtopSource(0.5, client_factory=lambda _i: client, kind="sim")
    rec = Recorder()
    info = source.open()
    assert info.board_basis is BoardBasis.INPUT_RAIL and info.board_rail == "VDD_IN"
    assert info.device_name == "Scripted Jetson"
    source.start(rec)
    rec.wait_for(lambda r: len(r.samples) >= 3)
    source.close()
    assert client.closed
    s1, s2, s3 = rec.samples[:3]
    assert (s1.t_sensor_s, s1.board_w, s1.gpu_w) == (100.5, 8.2, 3.2)
    assert s2.board_w is None and s2.board_basis is BoardBasis.SUM_OF_RAILS
    assert s2.gpu_w == 3.3  # the rails themselves were read
    assert s3.gpu_w == 0.0 and s3.board_w == 8.1  # clamped, and the input is back
    assert s1.gpu_load_pct == 12.5


def test_empty_power_is_unavailable() -> None:
    client = ScriptedClient([(1.0, {}), (1.5, {})])
    source = JtopSource(0.5, client_factory=lambda _i: client, kind="jtop")
    with pytest.raises(SourceUnavailable, match="reports no power rails"):
        source.open()
    assert client.closed


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            Exception("The jtop.service is not active. Please run:\nsudo jtop --install-service"),
            "not running",
        ),
        (
            Exception("I can't access jtop.service.\nPlease logout or reboot this board."),
            "sudo usermod -aG jtop $USER",
        ),
        (
            Exception(
                "Mismatch version jtop service: [4.3.2] and client: [7.2.2]. Please run:\n\n"
                "sudo jtop --install-service"
            ),
            "does not match the jtop service 4.3: install carbontop in a venv with "
            "--system-site-packages, or pip install 'jetson-stats==4.3.*'",
        ),
        (ConnectionRefusedError(111, "Connection refused"), "not running"),
        (EOFError(), "cannot read the jtop service (EOFError"),
    ],
)
def test_start_failures_become_one_line_messages(error: Exception, expected: str) -> None:
    message = str(explain_failure(error))
    assert expected in message
    assert "\n" not in message
