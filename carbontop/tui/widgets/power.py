"""Power now: the GPU figure large, then board, CPU rail, CPU, RAM: each measured or estimated."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.markup import escape
from textual.widgets import Digits

from carbontop.tui import format as fmt
from carbontop.tui.widgets.text import Line

if TYPE_CHECKING:
    from carbontop.views import HistoryPoint, Snapshot

SPARK_S = 60.0
SPARK_WIDTH = 16


class PowerPanel(Vertical):
    BORDER_TITLE = "Power now"

    def compose(self) -> ComposeResult:
        with Horizontal(id="power-gpu"):
            yield Digits(fmt.watts_digits(None), id="power-digits")
            yield Line(id="power-caption")
        yield Line(id="power-rows")

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self._spark = ""

    def spark(self, history: Sequence[HistoryPoint], now: float) -> None:
        """A one-line trace of the last minute of GPU watts (the chart folds first)."""
        self._spark = fmt.sparkline(history, now, SPARK_S, SPARK_WIDTH)

    def show(self, snap: Snapshot) -> None:
        digits = self.query_one("#power-digits", Digits)
        value = fmt.watts_digits(snap.live.gpu_w)
        if digits.value != value:
            digits.update(value)
        caption = fmt.gpu_caption(snap)
        if self._spark and snap.source.measures_gpu and snap.source_connected:
            caption[2] = f"{caption[2]:<9}[$success]{self._spark}[/]"
        self.query_one("#power-caption", Line).show("\n".join(caption))
        rows = [f"{label:<9}{watts:>9}  [$text-muted]{escape(what)}[/]"
                for label, watts, what in fmt.power_rows(snap)]
        self.query_one("#power-rows", Line).show("\n".join(rows))
