"""The one small interface every power source implements."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, Union

from carbontop.model import PowerSample, SourceInfo, SourceStatus

SourceEvent = Union[PowerSample, SourceStatus]
SourceSink = Callable[[SourceEvent], None]


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
