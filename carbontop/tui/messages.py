"""One line of the messages log, as the engine's listener (or the app) said it."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.markup import escape

RICH_STYLES = {"error": "bold red", "warning": "yellow", "info": "dim"}
MARKUP_STYLES = {"error": "b $error", "warning": "$warning", "info": "$text-muted"}


@dataclass(frozen=True)
class Message:
    clock: str  # HH:MM:SS
    level: str  # "info", "warning", "error"
    text: str

    def text_line(self) -> Text:
        return Text.assemble((self.clock, "dim"), " ",
                             (f"{self.level:<7}", RICH_STYLES.get(self.level, "")), " ",
                             self.text)

    def markup(self) -> str:
        style = MARKUP_STYLES.get(self.level, "")
        return f"[$text-muted]{self.clock}[/] [{style}]{escape(self.text)}[/]"
