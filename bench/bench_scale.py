"""Search at 10k, 100k and 1M images, next to a NumPy scan, FAISS and hnswlib, and opening a 1M catalogue.

Synthetic clustered embeddings (real clothing embeddings as design centres,
variants spread along the data's own principal directions) are written into
real catalogue files (through the store's writer) and pushed through the real
hash layer, spheres, LSH tables and search graph (`refit_catalogue`). For each
size, in a fresh process:
  * time to open the catalogue (load codes, vectors, buckets, graph), open +
    first search, and peak memory;
  * per query, the candidate stage alone and the search (embedding in, ranked
    top 10 out, scored as shown), timed method by method in turns, for:
    the app's default (exact below 20,000 images, the HNSW graph above), our
    LSH multi-probe, an exhaustive NumPy XOR+popcount scan, and peers on the
    very same data: FAISS IndexBinaryFlat and IndexBinaryHNSW (k=200
    candidates, efSearch swept) on the same 128-bit codes, and hnswlib on the
    same 128-d re-ranking vectors (ef swept); every peer single-threaded,
    as ours is (FAISS: faiss.omp_set_num_threads(1));
  * recall@10 of each against exact cosine on the full embeddings;
  * our candidate stage against the fastest setting of each peer that
    reaches recall@10 >= 0.98, and the work after the candidate stage.

What is compared, exactly: every method does the same job, the pipeline
(query, then expanded query) asking each candidate search for the same
number of candidates (200: `rescore_depth`) and ranking the same final top
10, recall@10 counted against that pipeline on the exact path. Ours walks
its HNSW16,SQ8 graph over the 128-d re-ranking vectors max(48, 1.0 x 200)
= 200 wide at the app's defaults (`graph_effort`, `graph_effort_share`: at
1M a narrower walk lost recall) and, beside it, at the widths the top 10
alone needed at 100,000 images (32, 48, 64: "ours graph walk=W"); FAISS
IndexBinaryHNSW fetches the 200 nearest 128-bit codes by Hamming distance,
efSearch 16-256; both re-rank by the same vectors and hand on the same
200. The ratio line takes each side's fastest setting at recall@10 >= 0.98.
bench_depth.py sweeps the depth a search asks for, the walk width and the
peer's fetch on one catalogue (what the top 10 and the page of 50 need).
With --tune, graph settings (and LSH layouts given with --lsh) are swept on the largest catalogue in memory.

    pip install -e .[bench]                    # hnswlib (and faiss-cpu, which the app needs anyway)
    python bench/bench_scale.py                # 10k, 100k, 1M (about 40 minutes, 7 GB of disk)
    python bench/bench_scale.py --sizes 1000000 --reuse --tune
    python bench/bench_scale.py --sizes 100000 --reuse --work /work/cache/scale --peers faiss --baseline MAIN_TREE
    # a catalogue someone else keeps, measured without writing beside it (the catalogue is opened
    # read-only; the peers' indexes are built once into the --work folder, beside the link):
    mkdir -p W && ln -s /work/cache/scale1m/synthetic-1000000.swimcat W/ && cp /work/cache/scale1m/scale-truth-1000000.npy W/
    python bench/bench_scale.py --sizes 1000000 --reuse --work W --peers faiss

The catalogues name the fp32 trunk (the synthetic embeddings are drawn from
its outputs), so its shipped calibration scores every match as for a user.
Each candidate search is timed at the depth the pipeline asks for (200,
twice a query: the query, then expanded); recall@10 is counted against the
same pipeline on the exact path (the ranking is no longer exact cosine since
issue 11) and, beside it, against exact cosine. --baseline times whole
searches with another source tree's code in alternating fresh processes.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from common import ROOT, WORK, median, percentile, run_with_tree, save, table

import numpy as np

from swimsearch.build import refit_catalogue
from swimsearch.catalogue import Catalogue
from swimsearch.config import EngineConfig
from swimsearch.model import card_sha256
from swimsearch.ranking import RESCORE_MARGIN
from swimsearch.search import SearchEngine
from swimsearch.searchers import ExactSearch, GraphSearch, Ranking, SnapshotSearcher, _top, choose_searcher
from swimsearch.spherical import hamming
from swimsearch.stores import ModelInfo, NewImage

CHUNK = 50_000
QUERIES = 200
NEIGHBOURS = 20
NOISE = 0.1


class Synthetic:
    """Deterministic clustered embeddings, generated chunk by chunk (never all in memory).

    Each point lies between a real clothing embedding and one of its 20 nearest
    real neighbours (a variant of a design drifting towards a similar one),
    plus a little noise along the data's own principal directions. Points so
    made keep the real neighbourhood structure, with distances that vary as
    real ones do; isotropic Gaussian clusters would not (in high dimensions all
    their members sit at about the same distance, so "the" top 10 is arbitrary).
    """

    def __init__(self, centres: np.ndarray, seed: int = 0):
        self.centres = centres.astype(np.float32)
        mean = centres.mean(axis=0)
        unit = centres - mean
        unit /= np.linalg.norm(unit, axis=1, keepdims=True)
        sims = unit @ unit.T
        np.fill_diagonal(sims, -np.inf)
        self.neighbours = np.argsort(-sims, axis=1)[:, :NEIGHBOURS]
        _, s, vt = np.linalg.svd(centres - mean, full_matrices=False)
        keep = 64
        self.directions = (vt[:keep] * (s[:keep, None] / np.sqrt(len(centres)))).astype(np.float32)
        self.seed = seed

    def chunk(self, number: int, size: int = CHUNK) -> np.ndarray:
        rng = np.random.default_rng([self.seed, number])
        which = rng.integers(len(self.centres), size=size)
        towards = self.neighbours[which, rng.integers(NEIGHBOURS, size=size)]
        beta = rng.uniform(0.0, 0.5, size=(size, 1)).astype(np.float32)
        noise = rng.standard_normal((size, len(self.directions))).astype(np.float32) @ self.directions
        return (1 - beta) * self.centres[which] + beta * self.centres[towards] + NOISE * noise

    def queries(self) -> np.ndarray:
        return self.chunk(10_000_000, QUERIES)


#: The team's shared cache of the clothing photos' fp32 embeddings (see TEAM_RULES):
#: fixed data, so every run (and every machine with the cache) makes the same
#: synthetic catalogues whatever model bench_build.py last built with.
SHARED_EMBEDDINGS = ROOT.parent.parent / "cache" / "clothing-fp32.npz"
#: The model those embeddings come from (the catalogues name it; see write_catalogue).
SYNTHETIC_MODEL = ROOT / "models" / "efficientnet-lite2-trunk.onnx"


def real_centres() -> np.ndarray:
    """Embeddings of the labelled clothing photos: the shared cache, else the catalogue bench_build.py built."""
    if SHARED_EMBEDDINGS.exists():
        cached = np.load(SHARED_EMBEDDINGS)
        labelled = np.char.startswith(cached["names"].astype(str), "images/")
        return cached["embeddings"][labelled].astype(np.float32)
    path = WORK / "clothing.swimcat"
    if path.exists():
        with Catalogue.open(path) as catalogue:
            return np.concatenate([part.vectors for part in catalogue.iter_embeddings()])
    raise SystemExit("run bench/bench_build.py first (it builds bench/work/clothing.swimcat)")


def write_catalogue(path, synthetic: Synthetic, size: int, config: EngineConfig) -> dict:
    """A real catalogue file holding `size` synthetic images, fitted and indexed."""
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    root = path.parent / "synthetic-root"
    root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    rng = np.random.default_rng(99)
    with Catalogue.create(path, root) as catalogue:
        writer = catalogue.writer()
        # The synthetic embeddings are drawn from the fp32 trunk's, so the catalogue names that model: its
        # shipped calibration then scores the matches, as it does for a user (a model SwimSearch does not
        # ship would skip the calibrated scoring, the dearest part of the work after the candidate stage).
        writer.set_model(ModelInfo(name=SYNTHETIC_MODEL.name, sha256=card_sha256(SYNTHETIC_MODEL), dim=synthetic.centres.shape[1]))
        written = 0
        number = 0
        while written < size:
            block = synthetic.chunk(number)[: size - written]
            phashes = rng.integers(0, 2**63, len(block), dtype=np.int64)
            ids = writer.add_batch([
                NewImage(f"synthetic/{written + i + 1:07d}.jpg", 0, 0.0, 1, 1, int(phashes[i]), embedding=vector)
                for i, vector in enumerate(block)
            ])
            assert ids[0] == written + 1 and ids[-1] == written + len(block)  # ground truth counts ids from 1
            written += len(block)
            number += 1
        write_s = time.perf_counter() - started
        started = time.perf_counter()
        refit_catalogue(writer, config)
        index_s = time.perf_counter() - started
    return {"write_s": write_s, "index_s": index_s, "file_gb": path.stat().st_size / 1e9}


def ground_truth(synthetic: Synthetic, size: int, mean: np.ndarray) -> np.ndarray:
    """Ids (1-based) of the exact-cosine top 10 for each query, streaming over the catalogue."""
    queries = synthetic.queries() - mean
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    best_scores = np.full((len(queries), 10), -np.inf, dtype=np.float32)
    best_ids = np.zeros((len(queries), 10), dtype=np.int64)
    written, number = 0, 0
    while written < size:
        block = synthetic.chunk(number)[: size - written] - mean
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        sims = queries @ block.T
        ids = np.arange(written + 1, written + len(block) + 1)
        scores = np.concatenate([best_scores, sims], axis=1)
        all_ids = np.concatenate([best_ids, np.broadcast_to(ids, sims.shape)], axis=1)
        top = np.argsort(-scores, axis=1)[:, :10]
        best_scores = np.take_along_axis(scores, top, axis=1)
        best_ids = np.take_along_axis(all_ids, top, axis=1)
        written += len(block)
        number += 1
    return best_ids


# --- candidate generators sharing the engine's Searcher signature ---------------------------
#
# Every peer runs single-threaded (FAISS: omp_set_num_threads(1); hnswlib:
# set_num_threads(1)), as our search does: on a shared 2-core machine a FAISS
# on two OpenMP threads ran 70x slower than on one, which is no fair peer.


class ScanSearch(SnapshotSearcher):
    """Exhaustive NumPy scan (XOR + popcount) of every code, then the same re-ranking."""

    def __init__(self, snapshot, depth: int):
        super().__init__(snapshot)
        self.depth = depth

    def search(self, code, vector, k) -> Ranking:
        snap = self.snapshot
        depth = min(max(self.depth, k), len(snap))
        distances = hamming(code, snap.codes)
        rows = np.argpartition(distances, depth - 1)[:depth]
        return rerank(snap, rows, vector, k, "numpy-scan", len(snap))


class RecordingExact(ExactSearch):
    """The exact path, keeping the (code, vector) of every search the pipeline asks of it.

    The candidate stage is timed on these: the queries the pipeline really
    searches (each embedding prepared as the fit wants it, then the query
    expanded with its best results). Timing `fitted.codes(embeddings)` of raw
    trunk embeddings, as these benches did before, times queries an augmented
    fit never searches with (their vectors sat 0.69 cosine from the prepared
    ones and 0.5 from each other): at 1M that made FAISS IndexBinaryHNSW's
    walks half as long as on the real queries, and ours a little longer.
    """

    reads_code = True  # it records the code for the binary peers

    def __init__(self, snapshot):
        super().__init__(snapshot)
        self.asked: list[tuple[np.ndarray, np.ndarray]] = []

    def search(self, code, vector, k) -> Ranking:
        self.asked.append((np.array(code, copy=True), np.array(vector, dtype=np.float32, copy=True)))
        return super().search(code, vector, k)

    def searches(self) -> tuple[np.ndarray, np.ndarray]:
        """(codes (s, words), vectors (s, R)) of the searches asked so far, in order."""
        return np.stack([c for c, _ in self.asked]), np.stack([v for _, v in self.asked])


def pipeline_searches(catalogue, config, snap, queries, top_n: int = 10) -> tuple[list[list[int]], np.ndarray, np.ndarray]:
    """The pipeline's final lists on the exact path, and the candidate searches it made (codes, vectors)."""
    exact = RecordingExact(snap)
    engine = SearchEngine(catalogue, None, config, searcher=exact)
    lists = [[m.image_id for m in engine.search_embeddings(q[None], top_n=top_n).matches] for q in queries]
    return lists, *exact.searches()


def rerank(snap, rows, vector, k, method, looked_at) -> Ranking:
    """The best k of candidate rows by cosine of their re-ranking vectors (what our searchers do too)."""
    rows = rows[rows >= 0]
    sims = snap.vectors[rows].astype(np.float32) @ vector.astype(np.float32)
    top = _top(sims, k)
    return Ranking(snap.ids[rows[top]], sims[top], looked_at, method)


class FaissSearch(SnapshotSearcher):
    """FAISS IndexBinaryFlat (plain Hamming) over the same codes, then the same re-ranking."""

    def __init__(self, snapshot, depth: int):
        import faiss

        super().__init__(snapshot)
        self.depth = depth
        self.index = faiss.IndexBinaryFlat(snapshot.codes.shape[1] * 64)
        self.index.add(np.ascontiguousarray(snapshot.codes).view(np.uint8))

    def search(self, code, vector, k) -> Ranking:
        depth = min(max(self.depth, k), len(self.snapshot))
        _, found = self.index.search(np.ascontiguousarray(code.reshape(1, -1)).view(np.uint8), depth)
        return rerank(self.snapshot, found[0], vector, k, "faiss-binary-flat", len(self.snapshot))


class FaissHnswSearch(SnapshotSearcher):
    """FAISS IndexBinaryHNSW over the same 128-bit codes: k=200 candidates by Hamming, then the same re-ranking."""

    CANDIDATES = 200

    def __init__(self, snapshot, index, effort: int):
        super().__init__(snapshot)
        self.index = index
        self.effort = effort

    def search(self, code, vector, k) -> Ranking:
        import faiss

        params = faiss.SearchParametersHNSW()
        params.efSearch = self.effort
        _, found = self.index.search(np.ascontiguousarray(code.reshape(1, -1)).view(np.uint8), self.CANDIDATES,
                                     params=params)
        return rerank(self.snapshot, found[0], vector, k, f"faiss-binary-hnsw-ef{self.effort}", self.CANDIDATES)


class HnswlibSearch(SnapshotSearcher):
    """hnswlib over the same 128-d re-ranking vectors (inner product): its top k is the ranking."""

    def __init__(self, snapshot, index, effort: int):
        super().__init__(snapshot)
        self.index = index
        self.effort = effort

    def search(self, code, vector, k) -> Ranking:
        self.index.set_ef(max(self.effort, k))
        rows, distances = self.index.knn_query(vector.reshape(1, -1), k=k)
        return Ranking(self.snapshot.ids[rows[0].astype(np.int64)], 1.0 - distances[0], k, f"hnswlib-ef{self.effort}")


def faiss_binary_hnsw(snap, cache) -> tuple[object, float]:
    """IndexBinaryHNSW (M=16, efConstruction 64) over the snapshot's codes, built once and kept in `cache`."""
    import faiss

    if cache.exists():
        return faiss.read_index_binary(str(cache)), 0.0
    started = time.perf_counter()
    faiss.omp_set_num_threads(os.cpu_count() or 1)  # building is not what is compared
    index = faiss.IndexBinaryHNSW(snap.codes.shape[1] * 64, 16)
    index.hnsw.efConstruction = 64
    index.add(np.ascontiguousarray(snap.codes).view(np.uint8))
    faiss.omp_set_num_threads(1)
    faiss.write_index_binary(index, str(cache))
    return index, time.perf_counter() - started


def hnswlib_index(snap, cache) -> tuple[object, float]:
    """hnswlib (M=16, ef_construction 100, inner product) over the snapshot's vectors, kept in `cache`."""
    import hnswlib

    index = hnswlib.Index(space="ip", dim=snap.vectors.shape[1])
    if cache.exists():
        index.load_index(str(cache))
        index.set_num_threads(1)
        return index, 0.0
    started = time.perf_counter()
    index.init_index(max_elements=len(snap), M=16, ef_construction=100)
    index.set_num_threads(os.cpu_count() or 1)  # building is not what is compared
    for start in range(0, len(snap), CHUNK):
        part = snap.vectors[start : start + CHUNK].astype(np.float32)
        index.add_items(part, np.arange(start, start + len(part)))
    index.set_num_threads(1)
    index.save_index(str(cache))
    return index, time.perf_counter() - started


def peak_memory_mb() -> float:
    """Peak resident memory of this process (VmHWM; ru_maxrss would include the parent's before exec)."""
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


PASSES = 3
GRAPH_WIDTHS = (32, 48, 64)
FAISS_EFFORTS = (16, 32, 64, 128, 256)
HNSWLIB_EFFORTS = (16, 40, 100)


def measure(path: str, queries_file: str, truth_file: str, peers: str) -> dict:
    """Run in a fresh process: open + first search, peak memory, per-query search time and recall per method.

    Each method runs over all queries in turn, in an order that rotates over
    `PASSES` passes (A B C, B C A, C A B), so that the load of a shared
    machine falls on all of them alike; medians are over every pass.
    """
    queries = np.load(queries_file)
    truth = np.load(truth_file)
    started = time.perf_counter()
    catalogue = Catalogue.open(path, readonly=True)  # measuring never writes it (a shared 1M file stays as built)
    config = EngineConfig()
    # What SearchEngine(catalogue, None, config) does, with the snapshot kept
    # here so that the comparisons below search the very same arrays.
    snap = catalogue.load_snapshot()
    app = choose_searcher(snap, config)
    engine = SearchEngine(catalogue, None, config, searcher=app)
    open_s = time.perf_counter() - started
    engine.search_embeddings(queries[0][None], top_n=10)
    first_s = time.perf_counter() - started
    open_peak = peak_memory_mb()
    out = {"open_s": open_s, "open_and_first_search_s": first_s, "open_peak_mb": open_peak, "images": len(snap),
           "app_searcher": type(app).__name__, "methods": {}, "builds_s": {}}
    # A first pass right after opening reads the rescored embeddings from disk
    # (or the OS cache); it is reported on its own.
    cold = []
    for q in queries:
        t0 = time.perf_counter()
        engine.search_embeddings(q[None], top_n=10)
        cold.append((time.perf_counter() - t0) * 1000)
    out["first_pass_ms_median"] = median(cold)
    out["app_peak_mb"] = peak_memory_mb()  # before the comparison methods add their own memory
    # Since issue 11 the ranking is not exact cosine (augmented vectors, query expansion, bands), so an
    # index's recall is measured against the very same pipeline on the exact path (every re-ranking
    # vector scanned); recall against exact cosine of the embeddings is printed beside it.
    # The same run keeps the searches the pipeline made (the query, then expanded): the stage is timed on those.
    pipeline_truth, codes, vectors = pipeline_searches(catalogue, config, snap, queries)
    methods: dict[str, SnapshotSearcher] = {"ours (app default)": app}
    no_graph = dataclasses.replace(snap, graph=None)
    if not isinstance(app, ExactSearch):
        methods["ours (LSH path)"] = choose_searcher(no_graph, config)
        if len(snap) <= 200_000:  # where the switch to exact search would still be affordable
            methods["ours (exact path)"] = ExactSearch(snap)
    else:
        methods["ours (LSH path)"] = choose_searcher(no_graph, config.with_changes(exact_below=0))
        if snap.graph is not None:
            methods["ours (graph path)"] = choose_searcher(snap, config.with_changes(exact_below=0))
    if isinstance(app, GraphSearch):  # the walk widths the final top 10 alone needs (the default also holds the page of 50)
        for width in GRAPH_WIDTHS:
            # every search a walk, as each peer's is (the app ranks again instead of some: config.graph_walk_again)
            methods[f"ours graph walk={width}"] = GraphSearch(snap, candidates=config.graph_candidates, effort=width, walk_again=True)
    methods["numpy scan"] = ScanSearch(snap, config.rerank_depth)
    if "faiss" in peers and importlib.util.find_spec("faiss") is not None:
        import faiss

        faiss.omp_set_num_threads(1)
        methods["faiss binary flat"] = FaissSearch(snap, config.rerank_depth)
        index, out["builds_s"]["faiss binary hnsw"] = faiss_binary_hnsw(snap, Path(path + ".faiss-bhnsw"))
        for effort in FAISS_EFFORTS:
            methods[f"faiss binary hnsw ef={effort}"] = FaissHnswSearch(snap, index, effort)
    if "hnswlib" in peers and importlib.util.find_spec("hnswlib") is not None:
        index, out["builds_s"]["hnswlib"] = hnswlib_index(snap, Path(path + ".hnswlib"))
        for effort in HNSWLIB_EFFORTS:
            methods[f"hnswlib ef={effort}"] = HnswlibSearch(snap, index, effort)
    out["single_threaded"] = "FAISS: faiss.omp_set_num_threads(1); hnswlib: set_num_threads(1); NumPy: one BLAS thread"
    fitted = snap.fitted
    engines = {name: SearchEngine(catalogue, None, config, searcher=searcher) for name, searcher in methods.items()}
    for q in queries[:5]:  # warm-up
        for name, searcher in methods.items():
            engines[name].search_embeddings(q[None], top_n=10)
    # The candidate stage as the pipeline runs it: each search asks for this many candidates
    # (ranking.find_candidates), and a query searches 1 + expand_rounds times (itself, then expanded with its best results).
    depth = min(len(snap), max(10 + RESCORE_MARGIN, config.rescore_depth))
    searches = 1 + config.expand_rounds if fitted.augmented and config.expand_k else 1
    out["candidates_per_search"], out["searches_per_query"] = depth, searches
    stage: dict[str, list[float]] = {name: [] for name in methods}
    exact_recall: dict[str, list[float]] = {name: [] for name in methods}
    total: dict[str, list[float]] = {name: [] for name in methods}
    recall: dict[str, list[float]] = {name: [] for name in methods}
    candidates: dict[str, list[int]] = {name: [] for name in methods}
    # Method by method over all queries, in rotating order over PASSES passes:
    # timing query by query in turns would let each method walk memory the one
    # before it had just brought into the CPU caches (at 1M a graph walk is
    # memory-bound), and a fixed order would favour whoever comes later.
    names = list(methods)
    for p in range(PASSES):
        for name in names[p % len(names):] + names[: p % len(names)]:
            if p and median(stage[name]) > 20:  # an exhaustive scan at 1M: one pass tells enough
                continue
            searcher, engine = methods[name], engines[name]
            for i in range(len(codes)):
                t0 = time.perf_counter()
                searcher.search(codes[i], vectors[i], depth)
                stage[name].append((time.perf_counter() - t0) * 1000)
            for i, (q, want) in enumerate(zip(queries, truth)):
                t0 = time.perf_counter()
                result = engine.search_embeddings(q[None], top_n=10)
                total[name].append((time.perf_counter() - t0) * 1000)
                if p == 0:
                    found = {m.image_id for m in result.matches}
                    recall[name].append(len(found & set(pipeline_truth[i])) / max(len(pipeline_truth[i]), 1))
                    exact_recall[name].append(len(found & set(want.tolist())) / 10)
                    candidates[name].append(result.candidates)
    for name in methods:
        out["methods"][name] = {
            "candidate_stage_ms_median": median(stage[name]),
            "search_ms_median": median(total[name]),
            "search_ms_p95": percentile(total[name], 95),
            "candidate_stages_ms": searches * median(stage[name]),
            "after_candidates_ms_median": median(total[name]) - searches * median(stage[name]),
            "recall@10": float(np.mean(recall[name])),
            "recall@10_exact_cosine": float(np.mean(exact_recall[name])),
            "candidates_median": median(candidates[name]),
        }
    out["peak_mb"] = peak_memory_mb()
    catalogue.close()
    return out


PAIRED_CHILD = """
import json, sys, time
import swimsearch  # first: one BLAS thread, as the app runs
import numpy as np
from swimsearch.catalogue import Catalogue
from swimsearch.config import EngineConfig
from swimsearch.search import SearchEngine
queries = np.load(sys.argv[2])
engine = SearchEngine(Catalogue.open(sys.argv[1], readonly=True), None, EngineConfig())
for q in queries[:5]:
    engine.search_embeddings(q[None], top_n=10)
wall, cpu, lists = [], [], []
for q in queries[5:]:
    t0, c0 = time.perf_counter(), time.process_time()
    result = engine.search_embeddings(q[None], top_n=10)
    wall.append((time.perf_counter() - t0) * 1000)
    cpu.append((time.process_time() - c0) * 1000)
    lists.append([[m.image_id, m.score, m.band] for m in result.matches])
print(json.dumps({"wall": wall, "cpu": cpu, "lists": lists, "code": swimsearch.__file__}))
"""


def paired_search(trees: list[str], path: str, queries: str, turns: int = 4) -> dict:
    """Whole searches with two source trees' code on one catalogue, in alternating fresh processes (A B B A)."""
    wall: dict[str, list[float]] = {tree: [] for tree in trees}
    cpu: dict[str, list[float]] = {tree: [] for tree in trees}
    lists = {}
    for turn in range(turns):
        for tree in trees if turn % 2 == 0 else trees[::-1]:
            out = run_with_tree(tree, PAIRED_CHILD, path, queries)
            wall[tree] += out["wall"]
            cpu[tree] += out["cpu"]
            lists[tree] = out["lists"]
    same = sum(a == b for a, b in zip(*(lists[tree] for tree in trees)))
    summary = {key: {"ms": median(wall[tree]), "cpu_ms": median(cpu[tree])} for key, tree in zip(("baseline", "new"), trees)}
    return {"trees": trees, "same_lists": same, "queries": len(lists[trees[0]]), **summary}


def best_at_recall(methods: dict, prefix: str, recall: float = 0.98) -> tuple[str, dict] | None:
    """The fastest (candidate stage) setting of a peer whose recall@10 reaches `recall`."""
    fit = [(n, m) for n, m in methods.items() if n.startswith(prefix) and m["recall@10"] >= recall]
    return min(fit, key=lambda nm: nm[1]["candidate_stage_ms_median"]) if fit else None


#: (candidates at least, walk width): the width is max(width, graph_effort_share x the candidates asked) only at the app's defaults
GRAPH_SWEEP = ((40, 32), (40, 48), (40, 64), (40, 128), (200, 48), (200, 128))


def tune(path: str, queries_file: str, truth_file: str, settings: tuple[str, ...] = ()) -> list[dict]:
    """Graph settings (candidates, effort) and LSH layouts (`settings`: "LxK" pairs) swept on one catalogue, in memory."""
    from swimsearch.lsh import BucketTables, bucket_keys, sample_key_bits
    from swimsearch.searchers import GraphSearch, LshSearch

    catalogue = Catalogue.open(path, readonly=True)
    config = EngineConfig()
    snap = catalogue.load_snapshot()
    queries, truth = np.load(queries_file), np.load(truth_file)
    fitted = snap.fitted
    prepared = fitted.prepare(queries)  # the first search of each query, as the pipeline makes it
    codes, vectors = fitted.codes(prepared), fitted.vectors(prepared)
    trials = []
    if snap.graph is not None:
        for candidates, effort in GRAPH_SWEEP:
            trials.append((f"graph candidates={candidates} effort={effort}", GraphSearch(snap, candidates=candidates, effort=effort, walk_again=True)))
    for tables, key_bits in (tuple(int(v) for v in setting.split("x")) for setting in settings):
        bits = fitted.spheres.bits
        positions = sample_key_bits(bits, tables, key_bits, seed=0)
        layout = BucketTables.from_keys(positions, bits, bucket_keys(snap.codes, positions, bits))
        trial = dataclasses.replace(snap, tables=layout, graph=None)
        for radius, depth in ((1, 500), (2, 200), (2, 500), (2, 1000)):
            trials.append((f"LSH L={tables} K={key_bits} r={radius} M={depth}", LshSearch(trial, rerank_depth=depth, probe_radius=radius)))
    rows = []
    for label, searcher in trials:
        engine = SearchEngine(catalogue, None, config, searcher=searcher)
        stage, times, recall, scans = [], [], [], 0
        for i, (q, want) in enumerate(zip(queries, truth)):
            t0 = time.perf_counter()
            searcher.search(codes[i], vectors[i], 40)
            stage.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            result = engine.search_embeddings(q[None], top_n=10)
            times.append((time.perf_counter() - t0) * 1000)
            recall.append(len({m.image_id for m in result.matches} & set(want.tolist())) / 10)
            scans += result.method == "scan"
        row = {"setting": label, "stage": median(stage), "ms": median(times), "recall": float(np.mean(recall)), "scans": scans}
        rows.append(row)
        print(f"  {label}: stage {row['stage']:.3f} ms, search {row['ms']:.3f} ms, recall@10 {row['recall']:.3f}", flush=True)
    catalogue.close()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--tune", action="store_true", help="sweep graph and LSH settings on the largest size")
    parser.add_argument("--reuse", action="store_true", help="reuse catalogue files (and peers' indexes) from an earlier run")
    parser.add_argument("--work", help="folder for the catalogues and peers' indexes (default bench/work; a 1M catalogue is about 4 GB)")
    parser.add_argument("--baseline", metavar="TREE", help="also time whole searches with the code of this source tree "
                        "(e.g. a checkout of main) against this one, in alternating fresh processes")
    parser.add_argument("--build-only", action="store_true", help="write the catalogues and ground truth, measure nothing")
    parser.add_argument("--peers", default="faiss,hnswlib", help="peer libraries to compare with (comma-separated, or none)")
    parser.add_argument("--measure", nargs=4, metavar=("CAT", "QUERIES", "TRUTH", "PEERS"), help=argparse.SUPPRESS)
    parser.add_argument("--tune-only", nargs=3, metavar=("CAT", "QUERIES", "TRUTH"), help=argparse.SUPPRESS)
    parser.add_argument("--lsh", nargs="*", default=[], metavar="LxK", help="LSH settings for --tune (e.g. 10x12 8x16)")
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(*args.measure)))
        return 0
    if args.tune_only:
        print(json.dumps(tune(*args.tune_only, settings=tuple(args.lsh))))
        return 0

    work = Path(args.work) if args.work else WORK
    work.mkdir(parents=True, exist_ok=True)
    synthetic = Synthetic(real_centres())
    config = EngineConfig()
    np.save(work / "scale-queries.npy", synthetic.queries())
    print("Every method runs single-threaded: FAISS with faiss.omp_set_num_threads(1), hnswlib with "
          "set_num_threads(1), NumPy with one BLAS thread (building the peers' indexes may use every core).", flush=True)
    results = []
    for size in args.sizes:
        path = work / f"synthetic-{size}.swimcat"
        built = {}
        if not (args.reuse and path.exists()):
            print(f"writing and indexing {size:,} synthetic images ...", flush=True)
            for peer_cache in (".faiss-bhnsw", ".hnswlib"):
                Path(str(path) + peer_cache).unlink(missing_ok=True)
            built = write_catalogue(path, synthetic, size, config)
        truth_file = work / f"scale-truth-{size}.npy"
        if not (args.reuse and truth_file.exists()):
            with Catalogue.open(path, readonly=True) as catalogue:
                mean = catalogue.fitted().mean
            np.save(truth_file, ground_truth(synthetic, size, mean))
        if built:
            print(f"    written in {built['write_s']:.0f} s, indexed in {built['index_s']:.0f} s, {built['file_gb']:.2f} GB", flush=True)
        if args.build_only:
            continue
        done = subprocess.run(
            [sys.executable, __file__, "--measure", str(path), str(work / "scale-queries.npy"), str(truth_file), args.peers],
            capture_output=True, text=True, check=True, env={**os.environ},
        )
        measured = json.loads(done.stdout.strip().splitlines()[-1])
        results.append({"size": size, **built, **measured})
        print(f"{size:>9,} images: open {measured['open_s']:.2f} s, open + first search {measured['open_and_first_search_s']:.2f} s, "
              f"peak {measured['app_peak_mb']:.0f} MB ({measured['app_searcher']}), "
              f"first pass after opening {measured['first_pass_ms_median']:.2f} ms a query", flush=True)
        for name, m in measured["methods"].items():
            print(f"    {name:28s} search {m['search_ms_median']:.3f} ms (p95 {m['search_ms_p95']:.2f}), "
                  f"candidate stage {m['candidate_stage_ms_median']:.3f} ms, recall@10 {m['recall@10']:.3f} "
                  f"(exact cosine {m['recall@10_exact_cosine']:.3f})", flush=True)
        if args.baseline:
            results[-1]["paired"] = paired_search([args.baseline, str(ROOT)], str(path), str(work / "scale-queries.npy"))
    rows = []
    for r in results:
        ours = r["methods"]["ours (app default)"]
        for name, m in r["methods"].items():
            rows.append({
                "what": f"{r['size']:,} / {name}",
                "search": m["search_ms_median"],
                "stage": m["candidate_stage_ms_median"],
                "stages": m["candidate_stages_ms"],
                "after": m["after_candidates_ms_median"],
                "recall": m["recall@10"],
                "cosine": m["recall@10_exact_cosine"],
                "ratio": ours["candidate_stage_ms_median"] / m["candidate_stage_ms_median"],
            })
    print()
    print("search: embedding in, ranked top 10 out (median); stage: one candidate search at the pipeline's depth; "
          "stages: the query's candidate searches (2: the query, then expanded); after: search - stages; "
          "recall@10 against the same pipeline on the exact path, and against exact cosine")
    print(table(rows, [("what", "size / method", ""), ("search", "search ms", ".3f"), ("stage", "stage ms", ".3f"),
                       ("stages", "stages ms", ".3f"), ("after", "after stages ms", ".3f"), ("recall", "recall@10", ".3f"),
                       ("cosine", "exact-cosine r@10", ".3f"), ("ratio", "ours/this stage", ".2f")]))
    print()
    ratios = []
    for r in results:
        ours = r["methods"]["ours (app default)"]
        ours_best = best_at_recall({k: v for k, v in r["methods"].items() if k.startswith("ours (app") or k.startswith("ours graph")}, "ours")
        peer_best = best_at_recall(r["methods"], "faiss binary hnsw")
        if ours_best and peer_best:
            print(f"{r['size']:>9,}: the same job (the pipeline's final top 10, 200 candidates a search, recall@10 >= 0.98 against "
                  f"the exact path), each side's fastest setting: ours {ours_best[0]} {ours_best[1]['candidate_stage_ms_median']:.3f} ms "
                  f"(recall {ours_best[1]['recall@10']:.3f}) / FAISS IndexBinaryHNSW {peer_best[0]} "
                  f"{peer_best[1]['candidate_stage_ms_median']:.3f} ms (recall {peer_best[1]['recall@10']:.3f}) = "
                  f"{ours_best[1]['candidate_stage_ms_median'] / peer_best[1]['candidate_stage_ms_median']:.2f}")
            ratios.append({"size": r["size"], "job": "top 10", "ours": ours_best[0], "peer": peer_best[0],
                           "ratio": ours_best[1]["candidate_stage_ms_median"] / peer_best[1]["candidate_stage_ms_median"]})
        for prefix, label in (("faiss binary hnsw", "FAISS IndexBinaryHNSW"), ("hnswlib", "hnswlib")):
            best = best_at_recall(r["methods"], prefix)
            if best is None:
                continue
            name, m = best
            ratio = ours["candidate_stage_ms_median"] / m["candidate_stage_ms_median"]
            ratios.append({"size": r["size"], "peer": name, "ratio": ratio, "peer_recall": m["recall@10"], "our_recall": ours["recall@10"]})
            print(f"{r['size']:>9,}: our candidate stage / the fastest {label} setting at recall@10 >= 0.98 "
                  f"({name}, recall {m['recall@10']:.3f}): {ratio:.2f} (ours: recall {ours['recall@10']:.3f}); "
                  f"whole search {ours['search_ms_median'] / m['search_ms_median']:.2f} x its")
        print(f"{r['size']:>9,}: ours, search {ours['search_ms_median']:.2f} ms a query = candidate stages "
              f"{ours['candidate_stages_ms']:.3f} ms + work after them {ours['after_candidates_ms_median']:.2f} ms "
              f"({ours['after_candidates_ms_median'] / ours['candidate_stages_ms']:.1f} x the stages)")
        if "paired" in r:
            base, new = (r["paired"][key] for key in ("baseline", "new"))
            print(f"{r['size']:>9,}: search a query, baseline {r['paired']['trees'][0]} against this tree, in alternating "
                  f"processes: {base['ms']:.2f} -> {new['ms']:.2f} ms wall ({new['ms'] / base['ms']:.2f} x), "
                  f"{base['cpu_ms']:.2f} -> {new['cpu_ms']:.2f} ms CPU ({new['cpu_ms'] / base['cpu_ms']:.2f} x); "
                  f"same result lists {r['paired']['same_lists']} of {r['paired']['queries']}")
    print()
    print(table([{"what": f"{r['size']:,}", "open": r["open_s"], "first": r["open_and_first_search_s"], "peak": r["app_peak_mb"],
                  "gb": r.get("file_gb", float("nan"))} for r in results],
                [("what", "catalogue size", ""), ("open", "open s", ".2f"), ("first", "open + 1st search s", ".2f"),
                 ("peak", "peak MB (app)", ".0f"), ("gb", "file GB", ".2f")]))
    tuning = []
    if args.tune:
        size = max(args.sizes)
        done = subprocess.run(
            [sys.executable, __file__, "--tune-only", str(work / f"synthetic-{size}.swimcat"),
             str(work / "scale-queries.npy"), str(work / f"scale-truth-{size}.npy"), "--lsh", *args.lsh],
            capture_output=True, text=True, check=True,
        )
        tuning = json.loads(done.stdout.strip().splitlines()[-1])
        print(table(tuning, [("setting", "setting", ""), ("stage", "stage ms", ".3f"), ("ms", "search ms", ".3f"),
                             ("recall", "recall@10", ".3f"), ("scans", "scans", "")]))
    path = save("scale", {"results": results, "ratios": ratios, "tuning": tuning, "noise": NOISE,
                          "neighbours": NEIGHBOURS, "queries": QUERIES})
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
