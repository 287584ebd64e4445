"""What the array cache (array_cache.py, array_build.py, array_watch.py) reads of a catalogue file.

Every stored embedding and image record in id order, within one read
transaction, a signature of the file's contents in a few aggregate reads,
and a token that moves whenever the file changes, asked before each search.
"""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from .base import Embeddings

if TYPE_CHECKING:
    from .sqlite_file import SqliteFile
    from .sqlite_images import ImageTables


class ArrayReads:
    """SqliteStore's reads for the array cache."""

    file: "SqliteFile"
    _images: "ImageTables"
    path: Any

    @contextmanager
    def read_snapshot(self) -> Iterator[None]:
        """One read transaction: what is read inside sees one committed state of the file."""
        conn = self.file.conn
        conn.execute("BEGIN")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")

    def content_signature(self) -> list[Any]:
        """Aggregates of every image record's checksum (which covers its id and its embedding's checksum) and
        every neighbour list's (which covers its id): any committed change to them changes these
        (0.3 s at a million images when the file is in the OS cache)."""
        conn = self.file.conn
        try:
            images = conn.execute("SELECT count(*), sum(crc), sum(vector_crc), max(id) FROM images").fetchone()
            lists = conn.execute("SELECT count(*), sum(crc), max(image_id) FROM neighbours").fetchone()
        except sqlite3.Error as exc:
            raise self._described(exc) from exc
        return [list(images), list(lists)]

    def array_counts(self) -> tuple[int, int]:
        """(stored embeddings, bytes of every relative path in UTF-8): what sizes the array cache."""
        conn = self.file.conn
        try:
            n = conn.execute("SELECT count(*) FROM embeddings").fetchone()[0]
            paths = conn.execute("SELECT coalesce(sum(length(CAST(path AS BLOB))), 0) FROM images").fetchone()[0]
        except sqlite3.Error as exc:
            raise self._described(exc) from exc
        return int(n), int(paths)

    def iter_stored_embeddings(self) -> Iterator[Embeddings]:
        """Every stored embedding by id, tombstones too (as `embedding_matrix` answers for them), in chunks, checked."""
        try:
            for ids, vectors in self._images.embeddings("ORDER BY e.image_id", ()):
                yield Embeddings(np.array(ids, np.int64), vectors)
        except sqlite3.Error as exc:
            raise self._described(exc) from exc

    def iter_image_rows(self) -> Iterator[tuple]:
        """Every image record's row (sqlite_images ROW order, checked), by id."""
        try:
            yield from self._images.rows("ORDER BY id")
        except sqlite3.Error as exc:
            raise self._described(exc) from exc

    def change_token(self) -> tuple[int, int]:
        """What moves whenever this file changes: SQLite's data version (a commit by any other connection)
        and this connection's own changes; a few microseconds (array_watch.py asks before each search)."""
        conn = self.file.conn
        return int(conn.execute("PRAGMA data_version").fetchone()[0]), int(conn.total_changes)

    def _described(self, exc: sqlite3.Error) -> Exception:
        from .sqlite_file import describe_error

        return describe_error(exc, self.path)
