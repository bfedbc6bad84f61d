"""What a jtop client (or the simulator's) holds of the board: its performance envelope as a
:class:`~carbontop.board_state.BoardState`, its power mode, and what the module is.

jtop's pieces (``nvpmodel``, ``jetson_clocks``, ``cpu``, ``gpu``, ``temperature``, ``board``)
are read defensively: a piece missing or unreadable is None, never an error, and never worth
losing a power sample. CPU and GPU frequencies come in kHz; an offline sensor reads -256.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from carbontop.board_state import BoardState

logger = logging.getLogger(__name__)

SNAPSHOT_TRIES = 3  # reads of one sample between two reads of uptime, before giving up
TEMP_OFFLINE_C = -256.0  # what jtop reports for an offline sensor


def uptime_s(uptime: Any) -> float:
    """jtop's ``uptime`` (a timedelta; a number in some versions) in seconds."""
    if isinstance(uptime, timedelta):
        return uptime.total_seconds()
    return float(uptime)


def read_hardware(client: Any) -> tuple[str, str | None, str | None]:
    """(module name, JetPack, L4T) from ``jetson.board['hardware']``."""
    hardware = _hardware(client)
    name = (
        _text(hardware.get("Module"))
        or _text(hardware.get("Model"))
        or "NVIDIA Jetson (unknown module)"
    )
    return name, _text(hardware.get("Jetpack")), _text(hardware.get("L4T"))


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


def nvpmodel_of(client: Any) -> tuple[str | None, int | None]:
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
            before = uptime_s(client.uptime)
        except Exception:
            before = None
        name, ident = nvpmodel_of(client)
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
            after = uptime_s(client.uptime)
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
