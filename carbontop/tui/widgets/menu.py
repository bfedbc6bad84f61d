"""Every workload (built-ins, plugins, a --workload-file) with its one-line description."""

from __future__ import annotations

from collections.abc import Sequence

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.markup import escape
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from carbontop.registry import WorkloadEntry
from carbontop.tui.widgets.text import Line

NAME_WIDTH = 13
MIN_LIST_ROWS = 3  # a folded menu still shows the highlighted workload and its neighbours


def option_prompt(entry: WorkloadEntry) -> Content:
    name = escape(entry.name.ljust(NAME_WIDTH))
    if entry.error:
        return Content.from_markup(f"[b]{name}[/] [$error]⚠ broken: {escape(entry.error)}[/]")
    return Content.from_markup(f"[b]{name}[/] [$text-muted]{escape(entry.description)}[/]")


def detail_text(entry: WorkloadEntry | None) -> str:
    """The highlighted workload in full (the menu truncates): its description or its error."""
    if entry is None:
        return "[$text-muted]no workloads found (carbontop list)[/]"
    if entry.error:
        return f"[$error]{escape(entry.error)}[/]"
    origin = {"plugin": " (plugin)", "file": " (workload file)"}.get(entry.source, "")
    return f"[$text-muted]{escape(entry.description)}{origin}[/]"


class WorkloadMenu(Vertical):
    """Arrow keys move; Enter (or ``s`` anywhere) starts the highlighted workload."""

    BORDER_TITLE = "Workloads"

    def __init__(self, workloads: Sequence[WorkloadEntry], *, id: str | None = None  # noqa: A002
                 ) -> None:
        super().__init__(id=id)
        self.workloads = list(workloads)
        self.folded_rows: int | None = None  # the list's rows while folded (fit)

    def compose(self) -> ComposeResult:
        yield OptionList(*(Option(option_prompt(e), id=e.name) for e in self.workloads),
                         id="menu-list")
        yield Line(detail_text(self.workloads[0] if self.workloads else None), id="menu-detail")

    @property
    def option_list(self) -> OptionList:
        return self.query_one("#menu-list", OptionList)

    @property
    def selected(self) -> WorkloadEntry | None:
        index = self.option_list.highlighted
        if index is None or not 0 <= index < len(self.workloads):
            return None
        return self.workloads[index]

    def select(self, name: str) -> bool:
        for index, entry in enumerate(self.workloads):
            if entry.name == name:
                self.option_list.highlighted = index
                return True
        return False

    def natural_height(self) -> int:
        """Rows the menu takes as the stylesheet lays it out (borders, list, detail)."""
        option_list, detail = self.option_list, self.query_one("#menu-detail", Line)
        rows = option_list.option_count
        css_max = option_list.styles.base.max_height
        if css_max is not None and css_max.is_cells:
            rows = min(rows, int(css_max.value))
        css_height = detail.styles.base.height
        if detail.styles.base.display != "none" and css_height is not None and \
                css_height.is_cells:
            rows += int(css_height.value)
        return rows + self.styles.gutter.height

    def fit(self, room: int) -> bool:
        """Takes at most ``room`` rows: while the workload panel below needs them (a sub-phase
        table at 80x24), the detail line hides and the list shortens to what is left, never under
        :data:`MIN_LIST_ROWS` (it scrolls to the highlight). True if the menu changed."""
        want = None if self.natural_height() <= room else \
            max(MIN_LIST_ROWS, room - self.styles.gutter.height)
        if want == self.folded_rows:
            return False
        self.folded_rows = want
        option_list, detail = self.option_list, self.query_one("#menu-detail", Line)
        if want is None:
            option_list.styles.clear_rule("max_height")
            detail.styles.clear_rule("display")
        else:
            option_list.styles.max_height = want
            detail.styles.display = "none"
        option_list.scroll_to_highlight()
        return True

    @on(OptionList.OptionHighlighted, "#menu-list")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self.query_one("#menu-detail", Line).show(detail_text(self.selected))
