"""Where a catalogue file keeps its images: one row per file, its embedding, and their checksums.

`ImageTables` reads and writes ``images`` and ``embeddings`` of an open
`SqliteFile`. Every row read is checked against its checksum and for sound
values (a relative path that stays inside the catalogue's folder, numbers
where numbers belong, an embedding of the catalogue's length with finite
values) before a record or an embedding leaves this module; anything else is
a `DamagedCatalogue`. Writes keep the checksums. `SqliteStore` wraps the
calls in transactions and turns SQLite errors into plain words.

Records of files found gone stay as tombstones (``gone`` set: out of every
count and of search, embedding kept); an image read again keeps its id, and
its code is kept until a new one is written (``recode``).
"""

from __future__ import annotations


import os
import time
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from ..index import FittedIndex
from .base import Embeddings, ImageRecord, KnownFile, NewImage, Restored, folder_range
from .integrity import check_finite, damaged, is_int, is_number, safe_relpath
from .sqlite_file import SqliteFile, chunks, phash_to_sql, to_blob
from .sqlite_index import IndexTables
from .sqlite_neighbours import NeighbourTable
from .sqlite_schema import IMAGE_CRC_COLUMNS, image_crc, vector_crc

#: An images row as read: the checksummed columns, then the checksum.
ROW = ", ".join(IMAGE_CRC_COLUMNS) + ", crc"
_COLUMN = {name: n for n, name in enumerate(IMAGE_CRC_COLUMNS)}


class ImageTables:
    """The images and embeddings of one open catalogue file."""

    def __init__(self, file: SqliteFile, index: IndexTables, dtype: Callable[[], str]):
        self.file = file
        self.index = index
        self._dtype = dtype  # the catalogue's embedding dtype (it changes when a model is first recorded)
        self.location = str(file.path)

    # --- rows ------------------------------------------------------------------------

    def checked(self, row: Sequence[Any]) -> tuple:
        """An images row (ROW order) whose checksum and values are sound."""
        *values, crc = row
        if crc != image_crc(tuple(values)):
            raise damaged(self.location, "an image record fails its checksum")
        image_id, rel, size, mtime, width, height, phash, label, error, fingerprint, retry, gone, vcrc = values
        sound = (
            is_int(image_id) and image_id >= 1
            and safe_relpath(rel)
            and is_int(size) and size >= 0
            and is_number(mtime)
            and all(v is None or (is_int(v) and 0 <= v < 1 << 31) for v in (width, height))
            and all(v is None or is_int(v) for v in (phash, fingerprint, vcrc))
            and all(v is None or isinstance(v, str) for v in (label, error))
            and retry in (0, 1)
            and (gone is None or is_number(gone))
        )
        if not sound:
            raise damaged(self.location, "an image record holds impossible values or a path outside its folder")
        return tuple(values)

    def rows(self, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple]:
        """Checked rows of `SELECT {ROW} FROM images ...` (sql gives the part after FROM images)."""
        for row in self.file.conn.execute(f"SELECT {ROW} FROM images {sql}", params):  # noqa: S608 - fixed text
            yield self.checked(row)

    def rows_by_id(self, image_ids: Sequence[int]) -> dict[int, tuple]:
        out = {}
        for part, marks in chunks(list(image_ids)):
            for row in self.rows(f"WHERE id IN ({marks})", part):
                out[row[0]] = row
        return out

    def record(self, row: tuple, root: str) -> ImageRecord:
        image_id, rel, size, mtime, width, height, phash, _, error, *_ = row
        return ImageRecord(
            image_id=image_id,
            relpath=rel,
            path=os.path.join(root, *rel.split("/")),
            size=size,
            width=width,
            height=height,
            phash=None if phash is None else phash % (1 << 64),
            error=error,
            mtime=mtime,
        )

    def _write_rows(self, rows: Iterable[tuple], *, recode: int | None = None) -> None:
        """Insert or replace whole rows (IMAGE_CRC_COLUMNS order) with their checksums."""
        columns = ", ".join(IMAGE_CRC_COLUMNS)
        marks = ", ".join("?" * len(IMAGE_CRC_COLUMNS))
        updates = ", ".join(f"{name} = excluded.{name}" for name in IMAGE_CRC_COLUMNS[1:])
        now = time.time()
        self.file.conn.executemany(
            f"INSERT INTO images({columns}, added, recode, crc) VALUES ({marks}, ?, ?, ?) "  # noqa: S608 - fixed names
            f"ON CONFLICT(id) DO UPDATE SET {updates}, recode = coalesce(?, recode), crc = excluded.crc",
            [(*row, now, recode or 0, image_crc(row), recode) for row in rows],
        )

    def _change(self, image_ids: Sequence[int], **values: Any) -> None:
        """Set some columns of these rows, keeping their checksums."""
        rows = self.rows_by_id(image_ids)
        changed = []
        for image_id in image_ids:
            row = list(rows[image_id])
            for name, value in values.items():
                row[_COLUMN[name]] = value
            changed.append(tuple(row))
        self._write_rows(changed)

    # --- reading -------------------------------------------------------------------

    def counts(self) -> tuple[int, int, int]:
        """(images, readable, unreadable), tombstones left out."""
        q = self.file.conn.execute
        return (
            q("SELECT count(*) FROM images WHERE gone IS NULL").fetchone()[0],
            q("SELECT count(*) FROM embeddings e JOIN images i ON i.id = e.image_id WHERE i.gone IS NULL").fetchone()[0],
            q("SELECT count(*) FROM images WHERE error IS NOT NULL AND gone IS NULL").fetchone()[0],
        )

    def known_files(self, scope: str = "") -> dict[str, KnownFile]:
        """Every record (tombstones too) under the folder `scope` ("" for all), by relative path."""
        low, high = folder_range(scope)
        return {
            row[1]: KnownFile(row[0], row[2], row[3], row[9], bool(row[10]), row[11])
            for row in self.rows("WHERE path >= ? AND path < ?", (low, high))
        }

    def embeddings(self, sql: str, params: Sequence[Any]) -> Iterator[tuple[list[int], np.ndarray]]:
        """(ids, float32 vectors) of `SELECT ... FROM embeddings e JOIN images i ... {sql}`, in chunks, each checked."""
        cursor = self.file.conn.execute(
            f"SELECT e.image_id, e.vector, i.vector_crc FROM embeddings e JOIN images i ON i.id = e.image_id {sql}", params
        )
        while rows := cursor.fetchmany(8192):
            yield [r[0] for r in rows], self.vectors(rows)

    def vectors(self, rows: Sequence[tuple[int, bytes, int | None]]) -> np.ndarray:
        dtype = self._dtype()
        itemsize = np.dtype(dtype).itemsize
        dim = int(self.file.meta("embedding_dim") or 0) or (len(rows[0][1]) // itemsize if rows else 0)
        for _, blob, crc in rows:
            if not isinstance(blob, bytes) or len(blob) != dim * itemsize:
                raise damaged(self.location, "an embedding has the wrong length")
            if crc != vector_crc(blob):
                raise damaged(self.location, "an embedding fails its checksum")
        if not rows:
            return np.empty((0, dim), np.float32)
        out = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.dtype(dtype)).reshape(len(rows), dim).astype(np.float32)
        check_finite(self.location, "embeddings", out)
        return out

    def embedding_matrix(self, asked: Sequence[int]) -> Embeddings:
        found: dict[int, np.ndarray] = {}
        for part, marks in chunks(list(asked)):
            for ids, vectors in self.embeddings(f"WHERE e.image_id IN ({marks})", part):
                found.update(zip(ids, vectors))
        ordered = [i for i in asked if i in found]
        dim = next(iter(found.values())).shape[0] if found else int(self.file.meta("embedding_dim") or 0)
        return Embeddings(np.array(ordered, np.int64), np.stack([found[i] for i in ordered]) if ordered else np.empty((0, dim), np.float32))

    def phashes(self, image_ids: np.ndarray, lookup: Callable[[np.ndarray], np.ndarray], out: np.ndarray) -> None:
        """Fill `out` (sorted positions via `lookup`) with the pHashes of the records that have one (`all_phashes`)."""
        ids, values = self.all_phashes()
        where = lookup(ids)
        hit = where >= 0
        out[where[hit]] = values[hit]

    def all_phashes(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, pHashes as stored) of every record that has one.

        One statement hands them back as two comma-joined texts, parsed in C:
        a Python row per record cost 0.95 s at a million images (with a
        separate scan for the type check), this 0.5 s wall and a third of the
        CPU. Checking every record's checksum took 10 s at 100,000 images, and
        a first search with a pHash (any search by file) reads them all; each
        value must be an integer here, and the records of the matches a
        search lists are read checked (`records`), so a damaged record is
        still refused before anything of it is shown.
        """
        count, odd, ids, values = self.file.conn.execute(
            "SELECT count(*), total(typeof(phash) != 'integer'), group_concat(id), group_concat(phash) FROM images WHERE phash IS NOT NULL"
        ).fetchone()
        if not count:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        # both aggregates read the same rows in the same order, so the two texts pair up
        pairs = [np.fromstring(text or "", dtype=np.int64, sep=",") for text in (ids, values)] if not odd else []
        if odd or any(len(column) != count for column in pairs):
            raise damaged(self.location, "an image record holds impossible values or a path outside its folder")
        return pairs[0], pairs[1]

    def phashes_few(self, image_ids: Sequence[int]) -> dict[int, int]:
        """pHashes of a few records by id (a search's candidates), as `phashes` checks them."""
        found: dict[int, int] = {}
        for part, marks in chunks(list(image_ids)):
            rows = self.file.conn.execute(f"SELECT id, phash FROM images WHERE phash IS NOT NULL AND id IN ({marks})", part).fetchall()  # noqa: S608
            if any(type(value) is not int for _, value in rows):
                raise damaged(self.location, "an image record holds impossible values or a path outside its folder")
            found.update(rows)
        return found

    def check_all(self) -> int:
        """Verify every record and every embedding (info --check); returns the number of records."""
        count = sum(1 for _ in self.rows(""))
        for _ in self.embeddings("", ()):
            pass
        orphans = self.file.conn.execute(
            "SELECT count(*) FROM embeddings WHERE image_id NOT IN (SELECT id FROM images)"
        ).fetchone()[0]
        if orphans:
            raise damaged(self.location, f"{orphans} embeddings belong to no image")
        return count

    # --- writing -------------------------------------------------------------------

    def add_batch(self, images: Sequence[NewImage], fitted: FittedIndex | None) -> list[int]:
        conn = self.file.conn
        dtype = self._dtype()
        paths = [image.relpath for image in images]
        existing: dict[str, int] = {}
        for names, marks in chunks_of_text(paths):
            existing.update(conn.execute(f"SELECT path, id FROM images WHERE path IN ({marks})", names).fetchall())  # noqa: S608
        next_id = (conn.execute("SELECT max(id) FROM images").fetchone()[0] or 0) + 1
        ids, rows, replaced, vectors, unreadable = [], [], [], [], []
        for image in images:
            image_id = existing.get(image.relpath)
            if image_id is None:
                image_id, next_id = next_id, next_id + 1
            else:
                replaced.append(image_id)
            blob = None if image.embedding is None else to_blob(image.embedding, dtype)
            phash = None if image.phash is None else phash_to_sql(image.phash)
            rows.append((image_id, image.relpath, image.size, image.mtime, image.width, image.height, phash, image.label,
                         image.error, image.fingerprint, int(image.retry), None, None if blob is None else vector_crc(blob)))
            if blob is None:
                unreadable.append(image_id)
            else:
                vectors.append((image_id, blob))
            ids.append(image_id)
        gone_from_search = [i for i in unreadable if i in set(replaced)]
        if gone_from_search:
            self.drop_codes(gone_from_search, fitted)
        self._write_rows([r for r in rows if r[0] not in set(replaced)], recode=0)
        self._write_rows([r for r in rows if r[0] in set(replaced)], recode=1)  # old code kept until the new one
        for part, marks in chunks(unreadable):
            conn.execute(f"DELETE FROM embeddings WHERE image_id IN ({marks})", part)  # noqa: S608
        conn.executemany("INSERT OR REPLACE INTO embeddings(image_id, vector) VALUES (?, ?)", vectors)
        return ids

    def restore(self, entries: Sequence[Restored]) -> None:
        rows = self.rows_by_id([e.image_id for e in entries])
        changed = []
        for e in entries:
            row = list(rows[e.image_id])
            row[1], row[2], row[3] = e.file.relpath, e.file.size, e.file.mtime
            row[_COLUMN["fingerprint"]], row[_COLUMN["gone"]] = e.fingerprint, None
            changed.append(tuple(row))
        self._write_rows(changed)

    def tombstone(self, image_ids: Sequence[int], at: float, fitted: FittedIndex | None) -> None:
        self.drop_codes(image_ids, fitted)
        NeighbourTable(self.file).delete(image_ids)  # the lists naming it are made again when the index is updated
        self._change(image_ids, gone=float(at))
        for part, marks in chunks(image_ids):
            self.file.conn.execute(f"UPDATE images SET recode = 0 WHERE id IN ({marks})", part)  # noqa: S608

    def flag_retry(self, image_ids: Sequence[int]) -> None:
        self._change(image_ids, retry=1)

    def drop_codes(self, image_ids: Sequence[int], fitted: FittedIndex | None) -> None:
        """Take images out of search: their codes and bucket entries."""
        if fitted is None or not len(image_ids):
            return
        ids, codes = self.index.drop_codes(np.asarray(image_ids, dtype=np.int64), fitted)
        if len(ids):
            self.index.edit_buckets(fitted.keys(codes), ids, add=False)

    def remove(self, image_ids: Sequence[int], fitted: FittedIndex | None) -> None:
        self.drop_codes(image_ids, fitted)
        NeighbourTable(self.file).delete(image_ids)
        for part, marks in chunks(image_ids):
            for table, column in (("embeddings", "image_id"), ("images", "id")):
                self.file.conn.execute(f"DELETE FROM {table} WHERE {column} IN ({marks})", part)  # noqa: S608

    def embedded_ids(self) -> np.ndarray:
        """Every image with an embedding that is not being removed, sorted."""
        return np.array(
            [r[0] for r in self.file.conn.execute(
                "SELECT e.image_id FROM embeddings e JOIN images i ON i.id = e.image_id WHERE i.gone IS NULL ORDER BY e.image_id"
            )],
            np.int64,
        )

    def uncoded_ids(self) -> np.ndarray:
        conn = self.file.conn
        embedded = self.embedded_ids()
        coded = [ids for _, ids in self.index.coded_ids()]
        uncoded = np.setdiff1d(embedded, np.concatenate(coded) if coded else [], assume_unique=True)
        stale = [r[0] for r in conn.execute("SELECT id FROM images WHERE recode = 1 AND gone IS NULL")]
        return np.union1d(uncoded, np.intersect1d(embedded, np.array(stale, np.int64))).astype(np.int64)

    def recoded_among(self, image_ids: np.ndarray) -> list[int]:
        """Those of `image_ids` whose code is of an older embedding."""
        out: list[int] = []
        for part, marks in chunks(np.asarray(image_ids).tolist()):
            out += [r[0] for r in self.file.conn.execute(f"SELECT id FROM images WHERE recode = 1 AND id IN ({marks})", part)]  # noqa: S608
        return out

    def codes_written(self, image_ids: np.ndarray) -> None:
        """These images' codes are of their current embeddings now."""
        for part, marks in chunks(image_ids.tolist()):
            self.file.conn.execute(f"UPDATE images SET recode = 0 WHERE recode = 1 AND id IN ({marks})", part)  # noqa: S608


def chunks_of_text(values: Sequence[str], size: int = 500) -> Iterator[tuple[list[str], str]]:
    """Parts of `values` with their placeholders (`chunks` is for ids)."""
    for start in range(0, len(values), size):
        part = list(values[start : start + size])
        yield part, ",".join("?" * len(part))
