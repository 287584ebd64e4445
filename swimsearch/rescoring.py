"""What the exact rescoring reads, held in memory where a catalogue is small enough.

After the candidate stage the engine scores a few dozen candidates exactly on
their stored trunk embeddings and builds a record for each result. For
catalogues up to `EngineConfig.rescore_in_memory_up_to` images every embedding (float16, 2.5 KB
each: 128 MB at 50,000) and every record is read once when the catalogue is
opened, so a search makes no store call at all; above, a search reads its
candidates' embeddings in one query and its results' records in another
(a million embeddings are 2.5 GB: they stay in the store). Values are exactly
the store's (float16 widened to float32 as `embedding_matrix` does).
"""

from __future__ import annotations

import logging
import time
from typing import Iterable

import numpy as np

from .index import row_lookup
from .stores.base import CatalogueReader, Embeddings, ImageRecord

log = logging.getLogger(__name__)

class RescoringData:
    """Embeddings and records by image id: from memory for small catalogues, else from the store.

    Args:
        reader: the open catalogue.
        ids: the searchable image ids (sorted); their data is loaded when few enough.
        up_to: load them into memory only up to this many.
    """

    def __init__(self, reader: CatalogueReader, ids: np.ndarray, up_to: int):
        self.reader = reader
        self._vectors: np.ndarray | None = None
        self._records: dict[int, ImageRecord] = {}
        if 0 < len(ids) <= up_to:
            started = time.perf_counter()
            parts = list(reader.iter_embeddings(ids.tolist()))
            held = np.concatenate([p.ids for p in parts])
            order = np.argsort(held)
            self._ids = held[order]
            self._vectors = np.concatenate([p.vectors for p in parts])[order].astype(np.float16)
            self._rows = row_lookup(self._ids)
            self._records = reader.records(self._ids.tolist())
            log.info("holding %d embeddings and records in memory (%.0f ms)", len(self._ids), (time.perf_counter() - started) * 1000)

    @property
    def in_memory(self) -> bool:
        return self._vectors is not None

    def embedding_matrix(self, image_ids: Iterable[int]) -> Embeddings:
        """As `CatalogueReader.embedding_matrix`: the asked ids that have an embedding, in the order asked."""
        if self._vectors is None:
            return self.reader.embedding_matrix(image_ids)
        asked = np.fromiter(image_ids, dtype=np.int64)
        rows = self._rows(asked)
        found = rows >= 0
        return Embeddings(asked[found], self._vectors[rows[found]].astype(np.float32))

    def records(self, image_ids: Iterable[int]) -> dict[int, ImageRecord]:
        """As `CatalogueReader.records`."""
        if self._vectors is None:
            return self.reader.records(image_ids)
        held = self._records
        return {i: held[i] for i in map(int, image_ids) if i in held}
