"""The newest messages, on tall terminals (``m`` shows them all)."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.containers import Vertical

from carbontop.tui.messages import Message
from carbontop.tui.widgets.text import Line


class MessagesPanel(Vertical):
    BORDER_TITLE = "Messages (m)"

    def compose(self) -> ComposeResult:
        yield Line(id="log-lines")

    def show(self, messages: Sequence[Message]) -> None:
        rows = max(1, self.content_region.height)
        shown = list(messages)[-rows:]
        self.query_one("#log-lines", Line).show(
            "\n".join(m.markup() for m in shown) or "[$text-muted]no messages yet[/]")
