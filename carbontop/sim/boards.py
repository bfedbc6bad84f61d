"""The simulated Jetson's catalogue: its modules, their power rails, nvpmodel modes and sensors.

Each board has a few nvpmodel power modes (:class:`SimPowerMode`, figures approximate, after
NVIDIA's published mode tables). The rails' idle and peak watts are those of the board's default
mode (:mod:`carbontop.sim.physics` scales them in the other modes).
"""

from __future__ import annotations

from dataclasses import dataclass

from carbontop.errors import BadInput

# Sensor names as jtop 7 derives them from the thermal zones, each with its offset from the
# die (None: offline, reads -256, like Orin's CV sensors on many modules).
SIM_SENSORS: dict[str, tuple[tuple[str, float | None], ...]] = {
    "tegra234": (
        ("cpu", 0.0), ("cv0", None), ("gpu", -1.5), ("soc0", -4.0), ("soc1", -3.5),
        ("soc2", -4.5), ("tj", 1.0),
    ),
    "tegra194": (
        ("AO", -6.0), ("AUX", -4.0), ("CPU", 0.0), ("GPU", -1.0), ("PLL", -3.0),
        ("thermal", 0.5),
    ),
    "tegra210": (("AO", -5.0), ("CPU", 0.0), ("GPU", -1.5), ("PLL", -2.0), ("thermal", -0.5)),
}


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
class SimPowerMode:
    """One nvpmodel mode: its name and the caps it sets (its id is its index on the board)."""

    name: str
    cpu_max_mhz: float
    cores_online: int
    gpu_max_mhz: float
    needs_reboot: bool = False  # a different GPU power-gating mask: jtop will not switch to it


@dataclass(frozen=True)
class SimBoard:
    """A simulated module: its rails, its input rail (None: jtop sums the rails), its modes."""

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
    modes: tuple[SimPowerMode, ...] = ()  # by id; ``nvpmodel`` names the default one
    cpu_min_mhz: float = 729.6  # where the governors park the clocks when idle
    gpu_min_mhz: float = 306.0

    def mode_id(self, name: str) -> int:
        """The id of mode ``name``; BadInput listing the modes otherwise."""
        for idx, mode in enumerate(self.modes):
            if mode.name == name:
                return idx
        modes = ", ".join(m.name for m in self.modes)
        raise BadInput(f"unknown power mode {name!r} for {self.key}: choose one of {modes}")

    @property
    def default_mode(self) -> SimPowerMode:
        return self.modes[self.mode_id(self.nvpmodel)]

    @property
    def sensors(self) -> tuple[tuple[str, float | None], ...]:
        """The SoC's temperature sensors, each with its offset from the die (None: offline)."""
        return SIM_SENSORS.get(self.soc, SIM_SENSORS["tegra234"])


def _m(name: str, cpu_mhz: float, cores: int, gpu_mhz: float) -> SimPowerMode:
    return SimPowerMode(name, cpu_max_mhz=cpu_mhz, cores_online=cores, gpu_max_mhz=gpu_mhz)


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
        modes=(
            _m("MAXN", 2201.6, 12, 1301.0),
            _m("15W", 1113.6, 4, 420.75),
            _m("30W", 1728.0, 8, 624.75),
            _m("50W", 1497.6, 12, 828.75),
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
        modes=(
            _m("MAXN", 1984.0, 8, 918.0),
            _m("10W", 1190.4, 4, 408.0),
            _m("15W", 1497.6, 4, 612.0),
            _m("25W", 1497.6, 8, 918.0),
        ),
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
        modes=(
            _m("15W", 1497.6, 6, 624.75),
            _m("25W", 1728.0, 6, 918.0),
            _m("7W", 960.0, 4, 408.0),
        ),
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
        modes=(
            _m("MAXN", 1479.0, 4, 921.6),
            _m("5W", 918.0, 2, 640.0),
        ),
        cpu_min_mhz=102.0,
        gpu_min_mhz=76.8,
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
        modes=(
            _m("MODE_15W_2CORE", 1907.2, 2, 1109.25),
            _m("MODE_15W_4CORE", 1420.8, 4, 1109.25),
            _m("MODE_15W_6CORE", 1420.8, 6, 1109.25),
            _m("MODE_10W_2CORE", 1497.6, 2, 803.25),
            _m("MODE_10W_4CORE", 1190.4, 4, 803.25),
            _m("MODE_20W_6CORE", 1420.8, 6, 1109.25),
        ),
        cpu_min_mhz=1190.4,
        gpu_min_mhz=114.75,
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
        modes=(
            _m("MAXN", 2265.6, 8, 1377.0),
            _m("MODE_10W", 1200.0, 2, 520.0),
            _m("MODE_15W", 1200.0, 4, 670.0),
            _m("MODE_30W_ALL", 1200.0, 8, 900.0),
        ),
        cpu_min_mhz=1190.4,
        gpu_min_mhz=114.75,
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

