"""tegrastats: the parser on published lines of every format, and the source with the stand-in
``tegrastats`` (tests/fake_tegrastats.py) printing lines from an emulated board tree."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from carbontop.model import BoardBasis, PowerSample
from carbontop.sources.base import SourceEvent, SourceUnavailable
from carbontop.sources.sysfs import SYS_ROOT_ENV
from carbontop.sources.tegrastats import TegrastatsSource, parse_power
from tests.sysfs_trees import build

# Lines as published (jetson-stats' tegrastats emulator, public logs and test suites), one per
# format. The expected figures are read off the lines by eye: the FIRST number of each field.
NANO_JP4 = (
    "RAM 1180/3965MB (lfb 1x2MB) SWAP 149/1024MB (cached 7MB) IRAM 0/252kB(lfb 252kB) CPU "
    "[30%@1036,33%@1036,28%@1036,26%@1036] EMC_FREQ 10%@1600 GR3D_FREQ 0%@76 NVENC 716 NVDEC "
    "716 APE 25 PLL@57C CPU@60.5C PMIC@100C GPU@59C AO@65C thermal@59.75C POM_5V_IN 4520/4680 "
    "POM_5V_GPU 0/0 POM_5V_CPU 1078/1205"
)
TX2_JP4 = (
    "RAM 4722/7844MB (lfb 1x512kB) CPU [55%@2035,14%@2034,27%@2034,55%@2035,47%@2035,45%@2035] "
    "SWAP 149/1024MB (cached 7MB) EMC_FREQ 2%@1866 GR3D_FREQ 36%@1300 APE 150 MTS fg 0% bg 0% "
    "BCPU@-45C MCPU@-45C GPU@-51C PLL@45C AO@47.5C Tboard@37C Tdiode@46.75C PMIC@100C "
    "thermal@46.4C VDD_IN 14025/14416 VDD_CPU 2209/2538 VDD_GPU 6854/6903 VDD_SOC 1371/1370 "
    "VDD_WIFI 19/19 NVENC 716 NVDEC 716 VDD_DDR 2702/2702"
)
AGX_XAVIER_JP4 = (
    "RAM 2105/15692MB (lfb 3119x4MB) SWAP 0/7846MB (cached 0MB) CPU [1%@1190,0%@1190,0%@1190,"
    "0%@1190,off,off,off,off] EMC_FREQ 0%@2133 GR3D_FREQ 0%@1377 APE 150 MTS fg 0% bg 0% "
    "AO@40.5C GPU@41C Tdiode@42.25C PMIC@100C AUX@40C CPU@42C thermal@41.2C Tboard@40C "
    "GPU 463/463 CPU 618/618 SOC 1079/1079 CV 0/0 VDDRQ 154/154 SYS5V 1802/1802"
)
ORIN_JP5 = (
    "RAM 2722/30536MB (lfb 6567x4MB) SWAP 0/15268MB (cached 0MB) CPU [2%@729,1%@729,0%@729,"
    "0%@729,off,off,off,off] EMC_FREQ 0%@2133 GR3D_FREQ 0%@[305,305] VIC_FREQ 115 APE 174 "
    "CV0@-256C CPU@44.5C SOC2@41.812C SOC0@42.625C CV1@-256C GPU@41.531C tj@44.5C SOC1@41.343C "
    "CV2@-256C VDD_GPU_SOC 3175mW/3175mW VDD_CPU_CV 793mW/793mW VIN_SYS_5V0 3629mW/3629mW "
    "NC 0mW/0mW VDDQ_VDD2_1V8AO 403mW/403mW NC 0mW/0mW"
)
ORIN_NX_JP6_NEGATIVE = (
    "RAM 2093/15656MB (lfb 2x4MB) SWAP 0/7828MB (cached 0MB) CPU [0%@729,0%@729,0%@729,0%@729,"
    "0%@729,0%@729,0%@729,0%@729] GR3D_FREQ 0% cpu@47.281C soc2@45.593C soc0@45.812C "
    "gpu@45.937C tj@47.281C soc1@45.468C VDD_IN 5079mW/5079mW VDD_CPU_GPU_CV -392mW/-392mW "
    "VDD_SOC 1425mW/1425mW"
)
THOR_JP7 = (
    "07-31-2026 14:45:55 RAM 86905/125772MB (lfb 368x4MB) CPU [12%@972,10%@972,off,33%@1890] "
    "cpu@39.812C tj@39.906C soc012@38.812C gpu@39.906C soc345@38.625C VDD_GPU 1962mW/1962mW/1962mW "
    "VDD_CPU_SOC_MSS 7910mW/7910mW/8011mW VIN_SYS_5V0 7620mW/7620mW/7620mW "
    "VIN 26686mW/26686mW/27001mW"
)


@pytest.mark.parametrize(("line", "expected"), [
    (NANO_JP4, {"POM_5V_IN": 4520, "POM_5V_GPU": 0, "POM_5V_CPU": 1078}),
    (TX2_JP4, {"VDD_IN": 14025, "VDD_CPU": 2209, "VDD_GPU": 6854, "VDD_SOC": 1371,
               "VDD_WIFI": 19, "VDD_DDR": 2702}),
    (AGX_XAVIER_JP4, {"GPU": 463, "CPU": 618, "SOC": 1079, "CV": 0, "VDDRQ": 154,
                      "SYS5V": 1802}),
    (ORIN_JP5, {"VDD_GPU_SOC": 3175, "VDD_CPU_CV": 793, "VIN_SYS_5V0": 3629,
                "VDDQ_VDD2_1V8AO": 403}),
    (ORIN_NX_JP6_NEGATIVE, {"VDD_IN": 5079, "VDD_CPU_GPU_CV": -392, "VDD_SOC": 1425}),
    (THOR_JP7, {"VDD_GPU": 1962, "VDD_CPU_SOC_MSS": 7910, "VIN_SYS_5V0": 7620, "VIN": 26686}),
], ids=["nano-jp4", "tx2-jp4", "agx-xavier-jp4", "agx-orin-jp5", "orin-nx-negative", "thor-jp7"])
def test_parser_reads_the_current_value_of_every_format(line: str,
                                                        expected: dict[str, int]) -> None:
    assert parse_power(line) == expected


def test_parser_ignores_fields_that_only_look_like_power() -> None:
    assert parse_power("RAM 1180/3965MB (lfb 1x2MB) SWAP 0/1982MB CPU [1%@102] GR3D_FREQ 0%@76 "
                       "NVENC 716 IRAM 0/252kB(lfb 252kB) APE 25") == {}
    assert parse_power("") == {}


def tegrastats_tree(key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    tree = build(key, tmp_path / "sys")
    monkeypatch.setenv(SYS_ROOT_ENV, str(tree.root))
    return tree.install_tegrastats(tmp_path / "bin")


def test_source_on_the_stand_in_reads_the_same_rails_as_sysfs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exe = tegrastats_tree("agx-orin", tmp_path, monkeypatch)
    monkeypatch.setenv("PATH", f"{exe.parent}{os.pathsep}{os.environ['PATH']}")
    source = TegrastatsSource(interval_s=0.05)  # found on PATH
    info = source.open()
    assert (info.kind, info.gpu_rail, info.cpu_rail) == ("tegrastats", "VDD_GPU_SOC", "VDD_CPU_CV")
    assert info.board_basis is BoardBasis.SUM_OF_RAILS
    assert info.device_name == "Jetson AGX Orin Developer Kit"
    events: list[SourceEvent] = []
    source.start(events.append)
    time.sleep(0.5)
    pid = source.pid
    source.close()
    samples = [e for e in events if isinstance(e, PowerSample)]
    assert len(samples) >= 4  # 0.05 s lines for 0.5 s, on a busy machine
    # 5000 mV x 800 mA = 4000 mW; the sum 4000 + 1500 + 3000 + 500 (the NC channels skipped).
    assert samples[-1].gpu_w == 4.0 and samples[-1].board_w == pytest.approx(9.0)
    assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the child is ended with the source, never left running


@pytest.mark.parametrize(("key", "gpu_w", "board_w"), [
    ("nano", 0.5, 3.5),  # JetPack 4 format, no unit
    ("thor", 7.705, 27.72),  # JetPack 7: three values, date prefix, no GR3D_FREQ; whole mW
    ("agx-xavier-jp4", 0.456, 4.121),  # bare GPU/CPU fields beside CPU [..]
])
def test_source_reads_each_jetpack_format(key: str, gpu_w: float, board_w: float, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    exe = tegrastats_tree(key, tmp_path, monkeypatch)
    source = TegrastatsSource(interval_s=0.05, executable=str(exe))
    source.open()
    events: list[SourceEvent] = []
    source.start(events.append)
    time.sleep(0.2)
    source.close()
    sample = [e for e in events if isinstance(e, PowerSample)][-1]
    assert sample.gpu_w == pytest.approx(gpu_w) and sample.board_w == pytest.approx(board_w)


def test_a_rail_missing_from_a_line_is_a_gap(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    exe = tegrastats_tree("orin-nx", tmp_path, monkeypatch)
    source = TegrastatsSource(interval_s=0.05, executable=str(exe))
    source.open()
    try:
        sample = source.sample_from_line("RAM 1/2MB VDD_IN 5000mW/5000mW VDD_SOC 1mW/1mW", 1.0, 1.0)
        assert sample is not None and sample.gpu_w is None and sample.board_w == 5.0
        negative = source.sample_from_line(ORIN_NX_JP6_NEGATIVE, 2.0, 2.0)
        assert negative is not None and negative.gpu_w == 0.0  # clamped, never negative
    finally:
        source.close()


def test_no_tegrastats_on_path_is_unavailable(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SourceUnavailable, match="tegrastats is not on PATH"):
        TegrastatsSource().open()


def test_a_tegrastats_without_power_fields_is_unavailable(tmp_path: Path) -> None:
    exe = tmp_path / "tegrastats"
    exe.write_text("#!/bin/sh\nwhile true; do echo 'RAM 1180/3965MB CPU [1%@102]'; "
                   "sleep 0.05; done\n")
    exe.chmod(0o755)
    with pytest.raises(SourceUnavailable, match="no power rails"):
        TegrastatsSource(interval_s=0.05, executable=str(exe)).open()
