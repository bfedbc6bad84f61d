"""Runs the REAL jtop service (jetson-stats) on an emulated Jetson sysfs tree, for tests.

The service reads ``/fake_sys`` when ``JTOP_TESTING`` is set (docs/jetson-power.md, "Running the
real service without a Jetson"). This module builds that tree for three boards, starts
``jtop.service.JtopServer`` in a small subprocess (this very file run as a script) that first
replaces ``jtop.service.get_hardware`` (it crashes where ``/sys/devices/virtual/dmi/id`` is missing)
and points ``jtop.service.JTOP_PIPE`` at a private socket, and lets a test rewrite rail values while
it runs, stop it and start it again.

Two more pieces of a board, for power modes and board state:

- Temperatures: jtop 7.2.2 reads thermal zones from the real ``/sys`` even under ``JTOP_TESTING``
  (``TemperatureService`` has no testing hook), and a sandbox has none. The service subprocess
  swaps in a ``TemperatureService`` that runs jtop's own zone discovery on
  ``/fake_sys/devices/virtual/thermal`` (``thermal_zoneN/type`` and ``temp`` in milli-C); jtop's
  reading code (``get_status``, -256 for an unreadable sensor) is untouched.
- nvpmodel: the service runs the ``nvpmodel`` it finds on its PATH (``nvpmodel -p --verbose`` once
  at start to list the modes, ``nvpmodel -q`` on every tick, ``nvpmodel -m ID`` to switch). With
  ``nvpmodel=`` modes, a small fake ``nvpmodel`` is written into a private bin folder put first on
  the service's PATH. It keeps the mode id in a state file, prints the lines jtop parses in the
  real tool's format (``NV Power Mode: NAME`` then the id; ``NVPM VERB: POWER_MODEL: ID=N
  NAME=X``, ``TPC_POWER_GATING TPC_PG_MASK M``, ``PM_CONFIG: DEFAULT=X(N)``), and on ``-m``
  writes the mode's caps into the fake cpufreq and devfreq files, as the real tool writes the
  real ones. A mode marked ``fails`` makes ``-m`` print ``NVPM ERROR`` and exit 1. jetson_clocks
  is looked for at fixed paths (``/usr/bin/jetson_clocks``); where it is absent jtop reports
  none (``jetson.jetson_clocks is None``).

Two test hooks on the service process itself (``JtopService(decode_delay_s=..., stamp_log=True)``):

- A slow decode: jtop's process scan (``ProcessService.get_status``, between the ``uptime`` stamp
  and the power read, where a busy board spends its decode time) sleeps ``decode_delay_s`` more.
- Stamps: each tick appends one JSON line with the tick's ``uptime`` and CLOCK_MONOTONIC (and
  CLOCK_BOOTTIME) at the decode's start, around the power-rail read, and once the sample is
  published to the clients (:meth:`JtopService.stamps`).

``/fake_sys`` is a fixed path at the root, so one service at a time: a file lock is held from
:meth:`JtopService.__enter__` to :meth:`JtopService.__exit__`.
"""

from __future__ import annotations

import contextlib
import fcntl
import grp
import importlib.util
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

logger = logging.getLogger(__name__)

FAKE_SYS = Path("/fake_sys")
THERMAL = FAKE_SYS / "devices" / "virtual" / "thermal"
LOCK_PATH = Path(tempfile.gettempdir()) / "carbontop-fake-sys.lock"
JTOP_GROUP = "jtop"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class FakeRail:
    """One INA3221 channel: where it lives and its starting reading."""

    name: str
    device: str  # i2c device folder, e.g. "1-0040"
    channel: int  # hwmon: 1..3, iio: 0..2
    volt_mv: int
    curr_ma: int


@dataclass(frozen=True)
class FakeNvpMode:
    """One mode of the fake ``nvpmodel``: the caps it writes, and how it misbehaves."""

    name: str
    cpu_max_khz: int
    gpu_max_hz: int
    tpc_pg_mask: int = 0  # another mask than the current mode's: jtop refuses (needs a reboot)
    fails: bool = False  # ``nvpmodel -m`` prints NVPM ERROR and exits 1


# AGX Orin 64GB's modes (JetPack 5/6), caps roughly as NVIDIA lists them.
AGX_ORIN_MODES: tuple[FakeNvpMode, ...] = (
    FakeNvpMode("MAXN", 2201600, 1300500000),
    FakeNvpMode("15W", 1113600, 420750000),
    FakeNvpMode("30W", 1728000, 624750000),
    FakeNvpMode("50W", 1497600, 828750000),
)

# Thermal zones: (type as the kernel names it, milli-C or None for an offline sensor).
FakeZone = tuple[str, int | None]
ORIN_ZONES: tuple[FakeZone, ...] = (
    ("cpu-thermal", 45500),
    ("gpu-thermal", 44000),
    ("cv0-thermal", None),
    ("soc0-thermal", 42000),
    ("tj-thermal", 46000),
)
NANO_ZONES: tuple[FakeZone, ...] = (
    ("AO-therm", 38500),
    ("CPU-therm", 41000),
    ("GPU-therm", 39500),
    ("PLL-therm", 39000),
    ("thermal-fan-est", 40200),
)


@dataclass(frozen=True)
class FakeBoard:
    """An emulated board: its INA3221 layout, rails and what ``get_hardware`` returns."""

    key: str
    layout: str  # "hwmon" (L4T 34+) or "iio" (L4T 32)
    rails: tuple[FakeRail, ...]
    hardware: dict[str, str]
    nc_channels: tuple[tuple[str, int], ...] = ()  # (device, channel) labelled "NC" (skipped)
    gpu_devfreq: str = "17000000.ga10b"  # /sys/class/devfreq entry of the iGPU
    gpu_name: str = "ga10b"  # its device/of_node/name
    zones: tuple[FakeZone, ...] = ORIN_ZONES
    # i2c devices that are an INA238 (Thor's carrier-board input): one channel, in1/curr1 (hwmon)
    ina238_devices: tuple[str, ...] = ()


def _hw(model: str, module: str, soc: str, l4t: str, jetpack: str, pnum: str) -> dict[str, str]:
    return {
        "Model": model,
        "699-level Part Number": f"699-1{pnum[1:5]}-0000-000 A.0",
        "P-Number": pnum,
        "Module": module,
        "SoC": soc,
        "CUDA Arch BIN": "8.7" if "234" in soc else "5.3",
        "Serial Number": "1420000000000",
        "L4T": l4t,
        "Jetpack": jetpack,
    }


BOARDS: dict[str, FakeBoard] = {
    "nano": FakeBoard(
        key="nano",
        layout="iio",
        rails=(
            FakeRail("POM_5V_IN", "6-0040", 0, 5000, 700),
            FakeRail("POM_5V_GPU", "6-0040", 1, 5000, 100),
            FakeRail("POM_5V_CPU", "6-0040", 2, 5000, 200),
        ),
        hardware=_hw(
            "NVIDIA Jetson Nano Developer Kit",
            "NVIDIA Jetson Nano (4 GB ram)",
            "tegra210",
            "32.7.4",
            "4.6.4",
            "p3448-0000",
        ),
        gpu_devfreq="57000000.gpu",
        gpu_name="gpu",
        zones=NANO_ZONES,
    ),
    "orin-nx": FakeBoard(
        key="orin-nx",
        layout="hwmon",
        rails=(
            FakeRail("VDD_IN", "1-0040", 1, 5000, 1400),
            FakeRail("VDD_CPU_GPU_CV", "1-0040", 2, 5000, 400),
            FakeRail("VDD_SOC", "1-0040", 3, 5000, 300),
        ),
        hardware=_hw(
            "NVIDIA Orin NX Developer Kit",
            "NVIDIA Jetson Orin NX (16GB ram)",
            "tegra234",
            "35.4.1",
            "5.1.2",
            "p3767-0000",
        ),
    ),
    "agx-orin": FakeBoard(
        key="agx-orin",
        layout="hwmon",
        rails=(
            FakeRail("VDD_GPU_SOC", "1-0040", 1, 5000, 800),
            FakeRail("VDD_CPU_CV", "1-0040", 2, 5000, 300),
            FakeRail("VIN_SYS_5V0", "1-0040", 3, 5000, 600),
            FakeRail("VDDQ_VDD2_1V8AO", "1-0041", 2, 5000, 100),
        ),
        nc_channels=(("1-0041", 1), ("1-0041", 3)),
        hardware=_hw(
            "Jetson AGX Orin Developer Kit",
            "NVIDIA Jetson AGX Orin (64GB ram)",
            "tegra234",
            "35.4.1",
            "5.1.2",
            "p3701-0005",
        ),
    ),
    # Thor: module rails on an INA3221, the carrier board's input VIN on an INA238.
    "thor": FakeBoard(
        key="thor",
        layout="hwmon",
        rails=(
            FakeRail("VDD_GPU", "1-0040", 1, 5000, 900),
            FakeRail("VDD_CPU_SOC_MSS", "1-0040", 2, 5000, 700),
            FakeRail("VIN_SYS_5V0", "1-0040", 3, 5000, 500),
            FakeRail("VIN", "2-0045", 1, 19000, 600),
        ),
        ina238_devices=("2-0045",),
        hardware=_hw(
            "NVIDIA Jetson AGX Thor Developer Kit",
            "NVIDIA Jetson AGX Thor (128GB ram)",
            "tegra264",
            "38.2.0",
            "7.0",
            "p3834-0008",
        ),
    ),
    # No INA3221 at all (Jetson Nano 2GB): jtop's power is {}.
    "nano-2gb": FakeBoard(
        key="nano-2gb",
        layout="iio",
        rails=(),
        hardware=_hw(
            "NVIDIA Jetson Nano 2GB Developer Kit",
            "NVIDIA Jetson Nano (2 GB ram)",
            "tegra210",
            "32.7.4",
            "4.6.4",
            "p3448-0003",
        ),
        gpu_devfreq="57000000.gpu",
        gpu_name="gpu",
        zones=NANO_ZONES,
    ),
}


def _write(path: Path, value: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"{value}\n")
    os.replace(tmp, path)  # atomic: the service never reads half a number


def _rail_files(board: FakeBoard, rail: FakeRail) -> dict[str, Path]:
    """The files holding one rail's volt / curr (and, iio only, power)."""
    dev = FAKE_SYS / "bus" / "i2c" / "devices" / rail.device
    n = rail.channel
    if board.layout == "iio":
        base = dev / "iio:device0"
        return {
            "volt": base / f"in_voltage{n}_input",
            "curr": base / f"in_current{n}_input",
            "power": base / f"in_power{n}_input",
        }
    base = dev / "hwmon" / f"hwmon{3 + int(rail.device[-1])}"
    return {"volt": base / f"in{n}_input", "curr": base / f"curr{n}_input"}


def build_fake_sys(board: FakeBoard) -> None:
    """Writes the emulated sysfs tree for ``board`` (power, CPU, iGPU) under ``/fake_sys``."""
    if FAKE_SYS.exists():
        shutil.rmtree(FAKE_SYS)
    devices = FAKE_SYS / "bus" / "i2c" / "devices"
    for device in sorted({r.device for r in board.rails} | {d for d, _ in board.nc_channels}):
        if device in board.ina238_devices:
            _write(devices / device / "name", "ina238")
            continue
        _write(devices / device / "name", "ina3221x" if board.layout == "iio" else "ina3221")
        if board.layout == "hwmon":
            hwmon = devices / device / "hwmon" / f"hwmon{3 + int(device[-1])}"
            # Channel 7 is the "sum of shunt voltages" that jtop must skip.
            _write(hwmon / "in7_label", "sum of shunt voltages")
            _write(hwmon / "in7_input", 0)
    for device, n in board.nc_channels:
        hwmon = devices / device / "hwmon" / f"hwmon{3 + int(device[-1])}"
        _write(hwmon / f"in{n}_label", "NC")
        _write(hwmon / f"in{n}_input", 0)
        _write(hwmon / f"curr{n}_input", 0)
    for rail in board.rails:
        dev = devices / rail.device
        n = rail.channel
        if board.layout == "iio":
            base = dev / "iio:device0"
            _write(base / f"rail_name_{n}", rail.name)
            _write(base / f"warn_current_limit_{n}", 32760)
            _write(base / f"crit_current_limit_{n}", 32760)
        elif rail.device not in board.ina238_devices:  # an INA238 has no labels: jtop says VIN
            base = dev / "hwmon" / f"hwmon{3 + int(rail.device[-1])}"
            _write(base / f"in{n}_label", rail.name)
            _write(base / f"curr{n}_max", 32760)
            _write(base / f"curr{n}_crit", 32760)
        _write_rail(board, rail, rail.volt_mv, rail.curr_ma)
    # CPU: /fake_sys/stat and two cores with cpufreq.
    _write(
        FAKE_SYS / "stat",
        "cpu  1000 0 500 8000 10 0 5 0 0 0\n"
        "cpu0 500 0 250 4000 5 0 3 0 0 0\n"
        "cpu1 500 0 250 4000 5 0 2 0 0 0\nintr 0",
    )
    for idx in range(2):
        cpu = FAKE_SYS / "devices" / "system" / "cpu" / f"cpu{idx}"
        _write(cpu / "online", 1)
        freq = cpu / "cpufreq"
        _write(freq / "scaling_governor", "schedutil")
        for kind in ("scaling", "cpuinfo"):
            _write(freq / f"{kind}_min_freq", 115200)
            _write(freq / f"{kind}_max_freq", 2201600)
            _write(freq / f"{kind}_cur_freq", 1190400)
    # Integrated GPU through devfreq.
    gpu = FAKE_SYS / "class" / "devfreq" / board.gpu_devfreq
    _write(gpu / "device" / "of_node" / "name", board.gpu_name)
    _write(gpu / "device" / "load", 0)
    _write(gpu / "device" / "railgate_enable", 0)
    _write(gpu / "governor", "nvhost_podgov")
    _write(gpu / "cur_freq", 306000000)
    _write(gpu / "max_freq", 1300500000)
    _write(gpu / "min_freq", 306000000)
    # Thermal zones (read by the TemperatureService that tests/jtop_serve.py swaps in).
    for idx, (kind, milli_c) in enumerate(board.zones):
        zone = THERMAL / f"thermal_zone{idx}"
        _write(zone / "type", kind)
        _write(zone / "temp", "N/A" if milli_c is None else milli_c)  # N/A: jtop says -256


def _cpu_dirs() -> list[Path]:
    root = FAKE_SYS / "devices" / "system" / "cpu"
    return sorted(root.glob("cpu[0-9]*"))


def _gpu_dir(board: FakeBoard) -> Path:
    return FAKE_SYS / "class" / "devfreq" / board.gpu_devfreq


def _write_rail(board: FakeBoard, rail: FakeRail, volt_mv: int, curr_ma: int) -> int:
    """Writes one rail's reading; returns the milliwatts jtop will compute from it."""
    files = _rail_files(board, rail)
    mw = int(volt_mv * (float(curr_ma) / 1000))  # jtop's own formula (hwmon)
    if "power" in files:
        _write(files["power"], mw)
    _write(files["volt"], volt_mv)
    _write(files["curr"], curr_ma)
    return mw


# The fake nvpmodel: stdlib only, run with -I -S so that it starts fast (the service runs
# `nvpmodel -q` on every tick). Its settings come from a JSON file next to it.
_FAKE_NVPMODEL = """#!{python} -IS
# Fake nvpmodel written by carbontop's tests/jtop_harness.py: prints what jtop parses.
import json
import os
import sys

CONFIG = {config!r}


def write(path, value):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(value) + "\\n")
    os.replace(tmp, path)


def main(argv):
    with open(CONFIG) as f:
        conf = json.load(f)
    with open(conf["log"], "a") as f:
        f.write(" ".join(argv) + "\\n")
    modes = conf["modes"]
    try:
        with open(conf["state"]) as f:
            current = int(f.read().strip())
    except (OSError, ValueError):
        current = conf["default"]
    if argv[:1] == ["-q"]:
        print("NV Power Mode: " + modes[current]["name"])
        print(current)
        return 0
    if argv[:1] == ["-p"]:
        print("NVPM VERB: Config file: /etc/nvpmodel.conf")
        print("NVPM VERB: parsing done for /etc/nvpmodel.conf")
        for idx, mode in enumerate(modes):
            print("NVPM VERB: POWER_MODEL: ID=%d NAME=%s" % (idx, mode["name"]))
            print("NVPM VERB: TPC_POWER_GATING TPC_PG_MASK %d" % mode["tpc_pg_mask"])
        default = conf["default"]
        print("NVPM VERB: PM_CONFIG: DEFAULT=%s(%d)" % (modes[default]["name"], default))
        return 0
    if argv[:1] == ["-m"] and len(argv) >= 2:
        try:
            target = int(argv[1])
            mode = modes[target]
        except (ValueError, IndexError):
            print("NVPM ERROR: Invalid mode: " + argv[1])
            return 1
        if mode["fails"]:
            print("NVPM ERROR: failed to set power mode %d (fake failure)" % target)
            return 1
        for cpu in conf["cpu_dirs"]:
            write(os.path.join(cpu, "cpufreq", "scaling_max_freq"), mode["cpu_max_khz"])
            write(os.path.join(cpu, "cpufreq", "scaling_cur_freq"), mode["cpu_max_khz"])
        write(os.path.join(conf["gpu_dir"], "max_freq"), mode["gpu_max_hz"])
        write(os.path.join(conf["gpu_dir"], "cur_freq"), mode["gpu_max_hz"])
        write(conf["state"], target)
        return 0
    print("usage: nvpmodel [-q] [-p --verbose] [-m ID]", file=sys.stderr)
    return 2


sys.exit(main(sys.argv[1:]))
"""


def ensure_jtop_group() -> None:
    """The service chowns its socket to group ``jtop``: create the group if it is missing."""
    try:
        grp.getgrnam(JTOP_GROUP)
    except KeyError:
        subprocess.run(["groupadd", "--system", JTOP_GROUP], check=True, capture_output=True)


def skip_reason() -> str | None:
    """Why the real service cannot run here, or None when it can."""
    # imported here: this file also runs as a script (the service), outside the tests package
    from tests.strict_skips import NEEDS_ROOT, NO_JETSON_STATS

    if not hasattr(os, "getuid") or os.getuid() != 0:
        return f"the jtop service {NEEDS_ROOT} (it reads /fake_sys and chowns its socket)"
    if importlib.util.find_spec("jtop") is None:
        return f"{NO_JETSON_STATS} in this Python"
    return None


@contextlib.contextmanager
def _fake_sys_lock() -> Iterator[None]:
    with open(LOCK_PATH, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class JtopService:
    """The real jtop service on an emulated board. Use as a context manager."""

    def __init__(
        self,
        board: str,
        service_version: str | None = None,
        nvpmodel: tuple[FakeNvpMode, ...] | None = None,
        nvpmodel_mode: int = 0,
        sysfs_tree: str | None = None,
        decode_delay_s: float = 0.0,
        stamp_log: bool = False,
        python: str | None = None,
    ) -> None:
        if board not in BOARDS:
            raise ValueError(f"unknown board {board!r}; known: {', '.join(sorted(BOARDS))}")
        if nvpmodel is not None and not 0 <= nvpmodel_mode < len(nvpmodel):
            raise ValueError("nvpmodel_mode must be the id of one of the nvpmodel modes")
        self.board = BOARDS[board]
        self.service_version = service_version  # pretend the service is another jetson-stats
        self.nvpmodel = nvpmodel  # None: no nvpmodel on the service's PATH (jtop reports none)
        self._workdir = Path(tempfile.mkdtemp(prefix="carbontop-jtop-"))
        self.pipe = str(self._workdir / "jtop.sock")
        self.log_path = self._workdir / "service.log"
        self.bin_dir = self._workdir / "bin"
        self.nvpmodel_state = self._workdir / "nvpmodel.state"  # the current mode id
        self.nvpmodel_log = self._workdir / "nvpmodel.calls"  # one line of arguments per call
        self._nvpmodel_default = nvpmodel_mode
        # A board of tests/sysfs_trees.py whose power-monitor tree is built at /fake_sys (use a
        # ``board`` without rails, e.g. "nano-2gb", for the CPU, iGPU and thermal files).
        self.sysfs_tree = sysfs_tree
        self.decode_delay_s = float(decode_delay_s)  # extra seconds in each tick's decode
        self.stamp_path = self._workdir / "stamps.jsonl" if stamp_log else None
        # The service's interpreter (default: this one); JetPack 5 runs it in the system's 3.8.
        self.python = python or sys.executable
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock: contextlib.ExitStack | None = None

    # -- lifetime -----------------------------------------------------------------------------
    def __enter__(self) -> JtopService:
        stack = contextlib.ExitStack()
        stack.enter_context(_fake_sys_lock())
        self._lock = stack
        try:
            ensure_jtop_group()
            build_fake_sys(self.board)
            if self.sysfs_tree is not None:
                from tests.sysfs_trees import build as build_tree

                build_tree(self.sysfs_tree, FAKE_SYS)
            if self.nvpmodel is not None:
                self._install_nvpmodel(self.nvpmodel, self._nvpmodel_default)
            self.start()
        except BaseException:
            self._cleanup()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._cleanup()

    def _cleanup(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(FAKE_SYS, ignore_errors=True)
            if self._lock is not None:
                self._lock.close()
                self._lock = None
            shutil.rmtree(self._workdir, ignore_errors=True)

    def start(self) -> None:
        """Starts the service and waits until its socket answers."""
        if self.running:
            return
        env = dict(os.environ, JTOP_TESTING="true", JTOP_SERVICE="True")
        if self.nvpmodel is not None:
            env["PATH"] = os.pathsep.join([str(self.bin_dir), env.get("PATH", os.defpath)])
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                [
                    self.python,
                    str(Path(__file__).with_name("jtop_serve.py")),
                    self.pipe,
                    json.dumps(self.board.hardware),
                    self.service_version or "",
                    json.dumps(
                        {
                            "decode_delay_s": self.decode_delay_s,
                            "stamp_log": str(self.stamp_path) if self.stamp_path else "",
                        }
                    ),
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not os.path.exists(self.pipe):
            if self._proc.poll() is not None:
                raise RuntimeError(f"jtop service exited at start:\n{self.log_text()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"jtop service did not open its socket:\n{self.log_text()}")
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM, then waits until that process has exited (it removes its socket)."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            logger.warning("jtop service ignored SIGTERM; killing its process group")
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=STOP_TIMEOUT_S)
        # Reap the service's own children (server process, manager) if any outlived it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.pipe)

    def restart(self) -> None:
        """Stops, then starts the service on the same tree (rails are found again)."""
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stamps(self) -> list[dict[str, float]]:
        """The service's per-tick stamps (needs ``stamp_log=True``), oldest first.

        Keys: ``uptime`` (what the clients get), ``decode_start``, ``power_start``,
        ``power_end``, ``published`` (CLOCK_MONOTONIC s) and ``boottime_power`` (CLOCK_BOOTTIME
        at ``power_start``).
        """
        if self.stamp_path is None:
            raise RuntimeError("start the service with stamp_log=True")
        try:
            lines = self.stamp_path.read_text().splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in lines if line.endswith("}")]

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    # -- nvpmodel and thermal zones -------------------------------------------------------------
    def _install_nvpmodel(self, modes: tuple[FakeNvpMode, ...], default: int) -> None:
        """Writes the fake ``nvpmodel`` (and its settings) into the private bin folder."""
        config = self._workdir / "nvpmodel.json"
        config.write_text(
            json.dumps(
                {
                    "modes": [
                        {
                            "name": m.name,
                            "cpu_max_khz": m.cpu_max_khz,
                            "gpu_max_hz": m.gpu_max_hz,
                            "tpc_pg_mask": m.tpc_pg_mask,
                            "fails": m.fails,
                        }
                        for m in modes
                    ],
                    "default": default,
                    "state": str(self.nvpmodel_state),
                    "log": str(self.nvpmodel_log),
                    "cpu_dirs": [str(d) for d in _cpu_dirs()],
                    "gpu_dir": str(_gpu_dir(self.board)),
                }
            )
        )
        _write(self.nvpmodel_state, default)
        self.bin_dir.mkdir(parents=True, exist_ok=True)
        script = self.bin_dir / "nvpmodel"
        script.write_text(_FAKE_NVPMODEL.format(python=sys.executable, config=str(config)))
        script.chmod(0o755)
        # The mode's caps are in the files from the start, as on a booted board.
        mode = modes[default]
        for cpu in _cpu_dirs():
            _write(cpu / "cpufreq" / "scaling_max_freq", mode.cpu_max_khz)
        _write(_gpu_dir(self.board) / "max_freq", mode.gpu_max_hz)

    def nvpmodel_mode(self) -> int:
        """The mode id the fake nvpmodel holds now (its state file)."""
        return int(self.nvpmodel_state.read_text().strip())

    def nvpmodel_calls(self) -> list[str]:
        """The argument lines the service ran nvpmodel with, oldest first."""
        try:
            return self.nvpmodel_log.read_text().splitlines()
        except FileNotFoundError:
            return []

    def set_temperature(self, kind: str, celsius: float | None) -> None:
        """Rewrites thermal zone ``kind`` (e.g. "gpu-thermal"); None makes it offline (-256)."""
        for idx, (zone_kind, _) in enumerate(self.board.zones):
            if zone_kind == kind:
                value = "N/A" if celsius is None else int(round(celsius * 1000))
                _write(THERMAL / f"thermal_zone{idx}" / "temp", value)
                return
        raise KeyError(f"{kind} is not a thermal zone of {self.board.key}")

    def set_gpu_freq(self, cur_hz: int | None = None, max_hz: int | None = None) -> None:
        """Rewrites the iGPU's devfreq current frequency and/or cap (e.g. thermal cooling)."""
        if cur_hz is not None:
            _write(_gpu_dir(self.board) / "cur_freq", cur_hz)
        if max_hz is not None:
            _write(_gpu_dir(self.board) / "max_freq", max_hz)

    # -- values -------------------------------------------------------------------------------
    def set_rail(self, name: str, mw: int) -> int:
        """Rewrites a rail to about ``mw`` milliwatts at its voltage; returns jtop's exact mW."""
        rail = self._rail(name)
        curr_ma = round(mw * 1000 / rail.volt_mv)
        return _write_rail(self.board, rail, rail.volt_mv, curr_ma)

    def set_rail_raw(self, name: str, volt_mv: int, curr_ma: int) -> int:
        """Rewrites a rail's millivolts and milliamps; returns the mW jtop will report."""
        return _write_rail(self.board, self._rail(name), volt_mv, curr_ma)

    def set_gpu_load(self, percent: float) -> None:
        """The iGPU load jtop reports (the devfreq 'load' file holds per-mille)."""
        path = FAKE_SYS / "class" / "devfreq" / self.board.gpu_devfreq / "device" / "load"
        _write(path, int(percent * 10))

    def fail_rail(self, name: str) -> None:
        """Makes the rail's reading fail (its voltage file vanishes): jtop skips it that tick."""
        volt = _rail_files(self.board, self._rail(name))["volt"]
        os.replace(volt, volt.with_name(volt.name + ".off"))

    def restore_rail(self, name: str) -> None:
        """Undoes :meth:`fail_rail`."""
        volt = _rail_files(self.board, self._rail(name))["volt"]
        os.replace(volt.with_name(volt.name + ".off"), volt)

    def _rail(self, name: str) -> FakeRail:
        for rail in self.board.rails:
            if rail.name == name:
                return rail
        raise KeyError(f"{name} is not a rail of {self.board.key}")

    # -- clients ------------------------------------------------------------------------------
    @property
    def client_factory(self) -> Callable[[float], Any]:
        """A JtopSource client_factory that talks to this service's private socket."""
        pipe = self.pipe

        def factory(interval: float) -> Any:
            import jtop.service

            jtop.service.JTOP_PIPE = pipe  # read at call time by JtopManager
            from jtop import jtop as jtop_client

            return jtop_client(interval=interval)

        return factory


def jtop_service(
    board: str,
    service_version: str | None = None,
    nvpmodel: tuple[FakeNvpMode, ...] | None = None,
    nvpmodel_mode: int = 0,
    decode_delay_s: float = 0.0,
    stamp_log: bool = False,
) -> JtopService:
    """The real jtop service on emulated ``board``, as a context manager."""
    return JtopService(
        board,
        service_version=service_version,
        nvpmodel=nvpmodel,
        nvpmodel_mode=nvpmodel_mode,
        decode_delay_s=decode_delay_s,
        stamp_log=stamp_log,
    )
