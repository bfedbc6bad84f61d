"""Errors a user can meet. Each message is one line: the problem, then the fix."""

from __future__ import annotations


class CarbontopError(Exception):
    """Base of every error shown to the user as one line (never as a traceback)."""

    exit_code = 1


class BadInput(CarbontopError):
    """A bad option, file or environment: exit code 2."""

    exit_code = 2
