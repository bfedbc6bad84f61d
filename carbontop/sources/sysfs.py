"""Power of a Jetson board read straight from its power monitors in sysfs (``--gpu-source sysfs``).

No jtop service, no version to match, no group to join: the monitor files are readable by any
user, in a container too (``/sys`` is mounted read-only by default). Three layouts, found by
driver name, never by a fixed hwmon index (it changes between boards and boots):

- INA3221, hwmon (JetPack 5/6/7, driver ``ina3221``): ``in{n}_label`` names channel n,
  ``in{n}_input`` is its bus voltage (mV), ``curr{n}_input`` its current (mA); power = mV x mA /
  1000 (mW). Channels labelled ``NC`` and the "sum of shunt voltages" channel (7) are skipped, so
  is a channel whose ``in{n}_enable`` reads 0. ``update_interval`` (ms) is how often the chip
  refreshes its registers.
- INA3221, IIO (JetPack 4, driver ``ina3221x``): ``rail_name_{n}``, ``in_power{n}_input`` (mW),
  else ``in_voltage{n}_input`` x ``in_current{n}_input``.
- INA238 (Thor's carrier-board input): ``power1_input`` in microwatts (else ``in1_input`` x
  ``curr1_input``); no label file, named ``VIN`` as jetson-stats names it.

Devices are found through ``class/hwmon/*/name``, ``bus/iio/devices/*/name`` and
``bus/i2c/devices/*/name`` (the last is the path jetson-stats uses), deduplicated by their real
path. The tree's root is ``/sys`` or the directory in ``$CARBONTOP_SYS_ROOT`` (tests and the
emulated boards point it elsewhere).

Sampling: every file is opened once and re-read with ``pread`` at offset 0 (sysfs regenerates an
attribute on every read from 0), so a tick costs one system call per file and no path lookups.
The interval goes from 1 s down to 0.01 s but never below the slowest chip's ``update_interval``
(the interval is floored there and :attr:`SourceInfo.note` says so). Repeats: a tick whose raw
values are all unchanged on every chip, while less than that chip's update interval has passed
since the last sample, re-read the same registers and is dropped; unchanged values after the
chip's update interval are a real (steady) reading and are kept. Where the chip's refresh is
unknown (IIO) every tick is a sample. A file that fails to read (or holds no number) is a gap for
its rail that tick, never a 0; it is opened again on the next tick.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from carbontop.clock import session_time_s
from carbontop.model import PowerSample, SourceInfo
from carbontop.sources.base import SourceUnavailable, ThreadedSource
from carbontop.sources.rails import NegativeNote, RailRoles

log = logging.getLogger(__name__)

SYS_ROOT_ENV = "CARBONTOP_SYS_ROOT"
MIN_INTERVAL_S = 0.01
READ_BYTES = 64
INA3221_SUM_CHANNEL = 7  # "sum of shunt voltages"
HWMON_DRIVERS = ("ina3221", "ina238")
IIO_DRIVER = "ina3221x"


def sys_root() -> Path:
    """``$CARBONTOP_SYS_ROOT`` when set (an emulated tree), else ``/sys``."""
    return Path(os.environ.get(SYS_ROOT_ENV) or "/sys")


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace").strip("\x00\n\t ")
    except OSError:
        return None


def board_model(root: Path) -> str | None:
    """The device tree's model string (``firmware/devicetree/base/model``), or None."""
    text = _read_text(root / "firmware" / "devicetree" / "base" / "model")
    return text.replace("\x00", "").strip() or None if text else None


def is_tegra(root: Path | None = None) -> bool:
    """True on an NVIDIA Tegra (Jetson) board: its device tree says ``nvidia,tegra...``."""
    root = root or sys_root()
    compatible = _read_text(root / "firmware" / "devicetree" / "base" / "compatible") or ""
    if "nvidia,tegra" in compatible:
        return True
    return root == Path("/sys") and Path("/etc/nv_tegra_release").exists()


@dataclass(frozen=True)
class Channel:
    """One rail: the files to read and how their numbers make milliwatts."""

    rail: str
    files: tuple[Path, ...]  # (power,) or (volt mV, curr mA)
    power_scale: float = 1.0  # milliwatts per unit of a power file (INA238: 0.001, uW)


@dataclass(frozen=True)
class Chip:
    """One power monitor: its driver, i2c device and the rails it carries."""

    driver: str  # ina3221, ina3221x, ina238
    device: str  # i2c device, e.g. "1-0040"
    path: Path  # the hwmon or iio:device folder (real path)
    update_interval_s: float | None  # hwmon update_interval; None when the chip has none
    channels: tuple[Channel, ...]


def _exists(path: Path) -> bool:
    return os.path.isfile(path)


def _hwmon_ina3221(path: Path, device: str) -> Chip:
    channels: list[Channel] = []
    for n in range(1, INA3221_SUM_CHANNEL + 1):
        label = _read_text(path / f"in{n}_label")
        if label is None or n == INA3221_SUM_CHANNEL:
            continue
        if label.upper() == "NC" or "sum of shunt" in label.lower():
            continue
        if _read_text(path / f"in{n}_enable") == "0":
            log.info("sysfs: %s channel %d (%s) is disabled: skipped", device, n, label)
            continue
        volt, curr = path / f"in{n}_input", path / f"curr{n}_input"
        if _exists(volt) and _exists(curr):
            channels.append(Channel(label, (volt, curr)))
    return Chip("ina3221", device, path, _update_interval(path), tuple(channels))


def _hwmon_ina238(path: Path, device: str) -> Chip:
    power = path / "power1_input"
    volt, curr = path / "in1_input", path / "curr1_input"
    if _exists(power):
        channel = Channel("VIN", (power,), power_scale=0.001)
    elif _exists(volt) and _exists(curr):
        channel = Channel("VIN", (volt, curr))
    else:
        return Chip("ina238", device, path, _update_interval(path), ())
    return Chip("ina238", device, path, _update_interval(path), (channel,))


def _iio_ina3221x(path: Path, device: str) -> Chip:
    channels: list[Channel] = []
    for n in range(0, 8):
        label = _read_text(path / f"rail_name_{n}")
        if label is None or label.upper() == "NC":
            continue
        power = path / f"in_power{n}_input"
        volt, curr = path / f"in_voltage{n}_input", path / f"in_current{n}_input"
        if _exists(power):
            channels.append(Channel(label, (power,)))
        elif _exists(volt) and _exists(curr):
            channels.append(Channel(label, (volt, curr)))
    return Chip(IIO_DRIVER, device, path, None, tuple(channels))


def _update_interval(path: Path) -> float | None:
    text = _read_text(path / "update_interval")
    try:
        ms = float(text) if text else 0.0
    except ValueError:
        return None
    return ms / 1000.0 if ms > 0 else None


def _entries(folder: Path) -> list[Path]:
    try:
        return sorted(folder / name for name in os.listdir(folder))
    except OSError:
        return []


def discover(root: Path) -> list[Chip]:
    """Every INA3221/INA238 power monitor under ``root``, by driver name, in device order."""
    found: dict[Path, Chip] = {}

    def add(kind: str, folder: Path) -> None:
        real = Path(os.path.realpath(folder))
        if real in found:
            return
        # .../<i2c device>/hwmon/hwmonN  or  .../<i2c device>/iio:deviceN
        device = real.parent.parent.name if kind != IIO_DRIVER else real.parent.name
        if kind == "ina3221":
            found[real] = _hwmon_ina3221(real, device)
        elif kind == "ina238":
            found[real] = _hwmon_ina238(real, device)
        else:
            found[real] = _iio_ina3221x(real, device)

    for hwmon in _entries(root / "class" / "hwmon"):
        name = (_read_text(hwmon / "name") or "").lower()
        if name in HWMON_DRIVERS:
            add(name, hwmon)
    for iio in _entries(root / "bus" / "iio" / "devices"):
        if (_read_text(iio / "name") or "").lower() == IIO_DRIVER:
            add(IIO_DRIVER, iio)
    for device in _entries(root / "bus" / "i2c" / "devices"):
        name = (_read_text(device / "name") or "").lower()
        if name in HWMON_DRIVERS:
            for hwmon in _entries(device / "hwmon"):
                add(name, hwmon)
        elif name == IIO_DRIVER:
            for sub in _entries(device):
                if sub.name.startswith("iio:device"):
                    add(IIO_DRIVER, sub)
    return sorted(found.values(), key=lambda chip: (chip.device, str(chip.path)))


class _File:
    """A sysfs attribute kept open; ``read()`` is one pread at offset 0. None on any failure."""

    __slots__ = ("path", "fd")

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = -1

    def read(self) -> int | None:
        if self.fd < 0:
            try:
                self.fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                return None
        try:
            data = os.pread(self.fd, READ_BYTES, 0)
        except OSError:
            self.close()  # e.g. the device went away: open it again next tick
            return None
        try:
            return int(data.split(None, 1)[0])
        except (ValueError, IndexError):
            return None

    def close(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1


class _ChipReader:
    """Reads one chip's channels in one go."""

    def __init__(self, chip: Chip) -> None:
        self.chip = chip
        self.files = [[_File(p) for p in channel.files] for channel in chip.channels]

    def read(self) -> tuple[tuple[int | None, ...], dict[str, float | None]]:
        """(raw numbers of every file, milliwatts per rail)."""
        raw: list[int | None] = []
        mw: dict[str, float | None] = {}
        for channel, files in zip(self.chip.channels, self.files, strict=True):
            values = [f.read() for f in files]
            raw.extend(values)
            if any(v is None for v in values):
                mw[channel.rail] = None
            elif len(values) == 1:
                mw[channel.rail] = float(values[0] or 0) * channel.power_scale
            else:
                mw[channel.rail] = float(values[0] or 0) * float(values[1] or 0) / 1000.0
        return tuple(raw), mw

    def close(self) -> None:
        for files in self.files:
            for f in files:
                f.close()


def describe_chips(chips: list[Chip]) -> str:
    """``ina3221 1-0040 (VDD_IN, VDD_CPU_GPU_CV, VDD_SOC)``, for detect and the log."""
    return "; ".join(f"{c.driver} {c.device} ({', '.join(ch.rail for ch in c.channels)})"
                     for c in chips)


class SysfsSource(ThreadedSource):
    """A :class:`~carbontop.sources.base.PowerSource` reading the power monitors in sysfs."""

    kind = "sysfs"

    def __init__(self, interval_s: float = 0.5, root: Path | None = None) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        super().__init__()
        self._requested_s = float(interval_s)
        self.root = root or sys_root()
        self.info = SourceInfo(kind=self.kind, device_name="Jetson (not opened)",
                               interval_s=interval_s)
        self.chips: list[Chip] = []
        self._readers: list[_ChipReader] = []
        self._roles: RailRoles | None = None
        self._negatives = NegativeNote("sysfs")
        self._last_raw: list[tuple[int | None, ...]] | None = None
        self._last_t: float | None = None
        self._lost = False

    # -- PowerSource --------------------------------------------------------------------------
    def open(self) -> SourceInfo:
        if self._roles is not None:
            return self.info
        where = str(self.root)
        chips = [c for c in discover(self.root) if c.channels]
        if not chips:
            raise SourceUnavailable(
                f"no INA3221/INA238 power monitor under {where} (class/hwmon, bus/i2c/devices): "
                "not a Jetson, a Jetson Nano 2GB (it has none), or a container without /sys "
                "(add -v /sys:/sys:ro)"
            )
        readers = [_ChipReader(c) for c in chips]
        names = [ch.rail for c in chips for ch in c.channels]
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            log.warning("sysfs: rail name(s) %s found on two chips: the first is used",
                        ", ".join(sorted(duplicates)))
        mw: dict[str, float | None] = {}
        for reader in readers:
            for rail, value in reader.read()[1].items():
                mw.setdefault(rail, value)
        if all(v is None for v in mw.values()):
            for reader in readers:
                reader.close()
            raise SourceUnavailable(
                f"the power monitors under {where} cannot be read ({describe_chips(chips)}): "
                "check the files' permissions, or use --gpu-source jtop"
            )
        self.chips, self._readers = chips, readers
        self._roles = RailRoles.from_names(mw)
        interval, floor_note = self._effective_interval()
        notes = [self._roles.board_note(), f"read through sysfs: {describe_chips(chips)}"]
        if floor_note:
            notes.append(floor_note)
        self.info = self._roles.source_info(
            self.kind, board_model(self.root) or "NVIDIA Jetson (model unknown)", interval,
            "; ".join(notes))
        log.info("sysfs source open under %s: %s; GPU rail %s, board %s %s, interval %.3f s",
                 where, describe_chips(chips), self.info.gpu_rail,
                 self.info.board_basis.value if self.info.board_basis else "-",
                 self.info.board_rail or "", interval)
        return self.info

    def _effective_interval(self) -> tuple[float, str]:
        asked = self._requested_s
        refresh = max((c.update_interval_s for c in self.chips if c.update_interval_s),
                      default=None)
        if refresh is not None and refresh > asked:
            return refresh, (f"sampling every {refresh:g} s (asked {asked:g} s): the power "
                             f"monitor refreshes every {refresh * 1000:g} ms")
        if asked < MIN_INTERVAL_S:
            return MIN_INTERVAL_S, (f"sampling every {MIN_INTERVAL_S:g} s (asked {asked:g} s): "
                                    "the fastest sysfs interval")
        return asked, ""

    def _release(self) -> None:
        """The monitor files closed once the thread has ended."""
        for reader in self._readers:
            reader.close()

    # -- sampling -----------------------------------------------------------------------------
    def read_sample(self) -> PowerSample | None:
        """Reads every monitor once: the sample, or None for a repeated reading or a tick where
        no file could be read."""
        roles = self._roles
        if roles is None:
            raise RuntimeError("SysfsSource is not open")
        t_s = session_time_s()
        t_unix = time.time()
        raws: list[tuple[int | None, ...]] = []
        mw: dict[str, float | None] = {}
        for reader in self._readers:
            raw, values = reader.read()
            raws.append(raw)
            for rail, value in values.items():
                mw.setdefault(rail, self._negatives.clamp(rail, value))
        if all(v is None for v in mw.values()):
            self._set_lost(True)
            return None
        self._set_lost(False)
        if self._is_repeat(raws, t_s):
            return None
        self._last_raw, self._last_t = raws, t_s
        return roles.sample(mw, t_s=t_s, t_unix_s=t_unix, t_sensor_s=t_s)

    def _is_repeat(self, raws: list[tuple[int | None, ...]], t_s: float) -> bool:
        """Every chip unchanged while its update interval has not elapsed: the same registers."""
        last, last_t = self._last_raw, self._last_t
        if last is None or last_t is None:
            return False
        for reader, raw, before in zip(self._readers, raws, last, strict=True):
            refresh = reader.chip.update_interval_s
            if raw != before or refresh is None or t_s - last_t >= refresh:
                return False
        return True

    def _set_lost(self, lost: bool) -> None:
        if lost == self._lost:
            return
        self._lost = lost
        message = ("no power monitor file could be read: power not measured until they answer"
                   if lost else "power monitor files readable again")
        log.warning("sysfs: %s", message)
        self._status(not lost, message)

    def _run(self) -> None:
        for _ in self._ticks(self.info.interval_s):
            try:
                sample = self.read_sample()
            except Exception:  # noqa: BLE001 - a bug here must not end the measurement silently
                log.exception("sysfs: reading the power monitors failed")
                sample = None
            if sample is not None and not self._emit(sample):
                return
