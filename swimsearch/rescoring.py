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

from .calibration import Calibration
from .index import FittedIndex, row_lookup
from .neighbours import NeighbourLists, VectorTable, augmented
from .stores.base import CatalogueReader, Embeddings, ImageRecord

log = logging.getLogger(__name__)


class RescoringData:
    """Embeddings and records by image id: from memory for small catalogues, else from the store.

    Args:
        reader: the open catalogue.
        ids: the searchable image ids (sorted); their data is loaded when few enough.
        up_to: load them into memory only up to this many.
        fitted: the catalogue's fit: where it is made on augmented vectors, those
            are held too (made from the embeddings and the neighbour lists).
        calibration: the model's calibration: the same-design vectors
            (calibration.py) of every image are held too.
    """

    def __init__(
        self,
        reader: CatalogueReader,
        ids: np.ndarray,
        up_to: int,
        fitted: FittedIndex | None = None,
        calibration: Calibration | None = None,
    ):
        self.reader = reader
        self.fitted = fitted
        self._vectors: np.ndarray | None = None
        self._augmented: np.ndarray | None = None
        self._whitened: np.ndarray | None = None
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
            if fitted is not None and fitted.augmented:
                self._augmented = self._augment(self._ids, self._vectors, reader.neighbour_lists()).astype(np.float16)
            if calibration is not None:  # float32, as ranking.whitened_vectors makes them for a store read
                self._whitened = np.concatenate(
                    [calibration.vectors(self._vectors[s : s + 8192]).astype(np.float32) for s in range(0, len(self._ids), 8192)]
                )
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

    def augmented(self, image_ids: np.ndarray) -> np.ndarray:
        """Augmented vectors (m, D) float32 of searchable ids, in the order asked (prepared vectors
        for a fit on raw embeddings): from memory, or made from the store's embeddings and lists."""
        image_ids = np.asarray(image_ids, dtype=np.int64)
        if self._augmented is not None:
            return self._augmented[self._rows(image_ids)].astype(np.float32)
        lists = self.reader.neighbour_lists(image_ids.tolist()) if self.fitted is not None and self.fitted.augmented else None
        need = np.union1d(image_ids, lists.neighbours[lists.neighbours >= 0] if lists is not None else [])
        stored = self.reader.embedding_matrix(need.tolist())
        vectors = self._augment(image_ids, stored.vectors[np.searchsorted(stored.ids, image_ids)], lists, stored)
        return vectors.astype(np.float16).astype(np.float32)  # rounded as the held ones are

    def _augment(
        self, ids: np.ndarray, embeddings: np.ndarray, lists: NeighbourLists | None, others: Embeddings | None = None
    ) -> np.ndarray:
        assert self.fitted is not None
        pool = others if others is not None else Embeddings(ids, embeddings)
        table = VectorTable(pool.ids, self.fitted.prepare(pool.vectors).astype(np.float16))
        if lists is None or not self.fitted.augmented:
            return table.get(ids)
        settings = self.fitted.settings
        return augmented(table, lists, ids, k=int(settings.get("augment_k", 5)), alpha=float(settings.get("augment_alpha", 3.0)))

    def whitened(self, image_ids: np.ndarray) -> np.ndarray | None:
        """The same-design vectors of searchable ids held in memory (None: not held; compute them)."""
        if self._whitened is None:
            return None
        return self._whitened[self._rows(np.asarray(image_ids, dtype=np.int64))]
