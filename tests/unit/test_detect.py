"""``auto`` and ``carbontop detect`` walk the one ordered list kept in the code, AUTO_ORDER.

The unit tests replace the openers by stand-ins that answer or not on demand, so each position
of the order is exercised; the end-to-end test runs ``carbontop detect`` on this machine, whatever
it has, and checks what it says against the same list.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest

from carbontop.config import Settings
from carbontop.errors import BadInput
from carbontop.model import SourceInfo
from carbontop.sources import detect
from carbontop.sources.base import SourceUnavailable
from carbontop.sources.detect import AUTO_FALLBACK, AUTO_ORDER, OpenedSource, open_source


class StandIn:
    """A source that opened: what the openers return, without any hardware behind it."""

    def __init__(self, name: str) -> None:
        self.info = SourceInfo(kind=name, device_name=f"{name} device")
        self.closed = False

    def open(self) -> SourceInfo:
        return self.info

    def start(self, sink: object) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def stand_in_openers(monkeypatch: pytest.MonkeyPatch, names: Iterable[str],
                     answering: set[str], called: list[str],
                     failures: dict[str, Exception] | None = None) -> None:
    """Replaces the opener of every name: those in ``answering`` open, the others raise."""
    for name in names:
        def opener(_settings: Settings, name: str = name) -> OpenedSource:
            called.append(name)
            if name in answering:
                source = StandIn(name)
                return OpenedSource(source, source.info)
            raise (failures or {}).get(name, SourceUnavailable(f"no {name} here"))
        monkeypatch.setitem(detect.OPENERS, name, opener)


def test_auto_order_is_the_documented_one() -> None:
    # README and detect.py's docstring: jtop first (a Jetson's rails), then NVML, then CPU+RAM.
    assert AUTO_ORDER[0] == "jtop" and "nvml" in AUTO_ORDER
    assert AUTO_FALLBACK == "none" and AUTO_FALLBACK not in AUTO_ORDER
    assert len(set(AUTO_ORDER)) == len(AUTO_ORDER)
    assert set(AUTO_ORDER) <= set(detect.OPENERS) and "sim" not in AUTO_ORDER


def test_every_source_name_has_an_opener_and_nothing_else_does() -> None:
    # carbontop.source_names is the one list: the settings, the command line and the dashboard
    # read it, detect opens exactly those sources.
    from carbontop.cli import build_parser
    from carbontop.config import Settings
    from carbontop.source_names import AUTO, GPU_SOURCES, SOURCE_LABELS, SOURCE_NAMES

    assert set(detect.OPENERS) == set(SOURCE_NAMES) == set(SOURCE_LABELS)
    assert (AUTO, *SOURCE_NAMES) == GPU_SOURCES
    assert "{" + ",".join(GPU_SOURCES) + "}" in build_parser().format_help()
    for name in GPU_SOURCES:
        assert Settings(gpu_source=name).validated().gpu_source == name


def test_auto_tries_every_source_in_order_then_falls_back(
        monkeypatch: pytest.MonkeyPatch) -> None:
    called: list[str] = []
    stand_in_openers(monkeypatch, [*AUTO_ORDER, AUTO_FALLBACK], {AUTO_FALLBACK}, called)
    opened = open_source(Settings(gpu_source="auto"))
    assert called == [*AUTO_ORDER, AUTO_FALLBACK]
    assert opened.info.kind == AUTO_FALLBACK
    assert opened.tried == [f"{name}: no {name} here" for name in AUTO_ORDER]
    assert opened.info.note == "auto found no GPU power sensor: CPU and RAM only"
    assert opened.source.info is opened.info


@pytest.mark.parametrize("position", range(len(AUTO_ORDER)))
def test_auto_stops_at_the_first_source_that_answers(
        monkeypatch: pytest.MonkeyPatch, position: int) -> None:
    called: list[str] = []
    chosen = AUTO_ORDER[position]
    # every source after the chosen one would answer too: it must not even be tried
    stand_in_openers(monkeypatch, [*AUTO_ORDER, AUTO_FALLBACK],
                     set(AUTO_ORDER[position:]) | {AUTO_FALLBACK}, called)
    opened = open_source(Settings(gpu_source="auto"))
    assert called == list(AUTO_ORDER[: position + 1])
    assert opened.info.kind == chosen
    # sysfs or tegrastats chosen after jtop failed also say why jtop was not used
    assert opened.info.note.split("; ")[0] == f"auto chose {chosen}"
    assert opened.tried == [f"{name}: no {name} here" for name in AUTO_ORDER[:position]]


def test_a_new_source_extends_the_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """A source added to AUTO_ORDER is tried where it stands, with nothing else to change."""
    called: list[str] = []
    order = ("jtop", "newcomer", "nvml")
    monkeypatch.setattr(detect, "AUTO_ORDER", order)
    stand_in_openers(monkeypatch, [*order, AUTO_FALLBACK], {"newcomer", "nvml", "none"}, called)
    opened = open_source(Settings(gpu_source="auto"))
    assert called == ["jtop", "newcomer"]
    assert opened.info.kind == "newcomer" and opened.tried == ["jtop: no jtop here"]


def test_a_probe_that_crashes_is_skipped_not_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    called: list[str] = []
    stand_in_openers(monkeypatch, [*AUTO_ORDER, AUTO_FALLBACK], {AUTO_FALLBACK}, called,
                     failures={AUTO_ORDER[0]: RuntimeError("driver exploded")})
    opened = open_source(Settings(gpu_source="auto"))
    assert called == [*AUTO_ORDER, AUTO_FALLBACK]
    assert opened.tried[0] == f"{AUTO_ORDER[0]}: driver exploded"


def test_a_misconfigured_jtop_measures_through_sysfs_and_says_why(
        monkeypatch: pytest.MonkeyPatch) -> None:
    called: list[str] = []
    stand_in_openers(monkeypatch, [*AUTO_ORDER, AUTO_FALLBACK],
                     set(AUTO_ORDER[1:]) | {AUTO_FALLBACK}, called,
                     failures={"jtop": SourceUnavailable(
                         "jtop service 4.2 does not match jetson-stats 4.3 here")})
    opened = open_source(Settings(gpu_source="auto"))
    assert called == ["jtop", "sysfs"]
    assert opened.info.kind == "sysfs"
    assert opened.info.note == ("auto chose sysfs; jtop not used: jtop service 4.2 does not "
                                "match jetson-stats 4.3 here")


def test_a_misconfigured_jtop_with_nothing_else_on_the_board_is_an_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    called: list[str] = []
    stand_in_openers(monkeypatch, [*AUTO_ORDER, AUTO_FALLBACK], {"nvml", AUTO_FALLBACK}, called,
                     failures={"jtop": SourceUnavailable(
                         "jtop service 4.2 does not match jetson-stats 4.3 here")})
    with pytest.raises(BadInput, match="^jtop: jtop service 4.2 does not match"):
        open_source(Settings(gpu_source="auto"))
    assert called == ["jtop", "sysfs", "tegrastats"]  # NVML is no answer on a Jetson


def test_a_named_source_that_is_absent_is_bad_input(monkeypatch: pytest.MonkeyPatch) -> None:
    called: list[str] = []
    stand_in_openers(monkeypatch, ["nvml"], set(), called)
    with pytest.raises(BadInput, match=r"^--gpu-source nvml: no nvml here$"):
        open_source(Settings(gpu_source="nvml"))
    assert called == ["nvml"]


def carbontop_detect(tmp_path: Path, *args: str) -> dict[str, object]:
    env = {**os.environ, "CARBONTOP_LOG_FILE": str(tmp_path / "carbontop.log"),
           "CARBONTOP_CONFIG": str(tmp_path / "no-config.toml")}
    proc = subprocess.run([sys.executable, "-m", "carbontop.cli", "detect", "--json", *args],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report: dict[str, object] = json.loads(proc.stdout)
    return report


def test_detect_on_this_machine_walks_auto_order(tmp_path: Path) -> None:
    """Whatever this machine has, ``detect`` tried AUTO_ORDER's sources in order, each with a
    reason, up to the one it chose (or all of them, then the fallback)."""
    report = carbontop_detect(tmp_path, "--country", "FRA")
    tried = report["not_chosen"]
    assert isinstance(tried, list)
    names = [entry.split(":", 1)[0] for entry in tried]
    chosen = report["gpu_source"]
    if chosen == AUTO_FALLBACK:
        assert names == list(AUTO_ORDER)
        assert report["note"] == "auto found no GPU power sensor: CPU and RAM only"
        assert report["gpu_count"] == 0 and report["gpu_rail"] is None
        assert report["device"] == "no GPU measured"
    else:
        assert chosen in AUTO_ORDER
        assert names == list(AUTO_ORDER[: AUTO_ORDER.index(str(chosen))])
        assert report["note"] == f"auto chose {chosen}"
    assert all(": " in entry and len(entry.split(": ", 1)[1]) > 10 for entry in tried)
    assert report["interval_s"] == 0.5  # the default interval, nothing asked
    # France in CodeCarbon's data: 56.039 g/kWh
    assert report["carbon_intensity_g_per_kwh"] == 56.039
    assert report["carbon_intensity_origin"] == "CodeCarbon data: France (FRA)"
    assert report["codecarbon_ram"] == "estimated (CodeCarbon RAM model)"


def test_detect_without_a_jtop_service_or_driver(tmp_path: Path) -> None:
    """On a machine with neither (this project's CI), both are named with the fix."""
    report = carbontop_detect(tmp_path)
    if report["gpu_source"] != AUTO_FALLBACK:
        pytest.skip(f"this machine has a GPU power source: {report['gpu_source']}")
    tried = dict(entry.split(": ", 1) for entry in report["not_chosen"])  # type: ignore[union-attr]
    assert list(tried) == list(AUTO_ORDER)
    assert "jtop service is not running" in tried["jtop"]
    assert tried["nvml"] == "NVML is not available (no NVIDIA driver): use --gpu-source none"
    assert report["carbon_intensity_g_per_kwh"] == 475.0  # world average, no --country
