"""Cumulative energy and CO2 for GPU, CPU, RAM and the total (with its basis), and the rate now."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import Vertical

from carbontop.tui import format as fmt
from carbontop.tui.widgets.text import Line

if TYPE_CHECKING:
    from carbontop.views import Snapshot


class EnergyPanel(Vertical):
    BORDER_TITLE = "Cumulative"

    def compose(self) -> ComposeResult:
        yield Line(id="energy-table")

    def show(self, snap: Snapshot) -> None:
        title, _, _ = fmt.energy_rows(snap)
        if self.border_title != title:
            self.border_title = title
        self.query_one("#energy-table", Line).show(fmt.energy_table(snap))
