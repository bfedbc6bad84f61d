"""The two status lines: what measures, where the carbon comes from, and the session state."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.markup import escape

from carbontop.tui import format as fmt
from carbontop.tui.widgets.text import Line

if TYPE_CHECKING:
    from carbontop.views import Snapshot


class StatusBar(Vertical):
    """Board or GPU, source and rail scope; country and intensity; state and elapsed time."""

    def compose(self) -> ComposeResult:
        yield Line(id="status-source")
        yield Line(id="status-state")

    def show(self, snap: Snapshot, opened: bool, note: str | None = None,
             board: str = "") -> None:
        """``board``: the power mode and hottest sensor (``MAXN · 44 °C``), where reported."""
        source = fmt.source_line(snap.source)
        if board:
            source = f"[b]{escape(board)}[/] · {source}"
        if not snap.source_connected:
            source += " · [b $error]GPU SOURCE LOST[/]"
        self.query_one("#status-source", Line).show(source)
        state = fmt.state_text(snap, opened)
        if note:
            state += f" · [b $warning]{escape(note)}[/]"
        self.query_one("#status-state", Line).show(f"{state} · {fmt.intensity_text(snap)}")

    def starting(self, what: str, note: str | None = None) -> None:
        """Before the engine has its first snapshot: what is being opened."""
        self.query_one("#status-source", Line).show(f"[$text-muted]{escape(what)}[/]")
        state = fmt.state_text(None, False)
        if note:
            state += f" · [b $warning]{escape(note)}[/]"
        self.query_one("#status-state", Line).show(state)
