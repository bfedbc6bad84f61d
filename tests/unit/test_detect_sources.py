"""`auto` and `detect` with the jtop service absent or unusable, on emulated board trees."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from carbontop.config import Settings
from carbontop.errors import BadInput
from carbontop.sources.detect import AUTO_FALLBACK, AUTO_ORDER, open_source
from carbontop.sources.sysfs import SYS_ROOT_ENV
from tests.sysfs_trees import build


@pytest.fixture
def jtop_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Points the real jtop client at a private socket path (nothing listens there)."""
    import jtop.service

    path = tmp_path / "jtop.sock"
    monkeypatch.setattr(jtop.service, "JTOP_PIPE", str(path))
    yield path


def auto(source: str = "auto") -> Settings:
    return Settings(gpu_source=source, interval_s=0.1)


def test_auto_order() -> None:
    # issue "Every Jetson, every JetPack": jtop, sysfs, tegrastats, NVML, then no GPU
    assert AUTO_ORDER == ("jtop", "sysfs", "tegrastats", "nvml") and AUTO_FALLBACK == "none"


def test_auto_measures_through_sysfs_when_the_service_is_not_running(
        tmp_path: Path, jtop_socket: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build("orin-nx", tmp_path / "sys")
    monkeypatch.setenv(SYS_ROOT_ENV, str(tmp_path / "sys"))
    opened = open_source(auto())
    try:
        assert opened.info.kind == "sysfs" and opened.info.board_rail == "VDD_IN"
        assert "jtop not used: the jtop service is not running" in opened.info.note
        states = dict(opened.candidates)
        assert list(states) == list(AUTO_ORDER)
        assert states["sysfs"] == "chosen" and "not running" in states["jtop"]
        assert states["tegrastats"].startswith("not tried")
    finally:
        opened.source.close()


def test_socket_directory_is_named_with_its_fix(
        tmp_path: Path, jtop_socket: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    jtop_socket.mkdir()  # what Docker leaves when the socket was missing at container start
    build("agx-orin", tmp_path / "sys")
    monkeypatch.setenv(SYS_ROOT_ENV, str(tmp_path / "sys"))
    with pytest.raises(BadInput) as err:
        open_source(auto("jtop"))  # asked for by name: an error, one line
    message = str(err.value)
    assert "\n" not in message and f"{jtop_socket} is a directory" in message
    assert "systemctl restart jtop.service" in message
    opened = open_source(auto())  # auto: measures through sysfs and says why not jtop
    try:
        assert opened.info.kind == "sysfs"
        assert "is a directory" in opened.info.note
    finally:
        opened.source.close()


def test_tegrastats_when_sysfs_does_not_know_the_layout_and_never_nvml_on_tegra(
        tmp_path: Path, jtop_socket: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build("nano-2gb", tmp_path / "unknown")  # a Tegra board whose monitors sysfs cannot see
    monkeypatch.setenv(SYS_ROOT_ENV, str(tmp_path / "unknown"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    opened = open_source(auto())
    try:
        states = dict(opened.candidates)
        assert opened.info.kind == "none"
        assert "Nano 2GB" in states["sysfs"] and "not on PATH" in states["tegrastats"]
        assert states["nvml"].startswith("never on a Tegra board")
    finally:
        opened.source.close()
    stand_in = build("agx-orin", tmp_path / "other").install_tegrastats(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{stand_in.parent}{os.pathsep}/usr/bin{os.pathsep}/bin")
    opened = open_source(auto())
    try:
        assert opened.info.kind == "tegrastats" and opened.info.gpu_rail == "VDD_GPU_SOC"
        assert dict(opened.candidates)["tegrastats"] == "chosen"
    finally:
        opened.source.close()
