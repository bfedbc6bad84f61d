"""The messages log: source lost and regained, CodeCarbon problems, where the CSVs went."""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import RichLog, Static

from carbontop.tui.messages import Message


class MessagesScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,m", "dismiss", "Close", show=False)]

    def __init__(self, messages: Iterable[Message]) -> None:
        super().__init__()
        self._initial = list(messages)

    def compose(self) -> ComposeResult:
        yield Static("[b]Messages[/]  [$text-muted](m or escape closes)[/]", id="messages-title")
        yield RichLog(id="messages-log", wrap=True, max_lines=2000)

    def on_mount(self) -> None:
        log = self.query_one(RichLog)
        for message in self._initial:
            log.write(self._content(message))
        if not self._initial:
            log.write(self._content(Message("--:--:--", "info", "no messages yet")))

    def add(self, message: Message) -> None:
        self.query_one(RichLog).write(self._content(message))

    @staticmethod
    def _content(message: Message) -> Text:
        return message.text_line()

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
