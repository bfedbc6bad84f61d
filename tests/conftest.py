"""Keeps every test run apart from the machine and from other test runs."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest

# .ci/run's CARBONTOP_STRICT_SKIPS=1: skips for want of root or of Prometheus fail there.
pytest_plugins = ["tests.strict_skips"]


@pytest.fixture(autouse=True, scope="session")
def _private_state() -> Iterator[None]:
    """A private board-lock directory, log file and config path for this test process.

    A carbontop measuring the real board (or another test run) must not block these tests, and
    these tests must not block it; subprocesses inherit the variables.
    """
    with tempfile.TemporaryDirectory(prefix="carbontop-tests-") as state:
        saved = {k: os.environ.get(k) for k in ("CARBONTOP_LOCK_DIR", "CARBONTOP_LOG_FILE",
                                                 "CARBONTOP_CONFIG", "XDG_STATE_HOME")}
        os.environ["CARBONTOP_LOCK_DIR"] = state
        os.environ.setdefault("CARBONTOP_LOG_FILE", os.path.join(state, "carbontop.log"))
        os.environ["CARBONTOP_CONFIG"] = os.path.join(state, "no-config.toml")
        os.environ["XDG_STATE_HOME"] = os.path.join(state, "state")
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
