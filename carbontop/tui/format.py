"""Pure text for the panels: a Snapshot in, fixed-width markup out. No Textual here but escape."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from textual.markup import escape

from carbontop import boards
from carbontop.attribution import total_and_basis
from carbontop.model import Phase, SourceInfo
from carbontop.source_names import SOURCE_LABELS
from carbontop.units import (
    abbreviated_unit,
    human_co2,
    human_duration,
    human_energy,
    human_joules,
    human_power,
    human_rate,
)

if TYPE_CHECKING:
    from carbontop.subphases import SubphaseFigures, SubphaseReport
    from carbontop.summary import Efficiency
    from carbontop.views import HistoryPoint, Snapshot

SPARK_BLOCKS = "▁▂▃▄▅▆▇█"

STATE_STYLES = {
    "idle": "$text-muted", "baseline": "$accent", "loading": "$warning", "warm-up": "$warning",
    "measuring": "$success", "finished": "$success", "stopped": "$warning",
    "interrupted": "$warning", "failed": "$error", "starting": "$warning",
}


def cpu_basis(snap: Snapshot) -> str:
    """What CodeCarbon's CPU figure rests on, after the provenance word: ``, TDP model: ...``."""
    mode = (snap.cpu_mode or "").strip()
    for tail in (" (estimated)", " (measured)"):
        mode = mode.removesuffix(tail)
    return f", {mode}" if mode else ""


def source_line(info: SourceInfo) -> str:
    kind = SOURCE_LABELS.get(info.kind, info.kind)
    parts = [f"[b]{escape(info.device_name)}[/]", escape(kind)]
    if info.gpu_rail:
        scope = f" ({info.gpu_scope.value})" if info.gpu_scope else ""
        parts.append(f"GPU {escape(info.gpu_rail)}{escape(scope)}")
    elif info.kind == "nvml":
        parts.append(f"{info.gpu_count} GPU{'s' if info.gpu_count != 1 else ''} (board power)")
    return " · ".join(parts)


def intensity_text(snap: Snapshot) -> str:
    """``56 g CO2e/kWh (CodeCarbon data: France (FRA))``: the figure and where it came from."""
    i = snap.intensity
    where = i.origin
    if i.country_iso3 and i.country_iso3 not in where:
        where += f", {i.country_iso3}" + (f"/{i.region}" if i.region else "")
    return escape(f"{i.g_per_kwh:.0f} g CO2e/kWh ({where})")


def state_text(snap: Snapshot | None, opened: bool) -> str:
    """The state word, coloured, then elapsed time: ``measuring 00:12 / 00:30``."""
    if not opened or snap is None:
        return "[$warning]starting the meters…[/]"
    s = snap.session
    if s is not None:
        word = s.phase.value
        style = STATE_STYLES.get(word, "")
        return f"[b {style}]{word}[/] {escape(s.workload)} {human_duration(s.elapsed_s)}"
    last = snap.last_summary
    if last is not None:
        word = last.status.value
        style = STATE_STYLES.get(word, "")
        return (f"idle · last: {escape(last.workload)} [b {style}]{word}[/] "
                f"{human_duration(last.whole.duration_s)}")
    return "[b $text-muted]idle[/]"


def live_total_w(snap: Snapshot) -> tuple[float | None, str]:
    """The power now, on the same basis as the energy total (a joule never counted twice)."""
    live = snap.live
    return total_and_basis(snap.source, live.gpu_w, live.board_w, live.cpu_w, live.ram_w)


def emission_rate_kg_s(snap: Snapshot) -> float | None:
    total_w, _ = live_total_w(snap)
    if total_w is None:
        return None
    return total_w / 1000.0 * snap.intensity.g_per_kwh / 1000.0 / 3600.0


def watts_digits(w: float | None) -> str:
    """Five characters, whatever the value, so the Digits never re-lay out."""
    if w is None:
        return "  -.-"
    if w >= 1000:
        return f"{w:5.0f}"[:5]
    return f"{w:5.1f}"


def power_rows(snap: Snapshot) -> list[tuple[str, str, str]]:
    """(label, watts, what it is) for the rows under the GPU figure."""
    info, live = snap.source, snap.live
    rows: list[tuple[str, str, str]] = []
    if info.board_basis is not None:
        rows.append(("board", human_power(live.board_w),
                     f"measured, {boards.board_label(info.board_basis, info.board_rail)}"))
    if info.cpu_rail is not None:
        rows.append(("CPU rail", human_power(live.cpu_rail_w), f"measured, {info.cpu_rail}"))
    if snap.cpu_ram_error:
        rows.append(("CPU", "n/a", f"CodeCarbon: {snap.cpu_ram_error}"))
        rows.append(("RAM", "n/a", "CodeCarbon unavailable"))
    else:
        rows.append(("CPU", human_power(live.cpu_w), f"{snap.cpu_provenance}{cpu_basis(snap)}"))
        rows.append(("RAM", human_power(live.ram_w), "estimated, CodeCarbon"))
    return rows


def gpu_caption(snap: Snapshot) -> list[str]:
    """The lines beside the big GPU figure."""
    info, live = snap.source, snap.live
    if not info.measures_gpu:
        return ["W GPU", "[$text-muted]not measured[/]", escape(info.note or "no GPU sensor")]
    if not snap.source_connected:
        return ["W GPU", "[b $error]source lost[/]", escape(snap.source_message)[:60]]
    what = info.gpu_rail or f"{info.gpu_count} GPU(s)"
    load = f"load {live.gpu_load_pct:3.0f}%" if live.gpu_load_pct is not None else ""
    scope = info.gpu_scope.value if info.gpu_scope else "GPU only"
    return ["W GPU · [$success]measured[/]", escape(f"{what} ({scope})"), load]


def energy_rows(snap: Snapshot) -> tuple[str, list[tuple[str, float | None, str]], str]:
    """Title, (label, kWh, what it is) rows and the total's basis, for the current window."""
    s = snap.session
    if s is not None:
        totals, title = s.whole, f"Cumulative · {s.workload} session"
    else:
        totals, title = snap.idle, "Cumulative · idle monitoring"
    info = snap.source
    rows: list[tuple[str, float | None, str]] = []
    if info.measures_gpu:
        rows.append(("GPU", totals.gpu_kwh, "measured"))
    if info.board_basis is not None:
        rows.append(("board", totals.board_kwh, "measured"))
    if info.cpu_rail is not None:
        rows.append(("CPU rail", totals.cpu_rail_kwh, "measured"))
    rows.append(("CPU", totals.cpu_kwh, snap.cpu_provenance))
    rows.append(("RAM", totals.ram_kwh, "estimated"))
    rows.append(("total", totals.total_kwh, ""))
    return title, rows, totals.total_basis


def energy_table(snap: Snapshot) -> str:
    """Energy and CO2 per component, the total with the emission rate now, then the basis."""
    _, rows, basis = energy_rows(snap)
    lines = [f"[b]{'':8}{'energy':>10} {'CO2':>9}[/]"]
    for label, kwh, what in rows:
        figures = f"{label:<8}{human_energy(kwh):>10} {human_co2(snap.co2_kg(kwh)):>9}"
        if label == "total":
            rate = human_rate(emission_rate_kg_s(snap))
            lines.append(f"[b]{figures}[/]  now {rate}")
        else:
            lines.append(f"{figures}  [$text-muted]{what}[/]")
    lines.append(f"[$text-muted]= {escape(basis)}[/]")
    return "\n".join(lines)


def progress_bar(fraction: float | None, width: int = 12) -> str:
    if fraction is None:
        return "─" * width
    filled = int(round(max(0.0, min(1.0, fraction)) * width))
    return f"[$success]{'━' * filled}[/][$text-muted]{'─' * (width - filled)}[/]"


def efficiency_lines(unit: str | None, throughput: float | None, per_unit_j: float | None,
                     gflop_per_j: float | None) -> list[str]:
    u = escape(unit or "unit")
    rate = f"{throughput:10.2f} {u}/s" if throughput is not None else f"{'n/a':>10} {u}/s"
    energy = f"{per_unit_j:10.4g} J/{u}" if per_unit_j is not None else f"{'n/a':>10} J/{u}"
    lines = [rate, energy]
    if gflop_per_j is not None:
        lines.append(f"{gflop_per_j:10.3g} GFLOP/J")
    return lines


SUBPHASE_COLUMN = 8  # the narrowest column: a space and up to seven characters ("12.3 mJ")
SUBPHASE_COLUMN_MAX = 10  # wider ones, where the panel has room, keep the columns apart
SUBPHASE_LABEL = 10  # "GPU J/tok"; narrower panels get short labels ("GPU")
DASH = "—"
FASTEST_SAMPLING_S = 0.01  # the fastest a power source samples (sysfs, tegrastats)
# Workloads that can measure a sub-phase alone in whole windows (their own `mode=` param).
SUBPHASE_MODES = {"llm-generate": ("prefill", "decode")}
def short_unit(unit: str | None) -> str:
    """``tok`` for token: a unit short enough for a table's row label."""
    return abbreviated_unit(unit) if unit else "unit"


def human_count(v: float | None) -> str:
    """At most five characters: ``40``, ``51.2``, ``1960``, ``12.3k``, ``1.2M``."""
    if v is None:
        return "n/a"
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:.3g}M"
    if a >= 1e4:
        return f"{v / 1e3:.3g}k"
    if a >= 100 or a == round(a):
        return f"{v:.0f}"
    return f"{v:.3g}"


def _joules_cell(p: SubphaseFigures, j: float | None, tight: bool = False) -> str:
    if p.energy_j is None:
        return DASH
    text = human_joules(j)
    return text.replace(" ", "") if tight else text


def _samples_cell(p: SubphaseFigures, tight: bool = False) -> str:
    """What the energy rests on: an energy counter read at the edges, or samples per interval."""
    if not p.intervals:
        return DASH
    if p.method.startswith("energy counter"):
        return "ctr" if tight else "counter"
    return f"{p.samples_per_interval:.3g}"


def subphase_table(report: SubphaseReport, width: int = 28) -> str:
    """The sub-phases side by side (prefill, decode...), as many as ``width`` holds.

    Rows: J per unit on the total's basis and on the GPU figure, units/s, energy (total's basis),
    units, and what the energy rests on (samples per interval, or the energy counter). An energy
    the sampling does not resolve is "—" (:func:`subphase_reasons` says why).
    """
    phases = list(report.phases)
    narrowest = SUBPHASE_COLUMN
    if (width - 5) // narrowest < min(2, len(phases)):  # a narrow panel: "476mJ", two columns
        narrowest -= 1
    shown = phases[:max(1, min(len(phases), (width - 5) // narrowest))]
    label_w = max(5, min(SUBPHASE_LABEL, width - narrowest * len(shown)))
    col = max(narrowest, min(SUBPHASE_COLUMN_MAX, (width - label_w) // len(shown)))
    full_unit = next((p.unit for p in shown if p.unit), None) or "unit"
    unit = short_unit(full_unit)
    long = label_w >= SUBPHASE_LABEL
    count_label = f"{full_unit}s" if len(full_unit) + 1 < label_w else unit
    tight = col < SUBPHASE_COLUMN
    rows: list[tuple[str, list[str]]] = [
        (f"J/{unit}", [_joules_cell(p, p.energy_per_unit_j, tight) for p in shown]),
        (f"GPU J/{unit}" if long else "GPU", [_joules_cell(p, p.gpu_energy_per_unit_j, tight)
                                              for p in shown]),
        (f"{unit}/s", [human_count(p.units_per_s) for p in shown]),
        ("energy" if long else "J", [_joules_cell(p, p.energy_j, tight) for p in shown]),
        (count_label, [human_count(p.units) for p in shown]),
        ("samples" if long else "smp", [_samples_cell(p, tight) for p in shown]),
    ]
    head = " " * label_w + "".join(
        f"[b]{escape(_fit(p.name, col - 1 if col > 7 else col)):>{col}}[/]" for p in shown)
    lines = [head]
    for label, cells in rows:
        line = f"{escape(_fit(label, label_w - 1)):<{label_w}}"
        for cell in cells:
            shown_cell = f"[$text-muted]{DASH}[/]" if cell == DASH else escape(cell)
            line += " " * max(1, col - len(cell)) + shown_cell
        lines.append(line)
    if len(shown) < len(phases):
        lines.append(f"[$text-muted]+{len(phases) - len(shown)} more in the summary[/]")
    return "\n".join(lines)


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[:max(0, width - 1)] + "…"


def subphase_reasons(report: SubphaseReport, workload: str, live: bool) -> list[str]:
    """Why a sub-phase's energy is "—", and what would resolve it: one short line per cause."""
    # Imported here, on the first sub-phase shown: the measuring core (12 ms of imports) stays
    # out of the dashboard's first frame.
    from carbontop.subphases import MIN_SAMPLES_PER_INTERVAL

    waiting, unsensed, sparse = [], [], []
    for p in report.phases:
        if p.energy_j is not None:
            continue
        if not p.intervals:
            waiting.append(p)
        elif p.coverage is None:  # no power channel: CodeCarbon alone, once a second
            unsensed.append(p)
        else:
            sparse.append(p)
    reasons = []

    def names(ps: list[SubphaseFigures]) -> str:
        return ", ".join(p.name for p in ps)

    def alone(ps: list[SubphaseFigures]) -> str:
        modes = [f"mode={p.name}" for p in ps if p.name in SUBPHASE_MODES.get(workload, ())]
        return f", or {' / '.join(modes)}" if modes else ""

    if waiting:
        reasons.append(f"{DASH} {names(waiting)}: no interval closed "
                       + ("yet" if live else "in the window"))
    if unsensed:
        reasons.append(f"{DASH} {names(unsensed)}: CodeCarbon's 1 s readings cannot split "
                       f"them{alone(unsensed)}")
    def needed_s(p: SubphaseFigures) -> float:
        return p.duration_s / p.intervals / MIN_SAMPLES_PER_INTERVAL

    sampled = [p for p in sparse if needed_s(p) >= FASTEST_SAMPLING_S]
    too_short = [p for p in sparse if needed_s(p) < FASTEST_SAMPLING_S]
    if sampled:
        every_s = min(needed_s(p) for p in sampled)
        every = f"{every_s * 1e3:.2g} ms" if every_s < 1 else f"{every_s:.2g} s"
        reasons.append(f"{DASH} {names(sampled)}: under {MIN_SAMPLES_PER_INTERVAL} samples "
                       f"each: sample every {every}{alone(sampled)}")
    if too_short:
        modes = alone(too_short).removeprefix(", or ")
        reasons.append(f"{DASH} {names(too_short)}: too short for {MIN_SAMPLES_PER_INTERVAL} "
                       "samples each: " + (f"measure it alone, {modes}" if modes else
                                           "an energy counter (NVML) splits it"))
    return reasons


def overall_lines(e: Efficiency, compact: bool) -> list[str]:
    """The window's throughput and J per unit: one line above a sub-phase table (``60.4 tok/s ·
    513 mJ/tok``, the room is the table's), else one figure a line."""
    if not compact:
        return efficiency_lines(e.unit, e.throughput_per_s, e.energy_per_unit_j, e.gflop_per_j)
    u = short_unit(e.unit)
    per_unit = (f"{human_joules(e.energy_per_unit_j)}/{u}" if e.energy_per_unit_j is not None
                else f"n/a J/{u}")
    return [f"all {human_count(e.throughput_per_s)} {u}/s · {per_unit}"]


def workload_text(snap: Snapshot, selected: str | None) -> tuple[str, str, str]:
    """Title, body and failure reason ("" if none) of the workload panel: the running session,
    else the last one."""
    s = snap.session
    if s is not None:
        style = STATE_STYLES.get(s.phase.value, "")
        head = f"[b {style}]{s.phase.value:<9}[/] {progress_bar(s.progress)} " + (
            f"{s.progress * 100:3.0f}%" if s.progress is not None else "   ")
        if s.phase is Phase.MEASURING:
            clock = f"window {human_duration(s.measuring_elapsed_s)} / " \
                    f"{human_duration(s.duration_s)}"
        else:
            clock = f"window {human_duration(s.duration_s)} after warm-up"
        e = s.efficiency
        lines = [head, f"[$text-muted]{clock}[/]",
                 *overall_lines(e, s.subphases is not None and bool(s.subphases.phases))]
        return f"Workload · {s.workload}", "\n".join(lines), s.failure_reason or ""
    last = snap.last_summary
    if last is not None:
        style = STATE_STYLES.get(last.status.value, "")
        e = last.efficiency
        split = last.subphases is not None and bool(last.subphases.phases)
        lines = [f"[b {style}]{last.status.value}[/] after {human_duration(last.whole.duration_s)}",
                 *overall_lines(e, split)]
        return f"Last run · {last.workload}", "\n".join(lines), last.failure_reason or ""
    hint = escape(selected) if selected else "a workload"
    return "Workload", f"[$text-muted]no session yet: s or Enter runs {hint}[/]", ""


def subphase_text(snap: Snapshot, width: int) -> tuple[str, str]:
    """The sub-phase table of the running session (else the last one) and why a figure is "—";
    two empty strings when the program marked no sub-phases."""
    s, last = snap.session, snap.last_summary
    if s is not None:
        report, workload, live = s.subphases, s.workload, True
    elif last is not None:
        report, workload, live = last.subphases, last.workload, False
    else:
        return "", ""
    if report is None or not report.phases:
        return "", ""
    reasons = subphase_reasons(report, workload, live)
    return subphase_table(report, width), "\n".join(escape(r) for r in reasons)



def sparkline(history: Sequence[HistoryPoint], now: float, window_s: float, width: int) -> str:
    """GPU watts over the last ``window_s`` as ``width`` block characters (blank: no data)."""
    slots: list[list[float]] = [[] for _ in range(width)]
    for p in history:
        age = now - p.t_unix_s
        if p.gpu_w is None or not 0 <= age < window_s:
            continue
        slots[width - 1 - int(age / window_s * width)].append(p.gpu_w)
    means = [sum(v) / len(v) if v else None for v in slots]
    top = max((m for m in means if m is not None), default=0.0)
    if top <= 0:
        return " " * width
    return "".join(" " if m is None else SPARK_BLOCKS[min(7, int(m / top * 7.999))]
                   for m in means)
