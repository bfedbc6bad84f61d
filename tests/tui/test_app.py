"""The dashboard through Textual's Pilot.

The first tests drive the REAL app on the REAL engine: the simulated Jetson through the jtop
source path, real CodeCarbon, the workload in a real child process, real CSVs. The last ones use
the fixed stand-in engine of tests/tui/fakes.py for what needs no measuring (keys, screens,
folding).
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.command import Command, CommandList, CommandPalette
from textual.widgets import Digits

from carbontop.config import Settings
from carbontop.deferred_engine import DeferredEngine
from carbontop.errors import BadInput
from carbontop.model import Phase
from carbontop.tui.app import STARTING_TEXT, CarbontopApp, build_dashboard_engine
from carbontop.tui.screens import ConfirmQuit, HelpScreen, MessagesScreen
from carbontop.tui.widgets import WorkloadMenu
from carbontop.tui.widgets.text import Line
from tests.tui.fakes import WORKLOADS, FakeEngine

SIZE = (100, 30)
TINY = {"matmul": {"size": "64", "warmup_s": "0.3"},
        "idle": {"nap_s": "0.05", "warmup_s": "0.3"}}


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def text(app: CarbontopApp, selector: str) -> str:
    return app.query_one(selector, Line).plain


async def until(pilot: Any, condition: Callable[[], object], timeout: float = 30.0,
                what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await pilot.pause(0.1)


@pytest.fixture
def lock_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Our own board lock: another test process measuring the simulated board must not clash."""
    directory = tmp_path / "locks"
    directory.mkdir()
    monkeypatch.setenv("CARBONTOP_LOCK_DIR", str(directory))
    return directory


@pytest.fixture
def real_app(tmp_path: Path, lock_dir: Path) -> Iterator[Callable[..., CarbontopApp]]:
    """``real_app(duration_s=...)``: the app on a real engine over the simulated board, built
    as ``carbontop`` builds it (in the app's opening worker, after the first frame).
    ``gate``: an event the build waits for before it starts."""
    from carbontop.registry import list_workloads

    apps: list[CarbontopApp] = []

    def make(duration_s: float = 30.0, gate: threading.Event | None = None,
             **options: Any) -> CarbontopApp:
        settings = Settings(**{"gpu_source": "sim", "seed": 7, "interval_s": 0.2,
                               "country": "FRA", "output_dir": tmp_path / "out",
                               "duration_s": duration_s, **options}).validated()
        settings.output_dir.mkdir(exist_ok=True)

        def build(say: Callable[[str, str], None]) -> Any:
            if gate is not None:
                assert gate.wait(30), "the test never let the build go on"
            return build_dashboard_engine(settings, say)

        app = CarbontopApp(DeferredEngine(build), list_workloads(), settings, params=TINY)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close_engine()


async def select(pilot: Any, name: str) -> None:
    """Moves the menu's highlight with the arrow keys, as a user would."""
    menu = pilot.app.query_one(WorkloadMenu)
    names = [e.name for e in menu.workloads]
    assert name in names, names
    await pilot.press("home")
    for _ in range(names.index(name)):
        await pilot.press("down")
    assert menu.selected is not None and menu.selected.name == name


async def test_start_watch_stop_export(real_app: Callable[..., CarbontopApp]) -> None:
    app = real_app()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await until(pilot, lambda: app.opened, what="the engine to open")
        await until(pilot, lambda: app._snapshot.live.gpu_w is not None, what="a GPU sample")
        assert "VDD_GPU_SOC" in text(app, "#status-source")
        await select(pilot, "matmul")
        await pilot.press("s")
        await until(pilot, lambda: app._snapshot.session is not None
                    and app._snapshot.session.phase is Phase.MEASURING, 30, "measuring")
        run_id = app._snapshot.session.run_id
        assert "measuring" in text(app, "#status-state")
        energy_before = text(app, "#energy-table")
        await pilot.pause(1.5)
        # Watts on screen, and the cumulative energy moved.
        assert app.query_one("#power-digits", Digits).value.strip() not in ("", "-.-")
        assert text(app, "#energy-table") != energy_before
        assert "GFLOP/s" in text(app, "#workload-body")
        # CodeCarbon's CPU and RAM, labelled (its start takes ~1.5 s, then one reading a second).
        await until(pilot, lambda: app._snapshot.live.cpu_w is not None, 15, "CodeCarbon")
        await pilot.pause(0.5)
        power = text(app, "#power-rows")
        cpu_row = next(line for line in power.split("\n") if line.startswith("CPU "))
        assert " W " in cpu_row and ("estimated" in cpu_row or "measured" in cpu_row)
        assert "RAM" in power and "estimated" in power
        assert "board" in power and "measured" in power
        await until(pilot, lambda: "J/GFLOP" in text(app, "#workload-body")
                    and "n/a" not in text(app, "#workload-body").split("\n")[3], 10,
                    "energy per GFLOP")
        await pilot.press("x")
        await until(pilot, lambda: app._snapshot.last_summary is not None
                    and app._snapshot.session is None, 15, "the session to stop")
        assert "stopped" in text(app, "#status-state")
        await pilot.press("e")
        await app.workers.wait_for_complete()
        await until(pilot, lambda: any("exported" in m.text for m in app.messages), 5,
                    "the export message")
        await pilot.pause(0.2)
        assert "total_summary.csv" in app.export_screenshot()  # the paths, on screen
    out = app.settings.output_dir
    emissions = rows(out / "emissions.csv")
    session = [r for r in emissions if r["run_id"] == run_id]
    assert [r["status"] for r in session] == ["stopped"]
    assert float(session[0]["gpu_energy_kwh"]) > 0
    assert session[0]["workload"] == "matmul"
    assert any(r["status"] == "idle" for r in emissions)  # the export between sessions
    assert any(r["run_id"] == run_id for r in rows(out / "gpu_log.csv"))
    assert any(r["run_id"] == run_id for r in rows(out / "total_summary.csv"))


async def test_quit_during_a_session_asks_then_saves(
        real_app: Callable[..., CarbontopApp]) -> None:
    app = real_app()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.opened, what="the engine to open")
        await select(pilot, "idle")
        await pilot.press("enter")
        await until(pilot, lambda: app._snapshot.session is not None
                    and app._snapshot.session.phase is Phase.MEASURING, 20, "measuring")
        run_id = app._snapshot.session.run_id
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmQuit)
        await pilot.press("n")
        assert not isinstance(app.screen, ConfirmQuit) and app.engine.session_running
        await pilot.press("ctrl+c")
        assert isinstance(app.screen, ConfirmQuit)
        await pilot.press("y")
        await until(pilot, lambda: app.return_code is not None, 20, "the app to exit")
    assert app.return_code == 0
    session = [r for r in rows(app.settings.output_dir / "emissions.csv") if r["run_id"] == run_id]
    assert [r["status"] for r in session] == ["stopped"]


async def test_session_finishes_by_itself(real_app: Callable[..., CarbontopApp]) -> None:
    app = real_app(duration_s=1.5)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.opened, what="the engine to open")
        app.start_workload("idle")
        await until(pilot, lambda: app._snapshot.last_summary is not None, 20, "the end")
        await pilot.pause(0.5)
        assert "finished" in text(app, "#status-state")
        assert "second/s" in text(app, "#workload-body")
        run_id = app._snapshot.last_summary.run_id
    session = [r for r in rows(app.settings.output_dir / "emissions.csv") if r["run_id"] == run_id]
    assert [r["status"] for r in session] == ["finished"]


async def test_a_failed_workload_shows_why(real_app: Callable[..., CarbontopApp]) -> None:
    app = real_app()
    app.params["idle"] = {"nap_s": "forty winks"}  # the child rejects it and exits
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.opened, what="the engine to open")
        app.start_workload("idle")
        await until(pilot, lambda: app._snapshot.last_summary is not None, 40, "the failure")
        await pilot.pause(0.5)
        shown = [text(app, "#status-state"), text(app, "#workload-body"),
                 text(app, "#workload-reason")]
        assert "failed" in shown[0], shown
        assert shown[1].startswith("failed"), shown
        assert "nap_s" in shown[2], shown
        assert app.query_one("#workload-reason").display
        assert any(m.level == "error" and "failed" in m.text for m in app.messages)


async def test_sigterm_interrupts_writes_and_exits_143(
        real_app: Callable[..., CarbontopApp]) -> None:
    app = real_app()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.opened, what="the engine to open")
        app.start_workload("idle")
        await until(pilot, lambda: app._snapshot.session is not None, 20, "a session")
        run_id = app._snapshot.session.run_id
        assert signal.SIGTERM in app._signals  # or the signal would end pytest itself
        os.kill(os.getpid(), signal.SIGTERM)
        await until(pilot, lambda: app.return_code is not None, 20, "the app to exit")
    assert app.return_code == 128 + signal.SIGTERM
    session = [r for r in rows(app.settings.output_dir / "emissions.csv") if r["run_id"] == run_id]
    assert [r["status"] for r in session] == ["interrupted"]


async def test_first_frame_comes_before_the_source_opens(
        real_app: Callable[..., CarbontopApp]) -> None:
    gate = threading.Event()
    app = real_app(gate=gate)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.3)
        # Drawn, keys work, nothing built yet: the source and CodeCarbon wait on the gate.
        assert app.engine.built is None and not app.opened
        assert STARTING_TEXT in text(app, "#status-source")
        assert "starting the meters" in text(app, "#status-state")
        menu = app.query_one(WorkloadMenu)
        assert menu.selected is not None and text(app, "#menu-detail").strip()
        await pilot.press("s")  # too early: refused with a reason, nothing started
        assert any("still starting" in m.text for m in app.messages)
        gate.set()
        await until(pilot, lambda: app.opened, what="the engine to open")
        assert "AGX Orin" in text(app, "#status-source")
        assert "g CO2e/kWh" in text(app, "#status-state")


async def test_quit_while_the_source_opens_is_prompt_and_opens_nothing(
        real_app: Callable[..., CarbontopApp]) -> None:
    gate = threading.Event()
    app = real_app(gate=gate)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause(0.3)
            assert app.engine.built is None
            started = time.monotonic()
            await pilot.press("q")  # no session: no question
            await until(pilot, lambda: app.return_code is not None, 10, "the app to exit")
            assert time.monotonic() - started < 5  # not the 30 s the build is held for
        assert app.return_code == 0 and app.fatal_error is None
    finally:
        gate.set()  # the build goes on, sees the close, closes what it built
    assert app.engine._open_finished.wait(30)
    assert app.engine.built is None  # built after the close: closed at once, never published
    assert not (app.settings.output_dir / "total_summary.csv").exists()


async def test_bad_input_found_while_opening_ends_the_app_with_exit_2(
        real_app: Callable[..., CarbontopApp]) -> None:
    # A Prometheus port that is taken is only found when the exporter starts, in the worker.
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        app = real_app(prometheus_port=port, prometheus_host="127.0.0.1")
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.return_code is not None, 30, "the app to exit")
    assert app.return_code == 2
    assert isinstance(app.fatal_error, BadInput), app.fatal_error
    assert str(port) in str(app.fatal_error)


# -- the stand-in engine: keys, screens, folding ---------------------------------------------

def fake_app(engine: FakeEngine | None = None) -> CarbontopApp:
    return CarbontopApp(engine or FakeEngine(), WORKLOADS, Settings(output_dir=Path("results")))


async def test_broken_plugin_shows_its_error_and_does_not_start() -> None:
    app = fake_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        await select(pilot, "yolo-plugin")
        assert "No module named 'ultralytics'" in text(app, "#menu-detail")
        app.engine.snap = dataclasses.replace(app.engine.snap, session=None)
        await pilot.pause(0.5)
        await pilot.press("s")
        assert ("start_session", "yolo-plugin") not in app.engine.calls
        assert any("broken" in m.text for m in app.messages)


async def test_help_messages_and_palette() -> None:
    app = fake_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        help_text = str(app.screen.query_one("#help-text").render())
        for key in ("s, Enter", "x", "e", "m", "?", "q, ctrl+c", "ctrl+p"):
            assert key in help_text
        await pilot.press("escape")
        # A listener call from another thread lands in the messages log.
        thread = threading.Thread(target=app.engine.listeners[0],
                                  args=("warning", "jtop service lost: reconnecting"))
        thread.start()
        thread.join()
        await pilot.pause(0.2)
        assert any("jtop service lost" in m.text for m in app.messages)
        await pilot.press("m")
        assert isinstance(app.screen, MessagesScreen)
        await pilot.press("m")
        assert not isinstance(app.screen, MessagesScreen)
        await pilot.press("ctrl+p")
        await pilot.press(*"run workload: idl")

        def first_hit() -> str | None:
            """The palette's best match once its search has shown one (it searches on a
            worker and adds hits in batches: no fixed pause is long enough on a busy machine)."""
            if not isinstance(app.screen, CommandPalette):
                return None
            commands = app.screen.query_one(CommandList)
            if commands.option_count == 0 or commands.highlighted != 0:
                return None
            option = commands.get_option_at_index(0)
            return str(option.hit.text) if isinstance(option, Command) else None

        await until(pilot, lambda: first_hit() == "Run workload: idle", what="the palette's hit")
        await pilot.press("enter")
        # The stand-in still shows a running session, so the app refuses a second one.
        await until(pilot, lambda: any("already running" in m.text for m in app.messages),
                    what="the refusal of a second session")
        assert not isinstance(app.screen, CommandPalette)
        await app.workers.wait_for_complete()
        await pilot.press("e")
        await app.workers.wait_for_complete()
        assert ("export", None) in app.engine.calls
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Export" in titles and any("theme" in t.lower() for t in titles), titles


async def test_small_terminals_fold_and_too_small_says_so() -> None:
    app = fake_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        assert not app.query_one("#chart").display  # the chart folds first
        await pilot.resize_terminal(120, 40)
        await pilot.pause(0.2)
        assert app.query_one("#chart").display
        await pilot.resize_terminal(50, 14)
        await pilot.pause(0.2)
        assert not app.query_one("#body").display
        assert "too small" in str(app.query_one("#too-small").render())


async def test_quit_without_session_closes_the_engine() -> None:
    engine = FakeEngine()
    engine.snap = dataclasses.replace(engine.snap, session=None)
    app = fake_app(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.press("q")
        await asyncio.sleep(0.2)
        await until(pilot, lambda: app.return_code is not None, 5, "exit")
    assert engine.closed and app.return_code == 0
