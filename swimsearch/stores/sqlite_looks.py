"""The file of the look's kept verdicts (look_verdicts.py): a small SQLite file in the user's cache folder.

Two tables: `verdicts` (a pair of file keys, the smaller first, and whether
the look called them one picture) and `ahead` (the files of a catalogue whose
searches were looked ahead). A cache: WAL, no fsync per commit, and a file
that cannot be read is set aside (``.damaged``) and started again.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

log = logging.getLogger(__name__)

#: Pairs or files asked in one statement (SQLite's default limit of host parameters is 32,766).
CHUNK = 400
#: What SQLite says of a damaged file.
DAMAGED = ("malformed", "not a database")


class LookFileLost(Exception):
    """The file failed under a read or a write (a full disk, removed meanwhile): the caller goes on in memory."""


def open_look_file(path: Path) -> "LookFile | None":
    """The verdict file at `path`, made if need be; None (and a warning) when it cannot be kept there."""
    for attempt in (1, 2):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return LookFile(path)
        except sqlite3.DatabaseError as exc:
            if attempt == 1 and path.exists() and "locked" not in str(exc) and _set_aside(path, exc):
                continue
            log.warning("the verdicts of the look cannot be kept in %s (%s): kept in memory this session", path, exc)
        except OSError as exc:
            log.warning("the verdicts of the look cannot be kept in %s (%s): kept in memory this session", path, exc)
            return None
    return None


def _set_aside(path: Path, exc: Exception) -> bool:
    """Move a damaged verdict file (and its journal) out of the way, to be started again; whether it moved."""
    aside = path.with_name(path.name + ".damaged")
    log.warning("the kept verdicts of the look (%s) cannot be read (%s): set aside as %s, started again", path, exc, aside.name)
    try:
        os.replace(path, aside)
        for journal in ("-wal", "-shm"):
            Path(f"{path}{journal}").unlink(missing_ok=True)
        return True
    except OSError:
        return False


class LookFile:
    """One open verdict file; the caller serialises calls (the connection is used from several threads)."""

    def __init__(self, path: Path):
        self.path = path
        self._db = sqlite3.connect(path, timeout=5.0, check_same_thread=False)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # a cache: a verdict lost in a power cut is looked at again
            # two tables of our own, not sqlite-utils: the hot path is one prepared statement a search
            self._db.execute("CREATE TABLE IF NOT EXISTS verdicts (a INTEGER, b INTEGER, same INTEGER NOT NULL, "
                             "PRIMARY KEY (a, b)) WITHOUT ROWID")
            self._db.execute("CREATE TABLE IF NOT EXISTS ahead (catalogue TEXT, file INTEGER, "
                             "PRIMARY KEY (catalogue, file)) WITHOUT ROWID")
            self._db.execute("SELECT count(*) FROM (SELECT 1 FROM verdicts LIMIT 1)").fetchone()
        except sqlite3.Error:
            self._db.close()
            raise

    def verdicts(self, pairs: list[tuple[int, int]]) -> dict[tuple[int, int], bool]:
        """The kept verdicts of `pairs` (each the smaller key first)."""
        found: dict[tuple[int, int], bool] = {}
        with self._lost():
            for start in range(0, len(pairs), CHUNK):
                part = pairs[start : start + CHUNK]
                sql = "SELECT a, b, same FROM verdicts WHERE (a, b) IN (VALUES " + ",".join(["(?, ?)"] * len(part)) + ")"
                found.update(((a, b), bool(same)) for a, b, same in self._db.execute(sql, [x for k in part for x in k]))
        return found

    def keep(self, rows: dict[tuple[int, int], bool]) -> None:
        with self._lost(), self._db:
            self._db.executemany("INSERT OR REPLACE INTO verdicts (a, b, same) VALUES (?, ?, ?)",
                                 [(a, b, int(same)) for (a, b), same in rows.items()])

    def ahead(self, catalogue: str, keys: list[int]) -> set[int]:
        found: set[int] = set()
        with self._lost():
            for start in range(0, len(keys), CHUNK):
                part = keys[start : start + CHUNK]
                sql = f"SELECT file FROM ahead WHERE catalogue = ? AND file IN ({','.join('?' * len(part))})"
                found.update(f for (f,) in self._db.execute(sql, [catalogue, *part]))
        return found

    def mark_ahead(self, catalogue: str, keys: list[int]) -> None:
        with self._lost(), self._db:
            self._db.executemany("INSERT OR IGNORE INTO ahead (catalogue, file) VALUES (?, ?)", [(catalogue, k) for k in keys])

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _lost(self) -> Iterator[None]:
        """A failing statement becomes LookFileLost, and the file is closed: the caller goes on in memory."""
        try:
            yield
        except sqlite3.Error as exc:
            log.warning("the verdicts of the look are kept in memory from now on (%s)", exc)
            try:
                self._db.close()
            except sqlite3.Error:
                pass
            if any(words in str(exc) for words in DAMAGED):  # damaged inside (the check at opening reads its start)
                _set_aside(self.path, exc)
            raise LookFileLost(str(exc)) from exc
