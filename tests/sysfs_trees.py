"""Emulated Jetson sysfs trees, laid out as the kernel lays them out, for every board family.

A tree is what a board's ``/sys`` holds for its power monitors (docs/jetson-power.md, "Without
the jtop service"): the i2c device folder under ``devices/platform/.../i2c-N/N-00AA`` with the
driver's ``name``, its ``hwmon/hwmonK`` (JetPack 5+, driver ``ina3221``/``ina238``) or
``iio:deviceK`` (JetPack 4, driver ``ina3221x``) folder, the relative symlinks
``class/hwmon/hwmonK``, ``bus/i2c/devices/N-00AA`` and ``bus/iio/devices/iio:deviceK``, unrelated
hwmon devices beside the monitors (a fan, a temperature sensor) at indexes that differ per board,
and the device tree's ``model``/``compatible``. Point ``$CARBONTOP_SYS_ROOT`` at the root.

One tree feeds all three sources: carbontop's sysfs reader directly; the stand-in ``tegrastats``
(``tests/fake_tegrastats.py``, installed by :meth:`SysfsTree.install_tegrastats`), which prints
lines computed from the same files in the board's JetPack format; and, where built at
``/fake_sys``, the real jtop service (it reads ``/fake_sys/bus/i2c/devices``).

Values are rewritten in place (write, then truncate), never by replacing the file: a reader
keeps its file open as on a real board, and an atomic rename would leave it on the old file.
Expected figures are worked out here from the millivolts and milliamps written, by hand-checkable
arithmetic, independently of the code under test.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Rail:
    name: str
    device: str  # i2c device, e.g. "1-0040"
    channel: int  # hwmon: 1..3; iio: 0..2; ina238: 1
    volt_mv: int
    curr_ma: int


@dataclass(frozen=True)
class Board:
    key: str
    layout: str  # "hwmon" or "iio"
    jetpack: str  # "4", "5", "6", "7": the tegrastats format
    model: str
    compatible: str
    i2c_parent: str  # folder holding the i2c-N bus folders, under devices/
    rails: tuple[Rail, ...]
    nc_channels: tuple[tuple[str, int], ...] = ()  # (device, channel) labelled NC
    ina238: Rail | None = None  # Thor's carrier input (VIN)
    update_interval_ms: int | None = None  # the INA3221's hwmon update_interval
    hwmon_first: int = 1  # index of the first monitor's hwmonK (others are unrelated devices)
    # What the roles must be, worked out from docs/jetson-power.md "Rails by board".
    gpu_rail: str | None = None
    scope: str | None = None  # Scope value
    input_rail: str | None = None
    cpu_rail: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


def _r(name: str, device: str, channel: int, mv: int, ma: int) -> Rail:
    return Rail(name, device, channel, mv, ma)


XAVIER_RAILS_IIO = (
    _r("GPU", "1-0040", 0, 19000, 24), _r("CPU", "1-0040", 1, 19000, 33),
    _r("SOC", "1-0040", 2, 19000, 57), _r("CV", "1-0041", 0, 19000, 0),
    _r("VDDRQ", "1-0041", 1, 19000, 8), _r("SYS5V", "1-0041", 2, 4900, 368),
)
XAVIER_NX_IIO = (
    _r("VDD_IN", "7-0040", 0, 5000, 720), _r("VDD_CPU_GPU_CV", "7-0040", 1, 5000, 150),
    _r("VDD_SOC", "7-0040", 2, 5000, 230),
)


def _hwmon(rails: tuple[Rail, ...]) -> tuple[Rail, ...]:
    """The same rails as the JetPack 5 hwmon driver numbers them (channels 1..3)."""
    return tuple(Rail(r.name, r.device, r.channel + 1, r.volt_mv, r.curr_ma) for r in rails)


BOARDS: dict[str, Board] = {
    "nano": Board(
        "nano", "iio", "4", "NVIDIA Jetson Nano Developer Kit",
        "nvidia,p3449-0000-b00+p3448-0000-b00\0nvidia,jetson-nano\0nvidia,tegra210",
        "platform/7000c400.i2c",
        (_r("POM_5V_IN", "6-0040", 0, 5000, 700), _r("POM_5V_GPU", "6-0040", 1, 5000, 100),
         _r("POM_5V_CPU", "6-0040", 2, 5000, 200)),
        gpu_rail="POM_5V_GPU", scope="GPU only", input_rail="POM_5V_IN", cpu_rail="POM_5V_CPU",
    ),
    "tx2": Board(
        "tx2", "iio", "4", "quill",
        "nvidia,quill\0nvidia,tegra186", "platform/3160000.i2c",
        (_r("VDD_SYS_GPU", "0-0040", 0, 19000, 20), _r("VDD_SYS_SOC", "0-0040", 1, 19000, 40),
         _r("VDD_4V0_WIFI", "0-0040", 2, 4000, 5), _r("VDD_IN", "0-0041", 0, 19000, 160),
         _r("VDD_SYS_CPU", "0-0041", 1, 19000, 15), _r("VDD_SYS_DDR", "0-0041", 2, 19000, 30)),
        gpu_rail="VDD_SYS_GPU", scope="GPU only", input_rail="VDD_IN", cpu_rail="VDD_SYS_CPU",
    ),
    "agx-xavier-jp4": Board(
        "agx-xavier-jp4", "iio", "4", "Jetson-AGX", "nvidia,p2972-0000\0nvidia,tegra194",
        "platform/3160000.i2c", XAVIER_RAILS_IIO,
        gpu_rail="GPU", scope="GPU only", input_rail=None, cpu_rail="CPU",
    ),
    "agx-xavier-jp5": Board(
        "agx-xavier-jp5", "hwmon", "5", "Jetson-AGX", "nvidia,p2972-0000\0nvidia,tegra194",
        "platform/3160000.i2c", _hwmon(XAVIER_RAILS_IIO), update_interval_ms=8,
        hwmon_first=2,
        gpu_rail="GPU", scope="GPU only", input_rail=None, cpu_rail="CPU",
    ),
    "xavier-nx-jp4": Board(
        "xavier-nx-jp4", "iio", "4", "NVIDIA Jetson Xavier NX Developer Kit",
        "nvidia,p3509-0000+p3668-0001\0nvidia,tegra194", "platform/c250000.i2c", XAVIER_NX_IIO,
        gpu_rail="VDD_CPU_GPU_CV", scope="CPU+GPU+CV shared", input_rail="VDD_IN",
        cpu_rail=None,
    ),
    "xavier-nx-jp5": Board(
        "xavier-nx-jp5", "hwmon", "5", "NVIDIA Jetson Xavier NX Developer Kit",
        "nvidia,p3509-0000+p3668-0001\0nvidia,tegra194", "platform/c250000.i2c",
        _hwmon(XAVIER_NX_IIO), update_interval_ms=8,
        gpu_rail="VDD_CPU_GPU_CV", scope="CPU+GPU+CV shared", input_rail="VDD_IN",
        cpu_rail=None,
    ),
    "orin-nx": Board(
        "orin-nx", "hwmon", "6", "NVIDIA Jetson Orin NX Engineering Reference Developer Kit",
        "nvidia,p3768-0000+p3767-0000\0nvidia,p3767-0000\0nvidia,tegra234",
        "platform/bus@0/c240000.i2c",
        (_r("VDD_IN", "1-0040", 1, 5000, 1400), _r("VDD_CPU_GPU_CV", "1-0040", 2, 5000, 400),
         _r("VDD_SOC", "1-0040", 3, 5000, 300)),
        update_interval_ms=8, hwmon_first=3,
        gpu_rail="VDD_CPU_GPU_CV", scope="CPU+GPU+CV shared", input_rail="VDD_IN",
        cpu_rail=None,
    ),
    "agx-orin": Board(
        "agx-orin", "hwmon", "6", "Jetson AGX Orin Developer Kit",
        "nvidia,p3737-0000+p3701-0005\0nvidia,p3701-0005\0nvidia,tegra234",
        "platform/bus@0/c240000.i2c",
        (_r("VDD_GPU_SOC", "1-0040", 1, 5000, 800), _r("VDD_CPU_CV", "1-0040", 2, 5000, 300),
         _r("VIN_SYS_5V0", "1-0040", 3, 5000, 600),
         _r("VDDQ_VDD2_1V8AO", "1-0041", 2, 5000, 100)),
        nc_channels=(("1-0041", 1), ("1-0041", 3)), update_interval_ms=8, hwmon_first=4,
        gpu_rail="VDD_GPU_SOC", scope="GPU+SOC shared", input_rail=None, cpu_rail="VDD_CPU_CV",
    ),
    "thor": Board(
        "thor", "hwmon", "7", "NVIDIA Jetson AGX Thor Developer Kit",
        "nvidia,p3971-0080+p3834-0008\0nvidia,p3834-0008\0nvidia,tegra264",
        "platform/bus@0/c600000.i2c",
        (_r("VDD_GPU", "2-0040", 1, 12040, 640), _r("VDD_CPU_SOC_MSS", "2-0040", 2, 12040, 960),
         _r("VIN_SYS_5V0", "2-0040", 3, 5088, 1740)),
        ina238=_r("VIN", "2-0044", 1, 19800, 1400), update_interval_ms=8, hwmon_first=2,
        gpu_rail="VDD_GPU", scope="GPU only", input_rail="VIN", cpu_rail="VDD_CPU_SOC_MSS",
    ),
    "nano-2gb": Board(
        "nano-2gb", "iio", "4", "NVIDIA Jetson Nano 2GB Developer Kit",
        "nvidia,p3542-0000+p3448-0003\0nvidia,jetson-nano\0nvidia,tegra210",
        "platform/7000c400.i2c", (),
    ),
}


def _write(path: Path, value: object) -> None:
    """Rewrites ``path`` in place (no rename: an open reader sees the new value)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = f"{value}\n".encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)


def _link(link: Path, target: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink():
        link.unlink()
    link.symlink_to(os.path.relpath(target, link.parent))


class SysfsTree:
    """An emulated board's power-monitor tree under ``root``."""

    def __init__(self, board: str | Board, root: Path) -> None:
        self.board = BOARDS[board] if isinstance(board, str) else board
        self.root = Path(root)
        self._volts: dict[str, int] = {}
        self._currs: dict[str, int] = {}
        self._hwmon_index: dict[str, int] = {}

    # -- layout ---------------------------------------------------------------------------------
    def device_dir(self, device: str) -> Path:
        bus = device.split("-")[0]
        return self.root / "devices" / self.board.i2c_parent / f"i2c-{bus}" / device

    def chip_dir(self, device: str) -> Path:
        if self.board.layout == "iio" and not self._is_ina238(device):
            return self.device_dir(device) / f"iio:device{self._iio_index(device)}"
        return self.device_dir(device) / "hwmon" / f"hwmon{self._hwmon_index[device]}"

    def _is_ina238(self, device: str) -> bool:
        return self.board.ina238 is not None and device == self.board.ina238.device

    def _devices(self) -> list[str]:
        devices = {r.device for r in self.board.rails} | {d for d, _ in self.board.nc_channels}
        return sorted(devices)

    def _iio_index(self, device: str) -> int:
        return self._devices().index(device)

    def rail(self, name: str) -> Rail:
        for rail in self.all_rails():
            if rail.name == name:
                return rail
        raise KeyError(f"{name} is not a rail of {self.board.key}")

    def all_rails(self) -> tuple[Rail, ...]:
        return self.board.rails + ((self.board.ina238,) if self.board.ina238 else ())

    def rail_files(self, name: str) -> dict[str, Path]:
        """The files holding a rail's figures: volt, curr and (iio, ina238) power."""
        rail = self.rail(name)
        base, n = self.chip_dir(rail.device), rail.channel
        if self._is_ina238(rail.device):
            return {"volt": base / "in1_input", "curr": base / "curr1_input",
                    "power": base / "power1_input"}
        if self.board.layout == "iio":
            return {"volt": base / f"in_voltage{n}_input", "curr": base / f"in_current{n}_input",
                    "power": base / f"in_power{n}_input"}
        return {"volt": base / f"in{n}_input", "curr": base / f"curr{n}_input"}

    # -- building -------------------------------------------------------------------------------
    def build(self) -> SysfsTree:
        """Writes the whole tree; returns self."""
        b = self.board
        base = self.root / "firmware" / "devicetree" / "base"
        _write(base / "model", b.model + "\0")
        _write(base / "compatible", b.compatible + "\0")
        # Unrelated hwmon devices: a fan (platform) at hwmon0, a TMP451 (i2c 0-004c) after it.
        fan = self.root / "devices" / "platform" / "pwm-fan" / "hwmon" / "hwmon0"
        _write(fan / "name", "pwmfan")
        _write(fan / "pwm1", 80)
        _link(self.root / "class" / "hwmon" / "hwmon0", fan)
        tmp451 = self.device_dir("0-004c")
        _write(tmp451 / "name", "tmp451")
        tmp_hwmon = tmp451 / "hwmon" / "hwmon1"
        _write(tmp_hwmon / "name", "tmp451")
        _write(tmp_hwmon / "temp1_input", 41500)
        _link(self.root / "class" / "hwmon" / "hwmon1", tmp_hwmon)
        _link(self.root / "bus" / "i2c" / "devices" / "0-004c", tmp451)
        (self.root / "bus" / "iio" / "devices").mkdir(parents=True, exist_ok=True)
        index = max(b.hwmon_first, 2)
        devices = self._devices() + ([b.ina238.device] if b.ina238 else [])
        for device in devices:
            if b.layout == "hwmon" or self._is_ina238(device):
                self._hwmon_index[device] = index
                index += 2  # the hwmon indexes are not consecutive on a real board either
        for device in devices:
            self._build_device(device)
        return self

    def _build_device(self, device: str) -> None:
        b = self.board
        dev = self.device_dir(device)
        chip = self.chip_dir(device)
        _link(self.root / "bus" / "i2c" / "devices" / device, dev)
        if self._is_ina238(device):
            _write(dev / "name", "ina238")
            _write(chip / "name", "ina238")
            _link(chip / "device", dev)
            _link(self.root / "class" / "hwmon" / chip.name, chip)
            _write(chip / "update_interval", b.update_interval_ms or 1)
            assert b.ina238 is not None
            self.set_raw("VIN", b.ina238.volt_mv, b.ina238.curr_ma)
            return
        if b.layout == "iio":
            _write(dev / "name", "ina3221x")
            _write(chip / "name", "ina3221x")
            _link(self.root / "bus" / "iio" / "devices" / chip.name, chip)
            for rail in b.rails:
                if rail.device == device:
                    n = rail.channel
                    _write(chip / f"rail_name_{n}", rail.name)
                    _write(chip / f"warn_current_limit_{n}", 32760)
                    _write(chip / f"crit_current_limit_{n}", 32760)
                    self.set_raw(rail.name, rail.volt_mv, rail.curr_ma)
            return
        _write(dev / "name", "ina3221")
        _write(chip / "name", "ina3221")
        _link(chip / "device", dev)
        _link(self.root / "class" / "hwmon" / chip.name, chip)
        if b.update_interval_ms is not None:
            _write(chip / "update_interval", b.update_interval_ms)
        _write(chip / "samples", 512)
        # Channel 7 is the "sum of shunt voltages"; channels 4-6 are its shunt voltages.
        _write(chip / "in7_label", "sum of shunt voltages")
        _write(chip / "in7_input", 40)
        for n in (4, 5, 6):
            _write(chip / f"in{n}_input", 10)
        for dev_name, n in b.nc_channels:
            if dev_name == device:
                _write(chip / f"in{n}_label", "NC")
                _write(chip / f"in{n}_input", 0)
                _write(chip / f"curr{n}_input", 0)
                _write(chip / f"in{n}_enable", 1)
        for rail in b.rails:
            if rail.device == device:
                n = rail.channel
                _write(chip / f"in{n}_label", rail.name)
                _write(chip / f"in{n}_enable", 1)
                _write(chip / f"curr{n}_max", 32760)
                _write(chip / f"curr{n}_crit", 32760)
                self.set_raw(rail.name, rail.volt_mv, rail.curr_ma)

    # -- values ---------------------------------------------------------------------------------
    def set_raw(self, name: str, volt_mv: int, curr_ma: int) -> None:
        """Writes a rail's millivolts and milliamps (and its power file where it has one)."""
        files = self.rail_files(name)
        self._volts[name], self._currs[name] = volt_mv, curr_ma
        if "power" in files:
            if self._is_ina238(self.rail(name).device):
                _write(files["power"], volt_mv * curr_ma)  # mV x mA = uW
            else:
                _write(files["power"], volt_mv * curr_ma // 1000)  # the ina3221x driver's mW
        _write(files["volt"], volt_mv)
        _write(files["curr"], curr_ma)

    def set_mw(self, name: str, mw: int) -> float:
        """Sets a rail to about ``mw`` at its voltage; returns the exact mW it now reads."""
        volt = self._volts[name]
        self.set_raw(name, volt, round(mw * 1000 / volt))
        return self.expected_mw(name)

    def expected_mw(self, name: str) -> float:
        """What a reader must compute for the rail now: mV x mA / 1000, or the power file's
        whole milliwatts where the driver gives one (iio: truncated; ina238: uW / 1000)."""
        volt, curr = self._volts[name], self._currs[name]
        rail = self.rail(name)
        if self.board.layout == "iio" and not self._is_ina238(rail.device):
            return float(volt * curr // 1000)
        return volt * curr / 1000.0

    def break_rail(self, name: str) -> None:
        """The rail's files hold no number (as a failed I2C read leaves them): a gap."""
        for path in self.rail_files(name).values():
            _write(path, "")

    def restore_rail(self, name: str) -> None:
        self.set_raw(name, self._volts[name], self._currs[name])

    # -- the stand-in tegrastats ----------------------------------------------------------------
    def tegrastats_spec(self) -> dict[str, object]:
        rails = []
        for rail in self.all_rails():
            files = self.rail_files(rail.name)
            scale = 0.001 if self._is_ina238(rail.device) else 1.0
            rails.append({"name": rail.name, "volt": str(files["volt"]),
                          "curr": str(files["curr"]),
                          "power": str(files["power"]) if "power" in files else None,
                          "scale": scale})
        return {"jetpack": self.board.jetpack, "rails": rails,
                "nc": len(self.board.nc_channels)}

    def install_tegrastats(self, bin_dir: Path) -> Path:
        """Writes ``bin_dir/tegrastats``: the stand-in, printing lines from this tree."""
        bin_dir.mkdir(parents=True, exist_ok=True)
        spec = bin_dir / "tegrastats.json"
        spec.write_text(json.dumps(self.tegrastats_spec()))
        script = bin_dir / "tegrastats"
        script.write_text(
            "#!/bin/sh\n"
            f'exec "{sys.executable}" -I -S "{REPO / "tests" / "fake_tegrastats.py"}" '
            f'"{spec}" "$@"\n'
        )
        script.chmod(0o755)
        return script


def build(board: str, root: Path) -> SysfsTree:
    """Builds ``board``'s tree under ``root`` and returns it."""
    return SysfsTree(board, root).build()
