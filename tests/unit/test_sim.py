"""The simulated Jetson, read through the real JtopSource logic."""

from __future__ import annotations

import time
from datetime import timedelta
from itertools import pairwise
from typing import Any

import pytest

from carbontop import boards
from carbontop.errors import BadInput
from carbontop.model import BoardBasis, Phase, PowerSample, Scope
from carbontop.sim.boards import sim_boards
from carbontop.sim.client import SimJtop
from carbontop.sim.load import SimLoad
from carbontop.sim.service import SIM_UPTIME0_S, SimJtopService
from carbontop.sources.base import SourceUnavailable
from carbontop.sources.jtop import JtopSource
from carbontop.sources.jtop_connect import explain_failure
from carbontop.sources.sim import make_sim_source, sim_service
from tests.recorder import Recorder

BOARDS = sim_boards()
FAST = 100.0  # simulated seconds per real second: a 0.5 s interval lasts 5 ms


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
    assert set(EXPECTED) == set(BOARDS)


@pytest.mark.parametrize("board", sorted(BOARDS))
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
    for name in BOARDS:
        assert name in str(err.value)


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_power_dict_is_shaped_like_jtop(board: str) -> None:
    service = SimJtopService(board, time_scale=FAST)
    client = SimJtop(service)(0.5)
    client.start()
    assert client.ok()
    power = client.power
    assert set(power) == {"rail", "tot"}
    for values in power["rail"].values():
        assert set(values) == {"volt", "curr", "power", "avg", "online", "warn", "crit"}
        assert all(isinstance(values[k], int) for k in ("volt", "curr", "power", "avg"))
        assert values["power"] == int(values["volt"] * values["curr"] / 1000)
    spec = BOARDS[board]
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
        client = SimJtop(service)(interval)
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
    first = SimJtop(service)(0.5)
    first.start()
    later = SimJtop(service)(0.25)
    later.start()
    assert later.interval == 0.5 and later.interval_user == 0.25
    source = JtopSource(0.25, client_factory=SimJtop(service), kind="sim", reconnect_delay_s=0.01)
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


# -- board state and power modes --------------------------------------------------------------

from carbontop.board_state import (  # noqa: E402
    BOARD_STATE_COLUMNS,
    BoardState,
    BoardWatch,
    board_state_columns,
    throttled,
)
from carbontop.errors import CarbontopError  # noqa: E402
from carbontop.sources.jtop_state import read_board_state  # noqa: E402


def _state(**kw: Any) -> BoardState:
    base: dict[str, Any] = dict(
        nvpmodel_name="MAXN", nvpmodel_id=0, jetson_clocks=False, cpu_freq_mhz=2000.0,
        gpu_freq_mhz=1300.0, max_temp_c=60.0, t_unix_s=1.0, cpu_max_freq_mhz=2200.0,
        gpu_max_freq_mhz=1300.0,
    )
    base.update(kw)
    return BoardState(**base)


def test_throttled_heuristic() -> None:
    start = _state()
    assert throttled(start, _state()) is None
    # Idle clocks at the end do not count unless both states were taken under load.
    idle_end = _state(cpu_freq_mhz=700.0, gpu_freq_mhz=306.0)
    assert throttled(start, idle_end) is None
    assert throttled(start, idle_end, loaded=True) == (
        "CPU frequency fell from 2000 to 700 MHz; GPU frequency fell from 1300 to 306 MHz"
    )
    assert throttled(start, _state(gpu_freq_mhz=1200.0), loaded=True) is None  # > 85 %
    assert throttled(start, _state(gpu_max_freq_mhz=900.0)) == (
        "GPU frequency cap fell from 1300 to 900 MHz"
    )
    assert throttled(start, _state(max_temp_c=91.0)) == "a sensor reached 91.0 C (limit 90 C)"
    assert throttled(start, _state(max_temp_c=91.0), temp_limit_c=95) is None
    changed = throttled(start, _state(nvpmodel_name="15W", nvpmodel_id=1, gpu_max_freq_mhz=420.0))
    assert changed == "power mode changed from MAXN to 15W"  # no frequency rule across modes
    clocks = throttled(start, _state(jetson_clocks=True))
    assert clocks == "jetson_clocks changed during the session"
    unknown = BoardState(None, None, None, None, None, None, 2.0)
    assert throttled(unknown, unknown) is None


def test_board_watch_catches_what_came_and_went() -> None:
    start, end = _state(), _state(t_unix_s=9.0)
    watch = BoardWatch()
    for state in (start, _state(max_temp_c=97.0, gpu_max_freq_mhz=800.0), end):
        watch = watch.seen(state)
    assert watch.states == 3 and watch.hottest_c == 97.0
    assert watch.lowest_gpu_max_freq_mhz == 800.0 and watch.modes == ("MAXN",)
    assert throttled(start, end) is None
    assert throttled(start, end, watch) == (
        "a sensor reached 97.0 C (limit 90 C); GPU frequency cap fell from 1300 to 800 MHz"
    )
    hop = BoardWatch().seen(start).seen(_state(nvpmodel_name="15W", nvpmodel_id=1)).seen(end)
    assert throttled(start, end, hop) == "power mode changed during the session (MAXN -> 15W)"


def test_board_state_columns() -> None:
    start = _state(cpu_freq_mhz=1234.56, max_temp_c=48.25)
    end = _state(max_temp_c=52.0)
    cols = board_state_columns(start, end)
    assert tuple(cols) == BOARD_STATE_COLUMNS
    assert cols == {
        "power_mode": "MAXN", "power_mode_id": 0, "jetson_clocks": False,
        "cpu_freq_mhz_start": 1234.6, "cpu_freq_mhz_end": 2000.0,
        "gpu_freq_mhz_start": 1300.0, "gpu_freq_mhz_end": 1300.0,
        "max_temp_c_start": 48.2, "max_temp_c_end": 52.0, "throttled": "",
    }
    moved = board_state_columns(start, _state(nvpmodel_name="15W", nvpmodel_id=1))
    assert moved["power_mode"] == "MAXN -> 15W" and moved["power_mode_id"] is None
    assert moved["throttled"] == "power mode changed from MAXN to 15W"
    assert board_state_columns(None, None) == dict.fromkeys(BOARD_STATE_COLUMNS)
    assert board_state_columns(start, None)["throttled"] is None  # unknown, not "no"


class _Shapes:
    """A jtop-7-like client with hand-made board pieces (no power: read_board_state only)."""

    uptime = timedelta(seconds=5)
    nvpmodel: Any = None
    jetson_clocks: Any = None
    cpu: Any = None
    gpu: Any = None
    temperature: Any = None


def test_read_board_state_takes_jtops_shapes_and_units() -> None:
    client = _Shapes()
    assert read_board_state(client) is None  # nothing reported: no state at all
    client.nvpmodel = "MODE_15W"  # a plain string (old clients)
    client.cpu = {"total": {}, "cpu": [
        {"online": True, "freq": {"min": 729600, "max": 1510400, "cur": 1420800}},
        {"online": False, "model": ""},
        {"online": True, "freq": {"min": 729600, "max": 1510400}},  # cur unreadable
    ]}
    client.gpu = {"ga10b": {"freq": {"cur": 624750, "max": 624750, "min": 306000}}}
    client.temperature = {
        "cpu": {"temp": 51.5, "online": True},
        "cv0": {"temp": -256, "online": False},
        "tj": {"temp": 52.75, "online": True},
        "odd": {"temp": float("nan"), "online": True},
    }
    state = read_board_state(client)
    assert state is not None
    assert (state.nvpmodel_name, state.nvpmodel_id, state.jetson_clocks) == ("MODE_15W", None, None)
    assert state.cpu_freq_mhz == 1420.8 and state.cpu_max_freq_mhz == 1510.4
    assert state.cpu_online == 2
    assert state.gpu_freq_mhz == 624.75 and state.gpu_max_freq_mhz == 624.75
    assert state.max_temp_c == 52.75

    class Broken:
        @property
        def name(self) -> str:
            raise KeyError("name")  # jtop before its first status

        id = 2

    client.nvpmodel = Broken()
    client.cpu = {"cpu": "garbage"}
    client.gpu = None
    state = read_board_state(client)
    assert state is not None and state.nvpmodel_id == 2 and state.cpu_freq_mhz is None


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_sim_board_state_and_modes(board: str) -> None:
    spec = BOARDS[board]
    source = make_sim_source(board, time_scale=FAST)
    try:
        source.open()
        modes = source.power_modes()
        assert modes == [m.name for m in spec.modes] and len(modes) >= 2
        state = source.board_state()
        assert state is not None
        assert state.nvpmodel_name == spec.nvpmodel
        assert state.nvpmodel_id == modes.index(spec.nvpmodel)
        assert state.jetson_clocks is False
        default = spec.default_mode
        assert state.cpu_max_freq_mhz == pytest.approx(default.cpu_max_mhz)
        assert state.gpu_max_freq_mhz == pytest.approx(default.gpu_max_mhz)
        assert state.cpu_online == default.cores_online
        assert state.max_temp_c is not None and 30 < state.max_temp_c < 60
    finally:
        source.close()


def _rail_w(service: SimJtopService, rail: str, ticks: range) -> float:
    return sum(service.tick(i).power["rail"][rail]["power"] for i in ticks) / len(ticks) / 1000


def test_sim_power_mode_switch_scales_the_gpu_rail_and_restores() -> None:
    load = SimLoad()
    load.set_phase(Phase.MEASURING)
    source = make_sim_source("agx-orin", time_scale=FAST, load=load)
    service = sim_service(source)
    rec = Recorder()
    source.open()
    source.start(rec)
    try:
        rec.wait_for(lambda r: len(r.samples) >= 2)
        now = service.tick_index()
        maxn_w = _rail_w(service, "VDD_GPU_SOC", range(now, now + 4))
        with source.restoring_power_mode() as original:
            assert original == "MAXN"
            source.set_power_mode("15W")
            now = service.tick_index() + 1
            low_w = _rail_w(service, "VDD_GPU_SOC", range(now, now + 4))
            state = source.board_state()
            assert state is not None and state.nvpmodel_name == "15W"
            assert state.gpu_max_freq_mhz == 420.75 and state.cpu_online == 4
            assert service.relative_speed() == pytest.approx(420.75 / 1301.0)
            source.set_power_mode("50W")
            now = service.tick_index() + 1
            mid_w = _rail_w(service, "VDD_GPU_SOC", range(now, now + 4))
        assert service.power_mode.name == "MAXN"
        rec.wait_for(lambda r: (source.board_state() or _state(nvpmodel_name="?")).nvpmodel_name
                     == "MAXN")
    finally:
        source.close()
    assert low_w < mid_w < maxn_w
    assert maxn_w > 25.0 and low_w < 10.0


def test_sim_unknown_mode_refusal_and_no_connection() -> None:
    source = make_sim_source("orin-nx", time_scale=FAST)
    with pytest.raises(CarbontopError, match="not connected"):
        source.set_power_mode("MAXN")
    assert source.power_modes() == []
    source.open()
    try:
        with pytest.raises(BadInput) as err:
            source.set_power_mode("40W")
        assert str(err.value) == (
            "unknown power mode '40W': this board's modes are MAXN (0), 10W (1), 15W (2), 25W (3)"
        )
        sim_service(source).refuse_mode("10W")
        with pytest.raises(CarbontopError, match="nvpmodel reported an error"):
            source.set_power_mode("10W", timeout_s=5)
        with pytest.raises(CarbontopError, match="needs a reboot"):  # jtop remembers the failure
            source.set_power_mode("10W")
        source.set_power_mode("15W")
        assert sim_service(source).power_mode.name == "15W"
    finally:
        source.close()


def test_sim_switch_that_never_lands_times_out() -> None:
    source = make_sim_source("nano", time_scale=FAST)
    source.open()
    try:
        service = sim_service(source)
        service.request_mode = lambda mode_id: None  # type: ignore[method-assign]  # deaf
        started = time.monotonic()
        with pytest.raises(CarbontopError, match="did not switch to power mode 5W within 0.3 s"):
            source.set_power_mode("5W", timeout_s=0.3)
        assert time.monotonic() - started < 2.0
    finally:
        source.close()


def test_sim_restore_after_an_error_keeps_the_error() -> None:
    source = make_sim_source("nano", time_scale=FAST)
    source.open()
    try:
        with pytest.raises(RuntimeError, match="workload failed"), source.restoring_power_mode():
            source.set_power_mode("5W")
            raise RuntimeError("workload failed")
        assert sim_service(source).power_mode.name == "MAXN"
    finally:
        source.close()


def test_sim_board_without_nvpmodel_is_bad_input() -> None:
    client = ScriptedClient([(1.0, _power(3000, 8000)), (1.5, _power(3000, 8000))])
    source = JtopSource(0.5, client_factory=lambda _i: client, kind="sim")
    source.open()
    try:
        assert source.power_modes() == []
        assert source.board_state() is None  # the scripted client reports no board pieces
        with pytest.raises(BadInput, match="no nvpmodel"):
            source.set_power_mode("MAXN")
        with source.restoring_power_mode() as original:  # nothing to restore: a no-op
            assert original is None
    finally:
        source.close()


def test_sim_temperature_follows_load_and_throttle_shows() -> None:
    load = SimLoad()
    service = SimJtopService("orin-nano", time_scale=FAST, load=load)
    idle = max(t["temp"] for t in service.tick(0).temperature.values())
    load.set_phase(Phase.MEASURING)
    load.set_cpu_fraction(0.5)
    hot = max(t["temp"] for t in service.tick(600).temperature.values())  # 300 s later
    assert hot > idle + 15
    assert service.tick(600).temperature["cv0"] == {"temp": -256, "online": False}
    service.throttle(0.5)
    tick = service.tick(601)
    assert tick.gpu_max_khz == round(624.75 * 500)
    client = SimJtop(service)(0.5)
    client.start()
    assert client.gpu["ga10b"]["freq"]["max"] <= tick.gpu_max_khz
    assert client.stats["nvp model"] == "15W" and "Temp tj" in client.stats
    assert not client.jetson_clocks and client.jetson_clocks.status == "inactive"
    client.close()
