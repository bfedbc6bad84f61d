"""A simulated Jetson, shaped exactly like jtop's client, read through :class:`JtopSource`.

The demo and the tests exercise the real jtop logic (mW to W, rail choice, input rail vs sum,
repeated samples, lost and regained service) without a board. :class:`SimJtopService` plays the
jtop service (it is the ``client_factory``); :class:`SimJtopClient` plays ``jtop.jtop`` with the
attributes JtopSource uses: ``start``, ``close``, ``ok``, ``power``, ``uptime``, ``interval``,
``board``, ``gpu``, ``stats``, ``nvpmodel``, ``jetson_clocks``.

Rail power follows a :class:`SimLoad` that the session updates from another thread: the GPU rail
follows the workload phase, the CPU rail the workload's CPU use. Noise comes from
``random.Random`` seeded by (seed, tick), so a seed gives the same value at the same tick.

Each board has a few nvpmodel power modes (:class:`SimPowerMode`, figures approximate, after
NVIDIA's published mode tables). The rails' idle and peak watts are those of the board's default
mode; in another mode the GPU-driven part of a rail scales with (GPU MHz / default GPU MHz)^1.5
and the CPU-driven part with (online cores / default cores) x (CPU MHz / default CPU MHz)^1.5:
dynamic power grows faster than the clock, the voltage rising with it. Setting a mode through
the client (``jetson.nvpmodel = id``) takes effect one simulated second later, like the real
service running ``nvpmodel -m``. Temperatures follow the module's power with a 30 s lag;
jetson_clocks is off.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from carbontop.errors import BadInput
from carbontop.model import Phase
from carbontop.sources.jtop import JtopSource

SIM_UPTIME0_S = 4242.0  # the simulated board's uptime when the sim service starts
MAX_POLL_S = 0.25  # longest real wait inside ok() before looking at the clock (and outages) again
WARMUP_RAMP_S = 8.0  # simulated seconds for the warm-up ramp to reach full load
MODE_SWITCH_S = 1.0  # simulated seconds the service takes to run `nvpmodel -m`
FREQ_EXPONENT = 1.5  # dynamic power ~ clock^1.5 (the voltage rises with the clock)
AMBIENT_C = 36.0
THERMAL_TAU_S = 30.0  # simulated seconds for the die to get 63 % of the way to a new level
HOT_RISE_C = 38.0  # die rise over ambient at the default mode's full load
TEMP_OFFLINE = -256  # jtop's value for an offline sensor

# Sensor names as jtop 7 derives them from the thermal zones, each with its offset from the
# die (None: offline, reads -256, like Orin's CV sensors on many modules).
SIM_SENSORS: dict[str, tuple[tuple[str, float | None], ...]] = {
    "tegra234": (
        ("cpu", 0.0), ("cv0", None), ("gpu", -1.5), ("soc0", -4.0), ("soc1", -3.5),
        ("soc2", -4.5), ("tj", 1.0),
    ),
    "tegra194": (
        ("AO", -6.0), ("AUX", -4.0), ("CPU", 0.0), ("GPU", -1.0), ("PLL", -3.0),
        ("thermal", 0.5),
    ),
    "tegra210": (("AO", -5.0), ("CPU", 0.0), ("GPU", -1.5), ("PLL", -2.0), ("thermal", -0.5)),
}


class SimJtopException(Exception):
    """Raised like ``jtop.JtopException``, with its texts (the jtop package is never imported)."""


@dataclass(frozen=True)
class SimRail:
    """One INA3221 channel: idle and peak watts, and how much of each load drives it."""

    name: str
    idle_w: float
    peak_w: float
    gpu: float = 0.0  # weight of the GPU load (0..1)
    cpu: float = 0.0  # weight of the CPU load (0..1)
    volt_mv: int = 5000


@dataclass(frozen=True)
class SimPowerMode:
    """One nvpmodel mode: its name and the caps it sets (its id is its index on the board)."""

    name: str
    cpu_max_mhz: float
    cores_online: int
    gpu_max_mhz: float
    needs_reboot: bool = False  # a different GPU power-gating mask: jtop will not switch to it


@dataclass(frozen=True)
class SimBoard:
    """A simulated module: its rails, its input rail (None: jtop sums the rails), its modes."""

    key: str
    module: str  # what jtop's board['hardware']['Module'] says; JtopSource's device_name
    model: str
    soc: str
    gpu_name: str
    l4t: str
    jetpack: str
    nvpmodel: str
    cpus: int
    rails: tuple[SimRail, ...]
    input_rail: str | None = None
    input_base_w: float = 0.0  # input = base + factor x (sum of the module rails)
    input_factor: float = 1.0
    modes: tuple[SimPowerMode, ...] = ()  # by id; ``nvpmodel`` names the default one
    cpu_min_mhz: float = 729.6  # where the governors park the clocks when idle
    gpu_min_mhz: float = 306.0

    def mode_id(self, name: str) -> int:
        """The id of mode ``name``; BadInput listing the modes otherwise."""
        for idx, mode in enumerate(self.modes):
            if mode.name == name:
                return idx
        modes = ", ".join(m.name for m in self.modes)
        raise BadInput(f"unknown power mode {name!r} for {self.key}: choose one of {modes}")

    @property
    def default_mode(self) -> SimPowerMode:
        return self.modes[self.mode_id(self.nvpmodel)]


def _m(name: str, cpu_mhz: float, cores: int, gpu_mhz: float) -> SimPowerMode:
    return SimPowerMode(name, cpu_max_mhz=cpu_mhz, cores_online=cores, gpu_max_mhz=gpu_mhz)


SIM_BOARDS: dict[str, SimBoard] = {
    "agx-orin": SimBoard(
        key="agx-orin",
        module="Simulated Jetson AGX Orin (64GB)",
        model="Jetson AGX Orin Developer Kit (simulated)",
        soc="tegra234",
        gpu_name="ga10b",
        l4t="36.4.3",
        jetpack="6.2",
        nvpmodel="MAXN",
        cpus=12,
        rails=(
            SimRail("VDD_GPU_SOC", 2.4, 30.0, gpu=0.92, cpu=0.08),
            SimRail("VDD_CPU_CV", 0.8, 12.0, gpu=0.05, cpu=0.95),
            SimRail("VIN_SYS_5V0", 3.2, 6.5, gpu=0.4, cpu=0.3),
            SimRail("VDDQ_VDD2_1V8AO", 0.6, 3.2, gpu=0.6, cpu=0.3),
        ),
        modes=(
            _m("MAXN", 2201.6, 12, 1301.0),
            _m("15W", 1113.6, 4, 420.75),
            _m("30W", 1728.0, 8, 624.75),
            _m("50W", 1497.6, 12, 828.75),
        ),
    ),
    "orin-nx": SimBoard(
        key="orin-nx",
        module="Simulated Jetson Orin NX (16GB)",
        model="NVIDIA Orin NX Developer Kit (simulated)",
        soc="tegra234",
        gpu_name="ga10b",
        l4t="36.4.3",
        jetpack="6.2",
        nvpmodel="25W",
        cpus=8,
        rails=(
            SimRail("VDD_CPU_GPU_CV", 1.1, 15.0, gpu=0.7, cpu=0.3),
            SimRail("VDD_SOC", 1.3, 4.2, gpu=0.6, cpu=0.2),
        ),
        input_rail="VDD_IN",
        input_base_w=2.1,
        input_factor=1.12,
        modes=(
            _m("MAXN", 1984.0, 8, 918.0),
            _m("10W", 1190.4, 4, 408.0),
            _m("15W", 1497.6, 4, 612.0),
            _m("25W", 1497.6, 8, 918.0),
        ),
    ),
    "orin-nano": SimBoard(
        key="orin-nano",
        module="Simulated Jetson Orin Nano (8GB)",
        model="NVIDIA Jetson Orin Nano Developer Kit (simulated)",
        soc="tegra234",
        gpu_name="ga10b",
        l4t="36.4.3",
        jetpack="6.2",
        nvpmodel="15W",
        cpus=6,
        rails=(
            SimRail("VDD_CPU_GPU_CV", 0.8, 8.5, gpu=0.7, cpu=0.3),
            SimRail("VDD_SOC", 1.0, 3.0, gpu=0.6, cpu=0.2),
        ),
        input_rail="VDD_IN",
        input_base_w=1.6,
        input_factor=1.12,
        modes=(
            _m("15W", 1497.6, 6, 624.75),
            _m("25W", 1728.0, 6, 918.0),
            _m("7W", 960.0, 4, 408.0),
        ),
    ),
    "nano": SimBoard(
        key="nano",
        module="Simulated Jetson Nano (4GB)",
        model="NVIDIA Jetson Nano Developer Kit (simulated)",
        soc="tegra210",
        gpu_name="gpu",
        l4t="32.7.4",
        jetpack="4.6.4",
        nvpmodel="MAXN",
        cpus=4,
        rails=(
            SimRail("POM_5V_GPU", 0.05, 4.6, gpu=1.0),
            SimRail("POM_5V_CPU", 0.4, 3.3, gpu=0.05, cpu=0.95),
        ),
        input_rail="POM_5V_IN",
        input_base_w=1.3,
        input_factor=1.1,
        modes=(
            _m("MAXN", 1479.0, 4, 921.6),
            _m("5W", 918.0, 2, 640.0),
        ),
        cpu_min_mhz=102.0,
        gpu_min_mhz=76.8,
    ),
    "xavier-nx": SimBoard(
        key="xavier-nx",
        module="Simulated Jetson Xavier NX (8GB)",
        model="NVIDIA Jetson Xavier NX Developer Kit (simulated)",
        soc="tegra194",
        gpu_name="gv11b",
        l4t="35.4.1",
        jetpack="5.1.2",
        nvpmodel="MODE_20W_6CORE",
        cpus=6,
        rails=(
            SimRail("VDD_CPU_GPU_CV", 1.0, 12.5, gpu=0.7, cpu=0.3),
            SimRail("VDD_SOC", 1.4, 3.6, gpu=0.6, cpu=0.2),
        ),
        input_rail="VDD_IN",
        input_base_w=1.9,
        input_factor=1.12,
        modes=(
            _m("MODE_15W_2CORE", 1907.2, 2, 1109.25),
            _m("MODE_15W_4CORE", 1420.8, 4, 1109.25),
            _m("MODE_15W_6CORE", 1420.8, 6, 1109.25),
            _m("MODE_10W_2CORE", 1497.6, 2, 803.25),
            _m("MODE_10W_4CORE", 1190.4, 4, 803.25),
            _m("MODE_20W_6CORE", 1420.8, 6, 1109.25),
        ),
        cpu_min_mhz=1190.4,
        gpu_min_mhz=114.75,
    ),
    "agx-xavier": SimBoard(
        key="agx-xavier",
        module="Simulated Jetson AGX Xavier (32GB)",
        model="Jetson-AGX (simulated)",
        soc="tegra194",
        gpu_name="gv11b",
        l4t="35.4.1",
        jetpack="5.1.2",
        nvpmodel="MODE_30W_ALL",
        cpus=8,
        rails=(
            SimRail("GPU", 0.3, 18.0, gpu=1.0),
            SimRail("CPU", 0.5, 9.0, gpu=0.05, cpu=0.95),
            SimRail("SOC", 1.6, 4.2, gpu=0.5, cpu=0.3),
            SimRail("CV", 0.0, 0.4),
            SimRail("VDDRQ", 0.6, 2.6, gpu=0.6, cpu=0.3),
            SimRail("SYS5V", 2.2, 4.8, gpu=0.4, cpu=0.3),
        ),
        modes=(
            _m("MAXN", 2265.6, 8, 1377.0),
            _m("MODE_10W", 1200.0, 2, 520.0),
            _m("MODE_15W", 1200.0, 4, 670.0),
            _m("MODE_30W_ALL", 1200.0, 8, 900.0),
        ),
        cpu_min_mhz=1190.4,
        gpu_min_mhz=114.75,
    ),
}

DEFAULT_SIM_BOARD = "agx-orin"


def sim_board(name: str) -> SimBoard:
    """The profile called ``name``; BadInput listing the valid names otherwise."""
    try:
        return SIM_BOARDS[name]
    except KeyError:
        raise BadInput(
            f"unknown simulated board {name!r}: choose one of {', '.join(SIM_BOARDS)}"
        ) from None


class SimLoad:
    """What the simulated board is doing; thread-safe, updated by the session."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._phase: Phase | None = None
        self._cpu_fraction = 0.0
        self._gpu_intensity = 1.0

    def set_phase(self, phase: Phase | None) -> None:
        """The workload's phase (None: no workload)."""
        with self._lock:
            self._phase = phase

    def set_cpu_fraction(self, f: float) -> None:
        """The workload's real CPU use, 0..1 of the whole machine."""
        with self._lock:
            self._cpu_fraction = min(1.0, max(0.0, float(f)))

    def set_gpu_intensity(self, x: float) -> None:
        """How hard the workload drives the GPU when measuring, 0..1 (default 1)."""
        with self._lock:
            self._gpu_intensity = min(1.0, max(0.0, float(x)))

    def snapshot(self) -> tuple[Phase | None, float, float]:
        """(phase, cpu fraction, gpu intensity), read together."""
        with self._lock:
            return self._phase, self._cpu_fraction, self._gpu_intensity


@dataclass
class _Tick:
    """One sample of the simulated service, as jtop's client would hold it."""

    index: int
    uptime_s: float
    power: dict[str, Any]
    gpu_load: float
    cpu_loads: list[float] = field(default_factory=list)
    mode_id: int = 0
    cpu_khz: int = 0  # current frequency of the online cores
    cpu_max_khz: int = 0
    gpu_khz: int = 0
    gpu_max_khz: int = 0
    temperature: dict[str, dict[str, Any]] = field(default_factory=dict)


def _scale(value: float, default: float) -> float:
    return (value / default) ** FREQ_EXPONENT if default > 0 else 1.0


class SimJtopService:
    """The simulated jtop service; calling it makes a client (it is JtopSource's factory).

    ``clock`` returns simulated seconds; by default it is ``time.monotonic()`` sped up by
    ``time_scale`` (simulated seconds per real second: 100 makes a 0.5 s interval last 5 ms).
    """

    def __init__(
        self,
        board: str = DEFAULT_SIM_BOARD,
        seed: int = 0,
        load: SimLoad | None = None,
        clock: Callable[[], float] | None = None,
        time_scale: float = 1.0,
        repeat_every: int = 0,
        power_mode: str | None = None,
    ) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.board = sim_board(board)
        self.seed = int(seed)
        self.load = load or SimLoad()
        self.time_scale = float(time_scale)
        self.repeat_every = int(repeat_every)  # every Nth ok() hands out the same sample again
        if clock is None:
            real0 = time.monotonic()
            scale = self.time_scale

            def scaled() -> float:
                return (time.monotonic() - real0) * scale

            clock = scaled
        self.clock = clock
        self._t0 = self.clock()
        self._lock = threading.RLock()
        self._interval: float | None = None  # fixed by the first client, like jtop's service
        self._generation = 0  # bumps on every outage: older connections are broken
        self._down_until = -math.inf
        self._stall = False
        self._avg: dict[str, int] = {}
        self._ticks: dict[int, _Tick] = {}
        self._phase_seen: Phase | None = None
        self._phase_t0 = 0.0
        # nvpmodel: the mode now, a pending switch (id, effective at), modes refused
        self._mode_id = self.board.mode_id(power_mode or self.board.nvpmodel)
        self._pending: tuple[int, float] | None = None
        self._mode_status = [not m.needs_reboot for m in self.board.modes]
        self._refused: set[int] = set()
        self._cap_factor = 1.0  # < 1: thermal throttling lowered the clock caps
        self._failed_rails: set[str] = set()  # rails whose reading fails (fail_rail)
        self._die_c: float | None = None
        self._die_t = 0.0
        full_w = sum(r.peak_w for r in self.board.rails)
        self._c_per_w = HOT_RISE_C / full_w if full_w > 0 else 0.0

    # -- the service side ---------------------------------------------------------------------
    def __call__(self, interval: float) -> SimJtopClient:
        """A new client, like ``jtop(interval=interval)``."""
        return SimJtopClient(self, interval)

    def now(self) -> float:
        """Simulated seconds since this service started."""
        return self.clock() - self._t0

    @property
    def up(self) -> bool:
        return self.now() >= self._down_until

    def outage(self, seconds: float, stall: bool = False) -> None:
        """The service goes away for ``seconds`` (simulated), then comes back.

        Clients connected now are broken for good: their ``ok()`` raises BrokenPipeError, or
        with ``stall`` returns False after 3 intervals. New clients fail to start until it is back.
        """
        with self._lock:
            self._generation += 1
            self._down_until = self.now() + float(seconds)
            self._stall = stall

    @property
    def interval_s(self) -> float:
        """The tick interval, fixed by the first client (0.5 s until one connects)."""
        with self._lock:
            return self._interval if self._interval is not None else 0.5

    def _connect(self, interval: float) -> tuple[int, float]:
        with self._lock:
            if self.now() < self._down_until:
                raise SimJtopException(
                    "The jtop.service is not active. Please run:\nsudo jtop --install-service"
                )
            if self._interval is None:
                self._interval = max(0.02, float(interval))
            return self._generation, self._interval

    def _connection_state(self, generation: int) -> str:
        """'ok', 'broken' (raise) or 'stalled' (ok() False) for a client of ``generation``."""
        with self._lock:
            if generation == self._generation:
                return "ok"
            return "stalled" if self._stall else "broken"

    # -- nvpmodel ------------------------------------------------------------------------------
    @property
    def power_modes(self) -> list[str]:
        """The board's mode names, by id."""
        return [m.name for m in self.board.modes]

    def mode_id_at(self, at_s: float) -> int:
        """The mode in force at simulated time ``at_s`` (a pending switch lands at its time)."""
        with self._lock:
            pending = self._pending
            if pending is not None and at_s >= pending[1]:
                target = pending[0]
                self._pending = None
                if target in self._refused:
                    self._mode_status[target] = False  # `nvpmodel -m` printed NVPM ERROR
                else:
                    self._mode_id = target
                    self._mode_status[target] = True
            return self._mode_id

    @property
    def power_mode(self) -> SimPowerMode:
        """The mode in force now."""
        return self.board.modes[self.mode_id_at(self.now())]

    @property
    def mode_status(self) -> list[bool]:
        """jtop's per-mode flags: False for a mode the service will not or could not set."""
        with self._lock:
            return list(self._mode_status)

    def request_mode(self, mode_id: int) -> None:
        """What the service does on ``jetson.nvpmodel = id``: runs ``nvpmodel -m`` (takes
        MODE_SWITCH_S); nothing when a switch is running or the mode needs a reboot."""
        with self._lock:
            if not 0 <= mode_id < len(self.board.modes):
                raise SimJtopException(
                    f"NV Power Model ID {mode_id} does not exists! Range [0, "
                    f"{len(self.board.modes) - 1}]"
                )
            self.mode_id_at(self.now())
            if self._pending is not None or not self._mode_status[mode_id]:
                return
            self._pending = (mode_id, self.now() + MODE_SWITCH_S)

    def refuse_mode(self, name: str) -> None:
        """From now on ``nvpmodel -m`` fails for ``name`` (tests: a service that refuses)."""
        with self._lock:
            self._refused.add(self.board.mode_id(name))

    def fail_rail(self, name: str) -> None:
        """From the next tick on, rail ``name`` does not read, as when its sysfs file fails:
        jtop leaves it out of ``power['rail']`` and, for the input rail, makes ``tot`` the plain
        sum of the other rails (tests: a rail missing from a tick)."""
        known = [r.name for r in self.board.rails] + [self.board.input_rail or ""]
        if not name or name not in known:
            raise ValueError(f"{name!r} is not a rail of {self.board.key}")
        with self._lock:
            self._failed_rails.add(name)

    def restore_rail(self, name: str) -> None:
        """Undoes :meth:`fail_rail` from the next tick on."""
        with self._lock:
            self._failed_rails.discard(name)

    def throttle(self, factor: float = 1.0) -> None:
        """Thermal throttling: the clock caps drop to ``factor`` x the mode's (1.0: none)."""
        with self._lock:
            self._cap_factor = min(1.0, max(0.05, float(factor)))

    def relative_speed(self) -> float:
        """How fast a GPU-bound workload runs in the mode now, relative to the default mode
        (the ratio of GPU clock caps): a demo can slow its work down by this much."""
        mode, default = self.power_mode, self.board.default_mode
        return mode.gpu_max_mhz * self._cap_factor / default.gpu_max_mhz

    def tick_index(self, at_s: float | None = None) -> int:
        """The index of the latest tick at simulated time ``at_s`` (default now)."""
        step = self.interval_s
        return int(math.floor((self.now() if at_s is None else at_s) / step + 1e-9))

    def tick_time(self, index: int) -> float:
        return index * self.interval_s

    def tick(self, index: int) -> _Tick:
        """The sample of tick ``index`` (made once, then shared by every client)."""
        with self._lock:
            cached = self._ticks.get(index)
            if cached is not None:
                return cached
            tick = self._make_tick(index)
            self._ticks[index] = tick
            for old in [k for k in self._ticks if k < index - 8]:
                del self._ticks[old]
            return tick

    def _levels(self, at_s: float) -> tuple[float, float]:
        """(GPU level, CPU level), 0..1 each, from the load at simulated time ``at_s``."""
        phase, cpu_fraction, intensity = self.load.snapshot()
        if phase != self._phase_seen:
            self._phase_seen, self._phase_t0 = phase, at_s
        if phase is Phase.LOADING:
            gpu = 0.12
        elif phase is Phase.WARMUP:
            ramp = min(1.0, max(0.0, (at_s - self._phase_t0) / WARMUP_RAMP_S))
            gpu = (0.35 + 0.55 * ramp) * intensity
        elif phase is Phase.MEASURING:
            gpu = 0.95 * intensity
        else:
            gpu = 0.0
        cpu = min(1.0, cpu_fraction + 0.05 * gpu)
        return gpu, cpu

    def _make_tick(self, index: int) -> _Tick:
        rng = random.Random(self.seed * 1_000_003 + index)
        board = self.board
        at_s = self.tick_time(index)
        gpu_level, cpu_level = self._levels(at_s)
        mode_id = self.mode_id_at(at_s)
        mode, default = board.modes[mode_id], board.default_mode
        cap = self._cap_factor
        gpu_scale = _scale(mode.gpu_max_mhz * cap, default.gpu_max_mhz)
        cpu_scale = (mode.cores_online / default.cores_online) * _scale(
            mode.cpu_max_mhz * cap, default.cpu_max_mhz
        )
        top = max(1.0, gpu_scale, cpu_scale)  # 1.0 in the default mode: the rails' own peak
        noise = 0.04 if gpu_level > 0.5 else 0.02
        rails: dict[str, dict[str, Any]] = {}
        module_w = 0.0
        for rail in board.rails:
            drive = min(top, rail.gpu * gpu_level * gpu_scale + rail.cpu * cpu_level * cpu_scale)
            watts = rail.idle_w + (rail.peak_w - rail.idle_w) * drive
            watts = max(0.0, watts * (1.0 + rng.gauss(0.0, noise)))
            module_w += watts
            rails[rail.name] = self._rail_values(rail.name, watts, rail.volt_mv, rng)
        for name in self._failed_rails:
            rails.pop(name, None)  # jtop skips a rail whose files do not read
        total: dict[str, Any]
        if board.input_rail and board.input_rail not in self._failed_rails:
            watts = board.input_base_w + board.input_factor * module_w
            watts *= 1.0 + rng.gauss(0.0, 0.01)
            total = self._rail_values(board.input_rail, watts, 5000, rng)
            total["name"] = board.input_rail
        else:
            total = {
                "power": sum(r["power"] for r in rails.values()),
                "avg": sum(r["avg"] for r in rails.values()),
            }
        uptime = SIM_UPTIME0_S + at_s + rng.uniform(0.0, 0.004)
        gpu_load = 0.0 if gpu_level == 0 else min(99.9, 100 * gpu_level + rng.gauss(0, 2.0))
        cpu_loads = [
            min(100.0, max(0.0, 100 * cpu_level + rng.gauss(0, 3.0))) for _ in range(board.cpus)
        ]
        # Governors: the clocks climb from their idle floor to the mode's cap with the load.
        cpu_cap = mode.cpu_max_mhz * cap
        gpu_cap = mode.gpu_max_mhz * cap
        cpu_mhz = min(cpu_cap, board.cpu_min_mhz + (cpu_cap - board.cpu_min_mhz) * min(
            1.0, cpu_level / 0.3))
        gpu_mhz = min(gpu_cap, board.gpu_min_mhz + (gpu_cap - board.gpu_min_mhz) * min(
            1.0, gpu_level / 0.6))
        return _Tick(
            index=index,
            uptime_s=round(uptime, 2),  # /proc/uptime has 10 ms resolution
            power={"rail": rails, "tot": total},
            gpu_load=round(max(0.0, gpu_load), 1),
            cpu_loads=cpu_loads,
            mode_id=mode_id,
            cpu_khz=int(round(cpu_mhz * 1000)),
            cpu_max_khz=int(round(cpu_cap * 1000)),
            gpu_khz=int(round(gpu_mhz * 1000)),
            gpu_max_khz=int(round(gpu_cap * 1000)),
            temperature=self._temperatures(at_s, module_w, rng),
        )

    def _temperatures(
        self, at_s: float, module_w: float, rng: random.Random
    ) -> dict[str, dict[str, Any]]:
        """jtop's temperature dict: the die follows the module's power with a lag."""
        target = AMBIENT_C + self._c_per_w * module_w
        with self._lock:
            if self._die_c is None:
                self._die_c = AMBIENT_C + self._c_per_w * sum(r.idle_w for r in self.board.rails)
            dt = max(0.0, at_s - self._die_t)
            self._die_t = max(self._die_t, at_s)
            self._die_c += (target - self._die_c) * (1.0 - math.exp(-dt / THERMAL_TAU_S))
            die = self._die_c
        sensors: dict[str, dict[str, Any]] = {}
        for name, offset in SIM_SENSORS.get(self.board.soc, SIM_SENSORS["tegra234"]):
            if offset is None:
                sensors[name] = {"temp": TEMP_OFFLINE, "online": False}
            else:
                temp = round((die + offset + rng.gauss(0.0, 0.2)) * 2) / 2  # 0.5 C steps
                sensors[name] = {"temp": temp, "online": True}
        return sensors

    def _rail_values(
        self, name: str, watts: float, volt_mv: int, rng: random.Random
    ) -> dict[str, Any]:
        """jtop's per-rail dict: mV, mA, mW (ints, power = volt x curr like the hwmon driver)."""
        volt = int(round(volt_mv * (1.0 + rng.gauss(0.0, 0.002))))
        curr = int(round(watts * 1e6 / volt))
        power = int(volt * (float(curr) / 1000))
        avg = (power + self._avg[name]) // 2 if name in self._avg else power
        self._avg[name] = avg  # jtop's "avg": (power + previous avg) // 2, not a time average
        return {
            "volt": volt,
            "curr": curr,
            "warn": 32760,
            "crit": 32760,
            "power": power,
            "online": True,
            "avg": avg,
        }

    def hardware(self) -> dict[str, str]:
        board = self.board
        return {
            "Model": board.model,
            "Module": board.module,
            "SoC": board.soc,
            "CUDA Arch BIN": {"tegra234": "8.7", "tegra194": "7.2"}.get(board.soc, "5.3"),
            "Serial Number": f"SIM{self.seed:010d}",
            "L4T": board.l4t,
            "Jetpack": board.jetpack,
        }


class SimJtopClient:
    """A client of :class:`SimJtopService` with the jtop client's attributes."""

    def __init__(self, service: SimJtopService, interval: float) -> None:
        self._service = service
        self._interval_user = float(interval)
        self._interval = 0.0
        self._generation = -1
        self._tick: _Tick | None = None
        self._started = False
        self._closed = threading.Event()
        self._delivered = 0
        self._fresh = False  # jtop's first ok() after start() returns at once

    # -- lifetime -----------------------------------------------------------------------------
    def start(self) -> None:
        """Connects (raises like jtop when the service is down) and loads the first sample."""
        if self._started:
            raise RuntimeError("threads can only be started once")
        self._generation, self._interval = self._service._connect(self._interval_user)
        self._started = True
        self._tick = self._service.tick(self._service.tick_index())
        self._fresh = True

    def close(self) -> None:
        self._closed.set()

    def outage(self, seconds: float, stall: bool = False) -> None:
        """The service this client talks to goes down for ``seconds`` (simulated)."""
        self._service.outage(seconds, stall=stall)

    def _wait_until(self, sim_t: float) -> bool:
        """Blocks until simulated time ``sim_t``; False when closed meanwhile."""
        service = self._service
        while not self._closed.is_set():
            remaining = sim_t - service.now()
            if remaining <= 0:
                return True
            self._closed.wait(min(MAX_POLL_S, remaining / service.time_scale))
        return False

    def ok(self, spin: bool = False) -> bool:
        """Blocks until the next sample (at most 3 intervals); False once closed or stalled."""
        if not self._started or self._closed.is_set():
            return False
        service = self._service
        if self._fresh:
            self._fresh = False
            return self._check()
        last = self._tick.index if self._tick is not None else -1
        self._delivered += 1
        if service.repeat_every and self._delivered % service.repeat_every == 0:
            # Hand out the same sample again (same uptime): the consumer must drop it.
            if not spin and not self._wait_until(service.tick_time(last + 1)):
                return False
            return self._check()
        if not spin and not self._wait_until(service.tick_time(last + 1)):
            return False
        if not self._check():
            return False
        index = service.tick_index()
        if index > last:
            self._tick = service.tick(index)
        return True

    def _check_alive(self) -> bool:
        """For a request: raises BrokenPipeError on a broken connection, like jtop's queue."""
        if self._service._connection_state(self._generation) == "broken":
            raise BrokenPipeError(32, "Broken pipe")
        return not self._closed.is_set()

    def _check(self) -> bool:
        state = self._service._connection_state(self._generation)
        if state == "broken":
            raise BrokenPipeError(32, "Broken pipe")
        if state == "stalled":
            self._wait_until(self._service.now() + 3 * self._interval_user)
            return False
        return True

    # -- data ---------------------------------------------------------------------------------
    def _current(self) -> _Tick:
        if self._tick is None:
            raise SimJtopException("Error connection")
        return self._tick

    @property
    def interval(self) -> float:
        return self._interval

    @property
    def interval_user(self) -> float:
        return self._interval_user

    @property
    def power(self) -> dict[str, Any]:
        return self._current().power

    @property
    def uptime(self) -> timedelta:
        return timedelta(seconds=self._current().uptime_s)

    @property
    def board(self) -> dict[str, Any]:
        return {
            "platform": {"Machine": "aarch64", "System": "Linux", "Distribution": "Ubuntu"},
            "hardware": self._service.hardware(),
            "libraries": {"CUDA": "", "OpenCV": "", "OpenCV-Cuda": False},
        }

    @property
    def gpu(self) -> dict[str, Any]:
        tick = self._current()
        return {
            self._service.board.gpu_name: {
                "type": "integrated",
                "status": {
                    "railgate": False,
                    "tpc_pg_mask": False,
                    "3d_scaling": True,
                    "load": tick.gpu_load,
                },
                "freq": {
                    "governor": "nvhost_podgov",
                    "cur": tick.gpu_khz,
                    "max": tick.gpu_max_khz,
                    "min": int(round(self._service.board.gpu_min_mhz * 1000)),
                },
            }
        }

    @property
    def cpu(self) -> dict[str, Any]:
        """jtop's CPU dict: 'total' and one entry per core (kHz; offline cores say so only)."""
        tick = self._current()
        board = self._service.board
        online = board.modes[tick.mode_id].cores_online
        min_khz = int(round(board.cpu_min_mhz * 1000))
        cores: list[dict[str, Any]] = []
        for idx, load in enumerate(tick.cpu_loads):
            if idx >= online:
                cores.append({"online": False, "model": "ARMv8 Processor (simulated)"})
                continue
            freq = {"min": min_khz, "max": tick.cpu_max_khz, "cur": tick.cpu_khz}
            cores.append({
                "online": True,
                "governor": "schedutil",
                "freq": freq,
                "info_freq": dict(freq),
                "idle_state": {},
                "user": load * 0.8,
                "nice": 0.0,
                "system": load * 0.2,
                "idle": 100.0 - load,
                "model": "ARMv8 Processor (simulated)",
            })
        busy = tick.cpu_loads[:online] or [0.0]
        mean = sum(busy) / len(busy)
        total = {"user": mean * 0.8, "nice": 0.0, "system": mean * 0.2, "idle": 100.0 - mean}
        return {"total": total, "cpu": cores}

    @property
    def temperature(self) -> dict[str, dict[str, Any]]:
        """jtop's temperature dict: name -> {'temp': C, 'online': bool}; -256 when offline."""
        return self._current().temperature

    @property
    def nvpmodel(self) -> SimNvpModel:
        """Like jtop's NVPModel: ``name``, ``id``, ``models``, ``status``; reflects the service
        now (jtop's client updates it from its own thread, whether or not ok() is called)."""
        return SimNvpModel(self)

    @nvpmodel.setter
    def nvpmodel(self, value: int | str) -> None:
        model = SimNvpModel(self)
        if isinstance(value, int) and not isinstance(value, bool):
            model.set_nvpmodel_id(value)
        elif isinstance(value, str):
            model.set_nvpmodel_name(value)
        else:
            raise ValueError(f"Data type not allowed {type(value)}")

    @property
    def jetson_clocks(self) -> SimJetsonClocks:
        return SimJetsonClocks()

    @property
    def stats(self) -> dict[str, Any]:
        """jtop's flat dict: 'Power <RAIL>' and 'Power TOT' in mW, 'GPU' load in %."""
        tick = self._current()
        stats: dict[str, Any] = {"time": datetime.now(), "uptime": self.uptime}
        for idx, load in enumerate(tick.cpu_loads):
            stats[f"CPU{idx + 1}"] = int(load)
        stats["RAM"] = 0.35
        stats["SWAP"] = 0.0
        stats["GPU"] = tick.gpu_load
        for name, rail in tick.power["rail"].items():
            stats[f"Power {name}"] = rail["power"]
        stats["Power TOT"] = tick.power["tot"]["power"]
        stats["jetson_clocks"] = "OFF"
        stats["nvp model"] = self.nvpmodel.name
        for name, sensor in tick.temperature.items():
            stats[f"Temp {name}"] = sensor["temp"]
        return stats


class SimNvpModel:
    """jtop's ``NVPModel`` as the simulated client exposes it (read-only view + setters)."""

    def __init__(self, client: SimJtopClient) -> None:
        self._client = client
        self._service = client._service

    @property
    def id(self) -> int:
        return self._service.mode_id_at(self._service.now())

    @property
    def name(self) -> str:
        return self._service.board.modes[self.id].name

    @property
    def models(self) -> list[str]:
        return self._service.power_modes

    @property
    def status(self) -> list[bool]:
        return self._service.mode_status

    def get_default(self) -> dict[str, Any]:
        board = self._service.board
        return {"name": board.nvpmodel, "id": board.mode_id(board.nvpmodel)}

    def is_running(self) -> bool:
        return self._service._pending is not None

    def set_nvpmodel_id(self, nvpmodel_id: int, force: bool = False) -> None:
        if not isinstance(nvpmodel_id, int):
            raise ValueError("Use an int")
        if self._client._check_alive() and (nvpmodel_id != self.id or force):
            self._service.request_mode(nvpmodel_id)

    def set_nvpmodel_name(self, nvpmodel_name: str, force: bool = False) -> None:
        if not isinstance(nvpmodel_name, str):
            raise ValueError("Use a string")
        if nvpmodel_name not in self.models:
            raise SimJtopException(
                f"NV Power Model {nvpmodel_name} does not exists! Check all NVPmode available"
            )
        self.set_nvpmodel_id(self.models.index(nvpmodel_name), force)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, bool):
            return False
        if isinstance(other, int):
            return self.id == other
        if isinstance(other, str):
            return self.name == other
        return isinstance(other, SimNvpModel) and self.id == other.id

    __hash__ = None  # type: ignore[assignment]

    def __str__(self) -> str:
        return self.name

    __repr__ = __str__


class SimJetsonClocks:
    """jtop's ``JetsonClocks``: off (a simulated board never runs jetson_clocks)."""

    status = "inactive"
    boot = False

    def __bool__(self) -> bool:
        return False

    def is_config(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "False"


def make_sim_source(
    board: str = DEFAULT_SIM_BOARD,
    seed: int = 0,
    interval_s: float = 0.5,
    load: SimLoad | None = None,
    clock: Callable[[], float] | None = None,
    time_scale: float = 1.0,
    reconnect_delay_s: float | None = None,
    repeat_every: int = 0,
    power_mode: str | None = None,
) -> JtopSource:
    """A JtopSource (kind "sim") reading a simulated board through the real jtop logic.

    ``time_scale`` speeds the simulated clock up (tests); ``reconnect_delay_s`` is in real
    seconds (default: one simulated second). ``sim_service(source)`` gives the simulated service
    back, e.g. to call ``outage(seconds)``.
    """
    service = SimJtopService(
        board=board,
        seed=seed,
        load=load,
        clock=clock,
        time_scale=time_scale,
        repeat_every=repeat_every,
        power_mode=power_mode,
    )
    return JtopSource(
        interval_s=interval_s,
        client_factory=service,
        kind="sim",
        reconnect_delay_s=1.0 / time_scale if reconnect_delay_s is None else reconnect_delay_s,
    )


def sim_service(source: JtopSource) -> SimJtopService:
    """The simulated service behind a source made by :func:`make_sim_source`."""
    factory = source.client_factory
    if not isinstance(factory, SimJtopService):
        raise TypeError("not a simulated source")
    return factory
