"""A client of the simulated jtop service, shaped exactly like jtop's (``jtop.jtop``).

:class:`SimJtopClient` has the attributes JtopSource uses: ``start``, ``close``, ``ok``,
``power``, ``uptime``, ``interval``, ``board``, ``gpu``, ``cpu``, ``stats``, ``temperature``,
``nvpmodel`` (:class:`SimNvpModel`, with its setter) and ``jetson_clocks``. Its ``ok()`` blocks
until the service's next tick (:mod:`carbontop.sim.service`), as jtop's does; a broken
connection raises BrokenPipeError, a stalled one returns False after 3 intervals. JtopSource
makes clients through :class:`SimJtop`, the stand-in for ``jtop.jtop``.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

from carbontop.sim.service import SimJtopException, SimJtopService, Tick

MAX_POLL_S = 0.25  # longest real wait inside ok() before looking at the clock (and outages) again


class SimJtop:
    """``jtop.jtop`` for one simulated service: ``SimJtop(service)(interval)`` makes a client,
    as ``jtop(interval=interval)`` does (it is JtopSource's ``client_factory``)."""

    def __init__(self, service: SimJtopService) -> None:
        self.service = service

    def __call__(self, interval: float) -> SimJtopClient:
        return SimJtopClient(self.service, interval)


class SimJtopClient:
    """A client of :class:`SimJtopService` with the jtop client's attributes."""

    def __init__(self, service: SimJtopService, interval: float) -> None:
        self._service = service
        self._interval_user = float(interval)
        self._interval = 0.0
        self._generation = -1
        self._tick: Tick | None = None
        self._started = False
        self._closed = threading.Event()
        self._delivered = 0
        self._fresh = False  # jtop's first ok() after start() returns at once

    # -- lifetime -----------------------------------------------------------------------------
    def start(self) -> None:
        """Connects (raises like jtop when the service is down) and loads the first sample."""
        if self._started:
            raise RuntimeError("threads can only be started once")
        self._generation, self._interval = self._service.connect(self._interval_user)
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
        if self._service.connection_state(self._generation) == "broken":
            raise BrokenPipeError(32, "Broken pipe")
        return not self._closed.is_set()

    def _check(self) -> bool:
        state = self._service.connection_state(self._generation)
        if state == "broken":
            raise BrokenPipeError(32, "Broken pipe")
        if state == "stalled":
            self._wait_until(self._service.now() + 3 * self._interval_user)
            return False
        return True

    # -- data ---------------------------------------------------------------------------------
    def _current(self) -> Tick:
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
        return self._service.mode_switching

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
