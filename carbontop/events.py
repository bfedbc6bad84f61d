"""The event lines from the workload child to the monitor: their one definition, both directions.

The child (:mod:`carbontop.child`) writes one JSON object per line to a pipe with
:func:`encode_event`; the monitor (:mod:`carbontop.runner`) reads them with :func:`parse_event`.
A line holds a :class:`carbontop.model.ProgressEvent`::

    {"kind": "units", "t_unix_s": 1700000000.5, "t_s": 12345.678901, "phase": "measuring",
     "units": 32.0, "unit": "image", "flops": null, "message": "", "info": {},
     "subphase": null, "subphase_units": {}}

``t_s`` is when it happened on the session clock (:mod:`carbontop.clock`), stamped by the
child; ``t_unix_s`` only labels it. The kinds are below. This module runs in the child, whatever
its Python: standard library only, and 3.8's.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from typing import Any

from carbontop.model import Phase, ProgressEvent

PHASE = "phase"
"""A phase starts (``phase``), at ``t_s``."""
SUBPHASE = "subphase"
"""A sub-phase of the measured window starts (``subphase``; None: the window's "other" time)."""
UNITS = "units"
"""Units (and flops) done in the current phase so far: cumulative, at most every 0.25 s."""
INFO = "info"
"""Facts about the workload (``info``): its resolved settings, figures known as it goes."""
ERROR = "error"
"""The workload failed (``message``); the child then exits with code 1."""
DONE = "done"
"""The measured window ended at ``t_s`` with ``units``; sent before teardown."""
KINDS = (PHASE, SUBPHASE, UNITS, INFO, ERROR, DONE)


def encode_event(event: ProgressEvent) -> bytes:
    """One JSON line, newline included; ``phase`` as its string value."""
    data: dict[str, Any] = asdict(event)
    data["phase"] = event.phase.value if event.phase is not None else None
    return (json.dumps(data, separators=(",", ":")) + "\n").encode()


def parse_event(line: bytes | str) -> ProgressEvent:
    """The event one line holds. Raises ValueError naming what is wrong: not JSON, not an object,
    an unknown kind or phase, a number that is not one."""
    try:
        data = json.loads(line)
        if not isinstance(data, dict):
            raise ValueError("not an event object")
        kind = data.get("kind")
        if kind not in KINDS:
            raise ValueError(f"unknown event kind {kind!r}")
        phase = data.get("phase")
        info = data.get("info") or {}
        return ProgressEvent(
            kind=kind,
            t_unix_s=float(data.get("t_unix_s") or time.time()),
            phase=Phase(phase) if phase is not None else None,
            units=_opt_float(data.get("units")),
            unit=str(data["unit"]) if data.get("unit") is not None else None,
            flops=_opt_float(data.get("flops")),
            message=str(data.get("message") or ""),
            info={str(key): str(value) for key, value in dict(info).items()},
            t_s=_opt_float(data.get("t_s")),
            subphase=str(data["subphase"]) if data.get("subphase") is not None else None,
            subphase_units={str(key): float(value)
                            for key, value in dict(data.get("subphase_units") or {}).items()},
        )
    except TypeError as exc:  # a field of the wrong shape (a list for info, text for units)
        raise ValueError(str(exc)) from None


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)
