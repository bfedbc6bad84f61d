"""Waiting for a condition in a test: a generous deadline, then a failure that says what."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout_s: float, what: str,
               poll_s: float = 0.05) -> T:
    """Polls ``predicate`` until it returns something truthy and returns that; fails the test
    with ``what`` when ``timeout_s`` passes first. Never gives up silently: a loaded machine
    gets the whole deadline, and a condition that never comes is an assertion error."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(poll_s)
