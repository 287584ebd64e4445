"""How many cache rows a 1M search would still read if a small summary of every same-design vector were held in memory.

Issue 11/15: a search at a million images reads one cache row per candidate
(~200, array_cache.py), because every candidate's exact score decides its
place in the list. A summary held in memory (each same-design vector quantised
to b bits a value, one scale and the residual's length a row) bounds each candidate's same-design
cosine with the query: |w.q - w~.q| <= min(scale/2 * |q|_1, |w - w~| |q|), a proven bound. Only the
candidates whose upper bound reaches the 20th best lower bound (the rows a
search reads records for: top_n 10 + 10) would still need their row. This
runs real searches on the catalogue (array cache ready), takes each search's
candidates and their exact same-design vectors from the cache, and counts
those rows for b = 8, 6, 5 and 4, beside what each summary costs in memory at
a million images (against the 1 GB that opening and a first search may take).

    SWIMSEARCH_CACHE_DIR=/work/cache/hot1m/arrays python bench/summary_bound.py \\
        /work/cache/scale1m/synthetic-1000000.swimcat /work/cache/scale1m/scale-queries.npy [--queries 100]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import swimsearch  # noqa: E402,F401  (first: one BLAS thread, as the app runs)
import numpy as np  # noqa: E402

import swimsearch.steered as steered  # noqa: E402
from swimsearch.catalogue import Catalogue  # noqa: E402
from swimsearch.config import EngineConfig  # noqa: E402
from swimsearch.ranking import whitened_vectors  # noqa: E402
from swimsearch.search import SearchEngine  # noqa: E402

KEPT = 20  # rows whose order a search must know exactly: top_n 10 and the 10 more it reads records for
BITS = (8, 6, 5, 4)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("catalogue")
    parser.add_argument("queries")
    parser.add_argument("--queries", dest="count", type=int, default=100)
    args = parser.parse_args(argv)
    engine = SearchEngine(Catalogue.open(args.catalogue, readonly=True), None, EngineConfig())
    queries = np.load(args.queries)
    engine.search_embeddings(queries[0][None], top_n=10)
    if engine.array_watch is None or not engine.array_watch.wait(900) or engine._calibration is None:
        print("no array cache (or no calibration) for this catalogue: nothing to measure")
        return 1
    seen: dict[str, np.ndarray] = {}
    inner = steered.score_and_order

    def spy(found, data, rows, calibration, *rest, **named):  # type: ignore[no-untyped-def]
        seen["ids"], seen["rows"] = found.ids.copy(), np.asarray(rows).copy()
        return inner(found, data, rows, calibration, *rest, **named)

    steered.score_and_order = spy
    calibration = engine._calibration
    still = {bits: [] for bits in BITS}
    candidates, below = [], []
    for q in queries[5 : 5 + args.count]:
        engine.search_embeddings(q[None], top_n=10)
        ids = seen["ids"]
        held = engine._data.whitened(ids)
        if held is None:
            print("the search did not read same-design vectors from the cache")
            return 1
        w = np.asarray(held, np.float64)
        query = np.asarray(whitened_vectors(calibration, seen["rows"]), np.float64)[0]
        same = w @ query
        candidates.append(len(ids))
        below.append(int((same < calibration.edges[0]).sum()))
        for bits in BITS:
            top = 2 ** (bits - 1) - 1
            scale = np.maximum(np.abs(w).max(axis=1), 1e-30) / top
            summary = np.round(w / scale[:, None]) * scale[:, None]
            approx = summary @ query
            # the smaller of two proven bounds: each value off by at most scale/2, and the residual's own
            # length (kept beside the summary, 2 bytes an image) times the query's (Cauchy-Schwarz)
            residual = np.linalg.norm(w - summary, axis=1)
            error = np.minimum(scale / 2 * np.abs(query).sum(), residual * np.linalg.norm(query)) + 1e-6  # + float slack
            kth = np.sort(approx - error)[::-1][min(KEPT, len(ids) - 1)]
            still[bits].append(int((approx + error >= kth).sum()))
    print(f"{len(candidates)} searches: candidates a search median {np.median(candidates):.0f}; "
          f"below the same-design edge median {np.median(below):.0f} (none below in {sum(b == 0 for b in below)} searches)")
    for bits in BITS:
        size = 256 * bits // 8
        print(f"{bits}-bit summary ({size} B an image, {size} MB at 1M): rows still read a search "
              f"median {np.median(still[bits]):.0f}, p90 {np.percentile(still[bits], 90):.0f} (of {np.median(candidates):.0f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
