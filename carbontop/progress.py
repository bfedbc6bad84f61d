"""Tell carbontop what your own program is doing: one line of code per event.

``carbontop run -- python train.py`` measures any program. By default the whole program is the
measured window and one completed run is the unit of work. A program that wants J per sample over
its steady state reports its phases and units::

    from carbontop import progress

    progress.phase("warmup")          # excluded from the measured window
    ...
    progress.phase("measure")         # the measured window starts here
    for batch in loader:
        train_step(batch)
        progress.units(len(batch), "sample")

Inside the measured window, a program can mark sub-phases, whose energy and units are reported
apart (an LLM's prefill and decode); the time outside every sub-phase is "other"::

    progress.subphase("prefill")
    first = model.prefill(prompt)
    progress.units(batch, "token")    # counted in the current sub-phase (and the phase)
    progress.subphase("decode")
    ...
    progress.subphase(None)           # back to "other" (between requests)

Without carbontop (the variable is unset) every call does nothing. The protocol is plain text, so
any language can speak it: write lines ``carbontop:phase=measure`` or
``carbontop:units=32 unit=sample`` to the file descriptor named by ``$CARBONTOP_PROGRESS_FD``.
Phases: ``loading``, ``warmup``, ``measure``; ``units`` adds to the current phase (and sub-phase);
``carbontop:subphase=prefill`` starts a sub-phase, ``carbontop:subphase=other`` ends it.

A line may carry the moment it describes: ``t=SECONDS`` on ``CLOCK_MONOTONIC`` (the session clock,
:mod:`carbontop.clock`; C's ``clock_gettime(CLOCK_MONOTONIC)``, Python's ``time.monotonic()``),
e.g. ``carbontop:phase=measure t=12345.678901``. This module stamps every line so. A line without
a stamp counts from the moment carbontop read it, which is as soon as it is written.

This module is the protocol's one definition: the writer below (:func:`encode_line`) and the
reader in the workload child (:mod:`carbontop.child.progress_reader`, :func:`parse_line`). It stays
stdlib-only and Python 3.8 compatible, because it runs inside the user's program, whatever its
Python.
"""

from __future__ import annotations

import contextlib
import math
import os
from typing import NamedTuple, Optional

from carbontop.clock import session_time_s

PROGRESS_FD_ENV = "CARBONTOP_PROGRESS_FD"
"""Names the file descriptor the program writes its protocol lines to."""

PREFIX = "carbontop:"
PHASE_KEY = "phase"
UNITS_KEY = "units"
UNIT_KEY = "unit"
STAMP_KEY = "t"
SUBPHASE_KEY = "subphase"
OTHER_SUBPHASE = "other"
"""The sub-phase name that ends the current sub-phase: the window's time outside every one."""
SUBPHASE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-.")
SUBPHASE_MAX_LEN = 32

PHASES = {
    "loading": "loading",
    "warmup": "warm-up",
    "warm-up": "warm-up",
    "measure": "measuring",
    "measuring": "measuring",
}
"""Phase names a line may give (any case), to the value of carbontop's ``Phase`` they mean."""


class ProgressLine(NamedTuple):
    """One protocol line: a phase edge, units of work, or both; ``t_s`` when the writer stamped it.

    ``phase`` is the value of carbontop's ``Phase`` (``loading``, ``warm-up``, ``measuring``).
    """

    phase: Optional[str] = None
    units: Optional[float] = None
    unit: Optional[str] = None
    t_s: Optional[float] = None
    subphase: Optional[str] = None  # a sub-phase name, or "other" (none)


def encode_line(
    phase: Optional[str] = None,
    units: Optional[float] = None,
    unit: Optional[str] = None,
    t_s: Optional[float] = None,
    subphase: Optional[str] = None,
) -> str:
    """``carbontop:phase=measure t=12.000000`` or ``carbontop:units=32 unit=sample t=...``.

    ``phase`` is a protocol name (``loading``, ``warmup``, ``measure``), no newline included.
    """
    fields = []
    if phase is not None:
        fields.append(f"{PHASE_KEY}={phase}")
    if subphase is not None:
        fields.append(f"{SUBPHASE_KEY}={subphase}")
    if units is not None:
        fields.append(f"{UNITS_KEY}={units:g}")
        if unit:
            fields.append(f"{UNIT_KEY}={unit}")
    if t_s is not None:
        fields.append(f"{STAMP_KEY}={t_s:.6f}")
    return PREFIX + " ".join(fields)


def parse_line(text: str) -> Optional[ProgressLine]:
    """The line's content; None when it is not a protocol line (the program's own output).

    Raises ValueError naming the problem when a protocol line is malformed: an unknown phase,
    units or a stamp that are not finite numbers, or a line with neither phase nor units.
    """
    text = text.strip()
    if not text.startswith(PREFIX):
        return None
    fields = dict(part.split("=", 1) for part in text[len(PREFIX):].split() if "=" in part)
    phase = None
    if PHASE_KEY in fields:
        phase = PHASES.get(fields[PHASE_KEY].lower())
        if phase is None:
            names = ", ".join(name for name in PHASES if "-" not in name and name != "measuring")
            raise ValueError(f"unknown phase {fields[PHASE_KEY]!r}: use one of {names}")
    units = _number(fields, UNITS_KEY) if UNITS_KEY in fields else None
    subphase = subphase_name(fields[SUBPHASE_KEY]) if SUBPHASE_KEY in fields else None
    if phase is None and units is None and subphase is None:
        raise ValueError(f"a progress line needs {PHASE_KEY}=, {SUBPHASE_KEY}= or {UNITS_KEY}=")
    t_s = _number(fields, STAMP_KEY) if STAMP_KEY in fields else None
    unit = fields.get(UNIT_KEY) or None
    return ProgressLine(phase=phase, units=units, unit=unit, t_s=t_s, subphase=subphase)


def subphase_name(text: Optional[str]) -> str:
    """A sub-phase name as the protocol carries it (lower case); None or "" is "other".

    Raises ValueError for a name with other characters than letters, digits, ``_ - .`` or
    longer than 32 characters.
    """
    name = (text or OTHER_SUBPHASE).strip().lower()
    if not name or len(name) > SUBPHASE_MAX_LEN or not set(name) <= SUBPHASE_CHARS:
        raise ValueError(f"sub-phase {text!r} is not a name: use up to {SUBPHASE_MAX_LEN} "
                         "letters, digits, '_', '-' or '.' (e.g. prefill, decode)")
    return name


def _number(fields: dict, key: str) -> float:
    try:
        value = float(fields[key])
    except ValueError:
        raise ValueError(f"{key}={fields[key]!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{key}={fields[key]!r} is not a finite number")
    return value


def _write(line: str) -> None:
    fd = os.environ.get(PROGRESS_FD_ENV)
    if not fd:
        return
    # If carbontop went away, the program must not fail because of its monitor.
    with contextlib.suppress(OSError, ValueError):
        os.write(int(fd), (line + "\n").encode())


def phase(name: str) -> None:
    """``loading``, ``warmup`` or ``measure``: the phase starts now (the line is stamped)."""
    _write(encode_line(phase=name, t_s=session_time_s()))


def units(amount: float, unit: Optional[str] = None) -> None:
    """Adds ``amount`` units of work (images, tokens, samples...) to the current phase, and to
    the current sub-phase when one is open."""
    _write(encode_line(units=amount, unit=unit, t_s=session_time_s()))


def subphase(name: Optional[str]) -> None:
    """Sub-phase ``name`` (``prefill``, ``decode``...) starts now, inside the measured window;
    None (or ``"other"``) ends the current one. The line is stamped."""
    _write(encode_line(subphase=subphase_name(name), t_s=session_time_s()))
