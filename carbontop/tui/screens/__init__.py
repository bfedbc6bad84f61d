"""Screens over the dashboard: help, messages, and the quit question."""

from carbontop.tui.screens.confirm import ConfirmQuit
from carbontop.tui.screens.help import HelpScreen
from carbontop.tui.screens.messages import MessagesScreen

__all__ = ["ConfirmQuit", "HelpScreen", "MessagesScreen"]
