"""History, Run command and Board through Pilot, on the REAL engine over the simulated board."""

from __future__ import annotations

import csv
import shlex
import sys
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from rich.text import Text
from textual.coordinate import Coordinate
from textual.widgets import DataTable, Input, OptionList, Static
from textual_plotext import PlotextPlot

from carbontop.config import Settings
from carbontop.deferred_engine import DeferredEngine
from carbontop.report import SessionRow
from carbontop.tui.app import CarbontopApp, build_dashboard_engine
from carbontop.tui.screens import BoardScreen, HistoryScreen, RunCommandScreen
from carbontop.tui.screens.history import bar_labels, read_trace, session_label
from tests.integration.test_cli_run import carbontop
from tests.tui.test_app import until

SIZE = (120, 40)


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def real_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[
        Callable[..., CarbontopApp]]:
    from carbontop.registry import list_workloads

    locks = tmp_path / "locks"
    locks.mkdir()
    monkeypatch.setenv("CARBONTOP_LOCK_DIR", str(locks))
    apps: list[CarbontopApp] = []

    def make(duration_s: float = 1.5, output_dir: Path | None = None) -> CarbontopApp:
        settings = Settings(gpu_source="sim", seed=7, interval_s=0.2, country="FRA",
                            output_dir=output_dir or tmp_path / "out",
                            duration_s=duration_s).validated()
        settings.output_dir.mkdir(exist_ok=True)
        # Built as `carbontop` builds it: in the app's opening worker, after the first frame.
        engine = DeferredEngine(partial(build_dashboard_engine, settings))
        app = CarbontopApp(engine, list_workloads(), settings,
                           params={"idle": {"warmup_s": "0", "nap_s": "0.05"}})
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close_engine()


def last_run(app: CarbontopApp) -> str | None:
    summary = app.engine.snapshot().last_summary
    return summary.run_id if summary is not None else None


async def finish_one(pilot: Any, app: CarbontopApp, start: Callable[[], Any]) -> str:
    """Starts a session with ``start`` and waits until it has ended and been written."""
    await until(pilot, lambda: app.opened, what="the engine to open")
    before = last_run(app)
    result = start()
    if result is not None:
        await result
    await until(pilot, lambda: last_run(app) not in (None, before)
                and not app.engine.session_running, 20, "the session to end")
    run_id = last_run(app)
    assert run_id is not None
    return run_id


async def test_history_table_select_trace_and_run_command(
        real_app: Callable[..., CarbontopApp]) -> None:
    app = real_app()
    out = app.settings.output_dir
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await until(pilot, lambda: app.opened, what="the engine to open")
        # The status line shows the simulated board's power mode and temperature.
        await until(pilot, lambda: "°C" in str(app.query_one("#status-source").render()), 5,
                    "the board state")
        idle_id = await finish_one(pilot, app, lambda: app.start_workload("idle"))

        # Run command..., from its key, with a real program.
        await pilot.press("r")
        assert isinstance(app.screen, RunCommandScreen)
        line = shlex.join([sys.executable, "-c", "print(1)"])
        app.screen.query_one(Input).value = line
        cmd_id = await finish_one(pilot, app, lambda: pilot.press("enter"))
        assert not isinstance(app.screen, RunCommandScreen)
        assert any("output goes to" in m.text for m in app.messages)
        log_path = app.engine.store.workload_log_path(cmd_id)
        await until(pilot, lambda: log_path.exists() and "1" in log_path.read_text(), 5,
                    "the command's output in its log")

        # Bad input: a notification, no session.
        app.run_command("python 'unclosed")
        app.run_command("   ")
        await pilot.pause(0.1)
        assert sum("cannot run" in m.text or "no command" in m.text for m in app.messages) == 2
        assert not app.engine.session_running

        # History.
        await pilot.press("h")
        assert isinstance(app.screen, HistoryScreen)
        screen = app.screen
        table = screen.query_one(DataTable)
        await until(pilot, lambda: table.row_count == 2, 5, "two rows")
        keys = {k.value for k in table.rows}
        assert keys == {idle_id, cmd_id}
        cells = [str(c) for key in table.rows for c in table.get_row(key)]
        assert any("idle" in c for c in cells) and any("command: " in c for c in cells)
        assert cells.count("finished") == 2
        # Sort by workload (key 1): "command: ..." before "idle"; again: descending.
        await pilot.press("1")
        assert table.coordinate_to_cell_key((0, 0)).row_key.value == cmd_id
        await pilot.press("1")
        assert table.coordinate_to_cell_key((0, 0)).row_key.value == idle_id
        # Select both with space; the bar chart compares them.
        await pilot.press("home", "space", "down", "space")
        assert set(screen.selected) == {idle_id, cmd_id}
        assert "●" in str(table.get_cell(idle_id, "workload"))
        bars = screen.query_one("#history-bars", PlotextPlot)
        assert "energy" in str(bars.border_title).lower()
        # Enter: the power trace of the row under the cursor (the command's, sorted second).
        await pilot.press("enter")
        assert screen.traced == cmd_id
        trace = read_trace(out, cmd_id)
        assert trace.seconds and trace.seconds[0] == 0.0
        assert any(w is not None for w in trace.gpu_w)
        assert f"{len(trace.seconds)} samples" in str(
            screen.query_one("#history-trace", PlotextPlot).border_subtitle)
        await pilot.press("escape")
        assert not isinstance(app.screen, HistoryScreen)

        # Board: the simulated board's state and power modes.
        await pilot.press("b")
        assert isinstance(app.screen, BoardScreen)
        assert app.screen.query_one(OptionList).option_count > 0
        assert "max_temp_c" in str(app.screen.query_one("#board-state", Static).render())
        await pilot.press("escape")

    statuses = {r["run_id"]: r["status"] for r in rows(out / "emissions.csv")}
    assert statuses[cmd_id] == "finished"
    assert statuses[idle_id] == "finished"


async def test_history_of_a_missing_directory_is_a_message(
        real_app: Callable[..., CarbontopApp], tmp_path: Path) -> None:
    app = real_app()
    async with app.run_test(size=SIZE) as pilot:
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert {"History", "Run command...", "Board"} <= set(titles)
        await until(pilot, lambda: app.opened, what="the engine to open")  # it makes the dir
        app.settings.output_dir.rmdir()
        await pilot.press("h")
        assert isinstance(app.screen, HistoryScreen)
        message = str(app.screen.query_one("#history-message", Static).render())
        assert "no results directory" in message
        assert app.screen.query_one(DataTable).row_count == 0
        await pilot.press("escape")
        (tmp_path / "empty").mkdir()
        app.push_screen(HistoryScreen(tmp_path / "empty"))
        await pilot.pause()
        assert "no sessions yet" in str(app.screen.query_one("#history-message", Static).render())


async def test_history_tells_a_power_mode_sweep_apart(
        real_app: Callable[..., CarbontopApp], tmp_path: Path) -> None:
    """A real `carbontop run --repeat 2 --power-modes MAXN,30W` on the simulated board: four
    sessions that differ only by mode and trial, each row and chart bar saying which."""
    out = tmp_path / "sweep"
    out.mkdir()
    proc = carbontop("run", "idle", "--demo", "--seed", "3", "--duration", "0.6", "--interval",
                     "0.1", "--repeat", "2", "--cooldown-max", "0", "--power-modes", "MAXN,30W",
                     "--param", "nap_s=0.05", "--param", "warmup_s=0", "--output-dir", str(out),
                     cwd=out)
    assert proc.returncode == 0, proc.stderr
    written = rows(out / "emissions.csv")
    assert [(r["power_mode"], r["trial"]) for r in written] == [
        ("MAXN", "MAXN 1/2"), ("MAXN", "MAXN 2/2"), ("30W", "30W 1/2"), ("30W", "30W 2/2")]
    experiment = written[0]["experiment_id"]
    assert experiment and {r["experiment_id"] for r in written} == {experiment}
    app = real_app(output_dir=out)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.opened, what="the engine to open")
        await pilot.press("h")
        screen = app.screen
        assert isinstance(screen, HistoryScreen)
        table = screen.query_one(DataTable)
        await until(pilot, lambda: table.row_count == 4, 5, "four rows")
        by_run = {r["run_id"]: r for r in written}
        for run_id, r in by_run.items():
            # the mode once (the trial carries it too), then the trial; the experiment's start
            assert str(table.get_cell(run_id, "power_mode")) == r["trial"]
            assert str(table.get_cell(run_id, "experiment")) == experiment[:8]
        # Key 2 sorts by power mode: 30W's trials first, each mode's trials in time order.
        await pilot.press("2")
        assert trials(table, by_run) == ["30W 1/2", "30W 2/2", "MAXN 1/2", "MAXN 2/2"]
        # The experiment's column (its header) sorts by experiment, each one's trials in the
        # order they ran; the second time descending.
        screen.action_sort("experiment")
        assert trials(table, by_run) == [r["trial"] for r in written]
        screen.action_sort("experiment")
        assert trials(table, by_run) == [r["trial"] for r in written][::-1]
        # Select all four: the chart compares J per second, one bar per mode and trial.
        await pilot.press("up", "up", "up", "space", "down", "space", "down", "space", "down",
                          "space")
        assert len(screen.selected) == 4
        bars = screen.query_one("#history-bars", PlotextPlot)
        await pilot.pause(0.2)
        drawn = Text.from_ansi(bars.plt.build()).plain  # as PlotextPlot.render draws it
        assert "Energy per second" in str(bars.border_title)
        for label in ("MAXN 1/2", "MAXN 2/2", "30W 1/2", "30W 2/2"):
            assert label in drawn, drawn
        assert not any(run_id[:4] in drawn for run_id in by_run)
        # The power trace's title names the mode and trial too (descending: the first trial
        # is the last row, under the cursor).
        await pilot.press("enter")
        trace = screen.query_one("#history-trace", PlotextPlot)
        assert screen.traced == written[0]["run_id"]
        assert f"idle MAXN 1/2 ({screen.traced[:8]})" in str(trace.border_title)


def trials(table: DataTable[Any], by_run: dict[str, dict[str, str]]) -> list[str]:
    """The trial column of the table's rows, top to bottom."""
    keys = [table.coordinate_to_cell_key(Coordinate(i, 0)).row_key.value
            for i in range(table.row_count)]
    return [by_run[k]["trial"] for k in keys if k is not None]


def session(run_id: str, workload: str = "llm-generate", mode: str | None = None,
            trial: str | None = None) -> SessionRow:
    return SessionRow(run_id=run_id, workload=workload, status="finished", start_time="",
                      end_time="", duration_s=None, energy_kwh=None, co2_kg=None,
                      throughput_per_s=None, unit="token", energy_per_unit_j=None,
                      gpu_source=None, gpu_name=None, total_basis=None, experiment_id=None,
                      trial=trial, file="emissions.csv", power_mode=mode)


@pytest.mark.parametrize(("mode", "trial", "label"), [
    (None, None, ""), ("MAXN", None, "MAXN"), (None, "2/5", "2/5"),
    ("MAXN", "MAXN 2/5", "MAXN 2/5"),  # --power-modes writes the mode into the trial
    ("15W", "15W", "15W"),
    ("MAXN", "15W 1/2", "MAXN 15W 1/2"),  # the board said otherwise than asked: both shown
    ("MAXN -> 15W", "2/3", "MAXN -> 15W 2/3"),  # the mode changed in the window
])
def test_session_label(mode: str | None, trial: str | None, label: str) -> None:
    assert session_label(session("r", mode=mode, trial=trial)) == label


def test_bar_labels() -> None:
    sweep = [session("aaaa1", mode="MAXN", trial="MAXN 1/2"),
             session("bbbb2", mode="30W", trial="30W 1/2")]
    assert bar_labels(sweep) == ["MAXN 1/2", "30W 1/2"]
    # nothing to tell them apart by: the workload and the run id's start, as before
    assert bar_labels([session("aaaa1"), session("bbbb2")]) == [
        "llm-genera aaaa", "llm-genera bbbb"]
    # the same mode in two experiments: the run id's start tells them apart
    assert bar_labels([session("aaaa1", mode="MAXN"), session("bbbb2", mode="MAXN")]) == [
        "MAXN aaaa", "MAXN bbbb"]
    # several workloads: the workload first
    assert bar_labels([session("aaaa1", "idle", "MAXN"), session("bbbb2", mode="MAXN")]) == [
        "idle MAXN", "llm-genera MAXN"]
