"""Every key, in one place."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS = (
    ("↑ ↓", "move in the workload menu"),
    ("s, Enter", "start the selected workload"),
    ("x", "stop the session (its results are written)"),
    ("e", "export the three CSVs now, and show where"),
    ("h", "history: past sessions, compare, replay power"),
    ("r", "run a command line as a measured session"),
    ("b", "board: power mode, clocks, temperature"),
    ("m", "messages: source lost/regained, CodeCarbon, files"),
    ("?", "this help"),
    ("q, ctrl+c", "quit (asks while a session runs; results are saved)"),
    ("ctrl+p", "palette: run a workload by name, export, theme"),
    ("tab", "move the focus"),
    ("escape", "close this screen"),
)

NOTES = (
    "Power is measured from the moment carbontop opens; a session starts with a workload. "
    "GPU, board and CPU-rail watts are measured by the board's sensors. CodeCarbon's CPU figure "
    "is measured only where it reads a hardware counter (RAPL), else estimated; its RAM figure "
    "is always an estimate (~ in the chart). The total never counts a joule twice: its basis "
    "is shown under the table."
)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close", show=False)]

    def compose(self) -> ComposeResult:
        keys = "\n".join(f"[b $accent]{key:>9}[/]  {what}" for key, what in KEYS)
        with VerticalScroll(id="help-box"):
            yield Static(f"[b]carbontop keys[/]\n\n{keys}\n\n[$text-muted]{NOTES}[/]",
                         id="help-text")

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
