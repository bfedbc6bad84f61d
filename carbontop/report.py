"""``carbontop report [DIR]``: the sessions of a results directory, as a table, JSON or CSV.

Reads ``DIR/emissions.csv`` and its ``emissions.carbontop-N.csv`` siblings (written when a file
of that name had other columns than carbontop's). A file whose columns are not carbontop's is
skipped. Rows are appended, never rewritten: a session exported while it ran has a ``partial``
row and later its final row, so readers take the LAST row of each run_id.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path

from carbontop.errors import BadInput
from carbontop.results import schema
from carbontop.results.csv_files import FORMULA_PREFIXES, read_header
from carbontop.units import human_co2, human_duration, human_energy, human_joules, human_throughput

log = logging.getLogger(__name__)

WIDTH = 80
REQUIRED_COLUMNS = ("run_id", "status", "workload", "start_time", "total_energy_kwh")
_SIBLING = re.compile(r"^emissions\.carbontop-(\d+)\.csv$")
_BACKUP = re.compile(r"^emissions\.csv(?:_(\d+))?\.bak$")  # CodeCarbon's backup() names


@dataclass(frozen=True)
class SessionRow:
    """One session: the last row of its run_id in emissions.csv. ``None``: not measured."""

    run_id: str
    workload: str
    status: str
    start_time: str  # ISO 8601 UTC, as written
    end_time: str
    duration_s: float | None
    energy_kwh: float | None  # total_energy_kwh, on total_basis
    co2_kg: float | None  # total_co2_kg
    throughput_per_s: float | None
    unit: str | None
    energy_per_unit_j: float | None
    gpu_source: str | None
    gpu_name: str | None
    total_basis: str | None
    experiment_id: str | None  # shared by the trials of one --repeat (newer files only)
    trial: str | None
    file: str  # the CSV file it came from (name only)
    # Newer files only (None in older ones): the Jetson power mode, the GPU figure per unit,
    # the sub-phases named prefill and decode (J/unit on total_basis, units/s), TTFT.
    power_mode: str | None = None
    gpu_energy_per_unit_j: float | None = None
    prefill_energy_per_unit_j: float | None = None
    decode_energy_per_unit_j: float | None = None
    prefill_units_per_s: float | None = None
    decode_units_per_s: float | None = None
    other_energy_j: float | None = None
    ttft_median_s: float | None = None
    subphase_note: str | None = None

    @property
    def start(self) -> datetime | None:
        return _parse_time(self.start_time)


# Sort keys: name -> (field, aliases). Prefix "-" to sort in descending order.
SORT_COLUMNS: dict[str, tuple[str, tuple[str, ...]]] = {
    "start": ("start_time", ("when", "time", "start_time", "date")),
    "workload": ("workload", ("name",)),
    "duration": ("duration_s", ("duration_s", "time_s")),
    "energy": ("energy_kwh", ("kwh", "energy_kwh", "total_energy_kwh")),
    "co2": ("co2_kg", ("co2_kg", "total_co2_kg", "carbon")),
    "throughput": ("throughput_per_s", ("throughput_per_s", "rate")),
    "j_per_unit": ("energy_per_unit_j", ("j/unit", "per_unit", "energy_per_unit_j", "jpu")),
    "status": ("status", ()),
    "end": ("end_time", ("end_time",)),
    "gpu_j_per_unit": ("gpu_energy_per_unit_j", ("gpu_energy_per_unit_j",
                                                 "window_gpu_energy_per_unit_j")),
    "prefill": ("prefill_energy_per_unit_j", ("prefill_energy_per_unit_j", "prefill_j")),
    "decode": ("decode_energy_per_unit_j", ("decode_energy_per_unit_j", "decode_j")),
    "prefill_rate": ("prefill_units_per_s", ("prefill_units_per_s",)),
    "decode_rate": ("decode_units_per_s", ("decode_units_per_s",)),
    "ttft": ("ttft_median_s", ("ttft_median_s",)),
    "power_mode": ("power_mode", ("mode",)),
}
DEFAULT_SORT = "start"


def sort_field(sort: str) -> tuple[str, bool]:
    """The SessionRow field to sort by, and whether descending; BadInput for an unknown key."""
    key = sort.strip().lower()
    descending = key.startswith("-")
    key = key.lstrip("-").replace("-", "_") or DEFAULT_SORT
    for name, (field_name, aliases) in SORT_COLUMNS.items():
        if key == name or key in aliases:
            return field_name, descending
    raise BadInput(f"cannot sort by '{sort}': choose one of {', '.join(SORT_COLUMNS)} "
                   f"(prefix - for descending, e.g. --sort=-energy)")


def sort_rows(rows: Sequence[SessionRow], sort: str = DEFAULT_SORT) -> list[SessionRow]:
    """Sorted by ``sort``; rows without that figure come last either way."""
    field_name, descending = sort_field(sort)
    present = [r for r in rows if getattr(r, field_name) not in (None, "")]
    missing = [r for r in rows if getattr(r, field_name) in (None, "")]

    def key(r: SessionRow) -> tuple[object, str]:
        v = getattr(r, field_name)
        if field_name in ("start_time", "end_time"):
            t = _parse_time(v)
            v = t.timestamp() if t is not None else float("-inf")
        elif isinstance(v, str):
            v = v.lower()
        return v, r.start_time

    return sorted(present, key=key, reverse=descending) + missing


# -- reading ------------------------------------------------------------------------------------

def emissions_files(directory: Path) -> list[Path]:
    """Oldest first: CodeCarbon's backups of emissions.csv, emissions.csv, its siblings.

    CodeCarbon, writing its own emissions.csv into the same directory, renames a file with other
    columns to ``emissions.csv.bak`` (then ``emissions.csv_0.bak``, ``_1``...): carbontop's rows
    can end up there.
    """
    backups, siblings = [], []
    for path in directory.glob("emissions.*"):
        if not path.is_file():
            continue
        if m := _BACKUP.match(path.name):
            backups.append((-1 if m.group(1) is None else int(m.group(1)), path))
        elif m := _SIBLING.match(path.name):
            siblings.append((int(m.group(1)), path))
    main = [directory / schema.EMISSIONS] if (directory / schema.EMISSIONS).is_file() else []
    return [p for _, p in sorted(backups)] + main + [p for _, p in sorted(siblings)]


def is_carbontop_header(header: Sequence[str] | None) -> bool:
    return header is not None and all(c in header for c in REQUIRED_COLUMNS)


def load_sessions(directory: Path) -> list[SessionRow]:
    """Every session of ``directory``'s emissions files, the last row of each run_id, file order.

    Raises :class:`BadInput` (one line, with the fix) when the directory or its emissions.csv is
    missing, or when no file there has carbontop's columns.
    """
    if not directory.exists():
        raise BadInput(f"results directory {directory} does not exist: give the --output-dir "
                       f"carbontop wrote to (default: the directory it ran in)")
    if not directory.is_dir():
        raise BadInput(f"{directory} is not a directory: give the directory that holds "
                       f"emissions.csv")
    files = emissions_files(directory)
    if not files:
        raise BadInput(f"no {schema.EMISSIONS} in {directory}: give the --output-dir of a "
                       f"carbontop run, or run one first (carbontop run idle)")
    by_run: dict[str, SessionRow] = {}
    readable = 0
    for path in files:
        try:
            header = read_header(path)
        except OSError as exc:
            raise BadInput(f"cannot read {path} ({exc.strerror or exc}): check its "
                           f"permissions") from None
        if not is_carbontop_header(header):
            log.info("%s has other columns than carbontop's: skipped", path)
            continue
        readable += 1
        for row in _read_rows(path):
            session = _session_row(row, path.name)
            if session is None:
                continue
            by_run.pop(session.run_id, None)  # the last row wins, and takes the last place
            by_run[session.run_id] = session
    if readable == 0:
        raise BadInput(f"{directory / schema.EMISSIONS} has other columns than carbontop's "
                       f"(another tool's file?): give the --output-dir carbontop wrote to")
    return list(by_run.values())


def _read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8", errors="replace") as f:
        return [{k: v for k, v in row.items() if k is not None} for row in csv.DictReader(f)]


def _session_row(row: dict[str, str], filename: str) -> SessionRow | None:
    run_id = _text(row.get("run_id"))
    if not run_id:
        return None
    return SessionRow(
        run_id=run_id, workload=_text(row.get("workload")) or "?",
        status=_text(row.get("status")) or "?",
        start_time=_text(row.get("start_time")) or "", end_time=_text(row.get("end_time")) or "",
        duration_s=_number(row.get("duration_s")),
        energy_kwh=_number(row.get("total_energy_kwh")),
        co2_kg=_number(row.get("total_co2_kg")),
        throughput_per_s=_number(row.get("throughput_per_s")),
        unit=_text(row.get("unit")) or None,
        energy_per_unit_j=_number(row.get("energy_per_unit_j")),
        gpu_source=_text(row.get("gpu_source")) or None,
        gpu_name=_text(row.get("gpu_name")) or None,
        total_basis=_text(row.get("total_basis")) or None,
        experiment_id=_text(row.get("experiment_id")) or None,
        trial=_text(row.get("trial")) or None, file=filename,
        power_mode=_text(row.get("power_mode")) or None,
        gpu_energy_per_unit_j=_number(row.get("window_gpu_energy_per_unit_j")),
        prefill_energy_per_unit_j=_number(row.get("prefill_energy_per_unit_j")),
        decode_energy_per_unit_j=_number(row.get("decode_energy_per_unit_j")),
        prefill_units_per_s=_number(row.get("prefill_units_per_s")),
        decode_units_per_s=_number(row.get("decode_units_per_s")),
        other_energy_j=_number(row.get("other_energy_j")),
        ttft_median_s=_number(row.get("ttft_median_s")),
        subphase_note=_text(row.get("subphase_note")) or None)


def _text(value: str | None) -> str:
    """A cell as written, less the apostrophe the writer put before a formula-like text."""
    if not value:
        return ""
    if value.startswith("'") and value[1:].startswith(FORMULA_PREFIXES):
        return value[1:]
    return value


def _number(value: str | None) -> float | None:
    if value is None or not value.strip():
        return None
    try:
        return float(value)
    except ValueError:
        log.debug("not a number: %r", value)
        return None


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo is not None else t.replace(tzinfo=timezone.utc)


def session_label(r: SessionRow) -> str:
    """``MAXN 2/3``: the session's power mode and its trial, each where set. ``--power-modes``
    writes the mode into the trial as well (``MAXN 2/3``): it is shown once."""
    mode, trial = r.power_mode or "", r.trial or ""
    if mode and (trial == mode or trial.startswith(mode + " ")):
        trial = trial[len(mode):].strip()
    return " ".join(x for x in (mode, trial) if x)


# -- writing ------------------------------------------------------------------------------------

_HEADERS = ("workload", "start (UTC)", "time", "energy", "CO2e", "throughput", "J/unit",
            "status")
_RIGHT = (False, False, True, True, True, True, True, False)


def _cells(r: SessionRow, short_date: bool) -> list[str]:
    t = r.start
    when = "?" if t is None else t.astimezone(timezone.utc).strftime(
        "%m-%d %H:%M" if short_date else "%Y-%m-%d %H:%M")
    return [r.workload, when, human_duration(r.duration_s), human_energy(r.energy_kwh),
            human_co2(r.co2_kg), human_throughput(r.throughput_per_s, r.unit),
            human_joules(r.energy_per_unit_j), r.status]


def render_table(rows: Sequence[SessionRow], sort: str = DEFAULT_SORT,
                 width: int = WIDTH) -> str:
    """Aligned plain text, at most ``width`` columns: one line per session and a total."""
    ordered = sort_rows(rows, sort)
    if not ordered:
        return "no sessions"
    # The first layout where the workload names fit whole, else the one that leaves them most.
    best: tuple[int, list[list[str]], list[int], str] | None = None
    for short_date, sep in ((False, "  "), (True, "  "), (True, " ")):
        table = [list(_HEADERS), *(_cells(r, short_date) for r in ordered)]
        widths = [max(len(row[i]) for row in table) for i in range(len(_HEADERS))]
        room = width - sum(widths[1:]) - len(sep) * (len(widths) - 1)
        if best is None or room > best[0]:
            best = (room, table, widths, sep)
        if room >= widths[0]:
            break
    assert best is not None
    room, table, widths, sep = best
    widths[0] = max(4, min(widths[0], room))
    lines = []
    for row in table:
        cells = [_fit(row[0], widths[0])] + row[1:]
        padded = (c.rjust(w) if right else c.ljust(w)
                  for c, w, right in zip(cells, widths, _RIGHT, strict=True))
        lines.append(sep.join(padded).rstrip())
    lines.insert(1, sep.join("-" * w for w in widths))
    energies = [r.energy_kwh for r in ordered if r.energy_kwh is not None]
    co2 = [r.co2_kg for r in ordered if r.co2_kg is not None]
    lines.append(f"{len(ordered)} session{'s' if len(ordered) != 1 else ''}: "
                 f"{human_energy(sum(energies) if energies else None)}, "
                 f"{human_co2(sum(co2) if co2 else None)} CO2e")
    lines += _detail_lines(ordered, sep="  ")
    return "\n".join(line[:width] for line in lines)


_DETAIL_HEADERS = ("workload", "mode/trial", "prefill J/u", "decode J/u", "prefill u/s",
                   "decode u/s", "TTFT")


def _detail_lines(rows: Sequence[SessionRow], sep: str) -> list[str]:
    """A second table for the sessions with a power mode, a trial or sub-phases: each session's
    mode and trial, and its prefill and decode figures (J per unit on total_basis, units/s)."""
    shown = [r for r in rows if r.power_mode or r.trial or r.prefill_units_per_s is not None
             or r.decode_units_per_s is not None]
    if not shown:
        return []

    def cells(r: SessionRow) -> list[str]:
        label = session_label(r) or "-"
        ttft = "n/a" if r.ttft_median_s is None else human_duration_ms(r.ttft_median_s)
        return [r.workload, label, human_joules(r.prefill_energy_per_unit_j),
                human_joules(r.decode_energy_per_unit_j),
                human_throughput(r.prefill_units_per_s, r.unit),
                human_throughput(r.decode_units_per_s, r.unit), ttft]

    table = [list(_DETAIL_HEADERS), *(cells(r) for r in shown)]
    widths = [max(len(row[i]) for row in table) for i in range(len(_DETAIL_HEADERS))]
    widths[0] = max(4, min(widths[0], WIDTH - sum(widths[1:]) - len(sep) * 6))
    out = [""]
    for row in table:
        cells_ = [_fit(row[0], widths[0]), *row[1:]]
        out.append(sep.join(c.ljust(w) if i < 2 else c.rjust(w)
                            for i, (c, w) in enumerate(zip(cells_, widths, strict=True))).rstrip())
    out.insert(2, sep.join("-" * w for w in widths))
    notes = {r.subphase_note for r in shown if r.subphase_note}
    out += [f"n/a: {note}" for note in sorted(notes)][:3]
    return out


def human_duration_ms(seconds: float) -> str:
    return f"{seconds * 1e3:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "~"


def to_json(rows: Sequence[SessionRow], sort: str = DEFAULT_SORT) -> str:
    """A JSON list of the sessions, raw figures in their units (kWh, kg, s, J, units/s)."""
    return json.dumps([asdict(r) for r in sort_rows(rows, sort)], indent=2)


def to_csv(rows: Sequence[SessionRow], sort: str = DEFAULT_SORT) -> str:
    """The sessions as CSV, one column per SessionRow field, raw figures."""
    names = [f.name for f in fields(SessionRow)]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(names)
    for r in sort_rows(rows, sort):
        values = asdict(r)
        writer.writerow(["" if values[n] is None else
                         repr(values[n]) if isinstance(values[n], float) else values[n]
                         for n in names])
    return buffer.getvalue()


def report_main(directory: Path, sort: str = DEFAULT_SORT, fmt: str = "table") -> int:
    """``carbontop report``: prints the sessions of ``directory`` to stdout; returns 0."""
    renderers = {"table": render_table, "json": to_json, "csv": to_csv}
    if fmt not in renderers:
        raise BadInput(f"unknown report format '{fmt}': choose table, json or csv")
    sort_field(sort)  # a bad --sort is an error before any reading
    rows = load_sessions(directory)
    text = renderers[fmt](rows, sort)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()
    return 0


__all__ = ["SORT_COLUMNS", "SessionRow", "load_sessions", "render_table", "report_main",
           "sort_rows", "to_csv", "to_json"]
