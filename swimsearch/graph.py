"""A navigable small-world graph (HNSW) over the re-ranking vectors: the candidate stage at scale.

The LSH bucket tables stay the design's persisted index; above a few tens of
thousands of images this graph finds candidates faster at a higher recall
(the LSH probe took 1.9-2.1 ms at 1M). Doing the pipeline's job at 1M
synthetic images (200 candidates a search, the final top 10 at recall@10
>= 0.98 of the exact path), both single-threaded and timed on the searches
the pipeline makes (bench/bench_depth.py, docs/BENCHMARKS.md, round 6): this
graph 0.37-0.41 ms walking 200 wide, FAISS's binary HNSW on our 128-bit
codes 0.44-0.51 ms at its fastest setting (0.76-0.83 x); only our graph also
holds the page of 50 (a float vector keeps more of the neighbourhood than
its 128-bit code). hnswlib walks such a graph faster but keeps float32
vectors (661 MB at 1M), saves only to a file of its own and ships no wheel.
The walk is memory-bound: float16 or float32 vectors in the graph walked
within 3 % of these 8-bit ones.

The graph is FAISS's `IndexHNSWSQ` with 8-bit scalar-quantised vectors
(M=16): 280 bytes a node beside the snapshot's float16 vectors, which
re-rank its candidates exactly. It is persisted in the catalogue (written in
the same transaction as the codes it covers) and streamed back a part at a
time. Nodes are numbered in insertion order; `ids` maps them to image ids.
Images removed since the graph was written stay in it as nodes whose id is
no longer searchable and are skipped; images added are inserted on each
update (FAISS's HNSW inserts incrementally); once a quarter of the nodes are
gone the update rebuilds it (`needs_rebuild`).
"""

from __future__ import annotations

import logging
import os
from typing import Any, Callable, Iterable, Iterator

import numpy as np

log = logging.getLogger(__name__)

#: FAISS index: HNSW with 16 neighbours a node over 8-bit scalar-quantised
#: vectors: 280 bytes a node at 1M against 661 for float32 ones (hnswlib),
#: at a recall the exact re-ranking of its candidates makes up for.
FACTORY = "HNSW16,SQ8"
#: Candidates walked while inserting a node (efConstruction).
BUILD_EFFORT = 64
#: Rebuild once this share of the graph's nodes has left the catalogue.
STALE_SHARE = 0.25
#: Serialised parts of at most this many bytes (one stored row each).
PART_BYTES = 16 << 20


def faiss_module() -> Any:
    """FAISS, imported on first use (the app starts without it; small catalogues never need it)."""
    import faiss

    return faiss


class VectorGraph:
    """An HNSW graph over L2-normalised re-ranking vectors, with the image id of each node.

    Args:
        index: the FAISS index (inner product).
        ids: (nodes,) int64 image id of each node, in insertion order.
    """

    def __init__(self, index: Any, ids: np.ndarray):
        self.index = index
        self._walks: dict[int, Any] = {}  # FAISS's search parameters by walk width, made once (read-only in a walk)
        self.ids = np.asarray(ids, dtype=np.int64)
        if int(index.ntotal) != len(self.ids):
            raise ValueError(f"the graph has {index.ntotal} nodes but {len(self.ids)} ids")

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def build(cls, ids: np.ndarray, vectors: np.ndarray, *, threads: int = 0, chunk: int = 65536) -> "VectorGraph":
        """A new graph over (n, R) vectors (any float dtype) with their image ids."""
        faiss = faiss_module()
        dim = vectors.shape[1]
        index = faiss.index_factory(dim, FACTORY, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = BUILD_EFFORT
        sample = vectors[np.linspace(0, len(vectors) - 1, min(len(vectors), 100_000)).astype(np.int64)]
        index.train(np.ascontiguousarray(sample, dtype=np.float32))
        graph = cls(index, np.empty(0, np.int64))
        graph.add(ids, vectors, threads=threads, chunk=chunk)
        return graph

    def add(self, ids: np.ndarray, vectors: np.ndarray, *, threads: int = 0, chunk: int = 65536) -> None:
        """Insert nodes for new images (the graph's training is kept)."""
        faiss = faiss_module()
        faiss.omp_set_num_threads(threads or os.cpu_count() or 1)
        try:
            for start in range(0, len(ids), chunk):
                self.index.add(np.ascontiguousarray(vectors[start : start + chunk], dtype=np.float32))
        finally:
            faiss.omp_set_num_threads(1)
        self.ids = np.concatenate([self.ids, np.asarray(ids, dtype=np.int64)])

    def search(self, vector: np.ndarray, k: int, effort: int) -> np.ndarray:
        """Image ids of about the k nodes nearest to a query vector (R,), best first; -1 pads."""
        nodes = self.search_nodes(vector, k, effort)
        return np.where(nodes >= 0, self.ids[np.maximum(nodes, 0)], -1)

    def search_nodes(self, vector: np.ndarray, k: int, effort: int) -> np.ndarray:
        """Nodes (k,) nearest to a query vector (R,) found by a walk `effort` wide, best first; -1 pads.

        The walk's width is `effort` whatever k is: FAISS keeps max(effort, k)
        candidates but stops once `effort` of them are nearer than the next
        step, and returns the best k it saw. The caller chooses the width
        (GraphSearch: as wide as the nodes asked by default): at 100,000
        images the final top 10 kept recall 0.98 with a walk 32-48 wide for
        200 candidates, at 1M only with one 200 wide (bench/bench_depth.py,
        docs/BENCHMARKS.md).
        """
        faiss = faiss_module()
        # One query walks one path: more OpenMP threads only wake and spin (on
        # two busy cores FAISS ran tens of times slower on two threads than on
        # one). The setting holds for the calling thread.
        faiss.omp_set_num_threads(1)
        params = self._walks.get(effort)
        if params is None:
            params = faiss.SearchParametersHNSW()
            params.efSearch = effort
            self._walks[effort] = params  # set before it is shared
        _, nodes = self.index.search(np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1), k, params=params)
        return nodes[0]

    def stale_share(self, searchable: np.ndarray) -> float:
        """The share of nodes that no longer stand for a searchable image (`searchable`: sorted ids):
        removed images, and the older nodes of images inserted again with a new vector."""
        if not len(self.ids):
            return 0.0
        at = np.minimum(np.searchsorted(searchable, self.ids), max(len(searchable) - 1, 0))
        live = (searchable[at] == self.ids) if len(searchable) else np.zeros(len(self.ids), bool)
        return 1.0 - len(np.unique(self.ids[live])) / len(self.ids)

    def needs_rebuild(self, searchable: np.ndarray) -> bool:
        return self.stale_share(searchable) >= STALE_SHARE

    # --- persistence --------------------------------------------------------------

    def parts(self, part_bytes: int = PART_BYTES) -> Iterator[bytes]:
        """The serialised index in parts of at most `part_bytes` (a store keeps them in order)."""
        faiss = faiss_module()
        out: list[bytes] = []
        pending: list[bytes] = []
        size = 0

        def write(data: Any) -> int:
            nonlocal size
            pending.append(bytes(data))
            size += len(data)
            if size >= part_bytes:
                joined = b"".join(pending)
                pending.clear()
                size = 0
                for start in range(0, len(joined), part_bytes):
                    out.append(joined[start : start + part_bytes])
            return len(data)

        writer = faiss.PyCallbackIOWriter(write, 1 << 20)
        faiss.write_index(self.index, writer)
        del writer  # flushes
        if pending:
            out.append(b"".join(pending))
        return iter(out)

    @classmethod
    def from_parts(cls, parts: Iterable[bytes | memoryview], ids: np.ndarray) -> "VectorGraph":
        """A graph again from its serialised parts (read one part at a time) and node ids.

        `parts` is read to its end (a checking stream, graph_check.checked_parts,
        finishes its checks there) and must hold nothing past the index: only
        then is the graph returned. An error raised while FAISS reads comes
        out as it was raised.
        """
        faiss = faiss_module()
        source = iter(parts)
        buffer = memoryview(b"")
        failed: list[BaseException] = []

        def read(n: int) -> bytes:
            nonlocal buffer
            chunks = []
            try:
                while n > 0:
                    if not len(buffer):
                        nxt = next(source, None)
                        if nxt is None:
                            break
                        buffer = memoryview(nxt)
                    take = buffer[:n]
                    chunks.append(bytes(take))
                    buffer = buffer[len(take) :]
                    n -= len(take)
            except Exception as exc:  # FAISS would report it as a short read
                failed.append(exc)
                return b""
            return b"".join(chunks)

        try:
            # read_index gives the concrete class (IndexHNSWSQ); downcasting it again
            # would give a view that does not own the index
            index = faiss.read_index(faiss.PyCallbackIOReader(read, 1 << 20))
        except Exception:
            if failed:
                raise failed[0] from None
            raise
        if failed:
            raise failed[0]
        if len(buffer) or any(len(rest) for rest in source):
            raise ValueError("goes on past its end")  # as graph_check says it
        return cls(index, ids)


def next_graph(
    graph: VectorGraph | None,
    old_ids: np.ndarray,
    old_vectors: np.ndarray,
    new_ids: np.ndarray,
    new_vectors: np.ndarray,
) -> VectorGraph:
    """The graph after an update: `graph` with the new images inserted, or a new one.

    Args:
        graph: the catalogue's graph before the update (None: it kept none).
        old_ids, old_vectors: the images searchable before the update that
            still are (sorted ids), with their re-ranking vectors.
        new_ids, new_vectors: the images the update made searchable.

    A new graph is built when there was none or when a quarter of its nodes
    belong to images no longer searchable; otherwise the new images are
    inserted (the graph object is changed and returned).
    """
    if graph is not None and not graph.needs_rebuild(np.union1d(old_ids, new_ids)):
        graph.add(new_ids, new_vectors)  # an id reused after a removal or read again gets a node of its own too
        return graph
    # an image read again (catalogue format 2) is searchable with its old code
    # until the new one is committed: it is in both, and only its new vector counts
    kept = ~np.isin(old_ids, new_ids)
    old_ids, old_vectors = old_ids[kept], old_vectors[kept]
    log.info("building the search graph over %d images", len(old_ids) + len(new_ids))
    ids = np.concatenate([old_ids, new_ids])
    vectors = np.concatenate([old_vectors, new_vectors.astype(old_vectors.dtype)]) if len(old_ids) else new_vectors
    return VectorGraph.build(ids, vectors)
