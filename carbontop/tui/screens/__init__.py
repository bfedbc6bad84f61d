"""Screens over the dashboard: help, messages, history, board, run command, the quit question.

``HistoryScreen`` is imported on first use (it brings the report reader and a data table, about
50 ms that the dashboard's first frame does not need).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from carbontop.tui.screens.board import BoardScreen
from carbontop.tui.screens.command import RunCommandScreen
from carbontop.tui.screens.confirm import ConfirmQuit
from carbontop.tui.screens.help import HelpScreen
from carbontop.tui.screens.messages import MessagesScreen

if TYPE_CHECKING:
    from carbontop.tui.screens.history import HistoryScreen

__all__ = ["BoardScreen", "ConfirmQuit", "HelpScreen", "HistoryScreen", "MessagesScreen",
           "RunCommandScreen"]


def __getattr__(name: str) -> Any:
    if name == "HistoryScreen":
        from carbontop.tui.screens.history import HistoryScreen

        return HistoryScreen
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
