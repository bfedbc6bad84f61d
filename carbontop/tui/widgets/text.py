"""A label that repaints only when its text changes, without a layout pass."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static


class Line(Static):
    """Text from Textual markup, one line per row (no wrapping: the panels say ``nowrap``).

    ``show`` skips identical updates (over SSH every repainted cell costs) and asks for a layout
    pass only when the number of lines changes: the values themselves are fixed-width.
    """

    def __init__(self, markup: str = "", *, id: str | None = None,  # noqa: A002
                 classes: str | None = None, wraps: bool = False) -> None:
        """``wraps``: the text may wrap (CSS ``text-wrap: wrap``), so every change re-lays out."""
        super().__init__(markup, id=id, classes=classes, markup=True)
        self._markup = markup
        self._wraps = wraps

    @property
    def plain(self) -> str:
        """The text on screen without its styles (what tests read)."""
        return Content.from_markup(self._markup).plain

    def show(self, markup: str) -> None:
        if markup == self._markup:
            return
        relayout = self._wraps or markup.count("\n") != self._markup.count("\n")
        self._markup = markup
        self.update(markup, layout=relayout)
