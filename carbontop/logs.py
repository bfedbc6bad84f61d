"""The log file: all that CodeCarbon, torch, jtop and carbontop say goes here, not the terminal."""

from __future__ import annotations

import logging
import os
from pathlib import Path

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s"
_QUIET_LIBRARIES = ("codecarbon", "jtop", "urllib3", "asyncio", "markdown_it", "PIL", "matplotlib")


def default_log_path() -> Path:
    """``$CARBONTOP_LOG_FILE``, else ``$XDG_STATE_HOME/carbontop/carbontop.log``."""
    override = os.environ.get("CARBONTOP_LOG_FILE")
    if override:
        return Path(override).expanduser()
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "carbontop" / "carbontop.log"


def setup_logging(path: Path | None = None, level: int = logging.INFO) -> Path:
    """Sends every logger to one file and nothing to the terminal. Returns the file's path.

    Library loggers that attach their own stderr handlers at import (CodeCarbon does) are
    stripped of them and made to propagate here; call again after importing such a library.
    """
    path = path or default_log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(path, encoding="utf-8")
    except OSError:
        path = Path("/tmp") / f"carbontop-{os.getuid()}.log"
        handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.set_name("carbontop-file")
    root = logging.getLogger()
    for old in list(root.handlers):
        if old.get_name() == "carbontop-file" or isinstance(old, logging.StreamHandler):
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    silence_library_stderr()
    return path


def silence_library_stderr() -> None:
    """Removes stream handlers that libraries attached to their own loggers."""
    for name in _QUIET_LIBRARIES:
        lib = logging.getLogger(name)
        for h in list(lib.handlers):
            if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler):
                lib.removeHandler(h)
        lib.propagate = True
        if name != "codecarbon":
            lib.setLevel(logging.WARNING)
