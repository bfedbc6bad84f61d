"""The main screen at 80x24 and 120x40, pixel for pixel.

A fixed moment (tests/tui/fakes.py: a stand-in engine built from the real value types), a fixed
clock and time zone, fixed terminal sizes: nothing here varies between runs. Regenerate with
``pytest tests/tui/test_snapshots.py --snapshot-update`` after a deliberate change, and look.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from carbontop.config import Settings
from carbontop.tui.app import CarbontopApp
from tests.tui.fakes import LLM_WORKLOADS, T0, WORKLOADS, FakeEngine, llm_snapshot


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def make_app() -> CarbontopApp:
    return CarbontopApp(FakeEngine(), WORKLOADS, Settings(output_dir=Path("results")),
                        clock=lambda: T0)


async def settle(pilot: Any) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.pause()


def test_main_screen_80x24(snap_compare: Any) -> None:
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=settle)


def test_main_screen_120x40(snap_compare: Any) -> None:
    assert snap_compare(make_app(), terminal_size=(120, 40), run_before=settle)


def make_llm_app() -> CarbontopApp:
    """llm-generate measuring: prefill and decode side by side (decode resolved, prefill "—")."""
    return CarbontopApp(FakeEngine(llm_snapshot()), LLM_WORKLOADS,
                        Settings(output_dir=Path("results")), clock=lambda: T0)


async def settle_fit(pilot: Any) -> None:
    """As :func:`settle`, then the refreshes that fold the menu for the panel and redraw the
    panel at its final width (the refresh timer would do it within a second)."""
    await settle(pilot)
    for _ in range(3):
        pilot.app._refresh_panels()
        await pilot.pause()
        await pilot.pause()


def test_llm_generate_80x24(snap_compare: Any) -> None:
    assert snap_compare(make_llm_app(), terminal_size=(80, 24), run_before=settle_fit)


def test_llm_generate_120x40(snap_compare: Any) -> None:
    assert snap_compare(make_llm_app(), terminal_size=(120, 40), run_before=settle_fit)
