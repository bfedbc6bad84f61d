"""Past sessions of the results directory: the table of ``carbontop report`` (with each session's
power mode, trial and experiment), a bar chart comparing the selected sessions (labelled by power
mode and trial), and one session's power trace replayed from gpu_log.csv."""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.markup import escape
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static
from textual.widgets.data_table import ColumnKey
from textual_plotext import PlotextPlot

from carbontop.errors import BadInput
from carbontop.report import (
    DEFAULT_SORT,
    SessionRow,
    load_sessions,
    session_label,
    sort_rows,
)
from carbontop.results import schema
from carbontop.units import (
    J_PER_KWH,
    human_co2,
    human_duration,
    human_energy,
    human_joules,
    human_throughput,
)

log = logging.getLogger(__name__)

# (column key = report's sort key, or one of LOCAL_SORTS; header). Keys 1-9 sort by the column
# of that number, a header by its own.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("workload", "workload"), ("power_mode", "mode/trial"), ("start", "when (UTC)"),
    ("duration", "time"), ("energy", "energy"), ("co2", "CO2e"), ("throughput", "throughput"),
    ("j_per_unit", "J/unit"), ("status", "status"), ("experiment", "experiment"))
NUMBERED = 9
MARK = "● "
EXPERIMENT_CHARS = 8  # of the experiment id (a UUID): enough to tell experiments apart


def _experiment_key(r: SessionRow) -> tuple[str, str]:
    """Experiments apart, each one's trials in the order they ran."""
    return r.experiment_id or "", r.start_time


# Sort keys the report does not have, with their key function.
LOCAL_SORTS = {"experiment": _experiment_key}


def bar_labels(rows: list[SessionRow]) -> list[str]:
    """The comparison chart's labels: power mode and trial (else the run id's start), after the
    workload when the sessions are of several workloads; the run id where two would be alike."""
    several = len({r.workload for r in rows}) > 1
    labels = []
    for r in rows:
        parts = [r.workload[:10]] if several or not session_label(r) else []
        parts.append(session_label(r) or r.run_id[:4])
        labels.append(" ".join(parts))
    return [f"{label} {r.run_id[:4]}" if labels.count(label) > 1 else label
            for label, r in zip(labels, rows, strict=True)]


@dataclass(frozen=True)
class Trace:
    """Watts against seconds since the session's first gpu_log row."""

    seconds: list[float]
    gpu_w: list[float | None]
    board_w: list[float | None]


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "") else None
    except ValueError:
        return None


def _time(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def read_trace(directory: Path, run_id: str) -> Trace:
    """The rows of ``run_id`` in ``directory/gpu_log.csv``; an empty trace if none or unreadable."""
    path = directory / schema.GPU_LOG
    stamps: list[float] = []
    gpu: list[float | None] = []
    board: list[float | None] = []
    try:
        with path.open(newline="", encoding="utf-8", errors="replace") as f:
            for row in csv.DictReader(f):
                if row.get("run_id") != run_id:
                    continue
                t = _time(row.get("timestamp"))
                if t is None:
                    continue
                stamps.append(t)
                gpu.append(_float(row.get("gpu_power_w")))
                board.append(_float(row.get("board_power_w")))
    except (OSError, csv.Error):
        log.warning("cannot read %s", path, exc_info=True)
    t0 = stamps[0] if stamps else 0.0
    return Trace([t - t0 for t in stamps], gpu, board)


def cells(r: SessionRow, marked: bool) -> list[str]:
    t = r.start
    when = "?" if t is None else t.strftime("%Y-%m-%d %H:%M")
    name = r.workload if len(r.workload) <= 40 else r.workload[:39] + "…"
    return [(MARK if marked else "  ") + name, session_label(r), when,
            human_duration(r.duration_s), human_energy(r.energy_kwh), human_co2(r.co2_kg),
            human_throughput(r.throughput_per_s, r.unit), human_joules(r.energy_per_unit_j),
            r.status, (r.experiment_id or "")[:EXPERIMENT_CHARS]]


def sorted_rows(rows: list[SessionRow], sort: str) -> list[SessionRow]:
    """As ``carbontop report --sort`` sorts, plus :data:`LOCAL_SORTS`; ``-`` descending, and rows
    without the figure last either way."""
    key = sort.lstrip("-")
    if key not in LOCAL_SORTS:
        return sort_rows(rows, sort)
    keyed = LOCAL_SORTS[key]
    present = [r for r in rows if keyed(r)[0]]
    return sorted(present, key=keyed, reverse=sort.startswith("-")) + \
        [r for r in rows if not keyed(r)[0]]


class HistoryScreen(ModalScreen[None]):
    """``h``: the sessions of the output directory. Space selects, Enter replays the power."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,h", "dismiss", "Close", show=False),
        Binding("space", "select_session", "Select", show=False),
        *(Binding(str(i + 1), f"sort('{key}')", f"Sort by {key}", show=False)
          for i, (key, _) in enumerate(COLUMNS[:NUMBERED])),
    ]

    def __init__(self, directory: Path) -> None:
        super().__init__()
        self.directory = directory
        self.rows: list[SessionRow] = []
        self.selected: list[str] = []  # run ids, in the order chosen
        self.sort = DEFAULT_SORT
        self.traced: str | None = None  # the run id whose trace is drawn
        self.error: str | None = None

    def compose(self) -> ComposeResult:
        yield Static(f"[b]History[/]  [$text-muted]{escape(str(self.directory))}  ·  space select, "
                     "Enter power trace, 1-9 or a header sorts, escape closes[/]",
                     id="history-title", markup=True)
        yield Static("", id="history-message", markup=False)
        yield DataTable(id="history-table", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="history-charts"):
            yield PlotextPlot(id="history-bars")
            yield PlotextPlot(id="history-trace")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        self.load()
        table.focus()

    # -- data ---------------------------------------------------------------------------------

    def load(self) -> None:
        message = self.query_one("#history-message", Static)
        try:
            if not self.directory.is_dir():
                self.rows = []
                self.error = f"no results directory yet: {self.directory}"
            else:
                self.rows = load_sessions(self.directory)
                self.error = None if self.rows else f"no sessions in {self.directory} yet"
        except BadInput as exc:  # no emissions.csv: report says why, plainly
            self.rows = []
            self.error = f"no sessions yet. {exc}"
        except Exception as exc:  # noqa: BLE001 - a plain message, never a traceback
            log.warning("cannot read the sessions of %s", self.directory, exc_info=True)
            self.rows = []
            self.error = f"cannot read the sessions of {self.directory}: {exc}"
        message.update(self.error or "")
        message.display = self.error is not None
        self.query_one("#history-charts").display = bool(self.rows)
        self._fill()
        self._draw_bars()

    def _fill(self) -> None:
        table = self.query_one(DataTable)
        current = self._cursor_run_id()
        table.clear()
        for r in sorted_rows(self.rows, self.sort):
            table.add_row(*cells(r, r.run_id in self.selected), key=r.run_id)
        if current is not None:
            try:
                table.move_cursor(row=table.get_row_index(current))
            except Exception:  # noqa: BLE001 - the row is gone: the cursor stays at the top
                log.debug("row %s gone", current)

    def _cursor_run_id(self) -> str | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        try:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        except Exception:  # noqa: BLE001
            return None
        return key.value

    def _row(self, run_id: str) -> SessionRow | None:
        return next((r for r in self.rows if r.run_id == run_id), None)

    # -- actions ------------------------------------------------------------------------------

    def action_sort(self, key: str) -> None:
        """The same column twice: descending."""
        self.sort = f"-{key}" if self.sort == key else key
        self._fill()

    @on(DataTable.HeaderSelected)
    def _header(self, event: DataTable.HeaderSelected) -> None:
        key = event.column_key.value if isinstance(event.column_key, ColumnKey) else None
        if key:
            self.action_sort(key)

    def action_select_session(self) -> None:
        run_id = self._cursor_run_id()
        row = self._row(run_id) if run_id else None
        if run_id is None or row is None:
            return
        if run_id in self.selected:
            self.selected.remove(run_id)
        else:
            self.selected.append(run_id)
        table = self.query_one(DataTable)
        table.update_cell(run_id, "workload", cells(row, run_id in self.selected)[0])
        self._draw_bars()

    @on(DataTable.RowSelected)
    def _enter(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value:
            self.show_trace(event.row_key.value)

    def show_trace(self, run_id: str) -> None:
        trace = read_trace(self.directory, run_id)
        self.traced = run_id
        plot = self.query_one("#history-trace", PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        row = self._row(run_id)
        name = row.workload if row else run_id[:8]
        label = session_label(row) if row else ""
        plot.border_title = f"Power of {name}{' ' + label if label else ''} ({run_id[:8]}), W vs s"
        drawn = 0
        for values, label, colour in ((trace.board_w, "board", (254, 166, 43)),
                                      (trace.gpu_w, "GPU", (78, 201, 113))):
            pts = [(x, y) for x, y in zip(trace.seconds, values, strict=True) if y is not None]
            if pts:
                plt.plot([p[0] for p in pts], [p[1] for p in pts], color=colour,
                         marker="braille", label=label)
                drawn += 1
        if not drawn:
            plt.title("no power samples for this session in gpu_log.csv")
        plot.border_subtitle = f"{len(trace.seconds)} samples"
        plot.refresh()

    def _draw_bars(self) -> None:
        plot = self.query_one("#history-bars", PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        rows = [r for run_id in self.selected if (r := self._row(run_id)) is not None]
        if not rows:
            plot.border_title = "Compare (space selects)"
            plt.title("select sessions with space")
            plot.refresh()
            return
        units = {r.unit or "unit" for r in rows}
        # Joules per unit compare only between sessions of the same unit; else the totals.
        if len(units) == 1 and all(r.energy_per_unit_j is not None for r in rows):
            plot.border_title = f"Energy per {units.pop()} (J)"
            values = [r.energy_per_unit_j or 0.0 for r in rows]
        else:
            plot.border_title = "Total energy (J)"
            values = [(r.energy_kwh or 0.0) * J_PER_KWH for r in rows]
        # Horizontal bars: every label whole however many sessions, the first chosen on top.
        plt.bar(bar_labels(rows)[::-1], values[::-1], color=(78, 201, 113),
                orientation="horizontal")
        plot.refresh()

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
