"""Where the fitted index is kept in a catalogue file: the fit's arrays, the code blocks and the LSH bucket rows.

`IndexTables` reads and writes the index part of an open `SqliteFile`:

* the fitted hash layer, spheres, re-ranking basis and LSH bit samples
  (``arrays`` and the ``fitted`` metadata), by the names `FittedIndex` gives;
* ``code_blocks``: packed codes and re-ranking vectors, CODE_BLOCK images a
  row, so a million load in a fraction of a second;
* ``buckets``: one row per non-empty LSH bucket (table, key, image ids),
  edited in place as images come and go;
* the HNSW graph over the re-ranking vectors (graph.py), where the catalogue
  is large enough to keep one: its node ids and its serialised parts, as
  arrays named ``graph.ids`` and ``graph.part.NNNNN`` (rows of ``arrays``,
  with a checksum each like every array: no table of its own, so no
  migration of the schema);

and loads all of it into an `IndexSnapshot` for searching. `SqliteStore`
wraps its calls in transactions and turns SQLite errors into plain words.
"""

from __future__ import annotations

import time
from typing import Iterator

import numpy as np

from ..graph import VectorGraph
from ..graph_check import checked_parts
from ..index import FittedIndex, IndexSnapshot, row_lookup
from ..lsh import BucketTables, encode_bucket_rows
from .base import FitState
from .integrity import check_finite, check_fitted, check_ids, damaged, is_int
from .sqlite_file import SqliteFile, to_blob
from .sqlite_neighbours import NeighbourTable
from .sqlite_schema import block_crc, bucket_crc

VECTOR_DTYPE = "<f2"  # re-ranking vectors: half the memory; arithmetic is done in float32
CODE_BLOCK = 4096  # images per stored block of codes and re-ranking vectors
GRAPH_IDS = "graph.ids"  # array names of the stored graph (see graph.py)
GRAPH_PART = "graph.part."


class IndexTables:
    """The index tables of one open catalogue file."""

    def __init__(self, file: SqliteFile):
        self.file = file

    def fit_state(self) -> FitState | None:
        state = self.file.meta("fitted")
        return FitState.from_dict(state) if state else None

    def fitted(self) -> FittedIndex | None:
        """The fitted hash layer, spheres, re-ranking basis and LSH layout, if any."""
        state = self.file.meta("fitted")
        if not state:
            return None
        try:
            arrays = {name: self.file.get_array(name) for name in FittedIndex.ARRAY_NAMES}
        except KeyError as exc:
            raise damaged(str(self.file.path), f"the fitted array {exc} is missing") from exc
        for name in FittedIndex.OPTIONAL_ARRAYS:
            try:
                arrays[name] = self.file.get_array(name)
            except KeyError:
                pass
        fitted = FittedIndex.from_arrays(arrays, state)
        check_fitted(str(self.file.path), fitted, self.file.meta("embedding_dim"))
        return fitted

    def load_snapshot(self, *, every_bucket: bool = False) -> IndexSnapshot | None:
        """Load codes, re-ranking vectors, buckets and the graph into compact arrays (None before a first fit).

        Where the graph covers every image the bucket rows are not read (the
        app never probes them then), unless `every_bucket` (a full check).
        """
        conn = self.file.conn
        conn.execute("BEGIN")  # one consistent read of codes and buckets while a build writes
        try:
            fitted = self.fitted()
            if fitted is None:
                return None
            words, dim = fitted.spheres.words, fitted.rerank_basis.shape[1]
            location = str(self.file.path)
            # Filled block by block into arrays allocated once: concatenating a
            # list of blocks would hold every array twice (at 1M, 280 MB more at
            # the peak). Sized by the bytes the blocks hold, never by a stated count.
            total = int(conn.execute("SELECT coalesce(sum(length(ids)), 0) FROM code_blocks").fetchone()[0]) // 8
            all_ids = np.empty(total, np.int64)
            all_codes = np.empty((total, words), np.uint64)
            all_vectors = np.empty((total, dim), np.float16)
            at = 0
            for row in conn.execute("SELECT block_no, count, ids, codes, vectors, crc FROM code_blocks ORDER BY block_no"):
                block_ids, block_codes, block_vectors = self._block_views(row, words, dim)  # copied once, below
                n = len(block_ids)
                if at + n > total:
                    raise damaged(location, "its code blocks hold more images than they state")
                all_ids[at : at + n] = block_ids
                all_codes[at : at + n] = block_codes
                all_vectors[at : at + n] = block_vectors
                at += n
            all_ids, all_codes, all_vectors = all_ids[:at], all_codes[:at], all_vectors[:at]
            if len(all_ids) > 1 and np.any(all_ids[1:] < all_ids[:-1]):  # blocks appended by updates
                order = np.argsort(all_ids, kind="stable")
                all_ids, all_codes, all_vectors = all_ids[order], all_codes[order], all_vectors[order]
            check_ids(location, "the index's codes", all_ids, conn.execute("SELECT coalesce(max(id), 0) FROM images").fetchone()[0])
            if len(all_ids) > 1 and np.any(all_ids[1:] == all_ids[:-1]):
                raise damaged(location, "an image has two codes")
            check_finite(location, "the index's re-ranking vectors", all_vectors)
            graph = self.graph(dim)
            tables = None  # where the graph covers every image, the app never probes buckets (IndexSnapshot.lsh_tables)
            if every_bucket or graph is None or not _covers(graph, all_ids):
                key_bits = fitted.positions.shape[1]
                lookup = row_lookup(all_ids)

                def rows_of(bucket_ids: np.ndarray) -> np.ndarray:  # a table's members, all at once
                    rows = lookup(bucket_ids)
                    if np.any(rows < 0):  # codes and buckets are written together: a member without a code is damage
                        raise damaged(location, "a bucket of the index names images that have no code")
                    return rows

                tables = BucketTables.from_rows(
                    fitted.positions, fitted.spheres.bits, lambda t: self._bucket_rows(t, key_bits), rows_of
                )
        finally:
            conn.execute("COMMIT")
        return IndexSnapshot(fitted=fitted, ids=all_ids, codes=all_codes, vectors=all_vectors, tables=tables, graph=graph)

    def graph(self, dim: int) -> VectorGraph | None:
        """The stored graph over `dim`-d vectors, checked as FAISS reads it one part at a time (None when there is none).

        Every part's checksum, and every size and neighbour id of the stream,
        is checked (graph_check.py) before FAISS reads those bytes, and the
        graph is kept only once the whole stream is checked.
        """
        try:
            ids = self.file.get_array(GRAPH_IDS)
        except KeyError:
            return None
        location = str(self.file.path)
        names = [row[0] for row in self.file.conn.execute(
            "SELECT name FROM arrays WHERE name LIKE ? ORDER BY name", (GRAPH_PART + "%",)
        )]
        if ids.ndim != 1 or ids.dtype.kind not in "iu" or (len(ids) and int(ids.min()) < 0):
            raise damaged(location, "its search graph names images by ids that are not image ids")
        if names != [f"{GRAPH_PART}{number:05d}" for number in range(len(names))]:
            raise damaged(location, "parts of its search graph are missing")
        ids = ids.astype(np.int64)
        # Each part is read once (its checksum, dtype and shape checked), and
        # FAISS reads those very bytes as the check vouches for them, in the
        # same pass: reading the rows twice cost as much again, and holding
        # every part until the check ends costs 280 MB more at 1M images.
        parts = (self.file.get_array_bytes(name)[2] for name in names)
        try:
            return VectorGraph.from_parts(checked_parts(parts, len(ids), dim), ids)
        except ValueError as exc:  # GraphDamage, or bytes FAISS left unread
            raise damaged(location, f"its search graph {exc}") from exc

    def write_graph(self, graph: VectorGraph | None) -> None:
        """Replace the stored graph (None: keep none)."""
        self.clear_graph()
        if graph is None:
            return
        self.file.put_array(GRAPH_IDS, graph.ids)
        for number, part in enumerate(graph.parts()):
            self.file.put_array(f"{GRAPH_PART}{number:05d}", np.frombuffer(part, np.uint8))

    def clear_graph(self) -> None:
        self.file.conn.execute("DELETE FROM arrays WHERE name = ? OR name LIKE ?", (GRAPH_IDS, GRAPH_PART + "%"))

    def _block(self, row: tuple, words: int, dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A code block (block_no, count, ids, codes, vectors, crc) checked against its checksum and sizes."""
        ids, codes, vectors = self._block_views(row, words, dim)
        return ids.astype(np.int64), codes.astype(np.uint64), vectors.astype(np.float16)

    def _block_views(self, row: tuple, words: int, dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`_block`'s arrays as read-only views of the row's bytes (no copy: 1M images' blocks are 280 MB)."""
        block_no, count, ids, codes, vectors, crc = row
        location = str(self.file.path)
        if not (is_int(count) and 0 <= count and all(isinstance(b, bytes) for b in (ids, codes, vectors))):
            raise damaged(location, "a block of codes is not readable")
        if crc != block_crc(count, ids, codes, vectors):
            raise damaged(location, f"block {block_no} of the index's codes fails its checksum")
        if len(ids) != 8 * count or len(codes) != 8 * words * count or len(vectors) != 2 * dim * count:
            raise damaged(location, f"block {block_no} of the index's codes does not match its size")
        return (
            np.frombuffer(ids, "<i8"),
            np.frombuffer(codes, "<u8").reshape(-1, words),
            np.frombuffer(vectors, VECTOR_DTYPE).reshape(-1, dim),
        )

    def _bucket_rows(self, table_no: int, key_bits: int) -> list[tuple[int, bytes]]:
        """One LSH table's (key, ids) rows, each checked against its checksum and the key's width."""
        rows = []
        for key, ids, crc in self.file.conn.execute(
            "SELECT bucket_key, ids, crc FROM buckets WHERE table_no = ? ORDER BY bucket_key", (table_no,)
        ):
            self._check_bucket(table_no, key, ids, crc, key_bits)
            rows.append((key, ids))
        return rows

    def _check_bucket(self, table_no: int, key: object, ids: object, crc: object, key_bits: int) -> None:
        location = str(self.file.path)
        if not (is_int(key) and isinstance(ids, bytes) and 0 <= key < (1 << key_bits) and len(ids) % 8 == 0):
            raise damaged(location, "a bucket of the index is not readable")
        if crc != bucket_crc(table_no, key, ids):
            raise damaged(location, f"bucket {key} of table {table_no} fails its checksum")

    def searchable(self) -> int:
        return int(self.file.conn.execute("SELECT coalesce(sum(count), 0) FROM code_blocks").fetchone()[0])

    def coded_ids(self) -> list[tuple[int, np.ndarray]]:
        """(block number, image ids) of every code block."""
        out = []
        for block_no, blob in self.file.conn.execute("SELECT block_no, ids FROM code_blocks ORDER BY block_no"):
            if not isinstance(blob, bytes) or len(blob) % 8:
                raise damaged(str(self.file.path), f"block {block_no} of the index's codes is not readable")
            out.append((block_no, np.frombuffer(blob, "<i8").astype(np.int64)))
        return out

    def write_blocks(self, ids: np.ndarray, codes: np.ndarray, vectors: np.ndarray) -> None:
        """Append code blocks of at most CODE_BLOCK images (see `compact_blocks`)."""
        conn = self.file.conn
        number = (conn.execute("SELECT max(block_no) FROM code_blocks").fetchone()[0] or 0) + 1
        for start in range(0, len(ids), CODE_BLOCK):
            part = slice(start, start + CODE_BLOCK)
            blobs = (to_blob(ids[part], "<i8"), to_blob(codes[part], "<u8"), to_blob(vectors[part], VECTOR_DTYPE))
            count = len(ids[part])
            conn.execute(
                "INSERT INTO code_blocks(block_no, count, ids, codes, vectors, crc) VALUES (?, ?, ?, ?, ?, ?)",
                (number, count, *blobs, block_crc(count, *blobs)),
            )
            number += 1

    def read_block(self, block_no: int, words: int, dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        row = self.file.conn.execute(
            "SELECT block_no, count, ids, codes, vectors, crc FROM code_blocks WHERE block_no = ?", (block_no,)
        ).fetchone()
        return self._block(row, words, dim)  # checked: a block rewritten must not launder damage

    def drop_codes(self, image_ids: np.ndarray, fitted: FittedIndex) -> tuple[np.ndarray, np.ndarray]:
        """Remove images from their code blocks; returns the (ids, codes) removed."""
        conn = self.file.conn
        words, dim = fitted.spheres.words, fitted.rerank_basis.shape[1]
        removed_ids, removed_codes = [np.empty(0, np.int64)], [np.empty((0, words), np.uint64)]
        for block_no, block_ids in self.coded_ids():
            gone = np.isin(block_ids, image_ids)
            if not gone.any():
                continue
            ids, codes, vectors = self.read_block(block_no, words, dim)
            removed_ids.append(ids[gone])
            removed_codes.append(codes[gone])
            if gone.all():
                conn.execute("DELETE FROM code_blocks WHERE block_no = ?", (block_no,))
            else:
                keep = ~gone
                count = int(keep.sum())
                blobs = (to_blob(ids[keep], "<i8"), to_blob(codes[keep], "<u8"), to_blob(vectors[keep], VECTOR_DTYPE))
                conn.execute(
                    "UPDATE code_blocks SET count = ?, ids = ?, codes = ?, vectors = ?, crc = ? WHERE block_no = ?",
                    (count, *blobs, block_crc(count, *blobs), block_no),
                )
        return np.concatenate(removed_ids), np.concatenate(removed_codes)

    def compact_blocks(self, words: int, dim: int) -> None:
        """Rewrite the code blocks in id order once small updates have left too many small ones."""
        count, total = self.file.conn.execute("SELECT count(*), coalesce(sum(count), 0) FROM code_blocks").fetchone()
        if count <= 2 * (total // CODE_BLOCK + 1) + 8:
            return
        blocks = self.coded_ids()
        parts = [self.read_block(block_no, words, dim) for block_no, _ in blocks]
        ids, codes, vectors = (np.concatenate(column) for column in zip(*parts))
        order = np.argsort(ids, kind="stable")
        self.file.conn.execute("DELETE FROM code_blocks")
        self.write_blocks(ids[order], codes[order], vectors[order])

    def save_fit(self, fitted: FittedIndex) -> None:
        for name in FittedIndex.OPTIONAL_ARRAYS:  # a fit without them must not inherit the last one's
            self.file.conn.execute("DELETE FROM arrays WHERE name = ?", (name,))
        for name, array in fitted.arrays().items():
            self.file.put_array(name, array)
        self.file.set_meta(fitted={**fitted.state(), "at": time.time()})

    def edit_buckets(self, keys: np.ndarray, ids: np.ndarray, *, add: bool) -> None:
        """Add ids to (or remove them from) their buckets: read, merge, write back."""
        conn = self.file.conn
        for t in range(keys.shape[1]):
            order = np.argsort(keys[:, t], kind="stable")
            for key, members in _group(keys[order, t], ids[order]):
                row = conn.execute(
                    "SELECT ids, crc FROM buckets WHERE table_no = ? AND bucket_key = ?", (t, int(key))
                ).fetchone()
                if row:
                    self._check_bucket(t, int(key), row[0], row[1], 63)  # never launder a damaged bucket
                current = np.frombuffer(row[0], dtype="<i8") if row else np.empty(0, np.int64)
                merged = np.union1d(current, members) if add else np.setdiff1d(current, members)
                if len(merged):
                    blob = merged.astype("<i8").tobytes()
                    conn.execute(
                        "INSERT INTO buckets(table_no, bucket_key, ids, crc) VALUES (?, ?, ?, ?) "
                        "ON CONFLICT(table_no, bucket_key) DO UPDATE SET ids = excluded.ids, crc = excluded.crc",
                        (t, int(key), blob, bucket_crc(t, int(key), blob)),
                    )
                elif row:
                    conn.execute("DELETE FROM buckets WHERE table_no = ? AND bucket_key = ?", (t, int(key)))

    def write_buckets(self, keys: np.ndarray, ids: np.ndarray) -> None:
        """Write every table's bucket rows afresh (after a refit), from each image's keys (n, L)."""
        for t in range(keys.shape[1]):
            self.file.conn.executemany(
                "INSERT INTO buckets(table_no, bucket_key, ids, crc) VALUES (?, ?, ?, ?)",
                ((table_no, key, blob, bucket_crc(table_no, key, blob)) for table_no, key, blob in encode_bucket_rows(t, keys[:, t], ids)),
            )

    def clear(self) -> None:
        """Drop every code and bucket (before a refit, or when too few images are left)."""
        self.file.conn.execute("DELETE FROM code_blocks")
        self.file.conn.execute("DELETE FROM buckets")
        self.clear_graph()
        NeighbourTable(self.file).clear()  # lists are made again with the next fit


def _group(sorted_keys: np.ndarray, values: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """(key, values) runs of an array sorted by key."""
    if len(sorted_keys) == 0:
        return
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    ends = np.r_[starts[1:], len(sorted_keys)]
    for s, e in zip(starts, ends):
        yield int(sorted_keys[s]), values[s:e]


def _covers(graph: VectorGraph, sorted_ids: np.ndarray) -> bool:
    """Whether every id of `sorted_ids` has a node in the graph."""
    rows = row_lookup(sorted_ids)(graph.ids)
    covered = np.zeros(len(sorted_ids), dtype=bool)
    covered[rows[rows >= 0]] = True
    return bool(covered.all())
