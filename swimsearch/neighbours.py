"""Each catalogue image's nearest other images (its neighbour list), found and kept right through updates.

Database-side augmentation (augment.py) replaces an image's vector by a
weighted mean of itself and its k nearest other images, so the catalogue
keeps, per image, k neighbour ids and their cosines (60 bytes at k = 5).
The lists are made on the *prepared* vectors (embeddings centred on the
model's fixed reference mean, unit length: `FittedIndex.prepare`), never on
augmented ones, so a change never cascades: an added image enters exactly
the lists whose k-th cosine it beats, and a removed image leaves a hole in
the lists that held it, filled by searching those images again.

Below `exact_below` images every search here is exact (a matrix product),
so an update gives the same lists as a fresh build (up to ties). Above, the
candidates come from an HNSW graph (graph.py) over a 128-d projection of the
prepared vectors, rescored exactly on the full vectors; updates take their
candidates from the catalogue's own search (`CandidateFn`), testing every
candidate of it, as the research recommends (docs/QUALITY_RESEARCH.md).
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np

from .augment import unit_rows, weighted_mean

log = logging.getLogger(__name__)

#: Candidates per image taken from the approximate search before the exact rescoring
#: (the build's graph above `exact_below`), and for an added image on an update.
BUILD_DEPTH = 48
UPDATE_DEPTH = 1000

#: (m, D) prepared vectors, how many -> (m, depth) image ids (-1 pads): the catalogue's own search.
CandidateFn = Callable[[np.ndarray, int], np.ndarray]
#: The same, with each candidate's cosine to its row (NaN pads), exact or within `SCORE_MARGIN` / 2 of exact.
ScoredFn = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]
#: How far a cosine a `ScoredFn` gives may lie from the update's own: twice the error of a cosine of float32
#: prepared vectors against one of the float16 vectors kept here (< 5e-4 for unit vectors), with room to spare.
SCORE_MARGIN = 0.01


@dataclass(frozen=True)
class NeighbourLists:
    """The neighbour lists of some images: ids sorted, k neighbours each, best first."""

    ids: np.ndarray  # (n,) int64 image ids, sorted
    neighbours: np.ndarray  # (n, k) int64 image ids of its nearest other images; -1 where there is none
    similarities: np.ndarray  # (n, k) float32 their cosines (prepared vectors); NaN where there is none

    def __post_init__(self) -> None:
        object.__setattr__(self, "ids", np.asarray(self.ids, dtype=np.int64))
        object.__setattr__(self, "neighbours", np.asarray(self.neighbours, dtype=np.int64))
        object.__setattr__(self, "similarities", np.asarray(self.similarities, dtype=np.float32))
        if self.neighbours.ndim != 2 or self.neighbours.shape != self.similarities.shape or len(self.neighbours) != len(self.ids):
            raise ValueError("neighbour lists need (n, k) ids and cosines for n images")
        if len(self.ids) > 1 and np.any(np.diff(self.ids) <= 0):
            raise ValueError("neighbour lists must be given in increasing image id order")

    @classmethod
    def empty(cls, k: int) -> "NeighbourLists":
        return cls(np.empty(0, np.int64), np.empty((0, k), np.int64), np.empty((0, k), np.float32))

    @property
    def k(self) -> int:
        return int(self.neighbours.shape[1])

    def __len__(self) -> int:
        return len(self.ids)

    def rows_of(self, image_ids: np.ndarray) -> np.ndarray:
        """Rows of image ids (-1 where absent)."""
        return rows_in(self.ids, image_ids)

    def select(self, image_ids: np.ndarray) -> "NeighbourLists":
        """The lists of these ids that are present (sorted by id)."""
        rows = self.rows_of(np.unique(np.asarray(image_ids, dtype=np.int64)))
        rows = rows[rows >= 0]
        return NeighbourLists(self.ids[rows], self.neighbours[rows], self.similarities[rows])

    def without(self, image_ids: np.ndarray) -> "NeighbourLists":
        """These lists less the rows of `image_ids` (the lists that name them are left as they are)."""
        keep = ~np.isin(self.ids, image_ids)
        return NeighbourLists(self.ids[keep], self.neighbours[keep], self.similarities[keep])

    def updated(self, other: "NeighbourLists") -> "NeighbourLists":
        """These lists with the rows of `other` put in (replacing rows of the same id)."""
        base = self.without(other.ids)
        ids = np.concatenate([base.ids, other.ids])
        order = np.argsort(ids, kind="stable")
        return NeighbourLists(
            ids[order],
            np.concatenate([base.neighbours, other.neighbours])[order],
            np.concatenate([base.similarities, other.similarities])[order],
        )

    def listing(self, image_ids: np.ndarray) -> np.ndarray:
        """Ids of the images whose list names any of `image_ids` (sorted)."""
        named = np.isin(self.neighbours, image_ids).any(axis=1)
        return self.ids[named]

    def equals(self, other: "NeighbourLists") -> bool:
        return (
            np.array_equal(self.ids, other.ids)
            and np.array_equal(self.neighbours, other.neighbours)
            and np.allclose(self.similarities, other.similarities, equal_nan=True, atol=1e-6)
        )


def rows_in(sorted_ids: np.ndarray, image_ids: np.ndarray) -> np.ndarray:
    """Positions of `image_ids` in the sorted `sorted_ids` (-1 where absent)."""
    image_ids = np.asarray(image_ids, dtype=np.int64)
    if not len(sorted_ids):
        return np.full(len(image_ids), -1, np.int64)
    at = np.minimum(np.searchsorted(sorted_ids, image_ids), len(sorted_ids) - 1)
    return np.where(sorted_ids[at] == image_ids, at, -1).astype(np.int64)


class PreparedVectors(Protocol):
    """Prepared vectors by image id: a `VectorTable` (all held) or stored_vectors.StoredVectors (read when asked for)."""

    @property
    def ids(self) -> np.ndarray:
        """(n,) every image id it answers for, sorted."""
        ...

    def __len__(self) -> int: ...

    @property
    def dim(self) -> int: ...

    def rows_of(self, image_ids: np.ndarray) -> np.ndarray: ...

    def get(self, image_ids: np.ndarray) -> np.ndarray: ...

    def gather(self, image_ids: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class VectorTable:
    """Prepared vectors of the catalogue's images, by id, held as float16 (2.5 KB an image)."""

    ids: np.ndarray  # (n,) int64, sorted
    vectors: np.ndarray  # (n, D) float16 unit vectors

    def __len__(self) -> int:
        return len(self.ids)

    def rows_of(self, image_ids: np.ndarray) -> np.ndarray:
        return rows_in(self.ids, image_ids)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def get(self, image_ids: np.ndarray) -> np.ndarray:
        """float32 vectors of ids that are present (KeyError otherwise)."""
        rows = self.rows_of(image_ids)
        if np.any(rows < 0):
            raise KeyError(f"no prepared vector for image ids {np.asarray(image_ids)[rows < 0][:5].tolist()}")
        return self.vectors[rows].astype(np.float32)

    def gather(self, image_ids: np.ndarray) -> np.ndarray:
        """float32 vectors (n, D) of any ids: zeros for -1 and for ids without a vector."""
        rows = self.rows_of(np.asarray(image_ids, dtype=np.int64).ravel())
        return np.where((rows >= 0)[:, None], self.vectors[np.maximum(rows, 0)].astype(np.float32), np.float32(0))

    @functools.cached_property
    def float32(self) -> np.ndarray:
        """Every vector as float32 (products in float16 are ~30x slower); made once, for the exact search."""
        return self.vectors.astype(np.float32)


def augmented(table: PreparedVectors, lists: NeighbourLists, image_ids: np.ndarray, *, k: int, alpha: float) -> np.ndarray:
    """DBA vectors (m, D) float32 of `image_ids`: normalise(v + sum_j max(s_j, 0)^alpha v_j) over their k listed neighbours.

    A neighbour no longer in `table` (removed) weighs nothing; an image
    without a list is its own prepared vector.
    """
    image_ids = np.asarray(image_ids, dtype=np.int64)
    out = np.empty((len(image_ids), table.dim), dtype=np.float32)
    for start in range(0, len(image_ids), 512):  # bounds the (chunk, k, D) gather: 13 MB at k = 5, reused block after block
        part = image_ids[start : start + 512]
        own = table.get(part)
        rows = lists.rows_of(part)
        listed = rows >= 0
        nb = np.full((len(part), k), -1, np.int64)
        sims = np.full((len(part), k), np.nan, np.float32)
        take = min(k, lists.k)
        nb[listed, :take] = lists.neighbours[rows[listed], :take]
        sims[listed, :take] = lists.similarities[rows[listed], :take]
        at = table.rows_of(nb.ravel()).reshape(nb.shape)
        sims = np.where(at >= 0, sims, np.nan)
        others = table.gather(np.where(at >= 0, nb, -1).ravel()).reshape(*nb.shape, table.dim)
        out[start : start + len(part)] = weighted_mean(own, others, sims, alpha) if k else own
    return out


# --- finding the lists ------------------------------------------------------------------------


def _keep_best(query_ids: np.ndarray, cand_ids: np.ndarray, sims: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the k best candidates other than the row's own image, best first (ties: lower id first)."""
    sims = np.where((cand_ids == query_ids[:, None]) | (cand_ids < 0), -np.inf, sims).astype(np.float32)
    order = np.lexsort((cand_ids, -sims), axis=1)[:, :k]
    best_ids = np.take_along_axis(cand_ids, order, axis=1)
    best_sims = np.take_along_axis(sims, order, axis=1)
    missing = ~np.isfinite(best_sims)
    best_ids = np.where(missing, -1, best_ids)
    best_sims = np.where(missing, np.nan, best_sims).astype(np.float32)
    if best_ids.shape[1] < k:  # fewer candidates than k
        pad = k - best_ids.shape[1]
        best_ids = np.pad(best_ids, ((0, 0), (0, pad)), constant_values=-1)
        best_sims = np.pad(best_sims, ((0, 0), (0, pad)), constant_values=np.nan)
    return best_ids, best_sims


def exact_lists(table: VectorTable, query_ids: np.ndarray, k: int, chunk: int = 1024) -> NeighbourLists:
    """The k nearest other images of each of `query_ids` among every image of `table`, exactly."""
    query_ids = np.unique(np.asarray(query_ids, dtype=np.int64))
    nb = np.full((len(query_ids), k), -1, np.int64)
    ns = np.full((len(query_ids), k), np.nan, np.float32)
    take = min(len(table), k + 1)
    for start in range(0, len(query_ids), chunk):
        part = query_ids[start : start + chunk]
        sims = table.get(part) @ table.float32.T  # (chunk, n)
        top = np.argpartition(-sims, take - 1, axis=1)[:, :take] if take < len(table) else np.tile(np.arange(len(table)), (len(part), 1))
        # widen the cut to every tie of its last value, so ties are broken by id as a fresh build does
        cut = np.take_along_axis(sims, top, axis=1).min(axis=1)
        wide = [np.flatnonzero(row >= c) for row, c in zip(sims, cut)]
        width = max(len(w) for w in wide)
        cand = np.full((len(part), width), -1, np.int64)
        cand_sims = np.full((len(part), width), -np.inf, np.float32)
        for i, w in enumerate(wide):
            cand[i, : len(w)] = table.ids[w]
            cand_sims[i, : len(w)] = sims[i, w]
        nb[start : start + len(part)], ns[start : start + len(part)] = _keep_best(part, cand, cand_sims, k)
    return NeighbourLists(query_ids, nb, ns)


def lists_from_candidates(table: PreparedVectors, query_ids: np.ndarray, candidates: np.ndarray, k: int) -> NeighbourLists:
    """The k best of each row's candidate ids (m, c), scored exactly on the prepared vectors."""
    query_ids = np.asarray(query_ids, dtype=np.int64)
    order = np.argsort(query_ids)
    query_ids, candidates = query_ids[order], np.asarray(candidates, dtype=np.int64)[order]
    rows = table.rows_of(candidates.ravel()).reshape(candidates.shape)
    candidates = np.where(rows >= 0, candidates, -1)
    # An update joins two searches (the catalogue's own and the added images): an id both name
    # must enter the list once, not take two of its k places.
    by_id = np.argsort(candidates, axis=1, kind="stable")
    ordered = np.take_along_axis(candidates, by_id, axis=1)
    repeat = np.zeros(candidates.shape, dtype=bool)
    repeat[:, 1:] = (ordered[:, 1:] == ordered[:, :-1]) & (ordered[:, 1:] >= 0)
    np.put_along_axis(repeat, by_id, repeat.copy(), axis=1)
    candidates = np.where(repeat, -1, candidates)
    nb, ns = _keep_best(query_ids, candidates, candidate_sims(table, table.get(query_ids), candidates), k)
    return NeighbourLists(query_ids, nb, ns)


#: Queries whose candidates are gathered and made float32 at once in `candidate_sims`: 64 x 49
#: candidates of 1280 floats are 16 MB, which the allocator hands back block after block. One
#: gather for 8,192 queries was 2 GB, fresh pages each time: at 100,000 images the build spent
#: 268 of its 505 s there (most of it in page faults), and its peak memory was 4 GB.
RESCORE_BLOCK = 64


def candidate_sims(table: PreparedVectors, own: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """(m, c) cosines of each query's vector `own` (m, D) float32 with its candidate ids (m, c); -1 and absent ids: 0."""
    out = np.empty(candidates.shape, np.float32)
    rows = table.rows_of(candidates.ravel()).reshape(candidates.shape) if isinstance(table, VectorTable) else None
    for start in range(0, len(candidates), RESCORE_BLOCK):
        part = slice(start, start + RESCORE_BLOCK)
        # float16 -> float32 of the gathered rows is the dear step (products in float16 are slower still)
        if rows is not None and isinstance(table, VectorTable):
            others = table.vectors[np.maximum(rows[part], 0)].astype(np.float32)
        else:  # vectors read from the store as asked for (stored_vectors.StoredVectors)
            others = table.gather(candidates[part].ravel()).reshape(*candidates[part].shape, table.dim)
        out[part] = np.einsum("md,mcd->mc", own[part], others)
    return out


def approximate_lists(table: VectorTable, k: int, *, depth: int = BUILD_DEPTH, seed: int = 0) -> NeighbourLists:
    """Every image's list from an HNSW graph over a 128-d projection of the prepared vectors, rescored exactly.

    For a first build at or above `exact_below` images, where an exact
    all-pairs product would take hours.
    """
    from .graph import VectorGraph, faiss_module
    from .hashlayer import principal_directions

    rng = np.random.default_rng(seed)
    sample = table.vectors[np.sort(rng.choice(len(table), min(len(table), 50_000), replace=False))].astype(np.float32)
    mean = sample.mean(axis=0)
    basis, _ = principal_directions(sample - mean, 128)
    reduced = np.empty((len(table), basis.shape[1]), np.float32)
    for s in range(0, len(table), 4096):  # 20 MB of float32 at a time (a 65,536-row block was 335 MB of fresh pages)
        reduced[s : s + 4096] = _unit((table.vectors[s : s + 4096].astype(np.float32) - mean) @ basis)
    graph = VectorGraph.build(table.ids, reduced)
    faiss = faiss_module()
    params = faiss.SearchParametersHNSW()
    params.efSearch = max(depth, 64)
    parts = []
    for start in range(0, len(table), 8192):
        part = slice(start, start + 8192)
        # A batch of 8,192 walks shares out over every core (each walk is the same on any thread);
        # one query at a time stays on one (graph.VectorGraph.search says why).
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        try:
            _, nodes = graph.index.search(np.ascontiguousarray(reduced[part]), depth + 1, params=params)
        finally:
            faiss.omp_set_num_threads(1)
        parts.append(lists_from_candidates(table, table.ids[part], np.where(nodes >= 0, graph.ids[np.maximum(nodes, 0)], -1), k))
    return NeighbourLists(
        np.concatenate([p.ids for p in parts]),
        np.concatenate([p.neighbours for p in parts]),
        np.concatenate([p.similarities for p in parts]),
    )


def _unit(x: np.ndarray) -> np.ndarray:
    return unit_rows(x).astype(np.float32)


def build_lists(table: VectorTable, k: int, *, exact_below: int) -> NeighbourLists:
    """Every image's neighbour list: exactly below `exact_below` images, else by `approximate_lists`."""
    if len(table) < exact_below:
        return exact_lists(table, table.ids, k)
    log.info("neighbour lists of %d images from an approximate search", len(table))
    return approximate_lists(table, k)
