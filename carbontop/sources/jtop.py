"""Power of a Jetson board through the jtop service (jetson-stats): sampling and reconnects.

Only the public client API common to jetson-stats 4.3.x and 7.x is used: ``jtop(interval=...)``,
``start()``, ``ok()``, ``close()``, ``power``, ``uptime``, ``interval``, ``board``, ``gpu``,
``stats``, ``cpu``, ``temperature``, ``nvpmodel`` (``name``, ``id``, ``models``, ``status`` and
the setter ``jetson.nvpmodel = id``) and ``jetson_clocks`` (truthy when on). Beside this module:
connecting and explaining failures (:mod:`.jtop_connect`), reading the board state from a client
(:mod:`.jtop_state`), switching power modes (:mod:`.jtop_modes`).

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
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Any

from carbontop import boards
from carbontop.board_state import BoardState, BoardWatch
from carbontop.clock import session_time_s
from carbontop.model import BoardBasis, PowerSample, SourceInfo
from carbontop.sources.base import BoardControl, SourceUnavailable, ThreadedSource
from carbontop.sources.jtop_connect import (
    ClientFactory,
    JtopConnector,
    close_client,
    default_client_factory,
    jetson_stats_version,
)
from carbontop.sources.jtop_modes import SET_MODE_TIMEOUT_S, JtopPowerModes
from carbontop.sources.jtop_state import (
    SNAPSHOT_TRIES,
    read_board_state,
    read_hardware,
    uptime_s,
)

logger = logging.getLogger(__name__)


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


class JtopSource(ThreadedSource, BoardControl):
    """A :class:`~carbontop.sources.base.PowerSource` reading a Jetson's INA3221 rails via jtop,
    and the board's :class:`~carbontop.sources.base.BoardControl`."""

    def __init__(
        self,
        interval_s: float = 0.5,
        client_factory: ClientFactory | None = None,
        kind: str = "jtop",
        reconnect_delay_s: float = 1.0,
    ) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        super().__init__()
        self._connector = JtopConnector(client_factory or default_client_factory, interval_s,
                                        self._stop)
        self._kind = kind
        self._reconnect_delay_s = max(0.0, float(reconnect_delay_s))
        self.info = SourceInfo(kind=kind, device_name="Jetson (not opened)", interval_s=interval_s)
        self._client: Any = None
        self._last_t: float | None = None
        self._basis_warned = False
        self._board_lock = threading.Lock()
        self._board_state: BoardState | None = None
        self._board_watch = BoardWatch()
        self._modes = JtopPowerModes(lambda: self._client, self._refresh_board_state,
                                     lambda: self.info.interval_s)
        self._summed_rails: frozenset[str] = frozenset()  # sum-of-rails boards: rails at open
        self._missing_rails: frozenset[str] = frozenset()
        self._foreign_input: str | None = None  # an input rail other than the board's (warned)

    @property
    def client_factory(self) -> ClientFactory:
        """The factory that makes clients (``jtop.jtop``; the simulator's ``SimJtop``)."""
        return self._connector.factory

    # -- PowerSource --------------------------------------------------------------------------
    def open(self) -> SourceInfo:
        """Connects, waits for the first sample and fills :attr:`info`."""
        if self._client is not None:
            return self.info
        self._stop.clear()
        client = self._connector.connect()
        try:
            self.info = self._describe(client)
        except BaseException:
            close_client(client)
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

    def _interrupt(self) -> None:
        """Closing the client unblocks the thread's ``ok()``."""
        client, self._client = self._client, None
        if client is not None:
            close_client(client)

    # -- board state --------------------------------------------------------------------------
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

    # -- power modes (jtop_modes) -------------------------------------------------------------
    def power_modes(self) -> list[str]:
        """The board's nvpmodel modes, by id (index = id); [] when jtop reports none."""
        return self._modes.power_modes()

    def set_power_mode(self, mode: str | int, timeout_s: float = SET_MODE_TIMEOUT_S) -> None:
        """Switches the board to nvpmodel ``mode`` (name or id) through the jtop service and
        returns once jtop reports it (:class:`~carbontop.sources.jtop_modes.JtopPowerModes`)."""
        self._modes.set_power_mode(mode, timeout_s)

    def restoring_power_mode(
        self, timeout_s: float = SET_MODE_TIMEOUT_S
    ) -> AbstractContextManager[str | None]:
        """Remembers the power mode now and sets it back on leaving, even on an error or Ctrl-C
        (:class:`~carbontop.sources.jtop_modes.JtopPowerModes`)."""
        return self._modes.restoring_power_mode(timeout_s)

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
        pace_note = self._connector.pace_note
        if pace_note:
            note = f"{pace_note}; {note}" if note else pace_note
        cpu = boards.cpu_rail(rails)
        name, jetpack, l4t = read_hardware(client)
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
            interval_s=self._served_pace(client),
            jetpack=jetpack,
            l4t=l4t,
            jetson_stats_version=jetson_stats_version() if self._kind == "jtop" else None,
            note=note,
            pace_note=pace_note,
        )

    # -- sampling -----------------------------------------------------------------------------
    @staticmethod
    def _snapshot(client: Any) -> tuple[float, Any]:
        """(uptime s, power dict) of ONE sample: the uptime read before and after must agree."""
        for _ in range(SNAPSHOT_TRIES):
            before = uptime_s(client.uptime)
            power = client.power
            after = uptime_s(client.uptime)
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
                close_client(client)
                self._client = client = None
                self._status(False, f"lost the jtop service ({type(exc).__name__}: {reason}); "
                                    f"retrying every {self._reconnect_delay_s:g} s")
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
                client = self._connector.connect()
            except SourceUnavailable as exc:
                logger.debug("jtop reconnect attempt %d failed: %s", attempts, exc)
                continue
            served, pace_note = self._served_pace(client), self._connector.pace_note
            with self._emit_lock:
                if self._stop.is_set():
                    close_client(client)
                    return None
                self._client = client
                if abs(served - self.info.interval_s) > 1e-9 or pace_note != self.info.pace_note:
                    self.info = replace(self.info, interval_s=served, pace_note=pace_note)
            logger.info("jtop service back after %d attempt(s)", attempts)
            message = f"jtop service back (interval {served:g} s)"
            self._status(True, f"{message}: {pace_note}" if pace_note else message)
            return client
        return None

    def _served_pace(self, client: Any) -> float:
        """The interval samples come at: the pace measured when the service cannot keep the
        one asked, else the one it serves ``client`` at."""
        return self._connector.pace_s or self._connector.served_interval(client)
