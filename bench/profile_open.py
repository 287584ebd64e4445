"""Where opening a catalogue spends its time: cProfile of Catalogue.open + SearchEngine + one search.

    python bench/profile_open.py [CATALOGUE] [QUERIES] [--top 30]

Defaults to the 1M catalogue and queries `bench_scale.py --sizes 1000000`
writes. Prints the total and the functions by cumulative time; profiling
adds overhead, so compare profiles with each other, not with bench_open.py.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from swimsearch.catalogue import Catalogue  # noqa: E402
from swimsearch.config import EngineConfig  # noqa: E402
from swimsearch.search import SearchEngine  # noqa: E402

WORK = Path(__file__).resolve().parent / "work"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("catalogue", nargs="?", default=str(WORK / "synthetic-1000000.swimcat"))
    parser.add_argument("queries", nargs="?", default=str(WORK / "scale-queries.npy"))
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args(argv)
    query = np.load(args.queries)[:1]
    profile = cProfile.Profile()
    started = time.perf_counter()
    profile.enable()
    catalogue = Catalogue.open(args.catalogue, readonly=True)
    engine = SearchEngine(catalogue, None, EngineConfig())
    engine.search_embeddings(query, top_n=10)
    profile.disable()
    print(f"open + first search under the profiler: {time.perf_counter() - started:.2f} s")
    pstats.Stats(profile).sort_stats("cumulative").print_stats(args.top)
    catalogue.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
