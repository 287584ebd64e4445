"""Where a catalogue file keeps its neighbour lists (neighbours.py): one row per image, with a checksum.

Table ``neighbours`` (format 2): ``image_id``, ``ids`` (k little-endian
int64 image ids, best first, -1 for none), ``sims`` (their k float32
cosines, NaN for none) and ``crc`` (CRC-32 of the id as text, then the two
blobs), checked whenever a row is read. A row is rewritten when an update
changes its list (a new image beats its k-th neighbour, or a listed image is
removed), so rows, not blocks: an update touches about five of them per
added image. A file of format 1 gains the empty table by migration and its
lists at its next update; until then it is searched as before.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, TypeVar

import numpy as np
import sqlite_utils

from ..errors import CatalogueError
from ..neighbours import NeighbourLists

if TYPE_CHECKING:  # sqlite_file makes this table, so it cannot be imported from here at run time
    from .sqlite_file import SqliteFile
    from .sqlite_index import IndexTables

F = TypeVar("F", bound=Callable[..., Any])


def plain_errors(method: F) -> F:
    """Any SQLite failure as the store's one plain sentence (sqlite_file.describe_error)."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            from .sqlite_file import describe_error

            raise describe_error(exc, self.path) from exc

    return wrapper  # type: ignore[return-value]

log = logging.getLogger(__name__)

TABLE = "neighbours"


def create_table(db: sqlite_utils.Database) -> None:
    """The neighbour lists' table (a new catalogue, or the migration to format 2)."""
    db.table(TABLE).create(
        {"image_id": int, "ids": bytes, "sims": bytes, "crc": int}, pk="image_id", not_null={"ids", "sims", "crc"}
    )


def row_crc(image_id: int, ids: bytes, sims: bytes) -> int:
    """CRC-32 of a row: its image id as text, then its two blobs."""
    return zlib.crc32(sims, zlib.crc32(ids, zlib.crc32(str(int(image_id)).encode())))


def chunks(ids: list[int], size: int = 500) -> Iterator[tuple[list[int], str]]:
    for start in range(0, len(ids), size):
        part = ids[start : start + size]
        yield part, ",".join("?" * len(part))


class NeighbourTable:
    """The neighbour lists of one open catalogue file."""

    def __init__(self, file: "SqliteFile"):
        self.file = file

    def exists(self) -> bool:
        """False in a format-1 file opened read-only (never migrated)."""
        row = self.file.conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (TABLE,)).fetchone()
        return row is not None

    def read(self, image_ids: Iterable[int] | None = None) -> NeighbourLists | None:
        """The lists of the given ids that have one, or every list (None: the file keeps no lists at all)."""
        if not self.exists():
            return None
        conn = self.file.conn
        rows: list[tuple[int, bytes, bytes, int]] = []
        if image_ids is None:
            rows = conn.execute(f"SELECT image_id, ids, sims, crc FROM {TABLE} ORDER BY image_id").fetchall()  # noqa: S608
        else:
            for part, marks in chunks(sorted({int(i) for i in image_ids})):
                rows += conn.execute(
                    f"SELECT image_id, ids, sims, crc FROM {TABLE} WHERE image_id IN ({marks}) ORDER BY image_id", part  # noqa: S608
                ).fetchall()
        return self._decode(rows)

    def _decode(self, rows: list[tuple[int, bytes, bytes, int]]) -> NeighbourLists:
        if not rows:
            return NeighbourLists.empty(0)
        width = len(rows[0][1])
        for image_id, ids, sims, crc in rows:
            if len(ids) != width or len(sims) * 2 != width or width % 8 or crc != row_crc(image_id, ids, sims):
                raise CatalogueError(
                    f"The catalogue {self.file.path} is damaged (the neighbour list of image {image_id} fails its "
                    "checksum). Update it to make the lists again, or rebuild it into a new file."
                )
        k = width // 8
        return NeighbourLists(
            np.array([r[0] for r in rows], dtype=np.int64),
            np.frombuffer(b"".join(r[1] for r in rows), "<i8").reshape(len(rows), k).astype(np.int64),
            np.frombuffer(b"".join(r[2] for r in rows), "<f4").reshape(len(rows), k).astype(np.float32),
        )

    def write(self, lists: NeighbourLists, *, replace: bool) -> None:
        """Store lists (inserting or replacing each row); `replace`: every other row is dropped first."""
        conn = self.file.conn
        if replace:
            conn.execute(f"DELETE FROM {TABLE}")  # noqa: S608 - fixed table name
        ids = np.ascontiguousarray(lists.neighbours, dtype="<i8")
        sims = np.ascontiguousarray(lists.similarities, dtype="<f4")

        def rows() -> Iterable[tuple[int, bytes, bytes, int]]:
            for image_id, nb, ns in zip(lists.ids.tolist(), ids, sims):
                a, b = nb.tobytes(), ns.tobytes()
                yield image_id, a, b, row_crc(image_id, a, b)

        conn.executemany(
            f"INSERT INTO {TABLE}(image_id, ids, sims, crc) VALUES (?, ?, ?, ?) "  # noqa: S608
            "ON CONFLICT(image_id) DO UPDATE SET ids = excluded.ids, sims = excluded.sims, crc = excluded.crc",
            rows(),
        )

    def delete(self, image_ids: Iterable[int]) -> None:
        if not self.exists():
            return
        for part, marks in chunks([int(i) for i in image_ids]):
            self.file.conn.execute(f"DELETE FROM {TABLE} WHERE image_id IN ({marks})", part)  # noqa: S608

    def clear(self) -> None:
        if self.exists():
            self.file.conn.execute(f"DELETE FROM {TABLE}")  # noqa: S608


class NeighbourMethods:
    """The store methods of the neighbour lists and of recoding, for `SqliteStore` (kept here so
    sqlite.py stays one screenful of reads and writes)."""

    file: "SqliteFile"
    path: Path
    _index: "IndexTables"

    @property
    def _neighbours(self) -> NeighbourTable:
        return NeighbourTable(self.file)

    @plain_errors
    def neighbour_lists(self, image_ids: Iterable[int] | None = None) -> NeighbourLists | None:
        return self._neighbours.read(image_ids)

    @plain_errors
    def write_neighbours(self, lists: NeighbourLists, *, replace: bool) -> None:
        with self.file.transaction():
            self._neighbours.write(lists, replace=replace)

    @plain_errors
    def drop_codes(self, image_ids: np.ndarray) -> None:
        fitted = self._index.fitted()
        if fitted is None or not len(image_ids):
            return
        with self.file.transaction():
            ids, codes = self._index.drop_codes(np.asarray(image_ids, dtype=np.int64), fitted)
            if len(ids):
                self._index.edit_buckets(fitted.keys(codes), ids, add=False)
