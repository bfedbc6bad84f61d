"""The simulated jtop service: one simulated clock, the ticks every client reads, outages and
nvpmodel switches.

:class:`SimJtopService` plays the jtop service; its clients (:mod:`carbontop.sim.client`, made by
``SimJtop(service)(interval)`` as ``jtop(interval=...)`` makes one) talk to it. Like the real
service, its first client fixes the interval, and every client reads the same ticks. A tick's
rail power follows the :class:`SimLoad` through :mod:`carbontop.sim.physics`, and comes as jtop
gives it (mV, mA, mW ints; 'avg' the way jtop computes it). Noise comes from ``random.Random``
seeded by (seed, tick), so a seed gives the same value at the same tick.

Setting a mode through a client (``jetson.nvpmodel = id``) takes effect MODE_SWITCH_S simulated
seconds later, like the real service running ``nvpmodel -m``; jetson_clocks is off.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from carbontop.sim import DEFAULT_SIM_BOARD
from carbontop.sim.boards import SimPowerMode, sim_board
from carbontop.sim.load import LoadLevels, SimLoad
from carbontop.sim.physics import Envelope, Thermal, clocks_mhz, input_watts, rail_watts

SIM_UPTIME0_S = 4242.0  # the simulated board's uptime when the sim service starts
MODE_SWITCH_S = 1.0  # simulated seconds the service takes to run `nvpmodel -m`
TEMP_OFFLINE = -256  # jtop's value for an offline sensor


class SimJtopException(Exception):
    """Raised like ``jtop.JtopException``, with its texts (the jtop package is never imported)."""


@dataclass
class Tick:
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


class SimJtopService:
    """The simulated jtop service; ``SimJtop(service)`` is JtopSource's client factory.

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
        self._ticks: dict[int, Tick] = {}
        self._levels = LoadLevels(self.load)
        self._thermal = Thermal(self.board)
        # nvpmodel: the mode now, a pending switch (id, effective at), modes refused
        self._mode_id = self.board.mode_id(power_mode or self.board.nvpmodel)
        self._pending: tuple[int, float] | None = None
        self._mode_status = [not m.needs_reboot for m in self.board.modes]
        self._refused: set[int] = set()
        self._cap_factor = 1.0  # < 1: thermal throttling lowered the clock caps
        self._failed_rails: set[str] = set()  # rails whose reading fails (fail_rail)

    # -- the service side ---------------------------------------------------------------------
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

    def connect(self, interval: float) -> tuple[int, float]:
        with self._lock:
            if self.now() < self._down_until:
                raise SimJtopException(
                    "The jtop.service is not active. Please run:\nsudo jtop --install-service"
                )
            if self._interval is None:
                self._interval = max(0.02, float(interval))
            return self._generation, self._interval

    def connection_state(self, generation: int) -> str:
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
    def mode_switching(self) -> bool:
        """A ``nvpmodel -m`` is running (jtop's ``nvpmodel.is_running()``)."""
        with self._lock:
            return self._pending is not None

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

    def tick(self, index: int) -> Tick:
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

    def _make_tick(self, index: int) -> Tick:
        """Tick ``index``: the rails at the load and mode of that simulated moment, as jtop
        reports them (the random draws in a fixed order, so a seed gives the same tick)."""
        rng = random.Random(self.seed * 1_000_003 + index)
        board = self.board
        at_s = self.tick_time(index)
        gpu_level, cpu_level = self._levels.at(at_s)
        mode_id = self.mode_id_at(at_s)
        envelope = Envelope.of(board, board.modes[mode_id], self._cap_factor)
        rails: dict[str, dict[str, Any]] = {}
        module_w = 0.0
        for rail in board.rails:
            watts = rail_watts(rail, gpu_level, cpu_level, envelope, rng)
            module_w += watts
            rails[rail.name] = self._rail_values(rail.name, watts, rail.volt_mv, rng)
        for name in self._failed_rails:
            rails.pop(name, None)  # jtop skips a rail whose files do not read
        total: dict[str, Any]
        if board.input_rail and board.input_rail not in self._failed_rails:
            total = self._rail_values(board.input_rail, input_watts(board, module_w, rng), 5000,
                                      rng)
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
        cpu_mhz, gpu_mhz = clocks_mhz(board, envelope, gpu_level, cpu_level)
        return Tick(
            index=index,
            uptime_s=round(uptime, 2),  # /proc/uptime has 10 ms resolution
            power={"rail": rails, "tot": total},
            gpu_load=round(max(0.0, gpu_load), 1),
            cpu_loads=cpu_loads,
            mode_id=mode_id,
            cpu_khz=_khz(cpu_mhz),
            cpu_max_khz=_khz(envelope.cpu_cap_mhz),
            gpu_khz=_khz(gpu_mhz),
            gpu_max_khz=_khz(envelope.gpu_cap_mhz),
            temperature=self._temperatures(self._thermal.die_c(at_s, module_w), rng),
        )

    def _temperatures(self, die_c: float, rng: random.Random) -> dict[str, dict[str, Any]]:
        """jtop's temperature dict: each sensor at its offset from the die, in 0.5 C steps."""
        sensors: dict[str, dict[str, Any]] = {}
        for name, offset in self.board.sensors:
            if offset is None:
                sensors[name] = {"temp": TEMP_OFFLINE, "online": False}
            else:
                temp = round((die_c + offset + rng.gauss(0.0, 0.2)) * 2) / 2
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


def _khz(mhz: float) -> int:
    return int(round(mhz * 1000))
