"""What a workload's failure is called: one line for the monitor, out-of-memory recognised."""

from __future__ import annotations

from carbontop.errors import CarbontopError


def describe(exc: BaseException) -> str:
    """``Type: message``, and ``out of memory: ...`` for every flavour of OOM."""
    if isinstance(exc, CarbontopError):  # already a one-line message for the user
        return str(exc)
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    text = text.splitlines()[0] if text.strip() else type(exc).__name__
    return f"out of memory: {text}" if is_out_of_memory(exc) else text


def is_out_of_memory(exc: BaseException) -> bool:
    """MemoryError, torch's (CUDA) OutOfMemoryError, or a CPU allocator failure."""
    if isinstance(exc, MemoryError):
        return True
    if any(cls.__name__ == "OutOfMemoryError" for cls in type(exc).__mro__):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and (
        "out of memory" in text or "can't allocate memory" in text
    )
