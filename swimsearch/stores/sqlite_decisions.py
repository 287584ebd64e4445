"""Decisions in the catalogue file: a person's "same design" or "not similar" on a pair of images.

`SqliteDecisions` is a part of `SqliteStore` (a mixin over its `SqliteFile`):
the `decisions` table (format 4, sqlite_schema.py) keeps each pair
by the images' relative paths with the verdict, who, when and a checksum.
Reads join the images that are in the catalogue now (not tombstones), so a
decision shows only while both files are there. A decision goes with its
file: when an update makes the file a tombstone or removes it (same
transaction), and `prune_decisions` forgets any left on files no longer held
once an update has read the whole folder. A file found moved takes its
decisions along. "Who" is the OS user name.
"""

from __future__ import annotations

import getpass
import logging
import time
from pathlib import Path
from typing import Iterable, Sequence

from ..errors import CatalogueError
from .verdicts import VERDICTS, Decision
from .integrity import damaged, is_int, is_number
from .sqlite_file import SqliteFile, chunks, plain_errors
from .sqlite_images import chunks_of_text
from .sqlite_schema import decision_crc

log = logging.getLogger(__name__)

#: Longest user name kept (a crafted file's longer one is damage, not a name).
MAX_WHO = 256

_LIVE = "SELECT path FROM images WHERE gone IS NULL"


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

    def _holds_decisions(self) -> bool:
        """Whether the file has the decisions table (an older format read as it is, read-only, has none)."""
        return self.file.conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'decisions'").fetchone() is not None

    @plain_errors
    def decisions(self) -> list[Decision]:
        if not self._holds_decisions():
            return []
        rows = self.file.conn.execute(
            "SELECT ia.id, ib.id, d.a, d.b, d.verdict, d.who, d.at, d.crc FROM decisions d "
            "JOIN images ia ON ia.path = d.a AND ia.gone IS NULL JOIN images ib ON ib.path = d.b AND ib.gone IS NULL "
            "ORDER BY d.at, d.a, d.b"
        ).fetchall()
        return [_record(*self._checked(row)) for row in rows]

    @plain_errors
    def decide(self, a: int, b: int, verdict: str | None) -> Decision | None:
        if verdict is not None and verdict not in VERDICTS:
            raise ValueError(f"unknown verdict {verdict!r} (choose one of {', '.join(VERDICTS)})")
        if self.file.readonly:
            raise CatalogueError(f"The catalogue {self.path} is read-only: decisions cannot be saved in it.")
        if a == b:
            raise CatalogueError("A design is always the same design as itself: choose another one to compare it with.")
        paths = dict(self.file.conn.execute("SELECT id, path FROM images WHERE id IN (?, ?) AND gone IS NULL", (a, b)).fetchall())
        if len(paths) < 2:
            raise CatalogueError("This design is no longer in the catalogue (an update removed it), so no decision was saved.")
        first, second = sorted((paths[a], paths[b]))
        with self.file.transaction():
            if verdict is None:
                self.file.conn.execute("DELETE FROM decisions WHERE a = ? AND b = ?", (first, second))
                return None
            who, at = os_user()[:MAX_WHO], time.time()
            _write(self.file, [(first, second, verdict, who, at)])
        log.info("%s decided %s: %s / %s", who, verdict, first, second)
        return _record(a, b, paths[a], paths[b], verdict, who, at)

    @plain_errors
    def prune_decisions(self) -> int:
        with self.file.transaction():
            cursor = self.file.conn.execute(f"DELETE FROM decisions WHERE a NOT IN ({_LIVE}) OR b NOT IN ({_LIVE})")  # noqa: S608
        return max(cursor.rowcount, 0)

    @plain_errors
    def import_decisions(self, decisions: Sequence[Decision]) -> None:
        with self.file.transaction():
            _write(self.file, [(min(d.a_path, d.b_path), max(d.a_path, d.b_path), d.verdict, d.who[:MAX_WHO], float(d.at))
                               for d in decisions])

    def check_decisions(self) -> int:
        """Verify every decision's checksum and values (info --check); returns how many there are."""
        if not self._holds_decisions():
            return 0
        rows = self.file.conn.execute("SELECT 0, 0, a, b, verdict, who, at, crc FROM decisions").fetchall()
        for row in rows:
            self._checked(row)
        return len(rows)

    # --- kept in step with the images (called inside the store's write transactions) -----

    def forget_decisions(self, image_ids: Sequence[int]) -> None:
        """Drop the decisions on these images (made tombstones or removed): a decision goes with its file."""
        paths = self._paths_of(image_ids)
        for part, marks in chunks_of_text(list(paths.values())):
            self.file.conn.execute(f"DELETE FROM decisions WHERE a IN ({marks}) OR b IN ({marks})", part + part)  # noqa: S608

    def move_decisions(self, moves: dict[str, str]) -> None:
        """Rewrite the decisions of files found moved (old relative path -> new): they follow the file."""
        moves = {old: new for old, new in moves.items() if old != new}
        if not moves:
            return
        conn = self.file.conn
        olds = list(moves)
        found = []
        for part, marks in chunks_of_text(olds):
            found += conn.execute(
                f"SELECT a, b, verdict, who, at, crc FROM decisions WHERE a IN ({marks}) OR b IN ({marks})", part + part  # noqa: S608
            ).fetchall()
        rows = []
        for a, b, verdict, who, at, crc in {row[:2]: row for row in found}.values():
            self._checked((0, 0, a, b, verdict, who, at, crc))
            conn.execute("DELETE FROM decisions WHERE a = ? AND b = ?", (a, b))
            first, second = sorted((moves.get(a, a), moves.get(b, b)))
            if first != second:
                rows.append((first, second, verdict, who, at))
        _write(self.file, rows)

    def _paths_of(self, image_ids: Iterable[int]) -> dict[int, str]:
        paths: dict[int, str] = {}
        for part, marks in chunks(list(image_ids)):
            paths.update(self.file.conn.execute(f"SELECT id, path FROM images WHERE id IN ({marks})", part).fetchall())  # noqa: S608
        return paths

    def _checked(self, row: Sequence) -> tuple:
        """A decisions row (ids, paths, verdict, who, at, crc) whose checksum and values are sound, less the crc."""
        a_id, b_id, a, b, verdict, who, at, crc = row
        sound = (
            is_int(a_id) and is_int(b_id) and isinstance(a, str) and isinstance(b, str) and verdict in VERDICTS
            and isinstance(who, str) and len(who) <= MAX_WHO and is_number(at)
        )
        if not sound or crc != decision_crc(a, b, verdict, who, at):
            raise damaged(str(self.path), "a decision on a pair of designs fails its checksum or holds impossible values")
        return a_id, b_id, a, b, verdict, who, at


def _write(file: SqliteFile, rows: Sequence[tuple[str, str, str, str, float]]) -> None:
    """Insert or replace decisions (a < b) with their checksums."""
    file.conn.executemany(
        "INSERT INTO decisions (a, b, verdict, who, at, crc) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (a, b) DO UPDATE SET verdict = excluded.verdict, who = excluded.who, at = excluded.at, crc = excluded.crc",
        [(*row, decision_crc(*row)) for row in rows],
    )


def _record(a: int, b: int, a_path: str, b_path: str, verdict: str, who: str, at: float) -> Decision:
    """A decision with its pair in id order (a < b)."""
    if b < a:
        a, b, a_path, b_path = b, a, b_path, a_path
    return Decision(a=int(a), b=int(b), a_path=a_path, b_path=b_path, verdict=verdict, who=who, at=float(at))
