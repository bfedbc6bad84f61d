"""A simulated Jetson, shaped exactly like jtop's client, read through :class:`JtopSource`.

The demo and the tests exercise the real jtop logic (mW to W, rail choice, input rail vs sum,
repeated samples, lost and regained service) without a board. :class:`SimJtopService` plays the
jtop service (it is the ``client_factory``); :class:`SimJtopClient` plays ``jtop.jtop`` with the
attributes JtopSource uses: ``start``, ``close``, ``ok``, ``power``, ``uptime``, ``interval``,
``board``, ``gpu``, ``stats``, ``nvpmodel``, ``jetson_clocks``.

Rail power follows a :class:`SimLoad` that the session updates from another thread: the GPU rail
follows the workload phase, the CPU rail the workload's CPU use. Noise comes from
``random.Random`` seeded by (seed, tick), so a seed gives the same value at the same tick.
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
MAX_POLL_S = 0.05  # longest real wait inside ok() before looking at the clock again
WARMUP_RAMP_S = 8.0  # simulated seconds for the warm-up ramp to reach full load


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
class SimBoard:
    """A simulated module: its rails, and its input rail (None: jtop sums the rails)."""

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
        noise = 0.04 if gpu_level > 0.5 else 0.02
        rails: dict[str, dict[str, Any]] = {}
        module_w = 0.0
        for rail in board.rails:
            drive = min(1.0, rail.gpu * gpu_level + rail.cpu * cpu_level)
            watts = rail.idle_w + (rail.peak_w - rail.idle_w) * drive
            watts = max(0.0, watts * (1.0 + rng.gauss(0.0, noise)))
            module_w += watts
            rails[rail.name] = self._rail_values(rail.name, watts, rail.volt_mv, rng)
        total: dict[str, Any]
        if board.input_rail:
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
        return _Tick(
            index=index,
            uptime_s=round(uptime, 2),  # /proc/uptime has 10 ms resolution
            power={"rail": rails, "tot": total},
            gpu_load=round(max(0.0, gpu_load), 1),
            cpu_loads=cpu_loads,
        )

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
                "freq": {"governor": "nvhost_podgov", "cur": 306000, "max": 1300500, "min": 306000},
            }
        }

    @property
    def nvpmodel(self) -> str:
        return self._service.board.nvpmodel

    @property
    def jetson_clocks(self) -> bool:
        return False

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
        stats["nvp model"] = self.nvpmodel
        return stats


def make_sim_source(
    board: str = DEFAULT_SIM_BOARD,
    seed: int = 0,
    interval_s: float = 0.5,
    load: SimLoad | None = None,
    clock: Callable[[], float] | None = None,
    time_scale: float = 1.0,
    reconnect_delay_s: float | None = None,
    repeat_every: int = 0,
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
