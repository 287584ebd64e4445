"""Search at 10k, 100k and 1M images, next to a NumPy scan and FAISS, and opening a 1M catalogue.

Synthetic clustered embeddings (real clothing embeddings as design centres,
variants spread along the data's own principal directions) are written into
real catalogue files (through the store's writer) and pushed through the real
hash layer, spheres and LSH tables (`refit_catalogue`). For each size, in a
fresh process:
  * time to open the catalogue (load codes, vectors, buckets) and peak memory;
  * the search stage per query (embedding in, ranked top 10 out) with three
    candidate generators feeding the same re-ranking and exact rescoring:
    our LSH multi-probe, an exhaustive NumPy XOR+popcount scan, and
    FAISS IndexBinaryFlat (Hamming) on the same codes;
  * recall@10 of each against exact cosine on the full embeddings.
With --tune, K/L/probe-radius/M settings are swept on the 1M codes in memory.

    pip install -e .[bench]                    # faiss-cpu, for the comparison only
    python bench/bench_scale.py                # 10k, 100k, 1M (about 20 minutes, 6 GB of disk)
    python bench/bench_scale.py --sizes 10000 100000
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

from common import ROOT, WORK, median, percentile, save, table

import numpy as np

from swimsearch.build import refit_catalogue
from swimsearch.catalogue import Catalogue
from swimsearch.config import EngineConfig
from swimsearch.search import SearchEngine
from swimsearch.searchers import ExactSearch, Ranking, SnapshotSearcher, choose_searcher
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


#: The team's shared cache of the clothing photos' fp32 embeddings (see TEAM_RULES), used
#: when bench_build.py has not built bench/work/clothing.swimcat here.
SHARED_EMBEDDINGS = ROOT.parent.parent / "cache" / "clothing-fp32.npz"


def real_centres() -> np.ndarray:
    """Embeddings of the clothing photos: the catalogue built by bench_build.py, else the shared cache."""
    path = WORK / "clothing.swimcat"
    if path.exists():
        with Catalogue.open(path) as catalogue:
            return np.concatenate([part.vectors for part in catalogue.iter_embeddings()])
    if SHARED_EMBEDDINGS.exists():
        cached = np.load(SHARED_EMBEDDINGS)
        labelled = np.char.startswith(cached["names"].astype(str), "images/")
        return cached["embeddings"][labelled].astype(np.float32)
    raise SystemExit("run bench/bench_build.py first (it builds bench/work/clothing.swimcat)")


def write_catalogue(path, synthetic: Synthetic, size: int, config: EngineConfig) -> dict:
    """A real catalogue file holding `size` synthetic images, fitted and indexed."""
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    root = WORK / "synthetic-root"
    root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    rng = np.random.default_rng(99)
    with Catalogue.create(path, root) as catalogue:
        writer = catalogue.writer()
        writer.set_model(ModelInfo(name="synthetic", sha256="0" * 64, dim=synthetic.centres.shape[1]))
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
        sims = snap.vectors[rows].astype(np.float32) @ vector
        top = np.argsort(-sims)[:k]
        return Ranking(snap.ids[rows[top]], sims[top], len(snap), "numpy-scan")


class FaissSearch(SnapshotSearcher):
    """FAISS IndexBinaryFlat (plain Hamming) over the same codes, then the same re-ranking."""

    def __init__(self, snapshot, depth: int):
        import faiss

        super().__init__(snapshot)
        self.depth = depth
        self.index = faiss.IndexBinaryFlat(snapshot.codes.shape[1] * 64)
        self.index.add(np.ascontiguousarray(snapshot.codes).view(np.uint8))

    def search(self, code, vector, k) -> Ranking:
        snap = self.snapshot
        depth = min(max(self.depth, k), len(snap))
        _, found = self.index.search(np.ascontiguousarray(code.reshape(1, -1)).view(np.uint8), depth)
        rows = found[0][found[0] >= 0]
        sims = snap.vectors[rows].astype(np.float32) @ vector
        top = np.argsort(-sims)[:k]
        return Ranking(snap.ids[rows[top]], sims[top], len(snap), "faiss-binary-flat")


def peak_memory_mb() -> float:
    """Peak resident memory of this process (VmHWM; ru_maxrss would include the parent's before exec)."""
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(path: str, queries_file: str, truth_file: str) -> dict:
    """Run in a fresh process: open time, peak memory, per-query search time and recall per method."""
    started = time.perf_counter()
    catalogue = Catalogue.open(path)
    config = EngineConfig()
    # What SearchEngine(catalogue, None, config) does, with the snapshot kept
    # here so that the comparisons below search the very same arrays.
    snap = catalogue.load_snapshot()
    app = choose_searcher(snap, config)
    engine = SearchEngine(catalogue, None, config, searcher=app)
    open_s = time.perf_counter() - started
    open_peak = peak_memory_mb()
    queries = np.load(queries_file)
    truth = np.load(truth_file)
    # Factories: each comparison builds its structures only when its turn comes,
    # so the app's own peak memory is read before they exist.
    methods = {"ours (app default)": lambda: app}
    if isinstance(app, ExactSearch):
        methods["ours (LSH path)"] = lambda: choose_searcher(snap, config.with_changes(exact_below=0))
    elif len(snap) <= 200_000:  # where the switch to exact search would still be affordable
        methods["ours (exact path)"] = lambda: ExactSearch(snap)
    methods["numpy scan"] = lambda: ScanSearch(snap, config.rerank_depth)
    if importlib.util.find_spec("faiss") is not None:  # the bench extra
        methods["faiss binary flat"] = lambda: FaissSearch(snap, config.rerank_depth)
    out = {"open_s": open_s, "open_peak_mb": open_peak, "images": len(snap), "methods": {}}
    # A first pass right after opening reads the rescored embeddings from disk
    # (or the OS cache); it is reported on its own, and every method is then
    # timed on the same warm cache, so none profits from running later.
    cold = []
    for q in queries:
        t0 = time.perf_counter()
        engine.search_embeddings(q[None], top_n=10)
        cold.append((time.perf_counter() - t0) * 1000)
    out["first_pass_ms_median"] = median(cold)
    for name, make in methods.items():
        searcher = make()
        engine = SearchEngine(catalogue, None, config, searcher=searcher)
        for q in queries[:5]:
            engine.search_embeddings(q[None], top_n=10)  # warm-up
        total, stage, recall, candidates = [], [], [], []
        for q, want in zip(queries, truth):
            fitted = snap.fitted
            code, vector = fitted.codes(q[None])[0], fitted.vectors(q[None])[0]
            t0 = time.perf_counter()
            searcher.search(code, vector, 40)
            stage.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            result = engine.search_embeddings(q[None], top_n=10)
            total.append((time.perf_counter() - t0) * 1000)
            recall.append(len({m.image_id for m in result.matches} & set(want.tolist())) / 10)
            candidates.append(result.candidates)
        if name == "ours (app default)":
            out["app_peak_mb"] = peak_memory_mb()  # before the comparison methods add their own memory
        out["methods"][name] = {
            "candidate_stage_ms_median": median(stage),
            "search_ms_median": median(total),
            "search_ms_p95": percentile(total, 95),
            "recall@10": float(np.mean(recall)),
            "candidates_median": median(candidates),
        }
    out["peak_mb"] = peak_memory_mb()
    catalogue.close()
    return out


DEFAULT_SWEEP = ("8x16", "9x14", "10x13", "10x12", "11x11", "12x10", "16x16")


def tune(path: str, queries_file: str, truth_file: str, settings: tuple[str, ...] = DEFAULT_SWEEP) -> list[dict]:
    """K, L, probe radius and M swept on the codes of one catalogue, in memory.

    Args:
        settings: "LxK" pairs (tables x key bits).
    """
    from swimsearch.lsh import BucketTables, bucket_keys, sample_key_bits
    from swimsearch.searchers import LshSearch

    catalogue = Catalogue.open(path)
    config = EngineConfig()
    snap = catalogue.load_snapshot()
    queries, truth = np.load(queries_file), np.load(truth_file)
    rows = []
    for tables, key_bits in (tuple(int(v) for v in setting.split("x")) for setting in settings):
        bits = snap.fitted.spheres.bits
        positions = sample_key_bits(bits, tables, key_bits, seed=0)
        layout = BucketTables.from_keys(positions, bits, bucket_keys(snap.codes, positions, bits))
        trial = dataclasses.replace(snap, tables=layout)
        for radius in (1, 2):
            for depth in (200, 500, 1000):
                if radius == 1 and depth != 500:
                    continue
                engine = SearchEngine(catalogue, None, config, searcher=LshSearch(trial, rerank_depth=depth, probe_radius=radius))
                times, recall, scans = [], [], 0
                for q, want in zip(queries, truth):
                    t0 = time.perf_counter()
                    result = engine.search_embeddings(q[None], top_n=10)
                    times.append((time.perf_counter() - t0) * 1000)
                    recall.append(len({m.image_id for m in result.matches} & set(want.tolist())) / 10)
                    scans += result.method == "scan"
                row = {"setting": f"L={tables} K={key_bits} r={radius} M={depth}", "ms": median(times),
                       "recall": float(np.mean(recall)), "scans": scans}
                rows.append(row)
                print(f"  {row['setting']}: {row['ms']:.2f} ms  recall@10 {row['recall']:.3f}  fallback scans {scans}", flush=True)
    catalogue.close()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--tune", action="store_true", help="sweep K, L, radius and M on the largest size")
    parser.add_argument("--reuse", action="store_true", help="reuse catalogue files from an earlier run")
    parser.add_argument("--measure", nargs=3, metavar=("CAT", "QUERIES", "TRUTH"), help=argparse.SUPPRESS)
    parser.add_argument("--tune-only", nargs=3, metavar=("CAT", "QUERIES", "TRUTH"), help=argparse.SUPPRESS)
    parser.add_argument("--lsh", nargs="+", default=list(DEFAULT_SWEEP), metavar="LxK", help="LSH settings for --tune")
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(*args.measure)))
        return 0
    if args.tune_only:
        print(json.dumps(tune(*args.tune_only, settings=tuple(args.lsh))))
        return 0

    WORK.mkdir(parents=True, exist_ok=True)
    synthetic = Synthetic(real_centres())
    config = EngineConfig()
    np.save(WORK / "scale-queries.npy", synthetic.queries())
    results = []
    for size in args.sizes:
        path = WORK / f"synthetic-{size}.swimcat"
        built = {}
        if not (args.reuse and path.exists()):
            print(f"writing and indexing {size:,} synthetic images ...", flush=True)
            built = write_catalogue(path, synthetic, size, config)
        with Catalogue.open(path) as catalogue:
            mean = catalogue.fitted().mean
        truth_file = WORK / f"scale-truth-{size}.npy"
        np.save(truth_file, ground_truth(synthetic, size, mean))
        done = subprocess.run(
            [sys.executable, __file__, "--measure", str(path), str(WORK / "scale-queries.npy"), str(truth_file)],
            capture_output=True, text=True, check=True, env={**os.environ},
        )
        measured = json.loads(done.stdout.strip().splitlines()[-1])
        results.append({"size": size, **built, **measured})
        print(f"{size:>9,} images: open {measured['open_s']:.2f} s, peak {measured['app_peak_mb']:.0f} MB, "
              f"first pass after opening {measured['first_pass_ms_median']:.2f} ms a query", flush=True)
        for name, m in measured["methods"].items():
            print(f"    {name:20s} search {m['search_ms_median']:.2f} ms (p95 {m['search_ms_p95']:.2f}), "
                  f"candidate stage {m['candidate_stage_ms_median']:.2f} ms, recall@10 {m['recall@10']:.3f}", flush=True)
    rows = []
    for r in results:
        ours = r["methods"]["ours (app default)"]
        for name, m in r["methods"].items():
            rows.append({
                "what": f"{r['size']:,} / {name}",
                "search": m["search_ms_median"],
                "stage": m["candidate_stage_ms_median"],
                "recall": m["recall@10"],
                "ratio": ours["search_ms_median"] / m["search_ms_median"],
            })
    print()
    print(table(rows, [("what", "size / method", ""), ("search", "search ms", ".2f"), ("stage", "stage ms", ".2f"),
                       ("recall", "recall@10", ".3f"), ("ratio", "ours/this", ".2f")]))
    print()
    print(table([{"what": f"{r['size']:,}", "open": r["open_s"], "peak": r["app_peak_mb"], "gb": r.get("file_gb", float("nan"))} for r in results],
                [("what", "catalogue size", ""), ("open", "open s", ".2f"), ("peak", "peak MB (app)", ".0f"), ("gb", "file GB", ".2f")]))
    tuning = []
    if args.tune:
        size = max(args.sizes)
        done = subprocess.run(
            [sys.executable, __file__, "--tune-only", str(WORK / f"synthetic-{size}.swimcat"),
             str(WORK / "scale-queries.npy"), str(WORK / f"scale-truth-{size}.npy"), "--lsh", *args.lsh],
            capture_output=True, text=True, check=True,
        )
        tuning = json.loads(done.stdout.strip().splitlines()[-1])
        print(table(tuning, [("setting", "LSH setting", ""), ("ms", "search ms", ".2f"), ("recall", "recall@10", ".3f"), ("scans", "scans", "")]))
    path = save("scale", {"results": results, "tuning": tuning, "noise": NOISE, "neighbours": NEIGHBOURS, "queries": QUERIES})
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
