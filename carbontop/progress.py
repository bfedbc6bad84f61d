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

Without carbontop (the variable is unset) every call does nothing. The protocol is plain text, so
any language can speak it: write lines ``carbontop:phase=measure`` or
``carbontop:units=32 unit=sample`` to the file descriptor named by ``$CARBONTOP_PROGRESS_FD``.
Phases: ``loading``, ``warmup``, ``measure``; ``units`` adds to the current phase.
"""

from __future__ import annotations

import contextlib
import os

PROGRESS_FD_ENV = "CARBONTOP_PROGRESS_FD"


def _write(line: str) -> None:
    fd = os.environ.get(PROGRESS_FD_ENV)
    if not fd:
        return
    # If carbontop went away, the program must not fail because of its monitor.
    with contextlib.suppress(OSError, ValueError):
        os.write(int(fd), (line + "\n").encode())


def phase(name: str) -> None:
    """``loading``, ``warmup`` or ``measure``."""
    _write(f"carbontop:phase={name}")


def units(amount: float, unit: str | None = None) -> None:
    """Adds ``amount`` units of work (images, tokens, samples...) to the current phase."""
    _write(f"carbontop:units={amount:g}" + (f" unit={unit}" if unit else ""))
