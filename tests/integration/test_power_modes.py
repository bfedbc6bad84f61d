"""Board state and nvpmodel power modes through the REAL jtop service (jetson-stats).

The service runs on the emulated AGX Orin of tests/jtop_harness.py with a fake ``nvpmodel`` first
on its PATH: the service itself lists the modes (``nvpmodel -p --verbose``), queries the mode on
every tick (``nvpmodel -q``) and switches (``nvpmodel -m ID``) when a client asks, exactly as on a
board; only the tool at the end of that chain is fake. jetson_clocks is absent (jtop looks for it
at fixed paths), so jtop reports none.
"""

from __future__ import annotations

import contextlib
import csv
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from carbontop.board_state import BoardState, board_state_columns, throttled
from carbontop.errors import BadInput, CarbontopError
from carbontop.sources.base import SourceEvent
from carbontop.sources.jtop import JtopSource
from tests.jtop_harness import AGX_ORIN_MODES, FAKE_SYS, FakeNvpMode, JtopService, skip_reason

pytestmark = pytest.mark.jtop_service

INTERVAL = 0.25
MODES = [m.name for m in AGX_ORIN_MODES]  # MAXN, 15W, 30W, 50W

StartService = Callable[..., JtopService]


@pytest.fixture
def service_with_nvpmodel() -> Iterator[StartService]:
    """``start(modes=AGX_ORIN_MODES, mode=0)``: the real service with the fake nvpmodel."""
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    with contextlib.ExitStack() as stack:

        def start(modes: tuple[FakeNvpMode, ...] = AGX_ORIN_MODES, mode: int = 0) -> JtopService:
            service = JtopService("agx-orin", nvpmodel=modes, nvpmodel_mode=mode)
            return stack.enter_context(service)

        yield start


def _open(service: JtopService) -> JtopSource:
    source = JtopSource(INTERVAL, client_factory=service.client_factory)
    source.open()
    return source


def _wait_state(
    source: JtopSource, check: Callable[[BoardState], bool], timeout: float = 5.0
) -> BoardState:
    deadline = time.monotonic() + timeout
    while True:
        state = source.board_state()
        if state is not None and check(state):
            return state
        if time.monotonic() > deadline:
            raise AssertionError(f"board state never matched; last: {state}")
        time.sleep(0.05)


def test_board_state_modes_switch_unknown_and_restore(
    service_with_nvpmodel: StartService,
) -> None:
    service = service_with_nvpmodel()
    source = _open(service)
    try:
        # What the service got from `nvpmodel -p --verbose` and `-q`, and the rest of the state.
        assert source.power_modes() == MODES
        start = source.board_state()
        assert start is not None
        assert (start.nvpmodel_name, start.nvpmodel_id) == ("MAXN", 0)
        assert start.jetson_clocks is None  # no /usr/bin/jetson_clocks: jtop reports none
        assert start.cpu_freq_mhz == 1190.4  # scaling_cur_freq, kHz -> MHz
        assert start.cpu_max_freq_mhz == 2201.6  # the cap MAXN wrote
        assert start.gpu_freq_mhz == 306.0  # devfreq cur_freq, Hz -> kHz (jtop) -> MHz
        assert start.gpu_max_freq_mhz == 1300.5
        assert start.max_temp_c == 46.0  # tj; cv0 is offline (-256) and skipped
        assert start.cpu_online == 2

        # A real switch: the service ran `nvpmodel -m 1`, the fake's state and caps changed.
        started = time.monotonic()
        source.set_power_mode("15W")
        took = time.monotonic() - started
        assert service.nvpmodel_mode() == 1
        assert "-m 1" in service.nvpmodel_calls()
        state = source.board_state()
        assert state is not None
        assert (state.nvpmodel_name, state.nvpmodel_id) == ("15W", 1)
        assert state.gpu_max_freq_mhz == 420.75 and state.cpu_max_freq_mhz == 1113.6
        assert took < 3.0, took

        # By id, and by name in another case; the same mode again is a no-op.
        source.set_power_mode(2)
        assert service.nvpmodel_mode() == 2
        source.set_power_mode("50w")
        assert service.nvpmodel_mode() == 3
        calls = len(service.nvpmodel_calls())
        source.set_power_mode("50W")
        assert not [c for c in service.nvpmodel_calls()[calls:] if c.startswith("-m")]

        # Unknown modes: BadInput naming the valid ones; nothing sent to the service.
        for bad in ("FAST", 7, -1):
            with pytest.raises(BadInput) as err:
                source.set_power_mode(bad)
            assert "MAXN (0), 15W (1), 30W (2), 50W (3)" in str(err.value)
        assert service.nvpmodel_mode() == 3

        # Restoring: the mode on entry comes back on leaving, after an error or a Ctrl-C too.
        with source.restoring_power_mode() as original:
            assert original == "50W"
            source.set_power_mode("MAXN")
            assert service.nvpmodel_mode() == 0
        assert service.nvpmodel_mode() == 3
        with pytest.raises(KeyboardInterrupt), source.restoring_power_mode():
            source.set_power_mode("30W")
            raise KeyboardInterrupt
        assert service.nvpmodel_mode() == 3
        assert _wait_state(source, lambda s: s.nvpmodel_name == "50W").nvpmodel_id == 3
    finally:
        source.close()
    assert not [line for line in service.log_text().splitlines() if "Traceback" in line]


def test_service_refusals_are_errors_not_hangs(service_with_nvpmodel: StartService) -> None:
    modes = (
        *AGX_ORIN_MODES[:2],
        FakeNvpMode("30W", 1728000, 624750000, fails=True),  # nvpmodel -m prints NVPM ERROR
        FakeNvpMode("10W", 1000000, 306000000, tpc_pg_mask=1),  # another mask: needs a reboot
    )
    service = service_with_nvpmodel(modes)
    source = _open(service)
    try:
        started = time.monotonic()
        with pytest.raises(CarbontopError, match="nvpmodel reported an error") as err:
            source.set_power_mode("30W", timeout_s=20)
        assert time.monotonic() - started < 5.0  # seen from jtop's status, not a timeout
        assert "\n" not in str(err.value)
        assert "-m 2" in service.nvpmodel_calls()
        assert service.nvpmodel_mode() == 0

        calls = len(service.nvpmodel_calls())
        with pytest.raises(CarbontopError, match="needs a reboot") as err:
            source.set_power_mode("10W")
        assert "sudo nvpmodel -m 3" in str(err.value)
        assert not [c for c in service.nvpmodel_calls()[calls:] if c.startswith("-m")]

        source.set_power_mode("15W")  # the service still switches to a good mode
        assert service.nvpmodel_mode() == 1
    finally:
        source.close()


def test_throttling_during_a_session_is_flagged(service_with_nvpmodel: StartService) -> None:
    service = service_with_nvpmodel()
    source = _open(service)
    events: list[SourceEvent] = []
    got = threading.Event()

    def sink(event: SourceEvent) -> None:
        events.append(event)
        got.set()

    source.start(sink)
    try:
        assert got.wait(5)
        start = _wait_state(source, lambda s: s.max_temp_c == 46.0)
        source.reset_board_watch()
        # A hot spell that is over by the end: only the watch kept by the sampling thread sees it.
        service.set_temperature("gpu-thermal", 95.5)
        _wait_state(source, lambda s: s.max_temp_c == 95.5)
        service.set_temperature("gpu-thermal", 44.0)
        end = _wait_state(source, lambda s: s.max_temp_c == 46.0)
        assert throttled(start, end) is None
        watch = source.board_watch()
        assert watch.hottest_c == 95.5 and watch.modes == ("MAXN",)
        reason = throttled(start, end, watch)
        assert reason is not None and "95.5 C" in reason

        # Thermal cooling lowers the GPU cap under the same mode.
        service.set_gpu_freq(cur_hz=420750000, max_hz=420750000)
        capped = _wait_state(source, lambda s: s.gpu_max_freq_mhz == 420.75)
        reason = throttled(start, capped)
        assert reason == "GPU frequency cap fell from 1300 to 421 MHz"
        columns = board_state_columns(start, capped)
        assert columns["power_mode"] == "MAXN" and columns["power_mode_id"] == 0
        assert columns["gpu_freq_mhz_start"] == 306.0 and columns["gpu_freq_mhz_end"] == 420.8
        assert columns["max_temp_c_start"] == 46.0
        assert columns["throttled"] == reason
        assert columns["jetson_clocks"] is None
    finally:
        source.close()


def test_carbontop_run_power_modes_compares_and_restores(
    service_with_nvpmodel: StartService, tmp_path: Path
) -> None:
    """`carbontop run --power-modes` on the real service: each mode measured, then MAXN back."""
    service = service_with_nvpmodel()
    code = (
        "import sys, jtop.service\n"
        f"jtop.service.JTOP_PIPE = {service.pipe!r}\n"
        "from carbontop.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, "run", "idle", "--gpu-source", "jtop", "--interval", "0.25",
         "--duration", "1", "--power-modes", "15W,30W", "--min-throughput", "0.5",
         "--cooldown-max", "1", "--param", "warmup_s=0", "--output-dir", str(tmp_path),
         "--json"],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    trials = result["trials"]
    assert [t["power_mode"] for t in trials] == ["15W", "30W"]
    assert [t["power_mode_id"] for t in trials] == [1, 2]
    assert set(result["power_modes"]) == {"15W", "30W"}
    # The emulated AGX Orin's rails hold still: 5 V x (800 + 300 + 600 + 100) mA = 9 W summed,
    # in every mode (the fake nvpmodel changes clocks, not the rails), so each window's energy
    # is 9 W x its seconds (written to the millisecond: 9 W x 0.5 ms of rounding).
    for t in trials:
        assert t["total_basis"].startswith("sum of all board rails")
        assert t["window_total_energy_kwh"] * 3.6e6 == pytest.approx(
            9.0 * t["window_duration_s"], abs=9.0 * 5e-4 + 1e-6), t["power_mode"]
    # Each mode's figures are its one trial's; the best is worked out from the trial rows.
    per_unit = {t["power_mode"]: t["energy_per_unit_j"] for t in trials}
    rate = {t["power_mode"]: t["throughput_per_s"] for t in trials}
    for mode in ("15W", "30W"):
        stats = result["power_modes"][mode]
        assert stats["finished"] == 1 and stats["energy_per_unit_j"]["n"] == 1
        assert stats["energy_per_unit_j"]["mean"] == pytest.approx(per_unit[mode], rel=1e-12)
        assert stats["throughput_per_s"]["mean"] == pytest.approx(rate[mode], rel=1e-12)
        assert stats["energy_per_unit_j"]["stdev"] == 0.0
    assert result["best"] == {
        "least_energy_per_unit": "15W" if per_unit["15W"] < per_unit["30W"] else "30W",
        "highest_throughput": "15W" if rate["15W"] > rate["30W"] else "30W"}
    # The idle workload does about 1 second of work a second in either mode: both keep 0.5/s,
    # and the cheaper is the choice; a mode no faster and no cheaper than the other is off the
    # front (with equal watts the two differ by noise only, so both outcomes are worked out).
    assert result["cheapest_keeping_min_throughput"] == {
        "min_throughput_per_s": 0.5, "mode": min(per_unit, key=per_unit.__getitem__)}
    beaten = [m for m, other in (("15W", "30W"), ("30W", "15W"))
              if rate[other] >= rate[m] and per_unit[other] <= per_unit[m]
              and (rate[other], per_unit[other]) != (rate[m], per_unit[m])]
    assert sorted(result["pareto_front"]) == sorted({"15W", "30W"} - set(beaten))
    assert service.nvpmodel_mode() == 0  # the original mode is back
    calls = " ".join(service.nvpmodel_calls())
    assert "-m 1" in calls and "-m 2" in calls and "-m 0" in calls


# A generating program whose work follows the GPU clock cap the power mode sets: it makes
# tokens at the cap in MHz per second (15W: 420.75/s, 30W: 624.75/s, 50W: 828.75/s), reading the
# cap the fake nvpmodel wrote into the devfreq file, and reports them with carbontop's protocol.
GENERATE = """
import os, sys, time
from carbontop import progress
cap_mhz = int(open(sys.argv[1]).read()) / 1e6
seconds = float(sys.argv[2])
progress.phase("warmup")
time.sleep(0.5)
progress.phase("measure")
start = time.monotonic()
made = 0.0
while True:
    time.sleep(0.05)
    elapsed = min(time.monotonic() - start, seconds)
    progress.units(cap_mhz * elapsed - made, "token")
    made = cap_mhz * elapsed
    if elapsed >= seconds:
        os._exit(0)
"""
# And its power follows the mode: VDD_GPU_SOC per mode, the other three rails at their 5 W
# (5 V x (300 + 600 + 100) mA), so the board (the sum of the rails) draws 6, 14 and 14 W.
GPU_RAIL_MW = {"MAXN": 4000, "15W": 1000, "30W": 9000, "50W": 9000}
OTHER_RAILS_W = 5.0


@contextlib.contextmanager
def power_follows_the_mode(service: JtopService) -> Iterator[None]:
    """Rewrites the GPU rail as soon as the fake nvpmodel holds another mode (within 10 ms)."""
    stop = threading.Event()

    def follow() -> None:
        held = None
        while not stop.wait(0.01):
            try:
                mode = MODES[service.nvpmodel_mode()]
            except (OSError, ValueError):  # the state file between two writes
                continue
            if mode != held:
                service.set_rail("VDD_GPU_SOC", GPU_RAIL_MW[mode])
                held = mode

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)


def test_power_modes_compare_j_per_token_and_name_the_cheapest_that_keeps_a_rate(
    service_with_nvpmodel: StartService, tmp_path: Path
) -> None:
    """`carbontop run --power-modes 15W,30W,50W --min-throughput 500 -- python generate.py`.

    Worked by hand: J per token = board watts / tokens per second: 15W 6 / 420.75 = 0.01426,
    30W 14 / 624.75 = 0.02241, 50W 14 / 828.75 = 0.01689 (GPU: 1, 9 and 9 W over the same
    rates: 0.002377, 0.01441, 0.01086). 50W is faster and cheaper than 30W, so the Pareto front
    is 15W and 50W; 15W is the cheapest, but only 30W and 50W keep 500 tokens/s, and of those
    50W is the cheaper.
    """
    service = service_with_nvpmodel()
    (tmp_path / "generate.py").write_text(GENERATE)
    cap_file = FAKE_SYS / "class" / "devfreq" / service.board.gpu_devfreq / "max_freq"
    code = (
        "import sys, jtop.service\n"
        f"jtop.service.JTOP_PIPE = {service.pipe!r}\n"
        "from carbontop.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    with power_follows_the_mode(service):
        proc = subprocess.run(
            [sys.executable, "-c", code, "run", "--gpu-source", "jtop", "--interval", "0.25",
             "--duration", "20", "--power-modes", "15W,30W,50W", "--min-throughput", "500",
             "--cooldown-max", "1", "--output-dir", str(tmp_path), "--",
             sys.executable, str(tmp_path / "generate.py"), str(cap_file), "2.0"],
            capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    with open(tmp_path / "emissions.csv", newline="") as f:
        rows = {r["power_mode"]: r for r in csv.DictReader(f)}
    assert list(rows) == ["15W", "30W", "50W"]
    board_w = {m: OTHER_RAILS_W + GPU_RAIL_MW[m] / 1000 for m in rows}
    rate_hz = {"15W": 420.75, "30W": 624.75, "50W": 828.75}
    for mode, row in rows.items():
        window_s = float(row["window_duration_s"])  # written to the millisecond
        # The rails held still through each window: its energy is the mode's watts x seconds.
        assert float(row["window_total_energy_kwh"]) * 3.6e6 == pytest.approx(
            board_w[mode] * window_s, abs=board_w[mode] * 5e-4 + 1e-6), mode
        assert float(row["window_gpu_energy_kwh"]) * 3.6e6 == pytest.approx(
            GPU_RAIL_MW[mode] / 1000 * window_s, abs=GPU_RAIL_MW[mode] * 5e-7 + 1e-6), mode
        assert row["unit"] == "token"
        # Tokens at the cap's rate over the program's 2 s; the window also holds its exit.
        assert float(row["throughput_per_s"]) == pytest.approx(rate_hz[mode], rel=0.05), mode
        per_token = float(row["energy_per_unit_j"])
        assert per_token == pytest.approx(board_w[mode] / rate_hz[mode], rel=0.05), mode
        assert float(row["window_gpu_energy_per_unit_j"]) == pytest.approx(
            per_token * GPU_RAIL_MW[mode] / 1000 / board_w[mode], rel=1e-3), mode
    text = proc.stdout.splitlines()
    table = {line.split()[0]: line for line in text if line.split()[:1] in ([m] for m in rows)}
    # Slowest first; each row's figures are its one trial's, as emissions.csv has them.
    assert list(table) == ["15W", "30W", "50W"]
    for mode, line in table.items():
        assert f"{float(rows[mode]['throughput_per_s']):.4g} token/s" in line
        assert f"  {float(rows[mode]['energy_per_unit_j']):.4g}  " in line
        assert f"  {float(rows[mode]['window_gpu_energy_per_unit_j']):.4g}  " in line
    assert table["15W"].endswith("  yes") and table["50W"].endswith("  yes")
    assert table["30W"].endswith("  no (50W: faster, cheaper)")
    assert "J/token total: sum of all board rails (measured)" in text
    assert "least energy per unit: 15W; highest throughput: 50W" in text
    choice = [line for line in text if line.startswith("cheapest mode keeping 500 token/s: ")]
    assert choice == [f"cheapest mode keeping 500 token/s: 50W "
                      f"({float(rows['50W']['energy_per_unit_j']):.4g} J/token at "
                      f"{float(rows['50W']['throughput_per_s']):.4g} token/s)"]
    assert service.nvpmodel_mode() == 0  # MAXN is back
