"""DeferredEngine: the dashboard's engine, built by the thread that opens it.

Every build here is the real one (``carbontop.session_factory.build_engine``: the simulated board
through the jtop code path, a real CodeCarbon tracker, the real Engine); only the moment of
``close()`` is chosen by the test.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from carbontop.config import Settings
from carbontop.deferred_engine import DeferredEngine, NotReady
from carbontop.engine_api import SessionRequest
from carbontop.model import FinalStatus
from carbontop.session_factory import build_engine


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("CARBONTOP_LOCK_DIR", str(tmp_path))
    return Settings(gpu_source="sim", seed=3, interval_s=0.2, country="FRA",
                    output_dir=tmp_path / "out").validated()


class Builds:
    """The real build, with a record of calls and a hook run just before it returns."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.calls = 0
        self.engines: list[Any] = []
        self.extra_closed = 0
        self.before_return: Callable[[], None] | None = None

    def __call__(self, say: Callable[[str, str], None]) -> tuple[Any, Callable[[], None]]:
        self.calls += 1
        engine = build_engine(self.settings)
        self.engines.append(engine)
        say("info", "built")
        if self.before_return is not None:
            self.before_return()
        return engine, self.close_extra

    def close_extra(self) -> None:
        self.extra_closed += 1


@pytest.fixture
def builds(settings: Settings) -> Iterator[Builds]:
    made = Builds(settings)
    yield made
    for engine in made.engines:
        engine.close()


def test_before_open_it_answers_like_an_engine_with_nothing_yet(builds: Builds) -> None:
    deferred = DeferredEngine(builds)
    assert deferred.snapshot() is None and deferred.history() == []
    assert not deferred.session_running and deferred.source is None and deferred.store is None
    deferred.stop_session(FinalStatus.INTERRUPTED)  # nothing to stop: no error
    with pytest.raises(NotReady, match="still starting"):
        deferred.start_session(SessionRequest("idle"))
    with pytest.raises(NotReady):
        deferred.export()
    assert builds.calls == 0


def test_open_builds_then_measures_a_session(builds: Builds) -> None:
    deferred = DeferredEngine(builds)
    heard: list[tuple[str, str]] = []
    deferred.add_listener(lambda level, text: heard.append((level, text)))
    deferred.open()
    try:
        assert builds.calls == 1 and deferred.built is builds.engines[0]
        assert ("info", "built") in heard
        snap = deferred.snapshot()
        assert snap is not None and snap.source.kind == "sim"
        deferred.start_session(SessionRequest("idle", {"nap_s": "0.05", "warmup_s": "0"},
                                              duration_s=1.0))
        summary = deferred.wait_session(30)
        assert summary is not None and summary.status is FinalStatus.FINISHED
        assert summary.window is not None and (summary.window.gpu_kwh or 0) > 0
        assert (builds.settings.output_dir / "total_summary.csv").exists()
    finally:
        deferred.close()
    assert builds.extra_closed == 1 and deferred.built is builds.engines[0]  # kept, closed
    assert builds.engines[0]._closed.is_set()


def test_close_while_building_closes_what_was_built_and_never_opens_it(
        builds: Builds) -> None:
    deferred = DeferredEngine(builds)
    builds.before_return = deferred.close  # the user quits while the source opens
    deferred.open()
    engine = builds.engines[0]
    assert deferred.built is None and deferred.snapshot() is None
    assert engine._closed.is_set()  # Engine.close ran: the source is closed
    assert engine.cpu_ram is not None and not engine.cpu_ram.running  # CodeCarbon never began
    assert builds.extra_closed == 1


def test_close_before_open_builds_nothing(builds: Builds) -> None:
    deferred = DeferredEngine(builds)
    deferred.close()
    deferred.open()
    assert builds.calls == 0 and deferred.built is None


def test_close_while_the_engine_opens_waits_then_closes_it(builds: Builds) -> None:
    deferred = DeferredEngine(builds)
    opener = threading.Thread(target=deferred.open)
    opener.start()
    deadline = time.monotonic() + 30
    while deferred.built is None and time.monotonic() < deadline:  # built; Engine.open runs
        time.sleep(0.01)
    engine = deferred.built
    assert engine is not None
    deferred.close()  # from another thread, while CodeCarbon starts inside Engine.open
    assert not opener.is_alive()  # close() waited for open() to return...
    opener.join()
    assert engine._closed.is_set()  # ...then closed the engine: no sampler left running
    assert engine.cpu_ram is not None and not engine.cpu_ram.running
    assert builds.extra_closed == 1
    assert deferred.snapshot() is not None  # the last figures stay readable
    deferred.close()  # once only
    assert builds.extra_closed == 1


def test_a_listener_added_after_the_build_hears_the_engine(builds: Builds) -> None:
    deferred = DeferredEngine(builds)
    deferred.open()
    heard: list[tuple[str, str]] = []
    try:
        deferred.add_listener(lambda level, text: heard.append((level, text)))
        assert deferred.built is not None
        deferred.built._notify("a message from the engine")
        assert any("a message from the engine" in text for _, text in heard)
    finally:
        deferred.close()


def test_a_build_that_fails_leaves_nothing_open(settings: Settings) -> None:
    def build(say: Callable[[str, str], None]) -> Any:
        raise OSError("no such device")

    deferred = DeferredEngine(build)
    with pytest.raises(OSError, match="no such device"):
        deferred.open()
    assert deferred.built is None and deferred.snapshot() is None
    deferred.close()
