"""One session measures a board at a time: the rails see the whole board.

An exclusive ``flock`` on a machine-wide file. The kernel drops it when the holder dies, so a lock
left by a killed carbontop never blocks the next start. The simulated board has its own lock.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path

from carbontop.errors import CarbontopError


class BoardBusy(CarbontopError):
    """Another carbontop session is measuring this board."""

    exit_code = 2


def lock_path(source_kind: str) -> Path:
    override = os.environ.get("CARBONTOP_LOCK_DIR")
    directory = Path(override) if override else Path(tempfile.gettempdir())
    return directory / f"carbontop-{'sim' if source_kind == 'sim' else 'board'}.lock"


class BoardLock:
    def __init__(self, source_kind: str) -> None:
        self.path = lock_path(source_kind)
        self._fd: int | None = None

    def acquire(self) -> None:
        """Takes the lock or raises BoardBusy naming the holder."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise BoardBusy(
                f"another carbontop session (pid {holder}) is measuring this board: wait for it "
                f"to finish or stop it; two sessions would measure each other"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, 0)
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None
