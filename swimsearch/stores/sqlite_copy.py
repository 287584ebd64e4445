"""Whole images in and out of a catalogue file, ids and stored embeddings unchanged (`swimsearch copy`)."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from .base import StoredImage
from .sqlite_file import SqliteFile, describe_error, from_blobs, phash_to_sql, to_blob

log = logging.getLogger(__name__)

EXPORT = (
    "SELECT i.id, i.path, i.size, i.mtime, i.width, i.height, i.phash, i.label, i.error, i.added, e.vector "
    "FROM images i LEFT JOIN embeddings e ON e.image_id = i.id WHERE i.id > ? ORDER BY i.id LIMIT ?"
)


def export_rows(file: SqliteFile, dtype: str, chunk: int) -> Iterator[list[StoredImage]]:
    """Every image in id order, `chunk` at a time, embeddings in the dtype they are stored in."""
    itemsize = np.dtype(dtype).itemsize
    after = 0
    while rows := file.conn.execute(EXPORT, (after, chunk)).fetchall():
        after = rows[-1][0]
        yield [
            StoredImage(
                image_id=r[0], relpath=r[1], size=r[2], mtime=r[3], width=r[4], height=r[5],
                phash=None if r[6] is None else r[6] % (1 << 64), label=r[7], error=r[8], added=r[9],
                embedding=None if r[10] is None else from_blobs([r[10]], dtype, len(r[10]) // itemsize)[0],
            )
            for r in rows
        ]


def import_rows(file: SqliteFile, dtype: str, images: Sequence[StoredImage]) -> None:
    """Insert images with their ids (inside the caller's transaction)."""
    file.conn.executemany(
        "INSERT INTO images(id, path, size, mtime, width, height, phash, label, error, added) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(i.image_id, i.relpath, i.size, i.mtime, i.width, i.height,
          None if i.phash is None else phash_to_sql(i.phash), i.label, i.error, i.added) for i in images],
    )
    file.conn.executemany(
        "INSERT INTO embeddings(image_id, vector) VALUES (?, ?)",
        [(i.image_id, to_blob(i.embedding, dtype)) for i in images if i.embedding is not None],
    )


class CopyRows:
    """The copy half of `SqliteStore`: its file, its embeddings' dtype and path are the store's."""

    file: SqliteFile
    path: Path
    _dtype: str

    def export_images(self, chunk: int = 10_000) -> Iterator[list[StoredImage]]:
        try:
            yield from export_rows(self.file, self._dtype, chunk)
        except sqlite3.Error as exc:
            raise describe_error(exc, self.path) from exc

    def import_images(self, images: Sequence[StoredImage]) -> None:
        try:
            with self.file.transaction():
                import_rows(self.file, self._dtype, images)
        except sqlite3.Error as exc:
            raise describe_error(exc, self.path) from exc
