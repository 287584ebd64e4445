"""Issue 11's ranking leak-free, through the engine: what a user who searches with a NEW picture sees.

In the naive protocol the query is a catalogue photo, so its own vector sits in
the augmented vectors of the images that list it among their k nearest
(database-side augmentation): those neighbours lean towards the query before
it is ever asked. A user's new picture has no such pull. Leave-one-out (LOO)
removes it: for each query, the catalogue is put in the state an update that
removed the query image would leave it in, with the engine's own update steps,

  * `neighbours.update_lists`: the lists that named the query search again
    (the next nearest image moves up), its own list goes;
  * `neighbours.augmented`: those images' augmented vectors made again;
  * `FittedIndex.codes` / `.vectors`: their codes and re-ranking vectors
    encoded again with the catalogue's fit (an update keeps the fit);
  * the searcher (`choose_searcher`) over the snapshot without the query,

and the query's stored embedding is searched as a picture from outside the
catalogue (`query_id=None`) by the very `SearchEngine` of the naive run:
candidates, query expansion, pHash candidates, calibrated scores, band order.
The state is swapped into that engine for one search and put back after
(`LeaveOneOut.without`), which is what makes 5,096 leak-free searches take
the time of 5,096 plain ones; `check` proves on real removals (a copy of the
catalogue, `remove` + `index_catalogue`, a fresh engine) that it gives the
very same list.

Everything else stays: the query's sender's other photos stay in the
catalogue (as in real use), so the cross-sender and same-sender figures read
the same lists as the naive run, with the query's own catalogue entry gone.
Exact cosine has no neighbour leak (its vectors are the embeddings centred on
the catalogue's mean, which the query moves by 1/5,398 of itself): its
figures are the naive run's.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from pathlib import Path
from typing import Iterator

import numpy as np

from swimsearch.catalogue import Catalogue
from swimsearch.config import EngineConfig
from swimsearch.index import IndexSnapshot
from swimsearch.indexing import index_catalogue, prepared_table
from swimsearch.phash_index import PhashIndex
from swimsearch.neighbour_updates import update_lists
from swimsearch.neighbours import NeighbourLists, VectorTable, augmented
from swimsearch.search import SearchEngine
from swimsearch.searchers import SnapshotSearcher, choose_searcher


class LeaveOneOut:
    """Puts an in-memory `SearchEngine` (exact or LSH path) into the state of its catalogue without one image.

    Args:
        engine: an engine over an in-memory snapshot of a catalogue fitted on augmented vectors,
            holding its rescoring data in memory (catalogues up to `rescore_in_memory_up_to`).
        catalogue: the engine's open catalogue (its embeddings and neighbour lists are read once).
        config: the config the engine's searcher was chosen with (the path: exact or LSH).
    """

    def __init__(self, engine: SearchEngine, catalogue: Catalogue, config: EngineConfig):
        searcher = engine._searcher
        if not isinstance(searcher, SnapshotSearcher) or not searcher.fitted.augmented or not engine._data.in_memory:
            raise ValueError("leave-one-out needs an in-memory engine over a catalogue fitted on augmented vectors")
        self.engine, self.config = engine, config
        self.snapshot = searcher.snapshot
        fitted = self.snapshot.fitted
        assert fitted.centre is not None
        self.k = int(fitted.settings.get("augment_k", config.augment_k))
        self.alpha = float(fitted.settings.get("augment_alpha", config.augment_alpha))
        self.table = prepared_table(catalogue, fitted.centre)  # what an update reads
        assert np.array_equal(self.table.ids, self.snapshot.ids)
        self.float32 = self.table.vectors.astype(np.float32)
        lists = catalogue.neighbour_lists()
        assert lists is not None
        self.lists = lists
        self.ids = self.snapshot.ids
        self.phashes = catalogue.phashes(self.ids)

    def state(self, image_id: int) -> tuple[np.ndarray, np.ndarray, IndexSnapshot, NeighbourLists]:
        """(ids whose augmented vector changed, their new augmented vectors (float16, as held), the snapshot without
        `image_id`, the neighbour lists without it)."""
        keep = self.table.ids != image_id
        table = VectorTable(self.table.ids[keep], self.table.vectors[keep])
        table.__dict__["float32"] = self.float32[keep]  # the cached float32 copy the exact lists read, made once
        lists, changed = update_lists(self.lists, table, np.empty(0, np.int64))
        vectors = augmented(table, lists, changed, k=self.k, alpha=self.alpha)
        snap, fitted = self.snapshot, self.snapshot.fitted
        codes, reduced = snap.codes.copy(), snap.vectors.copy()
        rows = snap.rows_of(changed)
        codes[rows] = fitted.codes(vectors)
        reduced[rows] = fitted.vectors(vectors).astype(np.float16)  # as the store writes and the snapshot loads them
        kept = snap.ids != image_id
        without = IndexSnapshot(fitted=fitted, ids=snap.ids[kept], codes=codes[kept], vectors=reduced[kept], tables=None)
        return changed, vectors.astype(np.float16), without, lists

    @contextlib.contextmanager
    def without(self, image_id: int) -> Iterator[int]:
        """Within the block the engine searches its catalogue as if `image_id` were removed; yields how
        many augmented vectors that changed."""
        changed, vectors, snapshot, lists = self.state(image_id)
        engine, data = self.engine, self.engine._data
        rows = data._rows(changed)
        held_vectors, held_searcher, held_lists = data._augmented[rows].copy(), engine._searcher, data._held_lists
        data._augmented[rows] = vectors
        data._held_lists = lists  # a new picture is folded into the lists without it (fold_in.py)
        engine._searcher = choose_searcher(snapshot, self.config)
        keep = self.ids != image_id  # the pHash candidates come from the catalogue without it too
        table = (PhashIndex.build(self.phashes[keep]), self.ids[keep])
        engine._phash_table = lambda: table  # shadows the engine's own (phash_source.py) for this search
        try:
            yield len(changed)
        finally:
            data._augmented[rows] = held_vectors
            engine._searcher, data._held_lists = held_searcher, held_lists
            del engine._phash_table


def search_without(leave: LeaveOneOut, embedding: np.ndarray, phash: int, image_id: int, top_n: int):
    """The engine's answer to the picture of `image_id` searched as a new picture, the catalogue without it."""
    with leave.without(image_id):
        return leave.engine.search_embeddings(embedding, phash=phash, top_n=top_n)


def check(catalogue_path: Path, config: EngineConfig, embedder, leave: LeaveOneOut, image_ids: list[int],
          embeddings: np.ndarray, phashes: np.ndarray, top_n: int = 100) -> int:
    """How many of `image_ids` give the same list (ids, scores, bands) through `LeaveOneOut` as through a
    real removal: a copy of the catalogue, the image removed from the store, `index_catalogue` (an update
    that keeps the fit), a fresh engine. Returns the number that differ (0 expected)."""
    differ = 0
    for image_id, embedding, phash in zip(image_ids, embeddings, phashes):
        patched = search_without(leave, embedding[None], int(phash), int(image_id), top_n)
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / "copy.swimcat"
            shutil.copy(catalogue_path, copy)
            with Catalogue.open(copy) as opened:
                writer = opened.writer()
                with writer.transaction():  # as an update marks a file gone from the folder
                    writer.tombstone([int(image_id)], time.time())
                index_catalogue(writer, config)
                fresh = SearchEngine(opened, embedder, config, searcher=choose_searcher(opened.load_snapshot(), config))
                real = fresh.search_embeddings(embedding[None], phash=int(phash), top_n=top_n)
        a = [(m.image_id, round(m.score, 9), m.band) for m in patched.matches][:top_n]
        b = [(m.image_id, round(m.score, 9), m.band) for m in real.matches][:top_n]
        same = a == b
        differ += not same
        print(f"  leave-one-out check, image {image_id}: {'same list' if same else 'DIFFERENT list'} "
              f"as a real removal ({len(b)} matches)", flush=True)
    return differ
