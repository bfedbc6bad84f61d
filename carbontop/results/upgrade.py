"""Recognising a CSV written by an earlier carbontop, and upgrading it in place to today's columns.

Every new column would otherwise split a results folder: a file whose header is not exactly
today's would be left alone and written beside. Instead, a file is looked at in three ways:

- **carbontop's, appendable**: its header holds every current column, in the current order
  (other columns may sit between or after them). It is today's file, a file already upgraded,
  or one written by a newer carbontop: rows are appended under *its* header, and the cells of
  columns this version does not know stay empty. Nothing is rewritten.
- **carbontop's, earlier**: an older schema of the same file, recognised by three rules that
  every carbontop version has kept and must keep:

  1. the names are unique and none is empty;
  2. it holds the file's *identity columns* (``schema.*_IDENTITY``: the original script's first
     columns and ``run_id`` for gpu_log.csv and emissions.csv, ``run_id`` and carbontop's own
     ``status``, ``workload``, ``total_basis`` for total_summary.csv, so the original script's
     or CodeCarbon's own file is never taken for carbontop's);
  3. the columns it shares with today's schema are in today's relative order. Schemas grow by
     inserting columns (carbontop's own, or the installed CodeCarbon's), never by reordering;
     a file whose columns were shuffled is not a layout carbontop wrote, so it is foreign.

  It is upgraded in place (:func:`upgrade_in_place`): the new layout is today's columns in
  today's order, followed by any column of the old file that today's schema no longer has (in
  the old file's order, so the original script's columns stay first for readers that go by
  position, and a user's data never vanishes). Every row is kept, cell for cell; the new
  columns are empty in old rows.
- **foreign**: anything else. It is never touched; the writer goes beside it.

How an upgrade stays safe (the caller holds the exclusive ``flock`` that every writer takes on
the file before appending):

- The new file is written to a temporary file in the same directory and fsynced, then read back
  and compared, row by row and cell by cell, with the original (rows are streamed, so a large
  gpu_log.csv never sits in memory).
- The original is hard-linked (copied where the file system has no hard links) to
  ``NAME.pre-upgrade.bak`` (``NAME.pre-upgrade-2.bak``... if that exists), then the new file is
  moved over the name with one ``os.replace`` and the directory fsynced. At every moment the
  name holds either the whole original or the whole upgraded file; any failure before the
  replace removes the temporary file and leaves the original as it was.
- The backup is **kept**, and the user told its name. The upgraded file holds every row of it,
  but a carbontop older than this mechanism, writing to the same file at that moment, may
  already have opened the original and be waiting for the lock: it appends its rows to the
  original after the replace, and the backup is then their only home. An upgrade happens once
  per schema change, so the cost is one extra copy per file per carbontop upgrade, which the
  user may delete.
- Writers of this version check, once they hold the lock, that the name still points at the
  file they opened, and open it again if it does not, so no row goes into a replaced file.
- A file carbontop cannot map cell for cell (a row with more or fewer cells than its header, as
  a write torn by a full disk leaves) is not upgraded: the user is told the line, and the writer
  goes beside it as for a foreign file.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import os
import shutil
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

ENCODING = "utf-8"
ERRORS = "surrogateescape"  # bytes that are not UTF-8 go back out exactly as they came in


class Verdict(Enum):
    APPEND = "append"      # carbontop's file with every current column: append under its header
    UPGRADE = "upgrade"    # an earlier carbontop schema: rewrite in place, then append
    FOREIGN = "foreign"    # not carbontop's: never touched


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    columns: tuple[str, ...]  # APPEND: the file's header; UPGRADE: the layout after the upgrade


@dataclass(frozen=True)
class Upgraded:
    rows: int
    added: tuple[str, ...]     # current columns the old file lacked (empty in its rows)
    retained: tuple[str, ...]  # old columns today's schema no longer has (kept at the end)
    backup: Path


class NotUpgradable(Exception):
    """The file cannot be mapped cell for cell onto the new layout; it is left as it is."""


def classify(header: Sequence[str], current: Sequence[str],
             identity: Sequence[str] | None) -> Decision:
    """What to do with an existing file whose first line is ``header``.

    ``identity`` None: only the exact current header is carbontop's (no upgrade).
    """
    header_t, current_t = tuple(header), tuple(current)
    if header_t == current_t:
        return Decision(Verdict.APPEND, header_t)
    foreign = Decision(Verdict.FOREIGN, ())
    if identity is None or len(set(header_t)) != len(header_t) or any(not c for c in header_t):
        return foreign
    header_set, current_set = set(header_t), set(current_t)
    if not set(identity) <= header_set:
        return foreign
    shared_in_file = [c for c in header_t if c in current_set]
    shared_in_schema = [c for c in current_t if c in header_set]
    if shared_in_file != shared_in_schema:
        return foreign
    if current_set <= header_set:
        return Decision(Verdict.APPEND, header_t)
    return Decision(Verdict.UPGRADE, current_t + tuple(c for c in header_t if c not in current_set))


def backup_path(path: Path, n: int) -> Path:
    return path.with_name(f"{path.name}.pre-upgrade.bak" if n == 1
                          else f"{path.name}.pre-upgrade-{n}.bak")


def temp_path(path: Path) -> Path:
    # One name per file: only the holder of the file's lock upgrades it, so two never collide,
    # and a temporary file left by a crash is simply overwritten by the next upgrade.
    return path.with_name(f".{path.name}.upgrade.tmp")


def _records(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of every non-blank record after the header."""
    with path.open(newline="", encoding=ENCODING, errors=ERRORS) as f:
        reader = csv.reader(f)
        next(reader, None)
        for cells in reader:
            if cells:
                yield reader.line_num, cells


def _write_upgraded(source: Path, target: Path, header: tuple[str, ...],
                    layout: tuple[str, ...], mode: int) -> int:
    """Writes ``source``'s rows under ``layout`` to ``target`` (fsynced); returns the row count."""
    where = [header.index(c) if c in header else -1 for c in layout]
    rows = 0
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, stat.S_IMODE(mode))
        with os.fdopen(os.dup(fd), "w", newline="", encoding=ENCODING, errors=ERRORS) as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(layout)
            try:
                for line, cells in _records(source):
                    if len(cells) != len(header):
                        raise NotUpgradable(f"line {line} of {source} has {len(cells)} cells "
                                            f"where its header has {len(header)}")
                    writer.writerow([cells[i] if i >= 0 else "" for i in where])
                    rows += 1
            except csv.Error as exc:  # a NUL byte, a field beyond csv's size limit
                raise NotUpgradable(f"{source} cannot be read as CSV ({exc})") from None
        os.fsync(fd)
    finally:
        os.close(fd)
    return rows


def _verify(source: Path, target: Path, header: tuple[str, ...],
            layout: tuple[str, ...], rows: int) -> None:
    """Reads the new file back: same rows, every old cell identical, every new cell empty."""
    with target.open(newline="", encoding=ENCODING, errors=ERRORS) as f:
        if next(csv.reader(f), None) != list(layout):
            raise OSError(errno.EIO, f"{target}: header not written as meant")
    where = [header.index(c) if c in header else -1 for c in layout]
    old_records, new_records = _records(source), _records(target)
    seen = 0
    try:
        for (_, old), (_, new) in zip(old_records, new_records, strict=True):
            if new != [old[i] if i >= 0 else "" for i in where]:
                raise OSError(errno.EIO, f"{target}: row {seen + 1} differs from the original")
            seen += 1
    except (ValueError, csv.Error) as exc:  # zip(strict=True): one file has more rows
        raise OSError(errno.EIO, f"{target}: read back unlike the original ({exc})") from None
    if seen != rows:
        raise OSError(errno.EIO, f"{target}: {seen} rows read back, {rows} written")


def _keep_original(path: Path) -> Path:
    """Hard-links (or copies) the original to the first free backup name; returns it."""
    n = 1
    while True:
        backup = backup_path(path, n)
        try:
            os.link(path, backup)
            return backup
        except FileExistsError:
            n += 1
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
                raise
            break  # a file system without hard links (vfat, some FUSE): copy instead
    while True:
        backup = backup_path(path, n)
        try:
            fd = os.open(backup, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            n += 1
            continue
        try:
            with os.fdopen(fd, "wb") as dst, path.open("rb") as src:
                os.fchmod(dst.fileno(), stat.S_IMODE(os.fstat(src.fileno()).st_mode))
                shutil.copyfileobj(src, dst)
                dst.flush()
                os.fsync(dst.fileno())
        except BaseException:
            backup.unlink(missing_ok=True)
            raise
        return backup


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def upgrade_in_place(path: Path, header: Sequence[str], current: Sequence[str]) -> Upgraded:
    """Rewrites ``path`` (first line ``header``) under today's ``current`` columns, followed by
    the old columns ``current`` no longer has. The caller holds the file's lock.

    Raises OSError (the original untouched, the temporary file removed) or NotUpgradable.
    """
    header_t, current_t = tuple(header), tuple(current)
    retained = tuple(c for c in header_t if c not in current_t)
    layout = current_t + retained
    tmp = temp_path(path)
    st = os.stat(path)
    backup: Path | None = None
    try:
        rows = _write_upgraded(path, tmp, header_t, layout, st.st_mode)
        with contextlib.suppress(OSError):  # not root: the file stays the writer's own
            os.chown(tmp, st.st_uid, st.st_gid)
        _verify(path, tmp, header_t, layout, rows)
        backup = _keep_original(path)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        if backup is not None:
            backup.unlink(missing_ok=True)  # the original is still under its own name
        raise
    _fsync_dir(path.parent)
    added = tuple(c for c in current_t if c not in header_t)
    return Upgraded(rows=rows, added=added, retained=retained, backup=backup)
