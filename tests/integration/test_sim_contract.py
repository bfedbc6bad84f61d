"""The simulated board's jtop client keeps the real jtop client's shape (a contract test).

Most tests stand the simulator (carbontop/sources/sim.py) in for jtop. So that the two cannot
drift apart, the same reads carbontop's jtop source makes (power, uptime, stats, nvpmodel, gpu,
temperature, interval, board, jetson_clocks, cpu, ok()) run here against the simulated AGX Orin
and against the real jetson-stats client talking to the real service on an emulated AGX Orin
(tests/jtop_harness.py), and what each returns is compared shape for shape. Where the emulated
board lacks something a real board has (cpuidle states, jetson_clocks, two thermal zones), the
real client's shape must be contained in the simulator's, with the same types.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

import pytest

from carbontop.board_state import BoardState
from carbontop.sim.client import SimJtop
from carbontop.sim.service import SimJtopService
from carbontop.sources.jtop_state import read_board_state
from tests.jtop_harness import AGX_ORIN_MODES, JtopService, skip_reason

pytestmark = pytest.mark.jtop_service
INTERVAL = 0.25
READS = ("power", "uptime", "stats", "nvpmodel", "gpu", "temperature", "interval", "board",
         "jetson_clocks", "cpu")


def shape(value: Any) -> Any:
    """The structure of a value: mappings by key, sequences by their first item, leaves by
    kind (int and float are both "number": jtop gives either, carbontop reads both)."""
    if isinstance(value, Mapping) or (hasattr(value, "items") and hasattr(value, "values")):
        return {str(k): shape(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [shape(value[0])] if value else []
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if value is None:
        return "None"
    if isinstance(value, (str, timedelta, datetime)):
        return type(value).__name__
    return "object"


def contained(inner: Any, outer: Any, path: str = "") -> list[str]:
    """Where ``inner``'s shape is not part of ``outer``'s (same keys with the same kinds)."""
    if isinstance(inner, dict):
        if not isinstance(outer, dict):
            return [f"{path}: mapping vs {outer}"]
        return [p for k, v in inner.items() for p in
                ([f"{path}/{k}: missing"] if k not in outer else contained(v, outer[k],
                                                                        f"{path}/{k}"))]
    if isinstance(inner, list):
        if not isinstance(outer, list):
            return [f"{path}: sequence vs {outer}"]
        return contained(inner[0], outer[0], path + "[0]") if inner and outer else (
            [] if not inner else [f"{path}: empty"])
    return [] if inner == outer else [f"{path}: {inner} vs {outer}"]


def family(key: str) -> str:
    """A stats key without its board-specific part: CPU3 -> CPU*, "Temp gpu" -> "Temp *"."""
    key = re.sub(r"^CPU\d+$", "CPU*", key)
    return re.sub(r"^(Temp|Power) .+$", r"\1 *", key)


class Reads:
    """What one client answered to carbontop's reads, taken from one connected client."""

    def __init__(self, client: Any) -> None:
        client.start()
        try:
            first_ok = client.ok()
            self.ok_type = type(first_ok)
            assert first_ok is True
            self.raw = {name: getattr(client, name) for name in READS}
            self.shape = {name: shape(value) for name, value in self.raw.items()}
            nvp = self.raw["nvpmodel"]
            self.nvp = None if nvp is None else {
                "name": shape(nvp.name), "id": shape(nvp.id), "models": shape(list(nvp.models)),
                "str": shape(str(nvp))}
            self.jetson_clocks_bool = (None if self.raw["jetson_clocks"] is None
                                       else type(bool(self.raw["jetson_clocks"])))
            self.board_state = read_board_state(client)
            uptime_before = client.uptime
            assert client.ok()
            assert client.ok()
            self.uptime_step_s = (client.uptime - uptime_before).total_seconds()
        finally:
            client.close()


@pytest.fixture(scope="module")
def both() -> Iterator[tuple[Reads, Reads]]:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    sim = Reads(SimJtop(SimJtopService("agx-orin", power_mode="MAXN"))(INTERVAL))
    with JtopService("agx-orin", nvpmodel=AGX_ORIN_MODES, nvpmodel_mode=0) as service:
        real = Reads(service.client_factory(INTERVAL))
    yield sim, real


def test_power_dict_is_the_same_shape(both: tuple[Reads, Reads]) -> None:
    sim, real = both
    # the same board: the same rails, each with the same keys and kinds, and the same total
    assert sim.shape["power"] == real.shape["power"]
    assert set(real.shape["power"]) == {"rail", "tot"}
    assert real.shape["power"]["rail"]["VDD_GPU_SOC"]["power"] == "number"


def test_uptime_interval_and_ok(both: tuple[Reads, Reads]) -> None:
    sim, real = both
    assert sim.shape["uptime"] == real.shape["uptime"] == "timedelta"
    assert sim.shape["interval"] == real.shape["interval"] == "number"
    assert sim.raw["interval"] == real.raw["interval"] == INTERVAL  # the first client's pace
    assert sim.ok_type is real.ok_type is bool
    # two more samples: uptime moved on by about two intervals on both
    for reads in (sim, real):
        assert 0 < reads.uptime_step_s < 10 * INTERVAL, reads.uptime_step_s


def test_stats_keys_and_kinds(both: tuple[Reads, Reads]) -> None:
    sim, real = both
    sim_families = {family(k): v for k, v in sim.shape["stats"].items()}
    real_families = {family(k): v for k, v in real.shape["stats"].items()}
    if real.raw["jetson_clocks"] is None:  # the emulated board has no jetson_clocks
        sim_families.pop("jetson_clocks", None)
    assert sim_families == real_families
    assert real_families["GPU"] == "number"  # what carbontop reads for the GPU load
    assert real_families["time"] == "datetime" and real_families["uptime"] == "timedelta"


def test_nvpmodel_object(both: tuple[Reads, Reads]) -> None:
    sim, real = both
    assert sim.nvp == real.nvp == {"name": "str", "id": "number", "models": ["str"],
                                   "str": "str"}
    assert list(sim.raw["nvpmodel"].models) == list(real.raw["nvpmodel"].models)
    assert sim.raw["nvpmodel"].name == real.raw["nvpmodel"].name == "MAXN"


def test_gpu_temperature_board_and_cpu(both: tuple[Reads, Reads]) -> None:
    sim, real = both
    # one iGPU, the same name; the emulated board's entry (no TPC power-gating file there)
    # within the simulator's, and what carbontop reads (load, current and cap clocks) in both
    assert set(sim.shape["gpu"]) == set(real.shape["gpu"]) == {"ga10b"}
    assert contained(real.shape["gpu"], sim.shape["gpu"]) == []
    for reads in (sim, real):
        gpu = reads.shape["gpu"]["ga10b"]
        assert gpu["status"]["load"] == gpu["freq"]["cur"] == gpu["freq"]["max"] == "number"
    # each thermal zone the same shape; the emulated board has fewer zones than the simulator's
    zone = {"temp": "number", "online": "bool"}
    assert all(z == zone for z in sim.shape["temperature"].values())
    assert all(z == zone for z in real.shape["temperature"].values())
    assert set(real.shape["temperature"]) <= set(sim.shape["temperature"])
    # board: what carbontop reads (hardware's Model, Module, L4T, Jetpack) and the rest's kinds
    for key in ("Model", "Module", "L4T", "Jetpack"):
        assert sim.shape["board"]["hardware"][key] == real.shape["board"]["hardware"][key]
    # the same module, the simulator saying it is simulated
    assert "AGX Orin (64GB" in real.raw["board"]["hardware"]["Module"]
    assert sim.raw["board"]["hardware"]["Module"] == "Simulated Jetson AGX Orin (64GB)"
    # cpu: the real emulated board's per-core keys (no cpuidle there) within the simulator's
    assert contained(real.shape["cpu"], sim.shape["cpu"]) == []
    assert sim.shape["cpu"]["cpu"][0]["freq"] == real.shape["cpu"]["cpu"][0]["freq"]
    # jetson_clocks: None where absent, else an object that bool() reads as on/off
    assert sim.jetson_clocks_bool in (None, bool) and real.jetson_clocks_bool in (None, bool)


def test_carbontop_reads_the_same_board_state_from_both(both: tuple[Reads, Reads]) -> None:
    sim, real = both
    for reads in (sim, real):
        state = reads.board_state
        assert isinstance(state, BoardState)
        assert state.nvpmodel_name == "MAXN" and state.nvpmodel_id == 0
        for value in (state.cpu_freq_mhz, state.gpu_freq_mhz, state.max_temp_c,
                      state.cpu_max_freq_mhz, state.gpu_max_freq_mhz):
            assert isinstance(value, float) and value > 0, state
        assert isinstance(state.cpu_online, int) and state.cpu_online > 0
