"""Screens over the dashboard: help, messages, history, board, run command, the quit question."""

from carbontop.tui.screens.board import BoardScreen
from carbontop.tui.screens.command import RunCommandScreen
from carbontop.tui.screens.confirm import ConfirmQuit
from carbontop.tui.screens.help import HelpScreen
from carbontop.tui.screens.history import HistoryScreen
from carbontop.tui.screens.messages import MessagesScreen

__all__ = ["BoardScreen", "ConfirmQuit", "HelpScreen", "HistoryScreen", "MessagesScreen",
           "RunCommandScreen"]
