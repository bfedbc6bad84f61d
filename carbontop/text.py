"""The human-readable text of ``carbontop run``: its status line, summary, trial statistics and
power-mode comparison. Values in, strings out: nothing here measures, prints or reads a clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from carbontop.comparison import (
    Stat,
    TrialStats,
    best_modes,
    cheapest_keeping,
    dominated_by,
    mode_points,
)
from carbontop.model import SourceInfo
from carbontop.summary import SessionSummary
from carbontop.units import human_co2, human_energy
from carbontop.views import Snapshot


def _fmt(value: float | None, unit: str, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f} {unit}"


def jtop_not_used(info: SourceInfo) -> str | None:
    """``auto`` measured without a jtop service that is there but unusable: the one line on
    what is wrong with it and its fix (from the source's note), else None."""
    for part in info.note.split("; "):
        if part.startswith("jtop not used: "):
            return f"measuring through {info.kind}; {part}"
    return None


def status_line(snap: Snapshot) -> str:
    """One line of the monitor now: the state, watts, and the session's totals so far."""
    s = snap.session
    live = snap.live
    parts = [snap.state]
    if s is not None:
        parts.append(f"{s.elapsed_s:5.1f}s")
    parts.append(f"GPU {_fmt(live.gpu_w, 'W')}")
    if live.board_w is not None:
        parts.append(f"board {_fmt(live.board_w, 'W')}")
    parts.append(f"CPU~{_fmt(live.cpu_w, 'W')} RAM~{_fmt(live.ram_w, 'W')}")
    if s is not None:
        parts.append(f"total {human_energy(s.whole.total_kwh)} "
                     f"{human_co2(snap.co2_kg(s.whole.total_kwh))}")
        if s.efficiency.throughput_per_s:
            parts.append(f"{s.efficiency.throughput_per_s:.1f} {s.efficiency.unit}/s")
    if not snap.source_connected:
        parts.append("GPU SOURCE LOST")
    return " | ".join(parts)


def format_summary(summary: SessionSummary, paths: Sequence[Path]) -> str:
    w, win, e, i = summary.whole, summary.window, summary.efficiency, summary.intensity
    src = summary.source
    lines = [
        f"{summary.workload}: {summary.status.value}"
        + (f" ({summary.failure_reason})" if summary.failure_reason else ""),
        f"  source      {src.kind}: {src.device_name}"
        + (f", GPU rail {src.gpu_rail} ({src.gpu_scope.value})" if src.gpu_scope else ""),
        f"  session     {w.duration_s:.1f} s, {w.gpu_samples} samples, "
        f"{w.cpu_ram_readings} CodeCarbon readings, {w.unmeasured_s:.1f} s unmeasured",
        f"  GPU         {human_energy(w.gpu_kwh)}  {human_co2(summary.co2_kg(w.gpu_kwh))}"
        " (measured)" if w.gpu_kwh is not None else "  GPU         not measured",
        f"  CPU         {human_energy(w.cpu_kwh)} ({summary.cpu_provenance}, CodeCarbon)",
        f"  RAM         {human_energy(w.ram_kwh)} (estimated, CodeCarbon)",
    ]
    if src.pace_note:
        lines.insert(3, f"  sampling    every {src.interval_s:g} s: {src.pace_note}")
    if w.cpu_rail_kwh is not None:
        lines.append(f"  CPU rail    {human_energy(w.cpu_rail_kwh)} (measured)")
    if w.board_kwh is not None:
        lines.append(f"  board       {human_energy(w.board_kwh)} (measured)")
    lines += [
        f"  total       {human_energy(w.total_kwh)}  {human_co2(summary.co2_kg(w.total_kwh))}"
        f"  [{w.total_basis}]",
        f"  original    GPU + CPU&RAM = {human_co2(summary.co2_kg(w.original_total_kwh))}",
    ]
    if win is not None:
        lines.append(f"  window      {win.duration_s:.1f} s measured, {win.gpu_samples} samples, "
                     f"{human_energy(win.total_kwh)}")
    if summary.baseline is not None and win is not None:
        net = summary.baseline.net_kwh(win)
        lines.append(f"  above idle  {human_energy(net)} net of {human_energy(win.total_kwh)} "
                     f"gross (idle {summary.baseline.idle_w:.2f} W over "
                     f"{summary.baseline.duration_s:.1f} s)")
    if e.too_short:
        lines.append(f"  throughput  none: {e.too_short}")
    elif e.throughput_per_s:
        lines.append(f"  throughput  {e.throughput_per_s:.2f} {e.unit}/s, "
                     + (f"{e.energy_per_unit_j:.4g} J/{e.unit}" if e.energy_per_unit_j else "")
                     + (f", {e.gflop_per_j:.3g} GFLOP/J" if e.gflop_per_j else ""))
    lines.append(f"  carbon      {i.g_per_kwh:.0f} g/kWh ({i.origin})")
    lines.append("  files       " + ", ".join(str(p) for p in paths))
    return "\n".join(lines)


def format_trial_stats(stats: TrialStats) -> str:
    unit = stats["unit"] or "unit"

    def line(label: str, s: Stat, suffix: str) -> str:
        if not s["n"]:
            return f"  {label:<16} n/a"
        return f"  {label:<16} {s['mean']:.4g} ± {s['stdev']:.2g} {suffix} (n={s['n']})"

    return "\n".join([
        f"{stats['finished']}/{stats['trials']} trials finished (mean ± standard deviation):",
        line("energy per unit", stats["energy_per_unit_j"], f"J/{unit}"),
        line("throughput", stats["throughput_per_s"], f"{unit}/s"),
        line("window energy", stats["window_energy_j"], "J"),
    ])


def format_mode_comparison(mode_stats: Mapping[str, TrialStats],
                           min_throughput: float | None = None) -> str:
    """The power modes as a small Pareto table, fastest last: each mode's throughput and energy
    per unit (on the total's basis, and the GPU's), and whether another mode beats it on both.
    Then the best of each figure and, with ``min_throughput``, the cheapest mode that keeps it.
    """
    unit = next((s["unit"] for s in mode_stats.values() if s["unit"]), None) or "unit"
    basis = next((s["total_basis"] for s in mode_stats.values() if s["total_basis"]), None)
    points = mode_points(mode_stats)
    by_mode = {p.mode: p for p in points}
    width = max([len("power mode"), *(len(m) for m in mode_stats)])
    lines = [f"{'power mode':<{width}}  {'throughput':<18}  {f'J/{unit} total':<15}  "
             f"{f'J/{unit} GPU':<15}  Pareto front"]
    order = sorted(mode_stats, key=lambda m: (m not in by_mode, by_mode[m].throughput_per_s
                                              if m in by_mode else 0.0))
    for mode in order:
        s, point = mode_stats[mode], by_mode.get(mode)
        rate, per_unit = s["throughput_per_s"]["mean"], s["energy_per_unit_j"]["mean"]
        gpu = s["gpu_energy_per_unit_j"]["mean"]
        if point is None:
            front = "n/a"
        else:
            better = dominated_by(point, points)
            front = "yes" if better is None else f"no ({better.mode}: faster, cheaper)"
        lines.append(f"{mode:<{width}}  {_num(rate, f' {unit}/s'):<18}  {_num(per_unit):<15}  "
                     f"{_num(gpu):<15}  {front}")
    if basis:
        lines.append(f"J/{unit} total: {basis}")
    best = best_modes(mode_stats)
    lines.append(f"least energy per unit: {best['least_energy_per_unit']}; "
                 f"highest throughput: {best['highest_throughput']}")
    if min_throughput is not None:
        chosen = cheapest_keeping(points, min_throughput)
        if chosen is None:
            lines.append(f"no mode keeps {min_throughput:g} {unit}/s")
        else:
            lines.append(f"cheapest mode keeping {min_throughput:g} {unit}/s: {chosen.mode} "
                         f"({chosen.energy_per_unit_j:.4g} J/{unit} at "
                         f"{chosen.throughput_per_s:.4g} {unit}/s)")
    return "\n".join(lines)


def _num(value: float | None, suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:.4g}{suffix}"
