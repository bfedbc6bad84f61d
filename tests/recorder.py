"""A thread-safe sink that records a power source's events, for tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from carbontop.model import PowerSample, SourceStatus
from carbontop.sources.base import SourceEvent


class Recorder:
    """A thread-safe sink."""

    def __init__(self) -> None:
        self.events: list[SourceEvent] = []
        self._cond = threading.Condition()

    def __call__(self, event: SourceEvent) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    @property
    def samples(self) -> list[PowerSample]:
        with self._cond:
            return [e for e in self.events if isinstance(e, PowerSample)]

    @property
    def statuses(self) -> list[SourceStatus]:
        with self._cond:
            return [e for e in self.events if isinstance(e, SourceStatus)]

    def wait_for(self, predicate: Callable[[Recorder], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out; events so far: {self.events[-5:]}")
                self._cond.wait(min(left, 0.05))

    def wait_sample(
        self, check: Callable[[PowerSample], bool], timeout: float = 5.0
    ) -> PowerSample:
        """The first sample from now on that passes ``check``."""
        start = len(self.samples)
        found: list[PowerSample] = []

        def seen(rec: Recorder) -> bool:
            found[:] = [s for s in rec.samples[start:] if check(s)]
            return bool(found)

        self.wait_for(seen, timeout)
        return found[0]
