"""Where a catalogue file keeps its neighbour lists (neighbours.py): one row per image, with a checksum.

Table ``neighbours`` (format 3, sqlite_schema.py): ``image_id``, ``ids`` (k
little-endian int64 image ids, best first, -1 for none), ``sims`` (their k
float32 cosines, NaN for none) and ``crc`` (CRC-32 of the id as text, then
the two blobs), checked whenever a row is read, with the ids it names. A row is rewritten when an update
changes its list (a new image beats its k-th neighbour, or a listed image is
removed), so rows, not blocks: an update touches about five of them per
added image. A file of format 1 or 2 gains the empty table by migration and its
lists at its next update; until then it is searched as before.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, TypeVar

import numpy as np

from ..neighbours import NeighbourLists
from .integrity import MAX_IMAGE_ID, check_ids, damaged, is_int
from .sqlite_schema import neighbour_crc

if TYPE_CHECKING:
    from .sqlite_file import SqliteFile

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

TABLE = "neighbours"  # made by the migration to format 3 (sqlite_schema.py)
#: The most neighbours a list may hold (config.augment_k is 5).
MAX_K = 64


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
        """Rows checked (types, sizes, checksums, and every id they name is an image of this file) as lists."""
        if not rows:
            return NeighbourLists.empty(0)
        location = str(self.file.path)
        width = len(rows[0][1]) if isinstance(rows[0][1], bytes) else -1
        if not 0 < width <= 8 * MAX_K or width % 8:
            raise damaged(location, "a neighbour list has an impossible length")
        for image_id, ids, sims, crc in rows:
            if not (is_int(image_id) and isinstance(ids, bytes) and isinstance(sims, bytes) and is_int(crc)):
                raise damaged(location, "a neighbour list is not readable")
            if len(ids) != width or len(sims) * 2 != width:
                raise damaged(location, "a neighbour list has an impossible length")
            if crc != neighbour_crc(image_id, ids, sims):
                raise damaged(location, f"the neighbour list of image {image_id} fails its checksum")
        k = width // 8
        lists = NeighbourLists(
            np.array([r[0] for r in rows], dtype=np.int64),
            np.frombuffer(b"".join(r[1] for r in rows), "<i8").reshape(len(rows), k).astype(np.int64),
            np.frombuffer(b"".join(r[2] for r in rows), "<f4").reshape(len(rows), k).astype(np.float32),
        )
        named = lists.neighbours >= 0
        if (lists.neighbours < -1).any() or not np.isfinite(lists.similarities[named]).all():
            raise damaged(location, "a neighbour list holds impossible values")
        if (np.abs(lists.similarities[named]) > 1.001).any():
            raise damaged(location, "a neighbour list holds impossible values")
        # a list is short (padded with -1 at its end) only where the catalogue holds too few other images
        padded = ~named
        if (padded[:, :-1] & named[:, 1:]).any():
            raise damaged(location, "a neighbour list has a gap")
        if padded.any():
            images = self.file.conn.execute(
                "SELECT count(*) FROM embeddings e JOIN images i ON i.id = e.image_id WHERE i.gone IS NULL"
            ).fetchone()[0]
            if images > k:
                raise damaged(location, "a neighbour list is short")
        self._check_names(np.union1d(lists.ids, lists.neighbours[named]))
        return lists

    def _check_names(self, ids: np.ndarray) -> None:
        """Every id a list names, or whose list it is, is an image record of this file."""
        check_ids(str(self.file.path), "neighbour lists", ids, MAX_IMAGE_ID)
        conn = self.file.conn
        if len(ids) > 4096:  # many: read every id once
            known = np.array([r[0] for r in conn.execute("SELECT id FROM images")], dtype=np.int64)
            missing = ~np.isin(ids, known)
        else:
            found: set[int] = set()
            for part, marks in chunks(ids.tolist()):
                found.update(r[0] for r in conn.execute(f"SELECT id FROM images WHERE id IN ({marks})", part))  # noqa: S608
            missing = np.array([int(i) not in found for i in ids], dtype=bool)
        if missing.any():
            raise damaged(str(self.file.path), "neighbour lists name images that do not exist")

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
                yield image_id, a, b, neighbour_crc(image_id, a, b)

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
    _index: Any  # sqlite_index.IndexTables and sqlite_images.ImageTables, which use this module's table
    _images: Any

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
        with self.file.transaction():
            self._images.drop_codes(np.asarray(image_ids, dtype=np.int64).tolist(), self._index.fitted())
