"""How much of a 1M search is first touches of the array cache's pages, and how much is compute.

One process opens the catalogue read-only, waits until its array cache is
checked, and searches the same queries several passes over: the first pass
touches each candidate's mapped rows for the first time (page faults, as a
user's fresh searches do), the later ones find those pages already mapped.
The difference is the page-fault cost; what the later passes take is the
compute a search costs with no fault at all (issue 11: the search stage at
1M under 5 ms).

    SWIMSEARCH_CACHE_DIR=/work/cache/arrays python bench/bench_warm_pages.py \\
        /work/cache/scale1m/synthetic-1000000.swimcat /work/cache/scale1m/scale-queries.npy [--queries 100] [--passes 3]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import swimsearch  # noqa: E402,F401  (first: one BLAS thread, as the app runs)
import numpy as np  # noqa: E402

from common import median, percentile  # noqa: E402
from swimsearch.catalogue import Catalogue  # noqa: E402
from swimsearch.config import EngineConfig  # noqa: E402
from swimsearch.search import SearchEngine  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("catalogue")
    parser.add_argument("queries")
    parser.add_argument("--queries", dest="count", type=int, default=100)
    parser.add_argument("--passes", type=int, default=3)
    args = parser.parse_args()
    engine = SearchEngine(Catalogue.open(args.catalogue, readonly=True), None, EngineConfig())
    queries = np.load(args.queries)
    warm, timed_queries = queries[:5], queries[5 : 5 + args.count]
    for q in warm[:2]:  # the cache is taken up from the second search on
        engine.search_embeddings(q[None], top_n=10)
    if engine.array_watch is None or not engine.array_watch.wait(900):
        print("no array cache for this catalogue: nothing to measure (set SWIMSEARCH_CACHE_DIR, or make it first)")
        return 1
    for q in warm:
        engine.search_embeddings(q[None], top_n=10)
    searcher = engine._searcher
    inner = searcher.search
    spent = [0.0]

    def timed(*a, **k):  # the candidate stage: the searcher's walks, timed inside (CPU)
        started = time.process_time()
        try:
            return inner(*a, **k)
        finally:
            spent[0] += time.process_time() - started

    searcher.search = timed
    for n in range(1, args.passes + 1):
        cpu, stage, faults = [], [], []
        for q in timed_queries:
            spent[0] = 0.0
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            started = time.process_time()
            engine.search_embeddings(q[None], top_n=10)
            cpu.append((time.process_time() - started) * 1000)
            stage.append(spent[0] * 1000)
            faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
        what = "first touch of their pages" if n == 1 else "pages already mapped"
        after = [c - s for c, s in zip(cpu, stage)]
        print(f"pass {n} ({what}): search CPU median {median(cpu):.2f} ms, p90 {percentile(cpu, 90):.2f} ms "
              f"(candidate stage {median(stage):.2f}, after it {median(after):.2f}); page faults a search {median(faults):.0f}; "
              f"from the cache: {engine._data.from_arrays}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
