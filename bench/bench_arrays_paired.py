"""The search stage at 1M, two source trees in one process, each query searched by both in turns.

bench_arrays.py runs each tree in processes of its own, in turns of 100
queries; on this shared machine one tree's turn read 4.4 ms and the same
tree's next 7.3 ms (round 16), so a ratio of two turns says little. Here
both trees' engines live in one process (the baseline tree's package loaded
under another name: the engine imports itself relatively; its cache maker runs
`swimsearch.array_build` from the tree `array_watch._child_env` names, which before
review 16b's fix was the `swimsearch` first on the path, this tree's: a baseline
older than that checks the shared cache with this tree's maker), on the same
catalogue and array cache, and every query is searched by both, the order
alternating query by query, so a second of load falls on both alike. It
prints each tree's median and p90, the ratio of medians, the median of the
per-query ratios, and whether every list (ids, scores, bands) is the same.

    SWIMSEARCH_CACHE_DIR=/work/cache/arrays python bench/bench_arrays_paired.py \\
        /work/cache/scale1m/synthetic-1000000.swimcat /work/cache/scale1m/scale-queries.npy --baseline BASELINE_TREE \\
        [--queries 200] [--warm 5] [--top-n 10]

Both trees must read the same cache FORMAT (one folder serves both).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from common import ROOT, median, percentile, save  # noqa: E402


def engine_of(tree: Path, name: str, catalogue: str):
    """A SearchEngine of `tree`'s package (imported as `name`), its array cache waited for and mapped in."""
    if name == "swimsearch":
        package = importlib.import_module("swimsearch")  # this tree's, first on the path (common.py)
    else:
        spec = importlib.util.spec_from_file_location(name, tree / "swimsearch" / "__init__.py",
                                                      submodule_search_locations=[str(tree / "swimsearch")])
        assert spec is not None and spec.loader is not None
        package = importlib.util.module_from_spec(spec)
        sys.modules[name] = package
        spec.loader.exec_module(package)
    opened = importlib.import_module(f"{name}.catalogue").Catalogue.open(catalogue, readonly=True)
    config = importlib.import_module(f"{name}.config").EngineConfig()
    engine = importlib.import_module(f"{name}.search").SearchEngine(opened, None, config)
    watch = engine.array_watch
    if watch is None or not watch.wait(900):
        raise SystemExit(f"{tree}: the array cache was not taken into use (SWIMSEARCH_CACHE_DIR?)")
    print(f"{tree}: {package.__file__}", flush=True)
    return engine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("catalogue")
    parser.add_argument("queries", help=".npy of query embeddings (n, D)")
    parser.add_argument("--baseline", required=True, help="the other source tree")
    parser.add_argument("--queries", dest="count", type=int, default=200)
    parser.add_argument("--warm", type=int, default=5, help="queries searched by both first, not timed")
    parser.add_argument("--top-n", type=int, default=10, help="results asked (the window asks 200 and shows 50)")
    args = parser.parse_args()
    engines = {"baseline": engine_of(Path(args.baseline).resolve(), "swimsearch_baseline", args.catalogue),
               "new": engine_of(ROOT, "swimsearch", args.catalogue)}
    queries = np.load(args.queries)[: args.count]
    times: dict[str, list[float]] = {"baseline": [], "new": []}
    same = 0
    for n, query in enumerate(queries):
        lists = {}
        for side in (("new", "baseline") if n % 2 else ("baseline", "new")):
            started = time.perf_counter()
            result = engines[side].search_embeddings(query[None], top_n=args.top_n)
            if n >= args.warm:
                times[side].append((time.perf_counter() - started) * 1000)
            lists[side] = [(m.image_id, m.score, m.band) for m in result.matches]
        same += lists["new"] == lists["baseline"]
    new, base = times["new"], times["baseline"]
    ratios = (np.array(new) / np.array(base)).tolist()
    print(f"search stage, top {args.top_n}, {len(new)} queries each, in turns within one process:")
    for side, values in (("baseline", base), ("new", new)):
        print(f"  {side:8s} median {median(values):6.2f} ms   p90 {percentile(values, 90):6.2f} ms")
    print(f"new / baseline: {median(new) / median(base):.3f} x (medians), {median(ratios):.3f} x (median of per-query ratios); "
          f"lists identical (ids, scores, bands): {same} of {len(queries)}")
    save(f"arrays-paired-{Path(args.catalogue).stem}" + ("" if args.top_n == 10 else f"-top{args.top_n}"), {
        "baseline": str(Path(args.baseline).resolve()), "queries": len(queries), "warm": args.warm, "top_n": args.top_n,
        "baseline_ms": times["baseline"], "new_ms": times["new"], "identical_lists": same,
        "ratio_of_medians": median(new) / median(base), "median_ratio": median(ratios),
    })


if __name__ == "__main__":
    main()
