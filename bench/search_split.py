"""Where a search's time goes after its candidate stage: wall time inside each step, per search.

    SWIMSEARCH_CACHE_DIR=/work/cache/hot1m/arrays python bench/search_split.py \\
        /work/cache/scale1m/synthetic-1000000.swimcat /work/cache/scale1m/scale-queries.npy \\
        [--settings '{"expand_k": 0, "query_augment_k": 0}'] [--queries 100]

One process opens the catalogue read-only, waits for its array cache, warms up
on 20 queries, then times each step a search makes (each wrapped in a
perf_counter pair: ~1 µs a call, ~40 calls a search). Steps nest (rank_steered
holds find_candidates, which holds the candidate stage `searcher.search`), so
the figures are inclusive: read them as a tree, not as a sum. Unlike cProfile,
the wrapping leaves NumPy's own calls untimed and so does not inflate them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import swimsearch  # noqa: E402,F401  (first: one BLAS thread, as the app runs)
import numpy as np  # noqa: E402

import swimsearch.array_cache as array_cache  # noqa: E402
import swimsearch.ranking as ranking  # noqa: E402
import swimsearch.rescoring as rescoring  # noqa: E402
import swimsearch.score_bounds as score_bounds  # noqa: E402
import swimsearch.search as search  # noqa: E402
import swimsearch.steered as steered  # noqa: E402
from swimsearch.catalogue import Catalogue  # noqa: E402
from swimsearch.config import EngineConfig  # noqa: E402
from swimsearch.search import SearchEngine  # noqa: E402

spent: defaultdict[str, float] = defaultdict(float)


def timed(owner: Any, name: str, label: str) -> None:
    """Replace owner.name (a module's function, a class's method or an object's) by a timed call of it."""
    inner = getattr(owner, name)

    def call(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            spent[label] += time.perf_counter() - started

    if isinstance(owner, type) or hasattr(owner, "__file__"):  # a class or a module
        setattr(owner, name, call)
    else:  # an object, perhaps a frozen dataclass (the fit)
        object.__setattr__(owner, name, call)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("catalogue")
    parser.add_argument("queries")
    parser.add_argument("--queries", dest="count", type=int, default=100)
    parser.add_argument("--settings", default="{}", help="EngineConfig fields as JSON")
    args = parser.parse_args()
    engine = SearchEngine(Catalogue.open(args.catalogue, readonly=True), None, EngineConfig(**json.loads(args.settings)))
    queries = np.load(args.queries)
    for q in queries[:2]:  # the cache is taken up from the second search on
        engine.search_embeddings(q[None], top_n=10)
    if engine.array_watch is None or not engine.array_watch.wait(900):
        print("no array cache for this catalogue: nothing to measure (set SWIMSEARCH_CACHE_DIR, or make it first)")
        return 1
    searcher = engine._searcher
    assert searcher is not None
    fitted = searcher.fitted
    steps = [
        (search, "rank_steered", "rank_steered (all of a search but new_search)"),
        (steered, "find_candidates", "  find_candidates"),
        (searcher, "search", "    searcher.search (the candidate stage)"),
        (fitted, "prepare", "    fitted.prepare"), (fitted, "vectors", "    fitted.vectors (query's re-ranking vector)"),
        (rescoring.RescoringData, "augmented", "    data.augmented (head's augmented rows: preads)"),
        (searcher, "vectors", "    searcher.vectors (candidates' re-ranking vectors)"),
        (ranking, "_with_extra", "    _with_extra"), (ranking, "_candidates", "    _candidates"),
        (steered, "score_and_order", "  score_and_order"),
        (rescoring.RescoringData, "whitened", "    data.whitened (candidates' same-design rows: preads)"),
        (ranking, "whitened_vectors", "    whitened_vectors (the query's, float64 1280x256)"),
        (ranking, "settled_percents", "    settled_percents"),
        (rescoring.RescoringData, "powered", "      data.powered (rows below the edge)"),
        (score_bounds, "rough_garment", "      rough_garment"),
        (ranking, "_rowwise", "  _rowwise (find_candidates' head + score_and_order)"),
        (rescoring.RescoringData, "records", "  data.records (results' records)"),
        (fitted, "codes", "  fitted.codes (query's code for the shown distances)"),
        (steered, "spherical_hamming", "  spherical_hamming"), (search.SearchEngine, "_match", "  _match (result records)"),
        (array_cache.CachedArrays, "take", "take (every cache read, all of the above)"),
        (rescoring.RescoringData, "new_search", "new_search (change token, forget pages)"),
    ]
    for owner, name, label in steps:
        timed(owner, name, label)
    for q in queries[5:25]:
        engine.search_embeddings(q[None], top_n=10)
    spent.clear()
    reads = [0, 0]  # the cache's system calls (CachedArrays.take reads with os.pread) and their bytes
    pread = os.pread

    def counted(fd: int, size: int, at: int) -> bytes:
        reads[0], reads[1] = reads[0] + 1, reads[1] + size
        return pread(fd, size, at)

    os.pread = counted
    total = 0.0
    timed_queries = queries[25 : 25 + args.count]
    for q in timed_queries:
        started = time.perf_counter()
        engine.search_embeddings(q[None], top_n=10)
        total += time.perf_counter() - started
    per = 1000.0 / len(timed_queries)
    os.pread = pread
    print(f"search (wall, wrapped) {total * per:.3f} ms a search; settings {args.settings}")
    print(f"cache reads a search: {reads[0] / len(timed_queries):.1f} preads, {reads[1] / len(timed_queries) / 1024:.0f} KB")
    for _, _, label in steps:
        print(f"{label:60s} {spent[label] * per:7.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
