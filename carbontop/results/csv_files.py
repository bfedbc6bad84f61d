"""Appending rows to CSV files without ever losing, tearing or overwriting anything.

- Files are only appended to. A file written by an earlier carbontop (an older schema of the
  same file) is upgraded in place once, under the writers' lock, keeping every row (rules and
  safety: :mod:`carbontop.results.upgrade`); a file written by a newer carbontop is appended to
  under its own header. A file whose header is not carbontop's is never touched: rows go beside
  it under a new name (``emissions.carbontop-2.csv``) and the user is told.
- Each flush is one ``write()`` on an ``O_APPEND`` descriptor under an exclusive ``flock``, so two
  carbontop processes never interleave or tear rows. Once it holds the lock, a writer checks that
  the name still points at the file it opened (an upgrade replaces it) and opens it again if not.
- A text field a spreadsheet would run as a formula (``= + - @``) gets a leading apostrophe.
- A failed write keeps the rows in memory; they are retried on the next flush and, if the
  directory stays unusable, written to a fallback directory that is named to the user.
"""

from __future__ import annotations

import csv
import errno
import fcntl
import io
import logging
import os
import stat
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from carbontop.results.upgrade import NotUpgradable, Verdict, classify, upgrade_in_place

log = logging.getLogger(__name__)

Row = Mapping[str, object]
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
REOPEN_ATTEMPTS = 5  # a file replaced again and again while we wait for its lock: give up
Inode = tuple[int, int]


class _NotOurs(Exception):
    """The file under the name is (now) not one carbontop may append to: choose the name again."""


def default_fallback_dir() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "carbontop" / "unsaved-results"


def neutralise(value: object) -> str:
    """Formats one cell; text that a spreadsheet would evaluate gets a leading apostrophe."""
    kind = type(value)  # exact types first: this runs for every cell of every gpu_log row
    if kind is float:
        return repr(value)
    if value is None:
        return ""
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    text = value if isinstance(value, str) else str(value)
    if text.startswith(FORMULA_PREFIXES):
        try:
            float(text)
        except ValueError:
            return "'" + text
    return text


def encode_rows(columns: Sequence[str], rows: Sequence[Row], header: bool = False) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if header:
        writer.writerow(columns)
    for row in rows:
        writer.writerow([neutralise(row.get(c)) for c in columns])
    # A program's name or argument that is not valid UTF-8 must never block the writing.
    return buffer.getvalue().encode("utf-8", errors="backslashreplace")


def read_header(path: Path) -> list[str] | None:
    if not path.is_file():
        return None  # a device or a pipe (/dev/full, /dev/null): nothing to compare
    with path.open(newline="", encoding="utf-8", errors="replace") as f:
        first = f.readline(1 << 16)
    if not first.strip():
        return None
    return next(csv.reader([first]))


class CsvAppender:
    """One CSV file that carbontop appends to."""

    def __init__(self, directory: Path, filename: str, columns: Sequence[str],
                 notify: Callable[[str], None] | None = None,
                 fallback_dir: Path | None = None, durable: bool = False,
                 identity: Sequence[str] | None = None) -> None:
        """``identity``: the columns every carbontop version wrote to this file (see
        :func:`carbontop.results.upgrade.classify`); None accepts only the exact ``columns``."""
        self.directory = directory
        self.filename = filename
        self.columns = tuple(columns)
        self.identity = tuple(identity) if identity is not None else None
        self._refused: set[Inode] = set()  # carbontop's, but cannot be upgraded cell for cell
        self.durable = durable  # fsync every flush (summary rows)
        self._notify = notify or (lambda message: log.warning(message))
        self._fallback_dir = fallback_dir or default_fallback_dir()
        self._lock = threading.RLock()  # the ticker, a session's end and an export all write
        self._path: Path | None = None
        self._inode: tuple[int, int] | None = None
        self._pending: list[Row] = []
        self.last_error: str | None = None
        self.written_to_fallback: Path | None = None

    @property
    def path(self) -> Path:
        """Where rows go: the plain name, or the name beside it when that file is foreign."""
        if self._path is None:
            self._path = self._resolve_path(self.directory)
        return self._path

    @property
    def pending_rows(self) -> int:
        return len(self._pending)

    def _resolve_path(self, directory: Path) -> Path:
        candidate = directory / self.filename
        stem, suffix = candidate.stem, candidate.suffix
        n = 1
        while True:
            if not candidate.exists():
                return candidate
            if self._may_append(candidate):
                return candidate
            n += 1
            new = directory / f"{stem}.carbontop-{n}{suffix}"
            if n == 2:
                self._notify(
                    f"{candidate} has other columns than carbontop's: left untouched, "
                    f"writing beside it"
                )
            candidate = new

    def _may_append(self, candidate: Path) -> bool:
        """Whether rows may go to this existing file (perhaps after an upgrade); no lock held."""
        try:
            st = os.stat(candidate)
            header = read_header(candidate)
        except OSError:
            return True  # unreadable: writing will say why
        if header is None:
            return True
        if (st.st_dev, st.st_ino) in self._refused:
            return False
        return classify(header, self.columns, self.identity).verdict is not Verdict.FOREIGN

    def append(self, rows: Sequence[Row]) -> bool:
        """Queues rows and tries to write everything queued. True when nothing is left pending."""
        with self._lock:
            self._pending.extend(rows)
            return self._flush()

    def flush(self) -> bool:
        with self._lock:
            return self._flush()

    def _flush(self) -> bool:
        if not self._pending:
            return True
        self._check_replaced()
        try:
            self._write_choosing(lambda: self.path, self._pending)
        except OSError as exc:
            message = f"cannot write {self.directory / self.filename}: {exc.strerror or exc}"
            if message != self.last_error:
                self._notify(message + f" ({len(self._pending)} rows kept in memory)")
            self.last_error = message
            log.warning("write failed", exc_info=True)
            return False
        if self.last_error:
            self._notify(f"{self.path} is writable again: {len(self._pending)} kept rows written")
        self.last_error = None
        self._pending.clear()
        return True

    def _check_replaced(self) -> None:
        """Another program (CodeCarbon renames a file whose header it dislikes) replaced ours:
        look at the file's header again instead of appending under someone else's."""
        if self._path is None or self._inode is None:
            return
        try:
            st = os.stat(self._path)
        except OSError:
            return  # gone: it is made again, with its header
        if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) != self._inode:
            self._path = None
            self._inode = None

    def flush_or_fallback(self) -> Path | None:
        """Final flush: if the directory stays unusable, writes to the fallback directory."""
        with self._lock:
            return self._flush_or_fallback()

    def _flush_or_fallback(self) -> Path | None:
        if self._flush():
            return self.path
        try:
            self._fallback_dir.mkdir(parents=True, exist_ok=True)
            target = self._write_choosing(lambda: self._resolve_path(self._fallback_dir),
                                          self._pending)
        except OSError as exc:
            self._notify(f"cannot write {self.filename} anywhere ({exc}): rows are lost")
            return None
        self._pending.clear()
        self.written_to_fallback = target
        self._notify(f"{self.directory} is not writable: {self.filename} rows saved to {target}")
        return target

    def _write_choosing(self, choose: Callable[[], Path], rows: Sequence[Row]) -> Path:
        """Writes to the file ``choose`` names, choosing again if it turns out not to be ours."""
        for _ in range(REOPEN_ATTEMPTS):
            path = choose()
            try:
                self._write(path, rows)
                return path
            except _NotOurs:
                if path == self._path:
                    self._path = None
                    self._inode = None
        raise OSError(errno.EAGAIN, "the file kept changing under carbontop")

    def _write(self, path: Path, rows: Sequence[Row]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(REOPEN_ATTEMPTS):
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    st = os.fstat(fd)
                    if stat.S_ISREG(st.st_mode) and not _still_named(path, st):
                        continue  # upgraded (replaced) while we waited for the lock: open it again
                    layout = self._layout(path, st)
                    if layout is None:
                        continue  # this writer has just upgraded it: open the new file
                    columns, header = layout
                    data = encode_rows(columns, rows, header=header)
                    written = os.write(fd, data)
                    if written != len(data):
                        raise OSError(errno.ENOSPC, "short write (disk full?)")
                    if path == self._path:
                        self._inode = (st.st_dev, st.st_ino)
                    if self.durable:
                        os.fsync(fd)
                    return
                finally:
                    fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
        raise OSError(errno.EAGAIN, f"{path} kept being replaced while carbontop waited for it")

    def _layout(self, path: Path, st: os.stat_result) -> tuple[tuple[str, ...], bool] | None:
        """The columns to write under (and whether to write the header) to the open, locked file
        ``st``; None after upgrading it (open it again). Raises _NotOurs for a foreign file."""
        if not stat.S_ISREG(st.st_mode) or st.st_size == 0:
            return self.columns, True  # a new file, or a device or pipe (/dev/null, /dev/full)
        key = (st.st_dev, st.st_ino)
        # Read under the lock on every write (one short read): a cached header could belong to a
        # deleted file whose inode number a new file reuses.
        header = _header_of(path, key)
        if header is None:
            return self.columns, False  # a blank first line: as before, rows under our columns
        decision = classify(header, self.columns, self.identity)
        if decision.verdict is Verdict.APPEND:
            return decision.columns, False
        if decision.verdict is Verdict.FOREIGN or key in self._refused:
            raise _NotOurs
        try:
            done = upgrade_in_place(path, header, self.columns)
        except NotUpgradable as exc:
            self._refused.add(key)
            self._notify(f"{exc}: {path} left untouched, writing beside it")
            raise _NotOurs from None
        added = ", ".join(done.added)
        kept = f"; columns this version no longer writes kept at the end: " \
               f"{', '.join(done.retained)}" if done.retained else ""
        self._notify(f"{path} upgraded in place to this carbontop's columns: {done.rows} rows "
                     f"kept, new columns empty in them ({added}){kept}; the original is kept "
                     f"as {done.backup}")
        return None


def _still_named(path: Path, st: os.stat_result) -> bool:
    """Whether ``path`` still names the file ``st`` describes."""
    try:
        now = os.stat(path)
    except FileNotFoundError:
        return False
    return (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino)


def _header_of(path: Path, key: Inode) -> list[str] | None:
    """The header of ``path``, provided it is still the file ``key`` (else _NotOurs: choose again).
    """
    with path.open("rb") as f:
        st = os.fstat(f.fileno())
        if (st.st_dev, st.st_ino) != key:
            raise _NotOurs
        first = f.readline(1 << 16).decode("utf-8", errors="surrogateescape")
    if not first.strip():
        return None
    return next(csv.reader([first]))
