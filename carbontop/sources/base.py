"""The one small interface every power source implements."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol, Union

from carbontop.model import PowerSample, SourceInfo, SourceStatus

SourceEvent = Union[PowerSample, SourceStatus]
SourceSink = Callable[[SourceEvent], None]


def deliver(event: SourceEvent, sink: SourceSink | None, stop: threading.Event,
            lock: AbstractContextManager[object]) -> bool:
    """Hands one event to the sink unless the source is closing; a broken sink never kills
    the source's thread. False once the source is closed."""
    with lock:
        if stop.is_set() or sink is None:
            return False
        try:
            sink(event)
        except Exception:  # noqa: BLE001
            logging.getLogger(__name__).exception("power sink failed on %s", type(event).__name__)
        return True


class SourceUnavailable(Exception):
    """The source cannot be opened here. The message is one line: the problem and the fix."""


class PowerSource(Protocol):
    """A source of power samples.

    ``open()`` connects (or raises :class:`SourceUnavailable`) and fills ``info``. ``start(sink)``
    begins delivering events from a background thread: each new :class:`PowerSample` (repeated
    sensor timestamps already dropped, milliwatts already watts, negatives already clamped) and
    each :class:`SourceStatus` change (lost, regained). ``close()`` stops the thread promptly.
    """

    info: SourceInfo

    def open(self) -> SourceInfo: ...

    def start(self, sink: SourceSink) -> None: ...

    def close(self) -> None: ...
