"""The running workload: phase, progress, throughput and energy per unit, its sub-phases (prefill
and decode...) side by side, or why it failed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.markup import escape

from carbontop.tui import format as fmt
from carbontop.tui.widgets.text import Line

if TYPE_CHECKING:
    from carbontop.views import Snapshot


DEFAULT_WIDTH = 28  # the content width at 80 columns, before the first layout


class WorkloadPanel(Vertical):
    BORDER_TITLE = "Workload"

    def compose(self) -> ComposeResult:
        yield Line(id="workload-body")
        yield Line(id="workload-subphases")
        yield Line(id="workload-note", wraps=True)
        yield Line(id="workload-reason", wraps=True)

    def show(self, snap: Snapshot, selected: str | None) -> None:
        title, body, reason = fmt.workload_text(snap, selected)
        if self.border_title != title:
            self.border_title = title
        self.query_one("#workload-body", Line).show(body)
        table, note = fmt.subphase_text(snap, self.content_size.width or DEFAULT_WIDTH)
        self._show("#workload-subphases", table)
        self._show("#workload-note", f"[$text-muted]{note}[/]" if note else "")
        reason_line = self.query_one("#workload-reason", Line)
        reason_line.display = bool(reason)
        reason_line.show(f"[$error]{escape(reason)}[/]" if reason else "")

    def _show(self, selector: str, markup: str) -> None:
        line = self.query_one(selector, Line)
        line.display = bool(markup)
        line.show(markup)
