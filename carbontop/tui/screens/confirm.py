"""Quitting while a session runs: ask first (the session is saved whichever way)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label


class ConfirmQuit(ModalScreen[bool]):
    BINDINGS = [
        Binding("y", "answer(True)", "Quit", show=False),
        Binding("n,escape", "answer(False)", "Stay", show=False),
    ]

    def __init__(self, workload: str) -> None:
        super().__init__()
        self.workload = workload

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box"):
            yield Label(f"{self.workload} is still running. Quit anyway?", id="confirm-question")
            yield Label("It is stopped and its results are written either way.",
                        id="confirm-note")
            with Horizontal(id="confirm-buttons"):
                yield Button("Quit (y)", id="confirm-yes", variant="error")
                yield Button("Stay (n)", id="confirm-no", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#confirm-no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm-yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)
