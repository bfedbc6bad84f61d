"""``b``: the board's power envelope (nvpmodel mode, jetson_clocks, clocks, hottest sensor),
and its power modes: Enter on one switches to it (in a thread: the switch takes seconds)."""

from __future__ import annotations

import logging
from dataclasses import fields
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from carbontop.board_state import BoardState
from carbontop.sources.base import BoardControl

log = logging.getLogger(__name__)


def board_state_of(source: object) -> BoardState | None:
    """The source's BoardState, or None (no board control, none reported, or it failed)."""
    if not isinstance(source, BoardControl):
        return None
    try:
        return source.board_state()
    except Exception:  # noqa: BLE001
        log.debug("board_state() failed", exc_info=True)
        return None


def power_modes_of(source: object) -> list[str]:
    """The source's power modes, [] without board control or when it fails."""
    if not isinstance(source, BoardControl):
        return []
    try:
        return [str(m) for m in source.power_modes()]
    except Exception:  # noqa: BLE001
        log.debug("power_modes() failed", exc_info=True)
        return []


def board_line(state: BoardState | None, fixed: bool = False) -> str:
    """``MAXN · 44 °C``: the mode and the hottest sensor, or ``""`` with no state. ``fixed``:
    the mode padded to 10 characters and the temperature to 3 digits (a status line that does
    not jump), jetson_clocks left out."""
    if state is None:
        return ""
    mode = state.power_mode or "mode ?"
    temp = state.max_temp_c
    degrees = f"{temp:3.0f} °C" if temp is not None else " -- °C"
    if fixed:
        return f"{mode[:10]:<10} · {degrees}"
    parts = [mode]
    if state.jetson_clocks:
        parts.append("jetson_clocks on")
    parts.append(degrees.strip())
    return " · ".join(parts)


def state_text(state: BoardState | None) -> str:
    if state is None:
        return "this source reports no board state (not a Jetson, or jtop gave none)"
    lines = [f"[b]{board_line(state)}[/]", ""]
    for f in fields(state):
        value = getattr(state, f.name)
        lines.append(f"{f.name:>18}  {'n/a' if value is None else value}")
    return "\n".join(lines)


class BoardScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,b", "dismiss", "Close", show=False)]

    def __init__(self, source: object) -> None:
        super().__init__()
        self.source = source

    def compose(self) -> ComposeResult:
        yield Static("[b]Board[/]  [$text-muted]Enter on a mode switches to it; "
                     "escape closes[/]", id="board-title")
        yield Static(state_text(board_state_of(self.source)), id="board-state")
        modes = power_modes_of(self.source)
        yield OptionList(*(Option(m, id=str(i)) for i, m in enumerate(modes)), id="board-modes")
        if not modes:
            yield Static("no power modes reported", id="board-no-modes")

    def on_mount(self) -> None:
        modes = self.query_one(OptionList)
        modes.display = modes.option_count > 0
        modes.focus()
        self.set_interval(1.0, self._refresh_state)

    def _refresh_state(self) -> None:
        self.query_one("#board-state", Static).update(state_text(board_state_of(self.source)))

    @on(OptionList.OptionSelected, "#board-modes")
    def _switch(self, event: OptionList.OptionSelected) -> None:
        mode = str(event.option.prompt)
        self.notify(f"switching to {mode}…", timeout=3)
        self.run_worker(lambda: self._switch_blocking(mode), thread=True, group="power-mode",
                        exit_on_error=False)

    def _switch_blocking(self, mode: str) -> None:
        try:
            if not isinstance(self.source, BoardControl):
                raise TypeError("this power source has no power modes")
            self.source.set_power_mode(mode)
        except Exception as exc:  # noqa: BLE001 - shown as a notification
            log.warning("set_power_mode(%s) failed", mode, exc_info=True)
            self.app.call_from_thread(self.notify, f"{mode}: {exc}", title="Power mode",
                                      severity="error", timeout=8)
            return
        self.app.call_from_thread(self.notify, f"now in {mode}", title="Power mode")
        self.app.call_from_thread(self._refresh_state)

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
