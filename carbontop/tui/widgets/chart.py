"""Power over the last minutes, drawn by plotext. The app redraws it at most once a second."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from textual_plotext import PlotextPlot

if TYPE_CHECKING:
    from carbontop.model import SourceInfo
    from carbontop.views import HistoryPoint

WINDOW_S = 300.0
# (field of HistoryPoint, legend, colour). Drawn in this order: where two series share a character
# cell the later one wins, so the GPU goes last. "~": CodeCarbon's estimate. The legend is the
# panel's subtitle: plotext's own hides inside a short plot.
SERIES: tuple[tuple[str, str, tuple[int, int, int]], ...] = (
    ("ram_w", "RAM~", (214, 92, 184)), ("cpu_w", "CPU~", (96, 150, 255)),
    ("cpu_rail_w", "CPU rail", (0, 196, 204)), ("board_w", "board", (254, 166, 43)),
    ("gpu_w", "GPU", (78, 201, 113)))

def bucketed(points: Sequence[HistoryPoint], field: str, now: float, window_s: float,
             buckets: int) -> tuple[list[float], list[float]]:
    """Mean of each of ``buckets`` equal slices of the window: a bounded number of points."""
    width = window_s / max(1, buckets)
    sums: dict[int, list[float]] = {}
    for p in points:
        value = getattr(p, field)
        age = now - p.t_unix_s
        if value is None or age < 0 or age > window_s:
            continue
        slot = int(age / width)
        acc = sums.setdefault(slot, [0.0, 0.0])
        acc[0] += value
        acc[1] += 1
    slots = sorted(sums, reverse=True)
    xs = [-(slot + 0.5) * width for slot in slots]
    ys = [sums[slot][0] / sums[slot][1] for slot in slots]
    return xs, ys


class PowerChart(PlotextPlot):
    """Watts against seconds ago: GPU, board and CPU rail where measured; CodeCarbon's CPU, RAM."""

    BORDER_TITLE = "Power (W)"

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.draws = 0

    def draw(self, history: Sequence[HistoryPoint], now: float, info: SourceInfo) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        window = window_s(history, now)
        title = f"Power (W), last {window / 60:.0f} min" if window >= 120 else \
            f"Power (W), last {window:.0f} s"
        if self.border_title != title:
            self.border_title = title
        buckets = max(10, min(2 * max(1, self.size.width), 400))
        top = 1.0
        legend = []
        for field, label, colour in SERIES:
            if not shown(field, info):
                continue
            xs, ys = bucketed(history, field, now, window, buckets)
            if xs:
                plt.plot(xs, ys, color=colour, marker="braille")
                top = max(top, max(ys))
            r, g, b = colour
            legend.append(f"[rgb({r},{g},{b})]━ {label}[/]")
        subtitle = " ".join(reversed(legend))
        if self.border_subtitle != subtitle:
            self.border_subtitle = subtitle
        plt.xlim(-window, 0)
        ticks = [-window + i * window / 4 for i in range(5)]
        plt.xticks(ticks, [tick_label(t) for t in ticks])
        step = nice_step(top * 1.1 / 3)
        y_ticks = [i * step for i in range(int(top * 1.1 / step) + 2)]
        plt.yticks(y_ticks, [f"{y:g}" for y in y_ticks])
        plt.ylim(0, y_ticks[-1])
        self.draws += 1
        self.refresh()


def shown(field: str, info: SourceInfo) -> bool:
    """Rails the source does not have are not drawn (and not in the legend)."""
    if field == "gpu_w":
        return info.measures_gpu
    if field == "board_w":
        return info.board_basis is not None
    if field == "cpu_rail_w":
        return info.cpu_rail is not None
    return True


def nice_step(raw: float) -> float:
    """1, 2 or 5 times a power of ten, at least ``raw``."""
    if raw <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def window_s(history: Sequence[HistoryPoint], now: float) -> float:
    """The history's span, in whole minutes from one to five: a young chart is not empty."""
    span = now - history[0].t_unix_s if history else 0.0
    minutes = min(WINDOW_S / 60, max(1.0, float(int(span / 60) + 1)))
    return minutes * 60.0


def tick_label(t: float) -> str:
    if abs(t) < 1e-6:
        return "now"
    return f"{t / 60:g} min" if abs(t) >= 120 else f"{t:.0f} s"
