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
    warm, timed = queries[:5], queries[5 : 5 + args.count]
    for q in warm[:2]:  # the cache is taken up from the second search on
        engine.search_embeddings(q[None], top_n=10)
    if engine.array_watch is None or not engine.array_watch.wait(900):
        print("no array cache for this catalogue: nothing to measure (set SWIMSEARCH_CACHE_DIR, or make it first)")
        return 1
    for q in warm:
        engine.search_embeddings(q[None], top_n=10)
    for n in range(1, args.passes + 1):
        cpu = []
        for q in timed:
            started = time.process_time()
            engine.search_embeddings(q[None], top_n=10)
            cpu.append((time.process_time() - started) * 1000)
        what = "first touch of their pages" if n == 1 else "pages already mapped"
        print(f"pass {n} ({what}): search CPU median {median(cpu):.2f} ms, p90 {percentile(cpu, 90):.2f} ms, "
              f"from the cache: {engine._data.from_arrays}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
