"""The prepared vectors of a catalogue's images: all of them read at once, or each read from the store when first asked for.

A fit or a first build needs every image's prepared vector (`prepared_table`).
An update on the approximate path does not: it needs the added images, the
candidates the catalogue's own search names for them, and the images whose
neighbour lists change with their listed neighbours, a few thousand vectors
for an update of a thousand images. Reading all of them for every update made
two team-catalogue updates of 1,500 designs each take 1,215-1,319 s at 100,000
designs (issue 13), and holds 2.5 GB at a million. `StoredVectors` reads only
what is asked for and keeps it for the rest of the update.

Both make each vector the same way (`prepare`), so an update sees exactly the
vectors a fresh build sees and its lists stay equal to a fresh build's.
"""

from __future__ import annotations

import logging
from typing import Callable, Iterable, Sequence

import numpy as np

from .augment import unit_rows
from .neighbours import VectorTable, rows_in
from .stores.base import CatalogueReader, Embeddings

log = logging.getLogger(__name__)

#: Ids per read from the store.
READ_CHUNK = 8192
#: Once an update has asked for more than this share of the vectors, the rest are read in one pass:
#: a read by id cost about twice a row of the full pass (SQLite, 100,000 designs, loaded machine).
READ_ALL_ABOVE = 0.25


def prepare(embeddings: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Prepared vectors (float16 unit vectors of the embeddings centred on `centre`), row by row the same in any batch."""
    x = np.asarray(embeddings, dtype=np.float32) - np.asarray(centre, dtype=np.float32)
    return unit_rows(x).astype(np.float16)


def prepared_table(reader: CatalogueReader, centre: np.ndarray) -> VectorTable:
    """Every embedded image's prepared vector (float16, 2.5 KB each: 2.5 GB at a million images)."""
    ids, parts = [], []
    for chunk_ids, embeddings in reader.iter_embeddings(None):
        parts.append(prepare(embeddings, centre))
        ids.append(chunk_ids)
    all_ids = np.concatenate(ids) if ids else np.empty(0, np.int64)
    vectors = np.concatenate(parts) if parts else np.empty((0, len(centre)), np.float16)
    order = np.argsort(all_ids, kind="stable")
    return VectorTable(all_ids[order], vectors[order])


class StoredVectors:
    """Prepared vectors of every embedded image by id, each read from the store the first time it is asked for.

    Used where neighbours.py takes a `VectorTable` (`ids`, `rows_of`, `get`,
    `gather`, `dim`), except by the exact searches, which read every vector.

    Args:
        ids: every embedded image id (sorted or not): the images the update may name.
        read: the store's embeddings of given ids (`CatalogueReader.embedding_matrix`).
        centre: the fit's centre.
        read_all: every embedding in chunks (`CatalogueReader.iter_embeddings(None)`), for an update that
            asks for most of them (a search that names candidates without their cosines); None: always by id.
    """

    def __init__(
        self,
        ids: np.ndarray,
        read: Callable[[Sequence[int]], Embeddings],
        centre: np.ndarray,
        read_all: Callable[[], Iterable[Embeddings]] | None = None,
    ):
        self.ids = np.unique(np.asarray(ids, dtype=np.int64))
        self._read = read
        self._read_all = read_all
        self._centre = np.asarray(centre, dtype=np.float32)
        self._slot = np.full(len(self.ids), -1, np.int64)  # per row of `ids`: where its vector is held (-1: not read)
        self._held = np.empty((0, len(self._centre)), np.float16)  # grows by doubling: a read appends, never copies all
        self._used = 0
        self.read_count = 0  # vectors read from the store so far

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def dim(self) -> int:
        return len(self._centre)

    def rows_of(self, image_ids: np.ndarray) -> np.ndarray:
        """Rows of image ids in `ids` (-1 where absent)."""
        return rows_in(self.ids, image_ids)

    def get(self, image_ids: Iterable[int]) -> np.ndarray:
        """float32 vectors of ids that are present (KeyError otherwise)."""
        image_ids = np.asarray(image_ids, dtype=np.int64).ravel()
        rows = self.rows_of(image_ids)
        if np.any(rows < 0):
            raise KeyError(f"no prepared vector for image ids {image_ids[rows < 0][:5].tolist()}")
        self._load(rows)
        return self._held[self._slot[rows]].astype(np.float32)

    def gather(self, image_ids: np.ndarray) -> np.ndarray:
        """float32 vectors (n, D) of any ids: zeros for -1 and for ids without a vector."""
        image_ids = np.asarray(image_ids, dtype=np.int64).ravel()
        out = np.zeros((len(image_ids), self.dim), dtype=np.float32)
        present = self.rows_of(image_ids) >= 0
        if np.any(present):
            out[present] = self.get(image_ids[present])
        return out

    def preload(self, image_ids: np.ndarray) -> None:
        """Read the vectors of these ids now, in one go (all of them in one pass, if they are most)."""
        rows = self.rows_of(np.asarray(image_ids, dtype=np.int64).ravel())
        self._load(rows[rows >= 0])

    def _load(self, rows: np.ndarray) -> None:
        wanted = np.unique(rows[self._slot[rows] < 0])
        if not len(wanted):
            return
        if self._read_all is not None and self.read_count + len(wanted) > READ_ALL_ABOVE * len(self.ids):
            log.info("an update asked for %d of %d vectors: reading all of them", self.read_count + len(wanted), len(self.ids))
            read_all, self._read_all = self._read_all, None
            for read in read_all():
                self._keep(read, only_new=True)
            wanted = wanted[self._slot[wanted] < 0]  # any the pass did not bring, by id as before
        for start in range(0, len(wanted), READ_CHUNK):
            self._keep(self._read(self.ids[wanted[start : start + READ_CHUNK]].tolist()))
        missing = wanted[self._slot[wanted] < 0]
        if len(missing):  # removed by someone else since the ids were read: the caller is told, as for an absent id
            raise KeyError(f"no stored embedding for image ids {self.ids[missing][:5].tolist()}")

    def _keep(self, read: Embeddings, only_new: bool = False) -> None:
        rows = self.rows_of(np.asarray(read.ids, dtype=np.int64))
        take = (rows >= 0) & (self._slot[np.maximum(rows, 0)] < 0) if only_new else rows >= 0
        rows, vectors = rows[take], prepare(np.asarray(read.vectors)[take], self._centre)
        if self._used + len(rows) > len(self._held):
            grown = np.empty((max(2 * len(self._held), self._used + len(rows), 1024), self.dim), np.float16)
            grown[: self._used] = self._held[: self._used]
            self._held = grown
        self._held[self._used : self._used + len(rows)] = vectors
        self._slot[rows] = np.arange(self._used, self._used + len(rows))
        self._used += len(rows)
        self.read_count += len(rows)
