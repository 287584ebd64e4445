"""Decisions in the catalogue file: a person's "same design" or "not similar" on a pair of images.

`SqliteDecisions` is a part of `SqliteStore` (a mixin over its `SqliteFile`):
the `decisions` table (schema version 2, sqlite_migrations.py) keeps each
pair by the images' relative paths with the verdict, who and when; reads
join the images, so a decision shows only while both files are in the
catalogue, and `prune_decisions` forgets those of deleted files once an
update has read the whole folder. "Who" is the OS user name.
"""

from __future__ import annotations

import getpass
import logging
import time
from pathlib import Path

from ..errors import CatalogueError
from .base import VERDICTS, Decision
from .sqlite_file import SqliteFile, plain_errors

log = logging.getLogger(__name__)


def os_user() -> str:
    """The name of the person at this computer, as the operating system knows them."""
    try:
        return getpass.getuser() or "unknown"
    except (KeyError, OSError):  # no such user in the password database (containers)
        return "unknown"


class SqliteDecisions:
    """The decisions part of `SqliteStore` (reader: `decisions`, `decide`; writer: `prune_decisions`)."""

    file: SqliteFile
    path: Path

    @plain_errors
    def decisions(self) -> list[Decision]:
        rows = self.file.conn.execute(
            "SELECT ia.id, ib.id, d.a, d.b, d.verdict, d.who, d.at FROM decisions d "
            "JOIN images ia ON ia.path = d.a JOIN images ib ON ib.path = d.b ORDER BY d.at, d.a, d.b"
        )
        return [_record(*row) for row in rows]

    @plain_errors
    def decide(self, a: int, b: int, verdict: str | None) -> Decision | None:
        if verdict is not None and verdict not in VERDICTS:
            raise ValueError(f"unknown verdict {verdict!r} (choose one of {', '.join(VERDICTS)})")
        if self.file.readonly:
            raise CatalogueError(f"The catalogue {self.path} is read-only: decisions cannot be saved in it.")
        if a == b:
            raise CatalogueError("A design is always the same design as itself: choose another one to compare it with.")
        paths = dict(self.file.conn.execute("SELECT id, path FROM images WHERE id IN (?, ?)", (a, b)).fetchall())
        if len(paths) < 2:
            raise CatalogueError("This design is no longer in the catalogue (an update removed it), so no decision was saved.")
        first, second = sorted((paths[a], paths[b]))
        with self.file.transaction():
            if verdict is None:
                self.file.conn.execute("DELETE FROM decisions WHERE a = ? AND b = ?", (first, second))
                return None
            who, at = os_user(), time.time()
            self.file.conn.execute(
                "INSERT INTO decisions (a, b, verdict, who, at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (a, b) DO UPDATE SET verdict = excluded.verdict, who = excluded.who, at = excluded.at",
                (first, second, verdict, who, at),
            )
        log.info("%s decided %s: %s / %s", who, verdict, first, second)
        return _record(a, b, paths[a], paths[b], verdict, who, at)

    @plain_errors
    def prune_decisions(self) -> int:
        with self.file.transaction():
            cursor = self.file.conn.execute(
                "DELETE FROM decisions WHERE a NOT IN (SELECT path FROM images) OR b NOT IN (SELECT path FROM images)"
            )
        return max(cursor.rowcount, 0)


def _record(a: int, b: int, a_path: str, b_path: str, verdict: str, who: str, at: float) -> Decision:
    """A decision with its pair in id order (a < b)."""
    if b < a:
        a, b, a_path, b_path = b, a, b_path, a_path
    return Decision(a=int(a), b=int(b), a_path=a_path, b_path=b_path, verdict=verdict, who=who, at=float(at))
