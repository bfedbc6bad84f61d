"""Fixtures for tests that run the real jtop service on an emulated board."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import pytest

from tests.jtop_harness import JtopService, skip_reason
from tests.jtop_harness import jtop_service as start_jtop_service


@pytest.fixture
def jtop_service() -> Iterator[Callable[..., JtopService]]:
    """``jtop_service(board, service_version=None)`` starts the real service; stopped at teardown.

    Skips (with the reason) where the service cannot run, i.e. when not root.
    """
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    with contextlib.ExitStack() as stack:

        def start(board: str, service_version: str | None = None) -> JtopService:
            return stack.enter_context(start_jtop_service(board, service_version=service_version))

        yield start
