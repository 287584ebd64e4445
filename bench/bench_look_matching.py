"""The look's keypoint matching: FAISS's exact binary search against OpenCV's BFMatcher.knnMatch, in turns.

copy_check.fit keeps a keypoint's match when its nearest descriptor is strictly nearer than 0.8 x the second
(Lowe's ratio test). Round 15 finds the two nearest with FAISS (`copy_check._ratio_matches`) instead of
knnMatch. This prints, on ORB features of clothing photos: the time of the two matchers alone for a pair, and
whether every fit (inliers, the aligned look, the transform) is the same; then a new picture's whole query
with each (two engines on one catalogue, each reading its own features, taking turns query by query), and
whether the lists are the same.

    cd bench && python bench_look_matching.py               # work/clothing.swimcat, 200 queries
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import CLOTHING, WORK, median, save

from bench_build import chosen_queries
import swimsearch.copy_check as copy_check
from swimsearch.catalogue import Catalogue
from swimsearch.config import EngineConfig
from swimsearch.feature_cache import FeatureCache
from swimsearch.model import Embedder, default_model_path
from swimsearch.search import SearchEngine


MATCHERS = {"faiss": copy_check._ratio_matches, "knnMatch": copy_check._knn_ratio_matches}  # the matching before round 15


def pair_times(photos: list[Path]) -> dict:
    features = [copy_check.file_features(p) for p in photos]
    pairs = [(a.plain, b.plain) for a, b in zip(features, features[1:]) if a is not None and b is not None]
    pairs += [(a.plain, a.mirrored()) for a in features if a is not None]
    fits = {}
    out: dict = {}
    for name, matcher in MATCHERS.items():
        copy_check._ratio_matches = matcher
        fits[name] = [copy_check.fit(a, b) for a, b in pairs]
        spent = []
        for _ in range(5):
            started = time.perf_counter()
            for a, b in pairs:
                matcher(a.descriptors, b.descriptors, copy_check.RATIO)
            spent.append((time.perf_counter() - started) / len(pairs) * 1000)
        out[name] = min(spent)
    copy_check._ratio_matches = MATCHERS["faiss"]
    same = sum(f == k and np.array_equal(f.matrix, k.matrix) for f, k in zip(fits["faiss"], fits["knnMatch"]))
    return {"pairs": len(pairs), "ms_a_pair": out, "same_fits": same}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--catalogue", type=Path, default=WORK / "clothing.swimcat")
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()

    photos = sorted((CLOTHING / "images").glob("*.jpg"))
    alone = pair_times(photos[::53][:100])
    print(f"the matchers alone, {alone['pairs']} pairs (photo against the next, and against its mirror image), best of 5:")
    print(f"  faiss {alone['ms_a_pair']['faiss']:.3f} ms a pair, knnMatch {alone['ms_a_pair']['knnMatch']:.3f} ms; "
          f"the same fit for {alone['same_fits']} of {alone['pairs']}")
    embedder = Embedder(default_model_path())
    times: dict[str, list[float]] = {name: [] for name in MATCHERS}
    lists: dict[str, list] = {name: [] for name in MATCHERS}
    with tempfile.TemporaryDirectory() as tmp, Catalogue.open(args.catalogue) as catalogue:
        files = [shutil.copy(q, f"{tmp}/{n:04d}{q.suffix}") for n, q in enumerate(chosen_queries(photos, args.queries))]
        engines = {name: SearchEngine(catalogue, embedder, EngineConfig()) for name in MATCHERS}
        for name, engine in engines.items():
            copy_check._ratio_matches = MATCHERS[name]
            engine.picture_check.verdicts = None  # every pair looked at when it is searched
            for q in files[:5]:
                engine.search(q, top_n=50)
            engine.picture_check.cache = FeatureCache()
        for n, q in enumerate(files):
            turn = list(engines.items())
            for name, engine in turn[n % 2:] + turn[: n % 2]:
                copy_check._ratio_matches = MATCHERS[name]
                started = time.perf_counter()
                result = engine.search(q, top_n=50)
                times[name].append((time.perf_counter() - started) * 1000)
                lists[name].append([(m.image_id, m.score, m.band) for m in result.matches])
        copy_check._ratio_matches = MATCHERS["faiss"]
    same = sum(a == b for a, b in zip(lists["faiss"], lists["knnMatch"]))
    paired = median([a - b for a, b in zip(times["faiss"], times["knnMatch"])])
    row = {name: {"median": median(t), "mean": sum(t) / len(t)} for name, t in times.items()}
    print(f"a new picture's query, {len(files)} in turns: faiss {row['faiss']['median']:.2f} ms median "
          f"({row['faiss']['mean']:.2f} mean), knnMatch {row['knnMatch']['median']:.2f} ({row['knnMatch']['mean']:.2f}); "
          f"median of the paired differences {paired:+.2f} ms; lists identical: {same} of {len(files)}")
    save("look-matching", {"alone": alone, "query": row, "paired_difference_ms": paired, "identical_lists": same})
    return 0 if same == len(files) and alone["same_fits"] == alone["pairs"] else 1


if __name__ == "__main__":
    sys.exit(main())
