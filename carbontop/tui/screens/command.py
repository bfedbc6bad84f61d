"""``r``: type a command line to run as the workload child (split with shlex, no shell)."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label


class RunCommandScreen(ModalScreen[str | None]):
    """Dismissed with the typed line (Enter), or None (escape)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", show=False)]

    def compose(self) -> ComposeResult:
        with Vertical(id="command-box"):
            yield Label("[b]Run command[/]  the program is measured as a workload session; "
                        "its output goes to the workload log", id="command-title")
            yield Input(placeholder="e.g. python train.py --epochs 1", id="command-input")
            yield Label("Enter runs, escape cancels. No shell: quote arguments as in sh.",
                        id="command-note")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)
