"""Power of a Jetson board through the jtop service (jetson-stats).

Only the public client API common to jetson-stats 4.3.x and 7.x is used: ``jtop(interval=...)``,
``start()``, ``ok()``, ``close()``, ``power``, ``uptime``, ``interval``, ``board``, ``gpu``,
``stats``, ``cpu``, ``temperature``, ``nvpmodel`` (``name``, ``id``, ``models``, ``status`` and
the setter ``jetson.nvpmodel = id``) and ``jetson_clocks`` (truthy when on). ``jtop`` is imported
lazily (jtop 7 forces the 'fork' start method at import).

Facts this module is built on (docs/jetson-power.md): milliwatts, never the 'avg' field, the
service's uptime to drop repeated samples, ``tot['name']`` checked on every sample, the interval
fixed by the service's first client, reconnection from a fresh thread (multiprocessing caches one
connection per thread), and ``close()`` called explicitly (4.3 does not on leaving ``with``).

A sample's time (``PowerSample.t_s``) is when carbontop received it, not the service's
``uptime``: the service stamps uptime at the START of its decode and reads the rails last, after
the CPU, GPU, process scan and memory, so uptime runs early by the decode (7-15 ms on the emulated
board, 110 ms with a slow process scan), while the receipt runs late by the service's work after
the rails (nvpmodel, fans: 20-35 ms) whatever the decode takes (docs/performance.md, "jtop sample
timestamps").

A service too slow for the asked interval (its first decode outlasts jtop's client wait of 3
intervals: "Error connection") is measured at a pace it keeps (:meth:`JtopSource._connect`).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import itertools
import logging
import math
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

from carbontop import boards
from carbontop.board_state import BoardState, BoardWatch
from carbontop.clock import session_time_s
from carbontop.errors import BadInput, CarbontopError
from carbontop.model import BoardBasis, PowerSample, SourceInfo, SourceStatus
from carbontop.sources.base import SourceEvent, SourceSink, SourceUnavailable, deliver

logger = logging.getLogger(__name__)

ClientFactory = Callable[[float], Any]

CONNECT_TIMEOUT_S = 30.0  # jtop's start() waits at most 3 x interval per step; this is a backstop
INTERVAL_TOLERANCE = 1.05  # a service this much slower than asked is adopted (see _connect)
SNAPSHOT_TRIES = 3
TEMP_OFFLINE_C = -256.0  # what jtop reports for an offline sensor
SET_MODE_TIMEOUT_S = 30.0
SET_MODE_SEND_TIMEOUT_S = 10.0  # handing the request to the service (one queue put)
DEFAULT_SOCKET = "/run/jtop.sock"
# A service too slow for the asked interval (see _connect_at_served_pace):
SERVICE_IDLE_DROP_S = 3.0  # jtop's service stops its timer 3 s (TIMEOUT_GAIN) after the last
#                            message of its last client; the next first client sets the interval
PACE_PROBE_MIN_S = 1.0  # the probe client's interval: jtop waits 3 x this for each sample
PACE_PROBE_STEPS = 3  # sample steps timed to learn the pace the service keeps
PACE_PROBE_TIMEOUT_S = 15.0
PACE_MARGIN = 1.25  # ask this much more than the measured decode, so the service keeps it
PACE_ROUND_S = 0.05
_SERVICE_VERSION_RE = re.compile(r"service:\s*\[([^\]]*)\]")


def default_client_factory(interval: float) -> Any:
    """The real jetson-stats client: ``jtop(interval=interval)`` (imported here, lazily)."""
    try:
        from jtop import jtop
    except ImportError as exc:
        raise SourceUnavailable(
            "jetson-stats is not installed: pip install jetson-stats (its version must match the "
            "board's jtop service)"
        ) from exc
    return jtop(interval=interval)


def jetson_stats_version() -> str | None:
    """The installed jetson-stats client version (``jtop.__version__``), or None.

    Read from the package metadata: importing ``jtop`` just for this would force the 'fork'
    start method on the whole process.
    """
    try:
        return importlib.metadata.version("jetson-stats")
    except importlib.metadata.PackageNotFoundError:
        return None


class ServiceTooSlow(SourceUnavailable):
    """jtop's client got no first sample within 3 x the interval it asked ("Error connection"):
    the service's decode takes longer than that."""


def _major_minor(version: str) -> str:
    return ".".join(version.strip().split(".")[:2])


def jtop_socket_path() -> str:
    """Where the jtop client looks for the service's socket (``jtop.service.JTOP_PIPE``, read
    at call time; ``/run/jtop.sock`` unless a test pointed it elsewhere)."""
    service = sys.modules.get("jtop.service")
    return str(getattr(service, "JTOP_PIPE", DEFAULT_SOCKET))


def socket_is_directory(path: str | None = None) -> SourceUnavailable | None:
    """The one-line problem when the socket path is a directory: Docker creates one in its
    place when ``-v /run/jtop.sock:/run/jtop.sock`` is given while the socket does not exist."""
    path = path or jtop_socket_path()
    if not os.path.isdir(path):
        return None
    return SourceUnavailable(
        f"{path} is a directory, not the jtop service's socket (Docker makes one when the socket "
        "is missing at container start): on the host run `sudo systemctl restart jtop.service` "
        "(it replaces the directory with its socket), then restart the container"
    )


def explain_failure(exc: BaseException) -> SourceUnavailable:
    """Maps a failure to start a jtop client to a one-line problem-and-fix message."""
    if isinstance(exc, SourceUnavailable):
        return exc
    text = " ".join(str(exc).split())
    low = text.lower()
    if "not active" in low or isinstance(exc, (FileNotFoundError, ConnectionRefusedError)):
        directory = socket_is_directory()
        if directory is not None:
            return directory
    if "not active" in low:
        return SourceUnavailable(
            "the jtop service is not running: start it with `sudo systemctl restart jtop.service` "
            "(or install it with `sudo pip3 install -U jetson-stats`)"
        )
    if "can't access" in low or isinstance(exc, PermissionError):
        return SourceUnavailable(
            "no permission to talk to jtop.service (not root and not in group jtop): run "
            "`sudo usermod -aG jtop $USER`, then log out and in again"
        )
    if "mismatch version" in low:
        found = _SERVICE_VERSION_RE.search(text)
        service = _major_minor(found.group(1)) if found else "of the board"
        client = _major_minor(jetson_stats_version() or "?")
        pin = f"pip install 'jetson-stats=={service}.*'" if found else "pip install jetson-stats"
        return SourceUnavailable(
            f"jetson-stats client {client} does not match the jtop service {service}: install "
            f"carbontop in a venv with --system-site-packages, or {pin}"
        )
    if "mismatch of python" in low:
        return SourceUnavailable(
            "the jtop service runs another Python major version than this client: install "
            "carbontop with the Python the service uses (python3)"
        )
    if "authentication" in low:
        return SourceUnavailable(
            "the jtop service refused this client's key: install the same jetson-stats version "
            "as the service, or `sudo systemctl restart jtop.service`"
        )
    if low == "error connection":
        return ServiceTooSlow(
            "the jtop service sent no first sample within 3 intervals (its decode is slower than "
            "that): use a longer --interval, or check `systemctl status jtop.service`"
        )
    if isinstance(exc, (FileNotFoundError, ConnectionRefusedError)):
        return SourceUnavailable(
            "the jtop service is not running: start it with `sudo systemctl restart jtop.service`"
        )
    return SourceUnavailable(
        f"cannot read the jtop service ({type(exc).__name__}: {text or 'no message'}): check "
        "`systemctl status jtop.service`"
    )


def _seconds(uptime: Any) -> float:
    if isinstance(uptime, timedelta):
        return uptime.total_seconds()
    return float(uptime)


def _watts(rail: Any) -> float | None:
    """A jtop rail or total dict's 'power' (mW) in watts, clamped at 0; None when absent."""
    if not isinstance(rail, Mapping):
        return None
    mw = rail.get("power")
    if not isinstance(mw, (int, float)) or isinstance(mw, bool):
        return None
    return max(0.0, float(mw)) / 1000.0


def _gpu_load(client: Any) -> float | None:
    """GPU load in percent from ``jetson.gpu`` (first GPU), else ``stats['GPU']``."""
    try:
        gpus = getattr(client, "gpu", None)
        if gpus is not None:
            for gpu in gpus.values():
                load = gpu.get("status", {}).get("load")
                if isinstance(load, (int, float)):
                    return float(load)
            return None
        load = client.stats.get("GPU")
        return float(load) if isinstance(load, (int, float)) else None
    except Exception:  # load is a nicety, never worth losing a sample
        logger.debug("GPU load unreadable", exc_info=True)
        return None


def _hardware(client: Any) -> dict[str, Any]:
    try:
        board = client.board
    except Exception:
        logger.debug("jetson.board unreadable", exc_info=True)
        return {}
    if not isinstance(board, Mapping):
        return {}
    hardware = board.get("hardware", board)
    return dict(hardware) if isinstance(hardware, Mapping) else {}


def _text(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def _number(value: Any) -> float | None:
    """A finite int/float (never a bool) as float, else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    x = float(value)
    return x if math.isfinite(x) else None


def _khz_to_mhz(freq: Any, key: str) -> float | None:
    """``freq[key]`` (jtop's CPU and GPU frequencies are kHz) in MHz; None when absent or <= 0."""
    if not isinstance(freq, Mapping):
        return None
    khz = _number(freq.get(key))
    return khz / 1000.0 if khz is not None and khz > 0 else None


def _highest(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def _nvpmodel(client: Any) -> tuple[str | None, int | None]:
    """(name, id) of ``jetson.nvpmodel``: an object with ``name``/``id`` (4.3, 7.x) or a str."""
    try:
        nvp = client.nvpmodel
    except Exception:
        logger.debug("jetson.nvpmodel unreadable", exc_info=True)
        return None, None
    if nvp is None:
        return None, None
    if isinstance(nvp, str):
        return _text(nvp), None
    name: str | None = None
    ident: int | None = None
    with contextlib.suppress(Exception):  # KeyError before the service's first status
        raw = nvp.name
        name = _text(raw) if isinstance(raw, str) else None
    with contextlib.suppress(Exception):
        raw = nvp.id
        ident = raw if isinstance(raw, int) and not isinstance(raw, bool) else None
    if name is None:
        with contextlib.suppress(Exception):
            name = _text(str(nvp))
    return name, ident


def _jetson_clocks(client: Any) -> bool | None:
    """``jetson.jetson_clocks``: None where the board has no jetson_clocks, else on/off."""
    try:
        jc = client.jetson_clocks
    except Exception:
        logger.debug("jetson.jetson_clocks unreadable", exc_info=True)
        return None
    if jc is None:
        return None
    try:
        return bool(jc)  # jtop's JetsonClocks is truthy when on (4.3 and 7.x)
    except Exception:
        return None


def _cpu_freqs(client: Any) -> tuple[float | None, float | None, int | None]:
    """(highest current MHz, highest cap MHz, cores online) of ``jetson.cpu['cpu']``."""
    try:
        cpu = client.cpu
    except Exception:
        logger.debug("jetson.cpu unreadable", exc_info=True)
        return None, None, None
    cores = cpu.get("cpu") if isinstance(cpu, Mapping) else None
    if not isinstance(cores, Sequence):
        return None, None, None
    online = [c for c in cores if isinstance(c, Mapping) and c.get("online", True)]
    cur = _highest([_khz_to_mhz(c.get("freq"), "cur") for c in online])
    cap = _highest([_khz_to_mhz(c.get("freq"), "max") for c in online])
    return cur, cap, len(online) if cores else None


def _gpu_freqs(client: Any) -> tuple[float | None, float | None]:
    """(current MHz, cap MHz) of ``jetson.gpu``: the highest over the GPUs listed."""
    try:
        gpus = client.gpu
        entries = list(gpus.values()) if gpus is not None else []
    except Exception:
        logger.debug("jetson.gpu unreadable", exc_info=True)
        return None, None
    freqs = [g.get("freq") for g in entries if isinstance(g, Mapping)]
    return (
        _highest([_khz_to_mhz(f, "cur") for f in freqs]),
        _highest([_khz_to_mhz(f, "max") for f in freqs]),
    )


def _hottest(client: Any) -> float | None:
    """The hottest online sensor of ``jetson.temperature`` (C); offline ones read -256."""
    try:
        sensors = client.temperature
        entries = list(sensors.values()) if isinstance(sensors, Mapping) else []
    except Exception:
        logger.debug("jetson.temperature unreadable", exc_info=True)
        return None
    temps: list[float | None] = []
    for sensor in entries:
        if not isinstance(sensor, Mapping) or sensor.get("online", True) is False:
            continue
        temp = _number(sensor.get("temp"))
        if temp is not None and temp > TEMP_OFFLINE_C:
            temps.append(temp)
    return _highest(temps)


def read_board_state(client: Any) -> BoardState | None:
    """The board state a jtop client (or the simulator's) holds now; None when it holds nothing.

    jtop replaces each piece as a whole every tick; the pieces are read between two reads of
    ``uptime`` and read again if a tick landed in between, so they come from one sample.
    """
    state: BoardState | None = None
    for _ in range(SNAPSHOT_TRIES):
        try:
            before = _seconds(client.uptime)
        except Exception:
            before = None
        name, ident = _nvpmodel(client)
        cpu, cpu_cap, online = _cpu_freqs(client)
        gpu, gpu_cap = _gpu_freqs(client)
        state = BoardState(
            nvpmodel_name=name,
            nvpmodel_id=ident,
            jetson_clocks=_jetson_clocks(client),
            cpu_freq_mhz=cpu,
            gpu_freq_mhz=gpu,
            max_temp_c=_hottest(client),
            t_unix_s=time.time(),
            cpu_max_freq_mhz=cpu_cap,
            gpu_max_freq_mhz=gpu_cap,
            cpu_online=online,
        )
        try:
            after = _seconds(client.uptime)
        except Exception:
            after = None
        if before == after:
            break
    if state is None or all(
        getattr(state, f) is None
        for f in ("nvpmodel_name", "nvpmodel_id", "jetson_clocks", "cpu_freq_mhz",
                  "gpu_freq_mhz", "max_temp_c")
    ):
        return None
    return state


def _mode_status(nvp: Any, ident: int) -> bool | None:
    """jtop's per-mode flag (``nvpmodel.status[id]``): False when the service will not or
    could not set that mode (a different GPU power-gating mask: needs a reboot; or nvpmodel
    failed on it); None when unknown."""
    try:
        status = list(nvp.status)
    except Exception:
        return None
    if 0 <= ident < len(status) and isinstance(status[ident], bool):
        return status[ident]
    return None


def _mode_list(models: Sequence[str]) -> str:
    return ", ".join(f"{name} ({idx})" for idx, name in enumerate(models))


class JtopSource:
    """A :class:`~carbontop.sources.base.PowerSource` reading a Jetson's INA3221 rails via jtop."""

    def __init__(
        self,
        interval_s: float = 0.5,
        client_factory: Callable[[float], Any] | None = None,
        kind: str = "jtop",
        reconnect_delay_s: float = 1.0,
    ) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self._requested_s = float(interval_s)
        self._factory: ClientFactory = client_factory or default_client_factory
        self._kind = kind
        self._reconnect_delay_s = max(0.0, float(reconnect_delay_s))
        self.info = SourceInfo(kind=kind, device_name="Jetson (not opened)", interval_s=interval_s)
        self._client: Any = None
        self._thread: threading.Thread | None = None
        self._sink: SourceSink | None = None
        self._stop = threading.Event()
        self._emit_lock = threading.RLock()  # a sink may call close() from the thread
        self._last_t: float | None = None
        self._basis_warned = False
        self._board_lock = threading.Lock()
        self._board_state: BoardState | None = None
        self._board_watch = BoardWatch()
        self._pace_s: float | None = None  # the pace the service keeps, when not as asked
        self._pace_note = ""
        self._summed_rails: frozenset[str] = frozenset()  # sum-of-rails boards: rails at open
        self._missing_rails: frozenset[str] = frozenset()
        self._foreign_input: str | None = None  # an input rail other than the board's (warned)

    @property
    def client_factory(self) -> ClientFactory:
        """The factory that makes clients (the simulator's service object for kind 'sim')."""
        return self._factory

    # -- PowerSource --------------------------------------------------------------------------
    def open(self) -> SourceInfo:
        """Connects, waits for the first sample and fills :attr:`info`."""
        if self._client is not None:
            return self.info
        self._stop.clear()
        client = self._connect()
        try:
            self.info = self._describe(client)
        except BaseException:
            self._close_client(client)
            raise
        self._client = client
        self._refresh_board_state(client)
        logger.info(
            "jtop source open: %s, GPU rail %s (%s), board %s %s, CPU rail %s, interval %.3f s",
            self.info.device_name,
            self.info.gpu_rail,
            self.info.gpu_scope.value if self.info.gpu_scope else "-",
            self.info.board_basis.value if self.info.board_basis else "-",
            self.info.board_rail or "",
            self.info.cpu_rail,
            self.info.interval_s,
        )
        return self.info

    def start(self, sink: SourceSink) -> None:
        """Starts the sampling thread; events go to ``sink`` from that thread."""
        if self._thread is not None:
            raise RuntimeError("JtopSource already started")
        if self._client is None:
            self.open()
        self._sink = sink
        self._thread = threading.Thread(
            target=self._run, name=f"carbontop-{self._kind}", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stops the thread and the client; no event is delivered after this returns."""
        with self._emit_lock:
            self._stop.set()
        client, self._client = self._client, None
        if client is not None:
            self._close_client(client)
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=max(1.0, 2.0 * self.info.interval_s))
            if thread.is_alive():
                logger.debug("jtop thread still blocked in the client; it exits on its own")

    # -- board state and power modes ----------------------------------------------------------
    def _refresh_board_state(self, client: Any) -> BoardState | None:
        """Reads the board state from ``client`` into the cache (and the watch); never raises."""
        try:
            state = read_board_state(client)
        except Exception:  # the board state is a nicety, never worth losing a sample
            logger.debug("board state unreadable", exc_info=True)
            return None
        if state is not None:
            with self._board_lock:
                self._board_state = state
                self._board_watch = self._board_watch.seen(state)
        return state

    def board_state(self) -> BoardState | None:
        """The latest board state: power mode, jetson_clocks, frequencies, hottest sensor.

        Refreshed by the sampling thread on every new sample (and at :meth:`open`); before the
        thread runs it is read from the client directly. None when jtop reports none of it
        (or the source never opened). After :meth:`close` it is the last one read.
        """
        with self._board_lock:
            cached = self._board_state
        client = self._client
        if client is not None and (cached is None or self._thread is None):
            return self._refresh_board_state(client) or cached
        return cached

    def board_watch(self) -> BoardWatch:
        """Extremes of the board states seen since :meth:`reset_board_watch` (or open)."""
        with self._board_lock:
            return self._board_watch

    def reset_board_watch(self) -> BoardWatch:
        """Starts a new watch (e.g. when a session starts) from the latest state; returns it."""
        with self._board_lock:
            state = self._board_state
            self._board_watch = BoardWatch().seen(state) if state is not None else BoardWatch()
            return self._board_watch

    def _nvp(self) -> tuple[Any, Any]:
        """(client, its ``nvpmodel``); CarbontopError when not connected, BadInput when absent."""
        client = self._client
        if client is None:
            raise CarbontopError(
                "not connected to the jtop service: power modes need a running jtop service "
                "(`systemctl status jtop.service`)"
            )
        try:
            nvp = getattr(client, "nvpmodel", None)  # a client without one: no nvpmodel
        except Exception as exc:
            raise CarbontopError(f"cannot read the board's power mode from jtop ({exc})") from exc
        if nvp is None or isinstance(nvp, str):
            raise BadInput(
                "power modes are not available: the jtop service reports no nvpmodel on this "
                "board (is `nvpmodel` installed? `sudo nvpmodel -q`)"
            )
        return client, nvp

    def power_modes(self) -> list[str]:
        """The board's nvpmodel modes, by id (index = id); [] when jtop reports none."""
        client = self._client
        if client is None:
            return []
        try:
            nvp = client.nvpmodel
            models = list(nvp.models) if nvp is not None and not isinstance(nvp, str) else []
        except Exception:
            logger.debug("nvpmodel modes unreadable", exc_info=True)
            return []
        return [str(m) for m in models]

    def _resolve_mode(self, mode: str | int, models: Sequence[str]) -> int:
        """The id of ``mode`` (a name, its id, or the id as text); BadInput listing the modes."""
        if isinstance(mode, int) and not isinstance(mode, bool):
            if 0 <= mode < len(models):
                return mode
        elif isinstance(mode, str):
            text = mode.strip()
            if text in models:
                return list(models).index(text)
            folded = [m.casefold() for m in models]
            if text.casefold() in folded:
                return folded.index(text.casefold())
            if text.isdigit() and int(text) < len(models):
                return int(text)
        raise BadInput(
            f"unknown power mode {mode!r}: this board's modes are {_mode_list(models)}"
        )

    def set_power_mode(self, mode: str | int, timeout_s: float = SET_MODE_TIMEOUT_S) -> None:
        """Switches the board to nvpmodel ``mode`` (name or id) through the jtop service.

        Returns once jtop reports the new mode. BadInput (naming the valid modes) for an unknown
        mode or a board without nvpmodel; CarbontopError when the service refuses (nvpmodel
        failed, or the mode needs a reboot) or the board did not switch within ``timeout_s``.
        """
        client, nvp = self._nvp()
        models = [str(m) for m in nvp.models]
        target = self._resolve_mode(mode, models)
        name = models[target]
        current = _nvpmodel(client)
        if current[1] == target:
            self._refresh_board_state(client)
            return
        if _mode_status(nvp, target) is False:
            raise CarbontopError(
                f"the jtop service will not switch to power mode {name}: nvpmodel needs a reboot "
                f"for it (or failed on it before); set it with `sudo nvpmodel -m {target}` and "
                "reboot"
            )
        logger.info("switching power mode %s -> %s (id %d)", current[0], name, target)
        self._send_power_mode(client, target)
        deadline = time.monotonic() + max(0.0, float(timeout_s))
        poll_s = min(0.1, max(0.01, self.info.interval_s / 4))
        while True:
            client = self._client or client
            try:
                nvp = client.nvpmodel
            except Exception:
                nvp = None
            now_name, now_id = _nvpmodel(client)
            if now_id == target:
                self._refresh_board_state(client)
                logger.info("power mode is now %s (id %d)", name, target)
                return
            if nvp is not None and _mode_status(nvp, target) is False:
                raise CarbontopError(
                    f"the jtop service could not switch to power mode {name}: nvpmodel reported "
                    "an error (see `journalctl -u jtop.service`)"
                )
            if time.monotonic() >= deadline:
                raise CarbontopError(
                    f"the board did not switch to power mode {name} within {timeout_s:g} s "
                    f"(jtop still reports {now_name}): check `sudo nvpmodel -q` and "
                    "`journalctl -u jtop.service`"
                )
            time.sleep(poll_s)

    @staticmethod
    def _send_power_mode(client: Any, target: int) -> None:
        """``jetson.nvpmodel = target`` from a fresh thread (a caller's thread may hold a cached
        connection to a service that has restarted since); CarbontopError when it fails."""
        result: dict[str, BaseException] = {}

        def send() -> None:
            try:
                client.nvpmodel = target
            except BaseException as exc:  # reported to the caller below
                result["error"] = exc

        thread = threading.Thread(target=send, name="carbontop-jtop-nvpmodel", daemon=True)
        thread.start()
        thread.join(SET_MODE_SEND_TIMEOUT_S)
        if thread.is_alive():
            raise CarbontopError(
                "the jtop service did not take the power mode request: restart it with "
                "`sudo systemctl restart jtop.service`"
            )
        error = result.get("error")
        if error is not None:
            text = " ".join(str(error).split()) or type(error).__name__
            raise CarbontopError(f"the jtop service refused the power mode request: {text}")

    @contextlib.contextmanager
    def restoring_power_mode(self, timeout_s: float = SET_MODE_TIMEOUT_S) -> Iterator[str | None]:
        """Remembers the power mode now and sets it back on leaving, even on an error or Ctrl-C.

        Yields the mode's name (None where the board has no nvpmodel: nothing to restore).
        A failure to restore raises CarbontopError, unless another exception is already on its
        way out (it is then logged and noted on that exception, which goes on).
        """
        name, ident = _nvpmodel(self._client) if self._client is not None else (None, None)
        if ident is None and name is not None:
            with contextlib.suppress(ValueError):
                ident = self.power_modes().index(name)
        try:
            yield name
        except BaseException as exc:
            if ident is not None:
                try:
                    self.set_power_mode(ident, timeout_s)
                except BaseException as restore_exc:  # never hide the first error
                    message = f"could not restore power mode {name}: {restore_exc}"
                    logger.error("%s", message)
                    exc.add_note(message)
            raise
        if ident is not None:
            try:
                self.set_power_mode(ident, timeout_s)
            except CarbontopError as exc:
                raise CarbontopError(
                    f"could not restore power mode {name} (set it with `sudo nvpmodel -m "
                    f"{ident}`): {exc}"
                ) from exc

    # -- connection ---------------------------------------------------------------------------
    def _connect(self) -> Any:
        """Starts a client (in a fresh thread) at an interval the service will deliver.

        Sets :attr:`_pace_s` and :attr:`_pace_note` when that is not the interval asked because
        the service cannot keep it (see :meth:`_connect_at_served_pace`).
        """
        self._pace_s, self._pace_note = None, ""
        try:
            client = self._connect_once(self._requested_s)
        except ServiceTooSlow as exc:
            logger.warning("jtop service too slow for %.3f s: %s", self._requested_s, exc)
            return self._connect_at_served_pace()
        served = self._served_interval(client)
        if served > self._requested_s * INTERVAL_TOLERANCE:
            # The service's first client fixed a slower interval. A client asking for less gets
            # one sample and then ok() == False: reconnect asking for what the service delivers.
            logger.info(
                "jtop service runs at %.3f s (asked %.3f s): reconnecting at its interval",
                served,
                self._requested_s,
            )
            self._close_client(client)
            client = self._connect_once(served)
        return client

    def _connect_at_served_pace(self) -> Any:
        """A client at a pace the service keeps, after a first sample that never came in time.

        jtop's service starts its timer at the interval of its first client and then decodes
        back to back when the decode takes longer; the client, waiting 3 intervals for its
        first sample, gave up ("Error connection"), the timer still runs. A probe client asking
        a long interval (its waits are 3 x that) times the pace the service keeps. When it is
        close to the asked interval (only the first decode was slow) carbontop connects as
        asked. Otherwise it waits until the service has stopped its timer (3 s after the last
        client message) and connects asking the measured pace with a margin: the service then
        sleeps between decodes instead of decoding back to back. If the service still serves
        another interval (another client holds it), the measured pace is what it keeps.
        """
        requested = self._requested_s
        probe = self._connect_once(max(PACE_PROBE_MIN_S, 4 * requested))
        try:
            pace = self._measure_pace(probe, PACE_PROBE_STEPS)
        finally:
            self._close_client(probe)
        if pace is None:
            raise SourceUnavailable(
                "the jtop service answered but sent no steady samples: restart it with "
                "`sudo systemctl restart jtop.service`"
            )
        if pace <= requested * INTERVAL_TOLERANCE:
            logger.info("jtop service keeps %.3f s after a slow first decode", pace)
            return self._connect_once(requested)
        ask = max(requested, math.ceil(pace * PACE_MARGIN / PACE_ROUND_S - 1e-9) * PACE_ROUND_S)
        ask = round(ask, 6)
        logger.info(
            "jtop service keeps %.3f s, not the %.3f s asked: waiting for it to drop that pace, "
            "then asking %.3f s", pace, requested, ask,
        )
        if self._stop.wait(SERVICE_IDLE_DROP_S + pace + 0.5):
            raise SourceUnavailable("the jtop source was closed while connecting")
        client = self._connect_once(ask)
        served = self._served_interval(client)
        if abs(served - ask) < 1e-6:
            self._pace_s = ask
            self._pace_note = (
                f"the jtop service cannot keep {requested:g} s (its decode takes about "
                f"{pace:.2f} s): measuring every {ask:g} s"
            )
        else:
            self._pace_s = max(served, pace)
            self._pace_note = (
                f"the jtop service cannot keep {requested:g} s (its decode takes about "
                f"{pace:.2f} s) and another client holds it at {served:g} s: measuring at its "
                f"pace, about {self._pace_s:.2f} s"
            )
        logger.warning("%s", self._pace_note)
        return client

    @staticmethod
    def _measure_pace(client: Any, steps: int) -> float | None:
        """The median step (s) of the service's uptime over ``steps`` new samples; None when
        the client stops or the samples do not come within PACE_PROBE_TIMEOUT_S."""
        times: list[float] = []
        deadline = time.monotonic() + PACE_PROBE_TIMEOUT_S
        with contextlib.suppress(Exception):
            times.append(_seconds(client.uptime))
        while len(times) <= steps and time.monotonic() < deadline:
            try:
                if not client.ok():
                    return None
                now = _seconds(client.uptime)
            except Exception:
                logger.debug("pace probe failed", exc_info=True)
                return None
            if not times or now > times[-1]:
                times.append(now)
        if len(times) <= steps:
            return None
        diffs = sorted(b - a for a, b in itertools.pairwise(times))
        return diffs[len(diffs) // 2]

    def _connect_once(self, interval: float) -> Any:
        """``factory(interval)``, ``start()`` and a first ``ok()``, all in a NEW thread."""
        result: dict[str, Any] = {}

        def attempt() -> None:
            client = None
            try:
                client = self._factory(interval)
                client.start()
                if not client.ok():
                    raise SourceUnavailable(
                        "the jtop service answered but sent no sample: restart it with "
                        "`sudo systemctl restart jtop.service`"
                    )
                result["client"] = client
            except BaseException as exc:  # mapped to SourceUnavailable below
                result["error"] = exc
                if client is not None:
                    self._close_client(client)

        thread = threading.Thread(target=attempt, name="carbontop-jtop-connect", daemon=True)
        thread.start()
        thread.join(CONNECT_TIMEOUT_S)
        if thread.is_alive():
            raise SourceUnavailable(
                f"the jtop service did not answer within {CONNECT_TIMEOUT_S:.0f} s: restart it "
                "with `sudo systemctl restart jtop.service`"
            )
        if "error" in result:
            error = result["error"]
            if isinstance(error, (KeyboardInterrupt, SystemExit)):
                raise error
            raise explain_failure(error) from error
        return result["client"]

    def _served_interval(self, client: Any) -> float:
        try:
            served = float(client.interval)
        except Exception:
            return self._requested_s
        return served if served > 0 else self._requested_s

    @staticmethod
    def _close_client(client: Any) -> None:
        try:
            client.close()
        except Exception:  # a dead service makes close() fail; nothing to do
            logger.debug("closing the jtop client failed", exc_info=True)

    def _describe(self, client: Any) -> SourceInfo:
        power = self._snapshot(client)[1]
        if not isinstance(power, Mapping) or not power:
            raise SourceUnavailable(
                "jtop answers but this board reports no power rails (no INA3221 sensors: "
                "Jetson Nano 2GB, a container without /sys, or not a Jetson)"
            )
        rails = power.get("rail") or {}
        tot = power.get("tot") or {}
        if not rails and not tot.get("name"):
            raise SourceUnavailable(
                "jtop answers but this board reports no power rails (no INA3221 sensors: "
                "Jetson Nano 2GB, a container without /sys, or not a Jetson)"
            )
        if not tot.get("name") and boards.input_rail(rails) is None:
            # A failed read of the input rail makes 'tot' the plain sum for one tick: when the
            # first sample says "sum", look at one more before deciding the basis.
            with contextlib.suppress(Exception):
                if client.ok():
                    later = self._snapshot(client)[1]
                    if isinstance(later, Mapping) and (later.get("tot") or {}).get("name"):
                        rails, tot = later.get("rail") or {}, later.get("tot") or {}
        gpu = boards.gpu_rail(rails)
        input_name = tot.get("name")
        self._summed_rails = frozenset()
        if input_name and boards.is_carrier_input(str(input_name)):
            basis, board_rail = BoardBasis.INPUT_RAIL, str(input_name)
            note = (
                f"board = {boards.input_rail_label(board_rail)}: the module and the carrier "
                "board together (not the wall)"
            )
        elif input_name:
            basis, board_rail = BoardBasis.INPUT_RAIL, str(input_name)
            note = f"board = module input rail {input_name} (not the carrier board or the wall)"
        elif rails:
            basis, board_rail = BoardBasis.SUM_OF_RAILS, None
            note = "board = sum of jtop's rails (this board has no module input rail)"
            # The sum holds the rails that read this tick: a tick without one of these is not
            # the board figure (see _board_watts).
            self._summed_rails = frozenset(
                name for name, rail in rails.items() if _watts(rail) is not None
            )
        else:
            basis, board_rail, note = None, None, ""
        if self._pace_note:
            note = f"{self._pace_note}; {note}" if note else self._pace_note
        cpu = boards.cpu_rail(rails)
        hardware = _hardware(client)
        name = (
            _text(hardware.get("Module"))
            or _text(hardware.get("Model"))
            or "NVIDIA Jetson (unknown module)"
        )
        try:
            gpu_count = len(client.gpu)
        except Exception:
            gpu_count = 0
        if gpu is not None:
            gpu_count = max(gpu_count, 1)
        return SourceInfo(
            kind=self._kind,
            device_name=name,
            gpu_count=gpu_count,
            gpu_rail=gpu[0] if gpu else None,
            gpu_scope=gpu[1] if gpu else None,
            board_rail=board_rail,
            board_basis=basis,
            cpu_rail=cpu,
            interval_s=self._pace_s or self._served_interval(client),
            jetpack=_text(hardware.get("Jetpack")),
            l4t=_text(hardware.get("L4T")),
            jetson_stats_version=jetson_stats_version() if self._kind == "jtop" else None,
            note=note,
            pace_note=self._pace_note,
        )

    # -- sampling -----------------------------------------------------------------------------
    @staticmethod
    def _snapshot(client: Any) -> tuple[float, Any]:
        """(uptime s, power dict) of ONE sample: the uptime read before and after must agree."""
        for _ in range(SNAPSHOT_TRIES):
            before = _seconds(client.uptime)
            power = client.power
            after = _seconds(client.uptime)
            if before == after:
                return before, power
        return after, client.power

    def _sample(
        self, client: Any, t_s: float | None = None, t_unix_s: float | None = None
    ) -> PowerSample | None:
        """The latest sample as a PowerSample, or None when it repeats the previous one.

        ``t_s``/``t_unix_s``: when it was received (session clock / wall clock); now if None.
        """
        if t_s is None:
            t_s = session_time_s()
        if t_unix_s is None:
            t_unix_s = time.time()
        t_sensor, power = self._snapshot(client)
        if self._last_t is not None and t_sensor <= self._last_t:
            return None
        self._last_t = t_sensor
        if not isinstance(power, Mapping):
            power = {}
        rails: Mapping[str, Any] = power.get("rail") or {}
        tot: Mapping[str, Any] = power.get("tot") or {}
        rails_w = tuple(
            (name, w) for name in sorted(rails) if (w := _watts(rails[name])) is not None
        )
        by_name = dict(rails_w)
        info = self.info
        input_name = tot.get("name")
        basis = BoardBasis.INPUT_RAIL if input_name else BoardBasis.SUM_OF_RAILS if tot else None
        board_w = _watts(tot)
        if basis is BoardBasis.SUM_OF_RAILS and basis is info.board_basis:
            board_w = self._board_sum_watts(board_w, by_name)
        elif basis is BoardBasis.INPUT_RAIL and basis is info.board_basis:
            board_w = self._board_input_watts(board_w, str(input_name))
        if basis is not info.board_basis:
            # e.g. the input rail's read failed this tick and 'tot' silently became the sum of
            # the other rails: that is not the board figure, so this tick is unmeasured.
            if not self._basis_warned:
                logger.warning(
                    "jtop total is %s this tick, expected %s: board power not measured",
                    basis.value if basis else "missing",
                    info.board_basis.value if info.board_basis else "none",
                )
                self._basis_warned = True
            board_w = None
        return PowerSample(
            t_s=t_s,
            t_sensor_s=t_sensor,
            t_unix_s=t_unix_s,
            gpu_w=by_name.get(info.gpu_rail) if info.gpu_rail else None,
            board_w=board_w,
            board_basis=basis,
            board_rail=str(input_name) if input_name else None,
            cpu_rail_w=by_name.get(info.cpu_rail) if info.cpu_rail else None,
            gpu_load_pct=_gpu_load(client),
            rails_w=rails_w,
        )

    def _board_sum_watts(self, board_w: float | None, by_name: Mapping[str, float]) -> float | None:
        """A sum-of-rails board figure, or None for a tick where a rail seen at open is missing.

        jtop skips a rail that fails to read and sums the others: that sum is not the board
        figure (the integrator then treats the tick as a missing reading). A rail that appears
        later (it failed at open) joins the set from then on.
        """
        present = frozenset(by_name)
        missing = self._summed_rails - present
        if present - self._summed_rails:
            logger.warning(
                "jtop sum of rails now holds %s, not seen at open: counted from now on",
                ", ".join(sorted(present - self._summed_rails)),
            )
            self._summed_rails |= present
        if missing != self._missing_rails:
            if missing:
                logger.warning(
                    "jtop rail %s did not read this tick: board power (sum of rails) not measured",
                    ", ".join(sorted(missing)),
                )
            else:
                logger.info("all jtop rails read again: board power measured")
            self._missing_rails = missing
        return None if missing else board_w

    def _board_input_watts(self, board_w: float | None, input_name: str) -> float | None:
        """The input rail's figure, or None for a tick where jtop named another input rail
        than the board's (Thor: VIN failed to read and jtop fell back to the module's VDD_IN)."""
        expected = self.info.board_rail
        if expected is None or input_name == expected:
            self._foreign_input = None
            return board_w
        if self._foreign_input != input_name:
            logger.warning(
                "jtop total is %s this tick, not %s: board power not measured",
                boards.input_rail_label(input_name), boards.input_rail_label(expected),
            )
            self._foreign_input = input_name
        return None

    def _emit(self, event: SourceEvent) -> bool:
        return deliver(event, self._sink, self._stop, self._emit_lock)

    def _run(self) -> None:
        client = self._client
        while not self._stop.is_set():
            if client is None:
                client = self._reconnect()
                if client is None:
                    return
                continue
            try:
                alive = client.ok()
                if self._stop.is_set():
                    return
                if not alive:
                    raise ConnectionError("no sample within 3 intervals; the client stopped")
                # Received now: the closest stamp to the rails' read (module docstring).
                sample = self._sample(client, session_time_s(), time.time())
            except Exception as exc:  # incl. EOFError, BrokenPipeError
                if self._stop.is_set():
                    return
                reason = " ".join(str(exc).split()) or type(exc).__name__
                logger.warning("lost the jtop service: %s: %s", type(exc).__name__, reason)
                self._close_client(client)
                self._client = client = None
                self._emit(
                    SourceStatus(
                        t_unix_s=time.time(),
                        connected=False,
                        message=(
                            f"lost the jtop service ({type(exc).__name__}: {reason}); "
                            f"retrying every {self._reconnect_delay_s:g} s"
                        ),
                    )
                )
                continue
            if sample is not None:
                self._refresh_board_state(client)
                self._emit(sample)

    def _reconnect(self) -> Any:
        """Retries every reconnect_delay_s, each attempt from a fresh thread; None when closed."""
        attempts = 0
        while not self._stop.wait(self._reconnect_delay_s):
            attempts += 1
            try:
                client = self._connect()
            except SourceUnavailable as exc:
                logger.debug("jtop reconnect attempt %d failed: %s", attempts, exc)
                continue
            served = self._pace_s or self._served_interval(client)
            with self._emit_lock:
                if self._stop.is_set():
                    self._close_client(client)
                    return None
                self._client = client
                if (
                    abs(served - self.info.interval_s) > 1e-9
                    or self._pace_note != self.info.pace_note
                ):
                    self.info = replace(self.info, interval_s=served, pace_note=self._pace_note)
            logger.info("jtop service back after %d attempt(s)", attempts)
            message = f"jtop service back (interval {served:g} s)"
            self._emit(
                SourceStatus(
                    t_unix_s=time.time(),
                    connected=True,
                    message=f"{message}: {self._pace_note}" if self._pace_note else message,
                )
            )
            return client
        return None
