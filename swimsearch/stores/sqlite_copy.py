"""Whole images in and out of a catalogue file, ids and stored embeddings unchanged (`swimsearch copy`).

Every column a build writes travels: the record, the content fingerprint, a
passing failure to read again, a tombstone's time and a pending recode. Rows
read out are checked as every other read is (checksums, sound values); rows
written in get their checksums made here.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

import numpy as np

from .base import StoredImage
from .integrity import damaged
from .sqlite_file import SqliteFile, chunks, describe_error, phash_to_sql, to_blob
from .sqlite_schema import IMAGE_CRC_COLUMNS, image_crc, vector_crc

if TYPE_CHECKING:
    from .sqlite_images import ImageTables

log = logging.getLogger(__name__)

_COLUMNS = ", ".join(f"i.{name}" for name in IMAGE_CRC_COLUMNS)
EXPORT = (
    f"SELECT {_COLUMNS}, i.crc, i.added, i.recode, e.vector "  # noqa: S608 - fixed column names
    "FROM images i LEFT JOIN embeddings e ON e.image_id = i.id WHERE i.id > ? ORDER BY i.id LIMIT ?"
)
_WIDTH = len(IMAGE_CRC_COLUMNS) + 1  # the checked columns and their checksum


def export_rows(images: "ImageTables", file: SqliteFile, dtype: str, chunk: int) -> Iterator[list[StoredImage]]:
    """Every image in id order, `chunk` at a time, embeddings in the dtype they are stored in."""
    itemsize = np.dtype(dtype).itemsize
    dim = int(file.meta("embedding_dim") or 0)
    location = str(file.path)
    after = 0
    while rows := file.conn.execute(EXPORT, (after, chunk)).fetchall():
        after = rows[-1][0]
        out = []
        for row in rows:
            (image_id, rel, size, mtime, width, height, phash, label, error, fingerprint, retry, gone,
             vcrc) = images.checked(row[:_WIDTH])
            added, recode, blob = row[_WIDTH:]
            if blob is not None and (len(blob) != dim * itemsize or vector_crc(blob) != vcrc):
                raise damaged(location, "an embedding fails its checksum")
            out.append(StoredImage(
                image_id=image_id, relpath=rel, size=size, mtime=mtime, width=width, height=height,
                phash=None if phash is None else phash % (1 << 64), label=label, error=error, added=added,
                embedding=None if blob is None else np.frombuffer(blob, dtype=np.dtype(dtype)).astype(np.dtype(dtype).newbyteorder("=")),
                fingerprint=fingerprint, retry=bool(retry), gone=gone, recode=bool(recode),
            ))
        yield out


def import_rows(file: SqliteFile, dtype: str, images: Sequence[StoredImage]) -> None:
    """Insert images with their ids and checksums (inside the caller's transaction)."""
    blobs = {i.image_id: to_blob(i.embedding, dtype) for i in images if i.embedding is not None}
    rows = []
    for i in images:
        blob = blobs.get(i.image_id)
        values = (i.image_id, i.relpath, i.size, i.mtime, i.width, i.height,
                  None if i.phash is None else phash_to_sql(i.phash), i.label, i.error, i.fingerprint, int(i.retry),
                  i.gone, None if blob is None else vector_crc(blob))
        rows.append((*values, i.added, int(i.recode), image_crc(values)))
    columns = ", ".join(IMAGE_CRC_COLUMNS)
    marks = ", ".join("?" * (len(IMAGE_CRC_COLUMNS) + 3))
    file.conn.executemany(f"INSERT INTO images({columns}, added, recode, crc) VALUES ({marks})", rows)  # noqa: S608
    file.conn.executemany("INSERT INTO embeddings(image_id, vector) VALUES (?, ?)", list(blobs.items()))


class CopyRows:
    """The copy half of `SqliteStore`: its file, its embeddings' dtype and path are the store's."""

    file: SqliteFile
    path: Path
    _dtype: str
    _images: "ImageTables"

    def export_images(self, chunk: int = 10_000) -> Iterator[list[StoredImage]]:
        try:
            yield from export_rows(self._images, self.file, self._dtype, chunk)
        except sqlite3.Error as exc:
            raise describe_error(exc, self.path) from exc

    def import_images(self, images: Sequence[StoredImage]) -> None:
        try:
            with self.file.transaction():
                import_rows(self.file, self._dtype, images)
        except sqlite3.Error as exc:
            raise describe_error(exc, self.path) from exc

    def mark_recode(self, image_ids: Sequence[int]) -> None:
        """These images' codes are of an older embedding: `uncoded_ids` lists them until new ones are written."""
        try:
            with self.file.transaction():
                for part, marks in chunks([int(i) for i in image_ids]):
                    self.file.conn.execute(f"UPDATE images SET recode = 1 WHERE id IN ({marks})", part)  # noqa: S608
        except sqlite3.Error as exc:
            raise describe_error(exc, self.path) from exc
