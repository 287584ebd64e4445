"""What the exact rescoring reads, held in memory where a catalogue is small enough.

After the candidate stage the engine scores a few dozen candidates exactly on
their stored trunk embeddings and builds a record for each result. For
catalogues up to `EngineConfig.rescore_in_memory_up_to` images every embedding (float16, 2.5 KB
each: 128 MB at 50,000) and every record is read once when the catalogue is
opened, so a search makes no store call at all; above, a search reads its
candidates' embeddings in one query and its results' records in another
(a million embeddings are 2.5 GB: they stay in the store). Values are exactly
the store's (float16 widened to float32 as `embedding_matrix` does).

Above that size a catalogue file is read from its array cache once it is
made and checked (array_cache.py, array_watch.py): memory-mapped rows of
embeddings, same-design and augmented vectors and records, the very values
a search would make from the store's rows, so a search reads no row. It is asked for before each search and dropped when the file changed.

Without it, one search asks for the same images several times (the
augmented vectors of its best candidates twice, for query expansion and for
the ranking, then the raw embeddings of the candidates it scores), so what a
search reads from the store is kept until the next search (`new_search`):
each embedding and neighbour list is read at most once per search. Nothing
is kept across searches, so an update between two searches is always seen.
"""

from __future__ import annotations

import logging
import time
from typing import Iterable

import numpy as np

from .array_cache import CachedArrays, calibration_key
from .halves import through_half, widened
from .array_watch import ArrayWatch
from .augment import picture_keys
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
        arrays: ArrayWatch | None = None,
    ):
        self.reader = reader
        self.fitted = fitted
        # the catalogue's array cache (array_watch.py), asked before each search; this search's arrays or None
        self._watch = arrays
        self._cached: CachedArrays | None = None
        self._calibration_key = calibration_key(calibration) if arrays is not None else None
        self._calibration = calibration
        self._root = str(reader.root) if arrays is not None else ""  # where the cache's records' paths are
        self._vectors: np.ndarray | None = None
        self._augmented: np.ndarray | None = None
        self._whitened: np.ndarray | None = None
        self._records: dict[int, ImageRecord] = {}
        self._held_lists: NeighbourLists | None = None
        # what this search has read from the store (see the module's note); cleared by new_search
        self._read: dict[int, np.ndarray] = {}
        self._keys: dict[int, bytes] = {}  # picture_keys made this search
        self._absent: set[int] = set()
        self._lists: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._unlisted: set[int] = set()
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
                self._held_lists = reader.neighbour_lists()  # held for a new picture's search (fold_in.py)
                self._augmented = self._augment(self._ids, self._vectors, self._held_lists).astype(np.float16)
            if calibration is not None:  # float32, as ranking.whitened_vectors makes them for a store read
                self._whitened = np.concatenate(
                    [calibration.vectors(self._vectors[s : s + 8192]).astype(np.float32) for s in range(0, len(self._ids), 8192)]
                )
            log.info("holding %d embeddings and records in memory (%.0f ms)", len(self._ids), (time.perf_counter() - started) * 1000)

    @property
    def in_memory(self) -> bool:
        return self._vectors is not None

    @property
    def from_arrays(self) -> bool:
        """Whether this search reads the catalogue's array cache (no rows)."""
        return self._cached is not None

    def new_search(self) -> None:
        """Forget what the previous search read from the store, and take the array cache when it is
        ready and the catalogue has not changed since it was checked (called as each search begins)."""
        self._read.clear()
        self._keys.clear()
        self._absent.clear()
        self._lists.clear()
        self._unlisted.clear()
        self._cached = self._watch.current() if self._watch is not None and self._vectors is None else None
        if self._cached is not None:
            self._cached.forget()

    def embedding_matrix(self, image_ids: Iterable[int]) -> Embeddings:
        """As `CatalogueReader.embedding_matrix`: the asked ids that have an embedding, in the order asked."""
        asked = np.fromiter(image_ids, dtype=np.int64)
        if self._vectors is None:
            cached = self._cached
            if cached is None:
                return self._stored(asked)
            # the cache holds every stored embedding as of now (array_watch.py): one it lacks, the store lacks
            rows = cached.rows(asked)
            found = rows >= 0
            return Embeddings(asked[found], cached.raw(rows[found]))
        rows = self._rows(asked)
        found = rows >= 0
        return Embeddings(asked[found], widened(self._vectors[rows[found]]))  # the half table: 1.6 x astype's speed

    def _stored(self, asked: np.ndarray) -> Embeddings:
        """The store's embeddings of `asked` (in order, those that have one), each read once per search."""
        read, absent = self._read, self._absent
        missing = [i for i in dict.fromkeys(asked.tolist()) if i not in read and i not in absent]
        if missing:
            got = self.reader.embedding_matrix(missing)
            read.update(zip(got.ids.tolist(), got.vectors))
            absent.update(set(missing) - set(got.ids.tolist()))
        found = [i for i in asked.tolist() if i in read]
        if not found:
            return self.reader.embedding_matrix([])  # the store's empty answer (its width)
        return Embeddings(np.array(found, np.int64), np.stack([read[i] for i in found]))

    def _neighbour_lists(self, image_ids: np.ndarray) -> NeighbourLists | None:
        """The store's neighbour lists of `image_ids` (sorted, those that have one), each read once per search."""
        held, unlisted = self._lists, self._unlisted
        wanted = np.unique(image_ids).tolist()
        missing = [i for i in wanted if i not in held and i not in unlisted]
        if missing:
            lists = self.reader.neighbour_lists(missing)
            if lists is None:
                return None
            held.update((int(i), (n, s)) for i, n, s in zip(lists.ids, lists.neighbours, lists.similarities))
            unlisted.update(set(missing) - set(lists.ids.tolist()))
        have = [i for i in wanted if i in held]
        if not have:
            return NeighbourLists.empty(0)  # as the store answers when none of them has a list
        return NeighbourLists(np.array(have, np.int64), np.stack([held[i][0] for i in have]), np.stack([held[i][1] for i in have]))

    def records(self, image_ids: Iterable[int]) -> dict[int, ImageRecord]:
        """As `CatalogueReader.records`."""
        if self._vectors is None:
            if self._cached is None:
                return self.reader.records(image_ids)
            held, ask = self._cached.image_records([int(i) for i in image_ids], self._root)
            return {**held, **self.reader.records(ask)} if ask else held
        held = self._records
        return {i: held[i] for i in map(int, image_ids) if i in held}

    def picture_keys(self, image_ids: np.ndarray, stored: Embeddings | None = None) -> list[bytes]:
        """`augment.picture_keys` of the ids' stored embeddings, in the order asked (an id without one: its own).

        Each id's key is made once a search (the query's expansion rounds ask for heads that mostly
        overlap), from `stored` where the caller read the embeddings already."""
        memo, asked = self._keys, np.asarray(image_ids, dtype=np.int64).tolist()
        missing = [i for i in dict.fromkeys(asked) if i not in memo]
        if missing:
            got = stored if stored is not None and set(missing) <= set(stored.ids.tolist()) else self.embedding_matrix(missing)
            memo.update(zip(got.ids.tolist(), picture_keys(got.vectors)))
            memo.update((i, b"id %d" % i) for i in missing if i not in memo)
        return [memo[i] for i in asked]

    def augmented(self, image_ids: np.ndarray) -> np.ndarray:
        """Augmented vectors (m, D) float32 of searchable ids, in the order asked (prepared vectors
        for a fit on raw embeddings): from memory, or made from the store's embeddings and lists."""
        image_ids = np.asarray(image_ids, dtype=np.int64)
        if self._augmented is not None:
            return widened(self._augmented[self._rows(image_ids)])
        cached = self._cached
        if cached is not None and self.fitted is not None:
            rows = cached.rows(image_ids)
            if (rows >= 0).all():
                if not self.fitted.augmented:  # the prepared vectors, rounded as a table holds them
                    prepared = self.fitted.prepare(cached.raw(rows))
                    return through_half(prepared)
                if cached.augmented is not None:  # made as below, over every stored embedding (array_cache.py)
                    return widened(cached.take(("augmented",), rows)["augmented"])
        lists = self._neighbour_lists(image_ids) if self.fitted is not None and self.fitted.augmented else None
        need = np.union1d(image_ids, lists.neighbours[lists.neighbours >= 0] if lists is not None else [])
        stored = self._stored(need)
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

    def held_lists(self) -> NeighbourLists | None:
        """The neighbour lists of every image, when held in memory (None: read per search, or none)."""
        return self._held_lists if self._augmented is not None else None

    def prepared(self, image_ids: np.ndarray) -> np.ndarray:
        """The prepared vectors (m, D) float32 of ids held in memory, rounded as the augmentation's table holds them."""
        assert self._vectors is not None and self.fitted is not None
        return through_half(self.fitted.prepare(widened(self._vectors[self._rows(np.asarray(image_ids, np.int64))])))

    def present(self, image_ids: np.ndarray) -> np.ndarray | None:
        """(m,) bool: which ids have an embedding, from the array cache (None: no cache this search)."""
        return None if self._cached is None else self._cached.rows(np.asarray(image_ids, dtype=np.int64)) >= 0

    def powered(self, image_ids: np.ndarray) -> np.ndarray | None:
        """Power-normalised embeddings (`Calibration.powered`, float32) of ids the array cache holds
        (None: not held; compute them from `embedding_matrix`)."""
        cached, calibration = self._cached, self._calibration
        if cached is None or calibration is None or not self.holds_powered():
            return None
        rows = cached.rows(np.asarray(image_ids, dtype=np.int64))
        if not (rows >= 0).all():
            return None
        if cached.powered is not None:
            return np.asarray(cached.powered[rows])
        # made here from the held float16 rows: the very values `calibration.powered` gives the store's
        return calibration.powered(cached.raw(rows))

    def holds_powered(self) -> bool:
        """Whether `powered` answers from the array cache this search (else it says None)."""
        return self._cached is not None and self._cached.calibration == self._calibration_key and self._calibration is not None

    def whitened(self, image_ids: np.ndarray) -> np.ndarray | None:
        """The same-design vectors of searchable ids held in memory or in the array cache (None: not held; compute them)."""
        image_ids = np.asarray(image_ids, dtype=np.int64)
        if self._whitened is not None:
            return self._whitened[self._rows(image_ids)]
        cached = self._cached
        if cached is None or cached.whitened is None or cached.calibration != self._calibration_key:
            return None
        rows = cached.rows(image_ids)
        return cached.take(("whitened",), rows)["whitened"] if (rows >= 0).all() else None
