"""Candidate search over a loaded index: one interface, an exact and an LSH implementation.

Both take a query's packed code and re-ranking vector and return the best k
catalogue image ids with their cosine in the re-ranking space, so tests and
benchmarks can hold one against the other (imagededup keeps `BruteForce`
beside `BKTree`):

* `ExactSearch` ranks every image by the cosine of its re-ranking vector
  (chosen below `exact_below` images, where it is also faster);
* `GraphSearch` walks the catalogue's HNSW graph over the re-ranking vectors
  (graph.py) and re-ranks what it finds exactly (chosen above
  `exact_below` images where the catalogue keeps a graph);
* `LshSearch` probes the LSH buckets (multi-probe), ranks the candidates by
  the distance of their codes (Hamming: it measured better than the
  spherical Hamming distance), keeps the best M and re-ranks those by cosine;
  when the buckets give too few candidates it scans every code instead.

`choose_searcher` is the one place that picks between them. A store that
finds candidates itself (a database server with its own index) offers a
`Searcher` of its own instead; the engine's rescoring is the same for all.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Protocol

import numpy as np

from .config import EngineConfig
from .halves import widened
from .index import FittedIndex, IndexSnapshot
from .spherical import hamming, spherical_hamming


class Ranking(NamedTuple):
    """The best candidates for one query, best first."""

    ids: np.ndarray  # (k,) int64 catalogue image ids
    similarities: np.ndarray  # (k,) cosine in the re-ranking space
    candidates: int  # how many images were looked at
    method: str  # "exact", "lsh", "scan", "graph", "folder", "hnsw" (or a benchmark's own name)
    vectors: np.ndarray | None = None  # (k, R) float32 their re-ranking vectors, where the searcher had them at hand


class Searcher(Protocol):
    """What the search engine needs from an index, whoever holds it.

    A searcher whose `search` reads only the re-ranking vector says so with a class attribute
    `reads_code = False`: the query's spherical code is then not made for it (ranking.py). One that
    can answer query expansion's searches from the search before has a `search_near(ranking, vector, k)`
    returning a Ranking, or None where it searches anew (GraphSearch).
    """

    @property
    def fitted(self) -> FittedIndex:
        """The fit the stored codes and vectors were made with (queries are encoded with it)."""
        ...

    @property
    def ids(self) -> np.ndarray:
        """Every searchable image id, sorted."""
        ...

    def __len__(self) -> int: ...

    def search(self, code: np.ndarray, vector: np.ndarray, k: int) -> Ranking:
        """The best k images for a packed code (words,) and a re-ranking vector (R,)."""
        ...

    def codes(self, image_ids: np.ndarray) -> np.ndarray:
        """Packed codes (n, words) of searchable image ids."""
        ...

    def vectors(self, image_ids: np.ndarray) -> np.ndarray:
        """Re-ranking vectors (n, R) float32 of searchable image ids."""
        ...


def _top(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest values, largest first (stable for ties)."""
    k = min(k, len(values))
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    part = (-values).argpartition(k - 1)[:k] if k < len(values) else np.arange(len(values))
    return part[(-values[part]).argsort(kind="stable")]  # the methods: NumPy's functions add a wrapper a call


class SnapshotSearcher:
    """What the in-memory searchers share: a loaded `IndexSnapshot` and lookups by id."""

    def __init__(self, snapshot: IndexSnapshot):
        self.snapshot = snapshot

    @property
    def fitted(self) -> FittedIndex:
        return self.snapshot.fitted

    @property
    def ids(self) -> np.ndarray:
        return self.snapshot.ids

    def __len__(self) -> int:
        return len(self.snapshot)

    def _rows(self, image_ids: np.ndarray) -> np.ndarray:
        rows = self.snapshot.rows_of(np.atleast_1d(np.asarray(image_ids, dtype=np.int64)))
        if (rows < 0).any():
            raise KeyError(f"image ids not in the index: {np.asarray(image_ids)[rows < 0][:5].tolist()}")
        return rows

    def codes(self, image_ids: np.ndarray) -> np.ndarray:
        return self.snapshot.codes[self._rows(image_ids)]

    def vectors(self, image_ids: np.ndarray) -> np.ndarray:
        return widened(self.snapshot.vectors[self._rows(image_ids)])


class ExactSearch(SnapshotSearcher):
    """Brute force: cosine with every re-ranking vector."""

    reads_code = False

    def __init__(self, snapshot: IndexSnapshot):
        super().__init__(snapshot)
        self._vectors = snapshot.vectors.astype(np.float32)  # float16 products are ~30x slower

    def search(self, code: np.ndarray, vector: np.ndarray, k: int) -> Ranking:
        sims = self._vectors @ vector.astype(np.float32)
        top = _top(sims, k)
        return Ranking(self.snapshot.ids[top], sims[top], len(sims), "exact")


class LshSearch(SnapshotSearcher):
    """LSH candidates -> code distance (Hamming by default) -> best M -> cosine re-rank."""

    def __init__(self, snapshot: IndexSnapshot, *, rerank_depth: int, probe_radius: int, code_distance: str = "hamming"):
        super().__init__(snapshot)
        self.rerank_depth = rerank_depth
        self.probe_radius = probe_radius
        if code_distance not in ("hamming", "spherical"):
            raise ValueError(f"unknown code distance {code_distance!r} (choose hamming or spherical)")
        self._distance = hamming if code_distance == "hamming" else spherical_hamming

    def search(self, code: np.ndarray, vector: np.ndarray, k: int) -> Ranking:
        snap = self.snapshot
        depth = min(max(self.rerank_depth, k), len(snap))
        rows, _ = snap.lsh_tables().probe(code, enough=depth, max_radius=self.probe_radius)
        method = "lsh"
        if len(rows) < depth:  # thin buckets: scan every code instead
            rows = np.arange(len(snap), dtype=np.int64)
            method = "scan"
        candidates = len(rows)
        if len(rows) > depth:
            distances = self._distance(code, snap.codes[rows])
            rows = rows[np.argpartition(distances, depth - 1)[:depth]]
        sims = snap.vectors[rows].astype(np.float32) @ vector.astype(np.float32)
        top = _top(sims, k)
        return Ranking(snap.ids[rows[top]], sims[top], candidates, method)


class GraphSearch(SnapshotSearcher):
    """Candidates from the catalogue's HNSW graph over the re-ranking vectors (graph.py), re-ranked exactly.

    Images the graph does not cover yet (added by a writer that kept no
    graph) are scanned exactly beside it; nodes of images removed since the
    graph was written are skipped.

    The walk is `max(effort, effort_share * nodes asked)` wide (graph.py
    `search_nodes`: the best k of the nodes the walk saw), not k wide.

    Query expansion's searches (ranking.py) may rank the candidates of the
    search before by the expanded query instead of walking again
    (`search_near`; `walk_again`: never): a walk costs ~0.3 ms at 1M, and a
    walk from the expanded query found ~3 more of ~200 candidates there.
    """

    reads_code = False

    def __init__(self, snapshot: IndexSnapshot, *, candidates: int, effort: int, effort_share: float = 0.0,
                 walk_again: bool = False):
        super().__init__(snapshot)
        self.effort_share = effort_share
        self.walk_again = walk_again
        graph = snapshot.graph
        if graph is None:
            raise ValueError("this catalogue keeps no graph")
        self.graph = graph
        self.candidates = candidates
        self.effort = effort
        covered = np.zeros(len(snapshot), dtype=bool)
        # the snapshot row of each graph node (-1: a removed image), so a search maps nodes in one lookup
        self._node_rows = np.append(snapshot.rows_of(graph.ids), -1)
        rows = self._node_rows[:-1]
        covered[rows[rows >= 0]] = True
        self.uncovered = np.flatnonzero(~covered)
        live = int(covered.sum())
        # ask for more nodes when some of them belong to removed images
        self._ask_factor = len(graph) / max(live, 1)

    def search(self, code: np.ndarray, vector: np.ndarray, k: int) -> Ranking:
        snap = self.snapshot
        depth = min(max(self.candidates, k), len(snap))
        ask = min(len(self.graph), math.ceil(depth * self._ask_factor))
        effort = max(self.effort, math.ceil(self.effort_share * ask))  # share 1.0: as wide as the nodes asked, as before
        rows = self._node_rows[self.graph.search_nodes(vector, ask, effort)]  # a -1 pad maps to -1 too
        rows = rows[rows >= 0]
        if len(self.uncovered):
            rows = np.unique(np.concatenate([rows, self.uncovered]))
        elif self._ask_factor > 1.0:  # an id reused after a removal can sit at two nodes
            rows = np.unique(rows)
        vectors = widened(snap.vectors[rows])
        sims = vectors @ np.asarray(vector, dtype=np.float32)
        top = _top(sims, k)
        return Ranking(snap.ids[rows[top]], sims[top], len(rows), "graph", vectors[top])

    def search_near(self, near: Ranking, vector: np.ndarray, k: int) -> Ranking | None:
        """The best k of `near`'s candidates (a search's) by cosine with another query's re-ranking vector (R,);
        None where query expansion walks again (`walk_again`)."""
        if self.walk_again:
            return None
        vectors = self.vectors(near.ids) if near.vectors is None else near.vectors
        sims = vectors @ np.asarray(vector, dtype=np.float32)
        top = _top(sims, k)
        return Ranking(near.ids[top], sims[top], near.candidates, near.method, vectors[top])


def vectors_among(searcher: Searcher, image_ids: np.ndarray, rankings: list[Ranking]) -> np.ndarray:
    """Re-ranking vectors (n, R) float32 of searchable ids, taken from the rankings' `vectors` (a walk's, widened
    already) where they hold them, else read: the same values either way (~60 µs a search at 1M, where the
    walk's candidates are every id asked but the query's own and its pHash neighbours)."""
    image_ids = np.asarray(image_ids, dtype=np.int64)
    out, missing = None, np.arange(len(image_ids))
    for ranking in rankings:
        if ranking.vectors is None or not len(missing) or not len(ranking.ids):
            continue
        order = ranking.ids.argsort()
        at = order[np.minimum(np.searchsorted(ranking.ids, image_ids[missing], sorter=order), len(order) - 1)]
        hit = ranking.ids[at] == image_ids[missing]
        if out is None:
            out = np.empty((len(image_ids), ranking.vectors.shape[1]), dtype=np.float32)
        out[missing[hit]] = ranking.vectors[at[hit]]
        missing = missing[~hit]
    if out is None:
        return searcher.vectors(image_ids)
    if len(missing):
        out[missing] = searcher.vectors(image_ids[missing])
    return out


#: A graph that leaves more images than this to an exact scan beside it is not
#: used (an update that kept no graph): the LSH probe is faster then.
GRAPH_UNCOVERED_LIMIT = 2_000


def choose_searcher(snapshot: IndexSnapshot, config: EngineConfig) -> ExactSearch | LshSearch | GraphSearch:
    """The in-memory searcher for a snapshot: exact below `config.exact_below` images, the graph above
    (where the catalogue keeps one that covers it), else LSH.

    Measured: below about 20,000 images scanning every vector is as fast as
    probing buckets and never misses; above, the graph finds candidates 4-15x
    faster than the LSH probe at a higher recall (bench/bench_scale.py).
    """
    if len(snapshot) < config.exact_below:
        return ExactSearch(snapshot)
    if snapshot.graph is not None:
        graph = GraphSearch(snapshot, candidates=config.graph_candidates, effort=config.graph_effort,
                            effort_share=config.graph_effort_share, walk_again=config.graph_walk_again)
        if len(graph.uncovered) <= GRAPH_UNCOVERED_LIMIT:
            return graph
    return LshSearch(
        snapshot,
        rerank_depth=config.rerank_depth,
        probe_radius=config.probe_radius,
        code_distance=config.code_distance,
    )
