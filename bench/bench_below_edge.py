"""What the look at the first row of *very similar* costs (same_picture.BELOW_EDGE): query time by catalogue file.

Three engines on the clothing catalogue, each with its own feature cache, in
turns on the same queries (catalogue photos, file -> ranked list, top 50):
the look with BELOW_EDGE 0 (round 8's selection: the band's pairs only), with
BELOW_EDGE 1 (today's), and no look at all. Prints medians, means, files read,
and the look's cost over no look.

    cd bench && nice -n 10 python bench_below_edge.py [QUERIES]   # 150 by default, ~1 min
"""

import sys
import time

import numpy as np

from common import WORK
from quality_issue11 import Catalogued
from swimsearch import same_picture
from swimsearch.catalogue import Catalogue
from swimsearch.config import EngineConfig
from swimsearch.model import Embedder, default_model_path
from swimsearch.search import SearchEngine

NAMES = ("look, BELOW_EDGE=0", "look, BELOW_EDGE=1", "no look")


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 150
    config, embedder = EngineConfig(), Embedder(default_model_path())
    with Catalogue.open(WORK / "clothing.swimcat", readonly=True) as cat:
        data = Catalogued(cat)
        engines = {k: SearchEngine(cat, embedder, config) for k in (0, 1, 2)}
        engines[2].picture_check.enabled = False
        rows = np.random.default_rng(5).choice(len(data.relpaths), n, replace=False)
        ms = {0: [], 1: [], 2: []}
        for i, row in enumerate(rows):
            for k in ((0, 1, 2) if i % 2 else (2, 1, 0)):
                same_picture.BELOW_EDGE = min(k, 1)
                e = engines[k]
                t = time.perf_counter()
                e.search(data.root / data.relpaths[row], top_n=50)
                ms[k].append(1000 * (time.perf_counter() - t))
        for k in (0, 1, 2):
            print(f"{NAMES[k]}: query by catalogue file (file -> ranked list, top 50) median {np.median(ms[k]):.1f} ms, "
                  f"mean {np.mean(ms[k]):.1f}; files read {engines[k].picture_check.cache.reads}")
        print(f"ratio of medians {np.median(ms[1]) / np.median(ms[0]):.3f}, of means {np.mean(ms[1]) / np.mean(ms[0]):.3f}")
        cost = [np.median(ms[k]) - np.median(ms[2]) for k in (0, 1)] + [np.mean(ms[k]) - np.mean(ms[2]) for k in (0, 1)]
        print(f"the look's cost (median over no look): BELOW_EDGE=0 {cost[0]:.1f} ms, BELOW_EDGE=1 {cost[1]:.1f} ms; "
              f"means {cost[2]:.1f} / {cost[3]:.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
