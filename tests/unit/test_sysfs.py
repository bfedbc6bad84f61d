"""The sysfs power source on every emulated board tree (tests/sysfs_trees.py): no CodeCarbon."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from carbontop.model import BoardBasis, PowerSample
from carbontop.sources.base import SourceEvent, SourceUnavailable
from carbontop.sources.sysfs import SYS_ROOT_ENV, SysfsSource, discover, is_tegra
from tests.sysfs_trees import BOARDS, SysfsTree, build

MEASURED = [key for key, board in BOARDS.items() if board.rails]


def opened(tree: SysfsTree, interval_s: float = 0.1) -> SysfsSource:
    source = SysfsSource(interval_s=interval_s, root=tree.root)
    source.open()
    return source


def first_sample(source: SysfsSource) -> PowerSample:
    sample = source.read_sample()
    assert sample is not None
    return sample


@pytest.mark.parametrize("key", MEASURED)
def test_every_board_reads_its_rails_with_the_shared_roles(key: str, tmp_path: Path) -> None:
    tree = build(key, tmp_path)
    board = tree.board
    source = opened(tree)
    info = source.info
    assert info.kind == "sysfs"
    assert info.device_name == board.model
    assert info.gpu_rail == board.gpu_rail
    assert info.gpu_scope is not None and info.gpu_scope.value == board.scope
    assert info.board_rail == board.input_rail
    assert info.board_basis is (BoardBasis.INPUT_RAIL if board.input_rail
                                else BoardBasis.SUM_OF_RAILS)
    assert info.cpu_rail == board.cpu_rail
    sample = first_sample(source)
    names = [r.name for r in tree.all_rails()]
    # Watts from the millivolts and milliamps written: mV x mA / 1000 / 1000.
    expected = {r.name: r.volt_mv * r.curr_ma / 1e6 for r in tree.all_rails()}
    if board.layout == "iio":  # the ina3221x driver's power file holds whole milliwatts
        expected = {r.name: (r.volt_mv * r.curr_ma // 1000) / 1000 for r in tree.all_rails()}
    assert sample.gpu_w == pytest.approx(expected[board.gpu_rail or ""])
    board_w = expected[board.input_rail] if board.input_rail else sum(expected.values())
    assert sample.board_w == pytest.approx(board_w)
    if board.cpu_rail:
        assert sample.cpu_rail_w == pytest.approx(expected[board.cpu_rail])
    # rails_w holds every rail but the input one, as jtop's power['rail'] does.
    assert sorted(n for n, _ in sample.rails_w) == sorted(n for n in names
                                                          if n != board.input_rail)
    assert sample.t_sensor_s == sample.t_s
    source.close()


def test_hand_worked_figures_on_two_boards(tmp_path: Path) -> None:
    # Orin NX: VDD_IN 5000 mV x 1400 mA = 7.0 W; VDD_CPU_GPU_CV 5000 x 400 = 2.0 W.
    orin = first_sample(opened(build("orin-nx", tmp_path / "orin")))
    assert (orin.board_w, orin.gpu_w, orin.board_rail) == (7.0, 2.0, "VDD_IN")
    # AGX Orin: no input rail; 4.0 + 1.5 + 3.0 + 0.5 = 9.0 W summed, NC channels left out.
    agx = first_sample(opened(build("agx-orin", tmp_path / "agx")))
    assert agx.board_w == pytest.approx(9.0) and agx.gpu_w == 4.0 and agx.cpu_rail_w == 1.5
    assert dict(agx.rails_w) == {"VDD_GPU_SOC": 4.0, "VDD_CPU_CV": 1.5, "VIN_SYS_5V0": 3.0,
                                 "VDDQ_VDD2_1V8AO": 0.5}
    # Thor: VIN from the INA238's power1_input, 19800 mV x 1400 mA = 27.72 W (27720000 uW).
    thor = first_sample(opened(build("thor", tmp_path / "thor")))
    assert thor.board_w == pytest.approx(27.72) and thor.board_rail == "VIN"
    # Nano (IIO): in_power1_input = 5000 x 100 / 1000 = 500 mW.
    nano = first_sample(opened(build("nano", tmp_path / "nano")))
    assert (nano.gpu_w, nano.cpu_rail_w, nano.board_w) == (0.5, 1.0, 3.5)


def test_discovery_ignores_unrelated_hwmon_and_follows_no_fixed_index(tmp_path: Path) -> None:
    tree = build("agx-orin", tmp_path)
    chips = discover(tmp_path)
    assert [(c.driver, c.device) for c in chips] == [("ina3221", "1-0040"), ("ina3221", "1-0041")]
    assert [c.path.name for c in chips] == ["hwmon4", "hwmon6"]  # not hwmon0/1 (fan, tmp451)
    assert [ch.rail for ch in chips[1].channels] == ["VDDQ_VDD2_1V8AO"]  # NC x2 skipped
    assert all(ch.rail != "sum of shunt voltages" for c in chips for ch in c.channels)
    assert chips[0].update_interval_s == pytest.approx(0.008)
    assert tree.board.key == "agx-orin"
    assert is_tegra(tmp_path)


def test_jetson_stats_layout_without_class_links_is_found(tmp_path: Path) -> None:
    """jtop's /fake_sys holds only bus/i2c/devices: the i2c walk finds the monitors there too."""
    tree = build("xavier-nx-jp5", tmp_path)
    import shutil

    shutil.rmtree(tmp_path / "class")
    source = opened(tree)
    assert source.info.board_rail == "VDD_IN"


def test_a_board_without_monitors_is_unavailable_with_one_line(tmp_path: Path) -> None:
    build("nano-2gb", tmp_path)
    with pytest.raises(SourceUnavailable) as err:
        SysfsSource(root=tmp_path).open()
    message = str(err.value)
    assert "\n" not in message and "Nano 2GB" in message and str(tmp_path) in message


def test_env_variable_sets_the_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build("orin-nx", tmp_path)
    monkeypatch.setenv(SYS_ROOT_ENV, str(tmp_path))
    source = SysfsSource(interval_s=0.5)
    assert source.open().board_rail == "VDD_IN"


def test_a_failed_read_is_a_gap_for_that_rail_only(tmp_path: Path) -> None:
    tree = build("orin-nx", tmp_path)
    source = opened(tree)
    tree.break_rail("VDD_CPU_GPU_CV")
    time.sleep(0.01)  # past the chip's 8 ms refresh
    gap = first_sample(source)
    assert gap.gpu_w is None and gap.board_w == 7.0
    tree.break_rail("VDD_IN")
    time.sleep(0.01)
    gap = first_sample(source)
    assert gap.board_w is None and gap.gpu_w is None  # never 0
    tree.restore_rail("VDD_IN")
    tree.restore_rail("VDD_CPU_GPU_CV")
    time.sleep(0.01)
    back = first_sample(source)
    assert (back.gpu_w, back.board_w) == (2.0, 7.0)


def test_a_missing_rail_makes_a_summed_board_unmeasured(tmp_path: Path) -> None:
    tree = build("agx-orin", tmp_path)
    source = opened(tree)
    tree.break_rail("VIN_SYS_5V0")
    time.sleep(0.01)
    sample = first_sample(source)
    assert sample.board_w is None and sample.gpu_w == 4.0


def test_a_file_that_cannot_be_opened_is_a_gap_then_reopened(tmp_path: Path) -> None:
    tree = build("orin-nx", tmp_path)
    source = opened(tree)
    source.close()  # closes every held file: the next read opens them again
    volt = tree.rail_files("VDD_CPU_GPU_CV")["volt"]
    volt.rename(volt.with_name("moved"))
    time.sleep(0.01)
    assert first_sample(source).gpu_w is None
    volt.with_name("moved").rename(volt)
    time.sleep(0.01)
    assert first_sample(source).gpu_w == 2.0


def test_negative_current_counts_as_zero(tmp_path: Path) -> None:
    tree = build("thor", tmp_path)
    tree.set_raw("VDD_GPU", 12040, -30)
    assert first_sample(opened(tree)).gpu_w == 0.0


def test_repeats_within_the_chip_refresh_are_dropped(tmp_path: Path) -> None:
    tree = build("orin-nx", tmp_path)  # update_interval 8 ms
    source = opened(tree)
    assert source.read_sample() is not None
    assert source.read_sample() is None  # same registers, well within 8 ms
    tree.set_mw("VDD_CPU_GPU_CV", 3000)
    changed = source.read_sample()
    assert changed is not None and changed.gpu_w == 3.0
    time.sleep(0.01)
    steady = source.read_sample()  # unchanged, but the chip has refreshed since: a reading
    assert steady is not None and steady.gpu_w == 3.0


def test_without_a_known_refresh_every_read_is_a_sample(tmp_path: Path) -> None:
    source = opened(build("nano", tmp_path))  # IIO: no update_interval
    assert source.read_sample() is not None and source.read_sample() is not None


def test_interval_is_floored_at_the_chip_refresh(tmp_path: Path) -> None:
    tree = build("orin-nx", tmp_path)
    for chip in discover(tmp_path):
        (chip.path / "update_interval").write_text("140\n")
    source = SysfsSource(interval_s=0.05, root=tree.root)
    info = source.open()
    assert info.interval_s == pytest.approx(0.14)
    assert "asked 0.05 s" in info.note and "140 ms" in info.note
    assert SysfsSource(interval_s=0.5, root=tree.root).open().interval_s == 0.5


def test_sampling_thread_at_10_ms(tmp_path: Path) -> None:
    tree = build("nano", tmp_path)  # IIO: every tick a sample
    source = SysfsSource(interval_s=0.01, root=tree.root)
    events: list[SourceEvent] = []
    lock = threading.Lock()

    def sink(event: SourceEvent) -> None:
        with lock:
            events.append(event)

    source.start(sink)
    time.sleep(0.5)
    source.close()
    with lock:
        count = len(events)
        samples = [e for e in events if isinstance(e, PowerSample)]
    time.sleep(0.05)
    assert len(events) == count, "no event after close()"
    assert 25 <= len(samples) <= 55  # 50 ticks in 0.5 s; a loaded CI machine may miss some
    times = [s.t_s for s in samples]
    assert times == sorted(times) and len(set(times)) == len(times)
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert min(gaps) > 0.004  # a grid of 10 ms (re-anchored when late), not a busy loop
