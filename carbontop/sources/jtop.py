"""Power of a Jetson board through the jtop service (jetson-stats).

Only the public client API common to jetson-stats 4.3.x and 7.x is used: ``jtop(interval=...)``,
``start()``, ``ok()``, ``close()``, ``power``, ``uptime``, ``interval``, ``board``, ``gpu``,
``stats``. ``jtop`` is imported lazily (jtop 7 forces the 'fork' start method at import).

Facts this module is built on (docs/jetson-power.md): milliwatts, never the 'avg' field, the
service's uptime as the sample clock, ``tot['name']`` checked on every sample, the interval fixed
by the service's first client, reconnection from a fresh thread (multiprocessing caches one
connection per thread), and ``close()`` called explicitly (4.3 does not on leaving ``with``).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Any

from carbontop import boards
from carbontop.model import BoardBasis, PowerSample, SourceInfo, SourceStatus
from carbontop.sources.base import SourceEvent, SourceSink, SourceUnavailable

logger = logging.getLogger(__name__)

ClientFactory = Callable[[float], Any]

CONNECT_TIMEOUT_S = 30.0  # jtop's start() waits at most 3 x interval per step; this is a backstop
INTERVAL_TOLERANCE = 1.05  # a service this much slower than asked is adopted (see _connect)
SNAPSHOT_TRIES = 3
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


def _major_minor(version: str) -> str:
    return ".".join(version.strip().split(".")[:2])


def explain_failure(exc: BaseException) -> SourceUnavailable:
    """Maps a failure to start a jtop client to a one-line problem-and-fix message."""
    if isinstance(exc, SourceUnavailable):
        return exc
    text = " ".join(str(exc).split())
    low = text.lower()
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

    # -- connection ---------------------------------------------------------------------------
    def _connect(self) -> Any:
        """Starts a client (in a fresh thread) at an interval the service will deliver."""
        client = self._connect_once(self._requested_s)
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
        if input_name:
            basis, board_rail = BoardBasis.INPUT_RAIL, str(input_name)
            note = f"board = module input rail {input_name} (not the carrier board or the wall)"
        elif rails:
            basis, board_rail = BoardBasis.SUM_OF_RAILS, None
            note = "board = sum of jtop's rails (this board has no module input rail)"
        else:
            basis, board_rail, note = None, None, ""
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
            interval_s=self._served_interval(client),
            jetpack=_text(hardware.get("Jetpack")),
            l4t=_text(hardware.get("L4T")),
            jetson_stats_version=jetson_stats_version() if self._kind == "jtop" else None,
            note=note,
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

    def _sample(self, client: Any) -> PowerSample | None:
        """The latest sample as a PowerSample, or None when it repeats the previous one."""
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
            t_sensor_s=t_sensor,
            t_unix_s=time.time(),
            gpu_w=by_name.get(info.gpu_rail) if info.gpu_rail else None,
            board_w=board_w,
            board_basis=basis,
            board_rail=str(input_name) if input_name else None,
            cpu_rail_w=by_name.get(info.cpu_rail) if info.cpu_rail else None,
            gpu_load_pct=_gpu_load(client),
            rails_w=rails_w,
        )

    def _emit(self, event: SourceEvent) -> bool:
        with self._emit_lock:
            if self._stop.is_set() or self._sink is None:
                return False
            try:
                self._sink(event)
            except Exception:  # a broken sink must not kill the source
                logger.exception("power sink failed on %s", type(event).__name__)
            return True

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
                sample = self._sample(client)
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
            served = self._served_interval(client)
            with self._emit_lock:
                if self._stop.is_set():
                    self._close_client(client)
                    return None
                self._client = client
                if abs(served - self.info.interval_s) > 1e-9:
                    self.info = replace(self.info, interval_s=served)
            logger.info("jtop service back after %d attempt(s)", attempts)
            self._emit(
                SourceStatus(
                    t_unix_s=time.time(),
                    connected=True,
                    message=f"jtop service back (interval {served:g} s)",
                )
            )
            return client
        return None
