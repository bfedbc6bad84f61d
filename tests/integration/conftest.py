"""Fixtures for tests that run the real jtop service on an emulated board."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.jtop_harness import JtopService, skip_reason
from tests.jtop_harness import jtop_service as start_jtop_service


@pytest.fixture
def jtop_service() -> Iterator[Callable[..., JtopService]]:
    """``jtop_service(board, **options)`` starts the real service; stopped at teardown.

    The options are :func:`tests.jtop_harness.jtop_service`'s (service_version, decode_delay_s,
    stamp_log, ...).

    Skips (with the reason) where the service cannot run, i.e. when not root.
    """
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    with contextlib.ExitStack() as stack:

        def start(board: str, **options: Any) -> JtopService:
            return stack.enter_context(start_jtop_service(board, **options))

        yield start
