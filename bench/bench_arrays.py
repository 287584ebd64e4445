"""A search at 100k and 1M images from the array cache, against another source tree's code, in turns.

What issue 11 (the search stage under 5 ms at 1M), 15 (the work after the
candidate stage well under the stage) and 13 (one search under 20 ms) ask of
the SQLite store: each turn is a fresh process with one source tree's code
first on the import path, trees alternating (A B, B A, ...) so that a loaded
machine's load falls on both alike. A turn opens the catalogue read-only,
waits until its array cache is checked (the new code; `SWIMSEARCH_CACHE_DIR`
says where caches are, made beforehand with `--make`), searches 5 queries to
warm up, then times each search: wall and CPU time of the whole search stage
(`search_embeddings`: everything after the query's embedding), the part spent
in the candidate searches (the searcher's `search`, timed inside), and the
rest (query expansion, augmented vectors, calibrated scoring, the list). The
lists (ids, scores, bands) of the two trees are compared query by query.

    SWIMSEARCH_CACHE_DIR=/work/cache/arrays python bench/bench_arrays.py \\
        /work/cache/scale1m/synthetic-1000000.swimcat /work/cache/scale1m/scale-queries.npy \\
        --code BASELINE_TREE . [--queries 105] [--pairs 1] [--make] [--settings '{"expand_rounds": 2}'] \\
        [--cache-dirs BASELINE_CACHE_DIR NEW_CACHE_DIR]

Trees whose caches are of different FORMATs need a cache folder each (`--cache-dirs`): in one folder
each would find the other's cache of another format and make its own in its place.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import median, percentile, run_with_tree, save  # noqa: E402

CHILD = """
import json, os, resource, sys, time
if sys.argv[5]:  # this tree's cache folder (trees of two cache formats must not remake each other's caches)
    os.environ["SWIMSEARCH_CACHE_DIR"] = sys.argv[5]
import swimsearch  # first: one BLAS thread, as the app runs
import numpy as np
from swimsearch.catalogue import Catalogue
from swimsearch.config import EngineConfig
from swimsearch.search import SearchEngine
queries = np.load(sys.argv[2])[: int(sys.argv[3])]
engine = SearchEngine(Catalogue.open(sys.argv[1], readonly=True), None, EngineConfig(**json.loads(sys.argv[4])))
watch = getattr(engine, "array_watch", None)
t0 = time.perf_counter()
cached = bool(watch is not None and watch.wait(900))
wait_s = time.perf_counter() - t0
searcher = engine._searcher
inner = searcher.search
spent = [0.0, 0.0]
def timed(*args, **kwargs):
    t, c = time.perf_counter(), time.process_time()
    try:
        return inner(*args, **kwargs)
    finally:
        spent[0] += time.perf_counter() - t
        spent[1] += time.process_time() - c
searcher.search = timed
for q in queries[:5]:
    engine.search_embeddings(q[None], top_n=10)
wall, cpu, stage, stage_cpu, lists, from_arrays, faults = [], [], [], [], [], [], []
for q in queries[5:]:
    spent[:] = [0.0, 0.0]
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t0, c0 = time.perf_counter(), time.process_time()
    result = engine.search_embeddings(q[None], top_n=10)
    wall.append((time.perf_counter() - t0) * 1000)
    cpu.append((time.process_time() - c0) * 1000)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
    stage.append(spent[0] * 1000)
    stage_cpu.append(spent[1] * 1000)
    from_arrays.append(bool(getattr(engine._data, "from_arrays", False)))
    lists.append([[m.image_id, m.score, m.band] for m in result.matches])
print(json.dumps({"wall": wall, "cpu": cpu, "faults": faults, "stage": stage, "stage_cpu": stage_cpu, "lists": lists, "cached": cached,
                  "wait_s": wait_s, "from_arrays": sum(from_arrays), "code": swimsearch.__file__}))
"""


def make(catalogue: str) -> dict:
    """Make (or check) the catalogue's array cache in this process: time and size."""
    from swimsearch.array_build import ensure
    from swimsearch.array_cache import cache_file
    from swimsearch.stores.sqlite import SqliteStore

    store = SqliteStore.open(catalogue, readonly=True)
    path = cache_file(store)
    store.close()
    started = time.perf_counter()
    out = ensure(Path(catalogue), path)
    return {"path": str(path), "seconds": time.perf_counter() - started, "bytes": path.stat().st_size, **out}


def summary(rows: list[dict]) -> dict:
    joined = {key: [v for r in rows for v in r[key]] for key in ("wall", "cpu", "stage", "stage_cpu", "faults")}
    after = [w - s for w, s in zip(joined["wall"], joined["stage"])]
    after_cpu = [c - s for c, s in zip(joined["cpu"], joined["stage_cpu"])]
    out = {}
    for name, values in (*joined.items(), ("after", after), ("after_cpu", after_cpu)):
        out[name] = {"median": median(values), "p90": percentile(values, 90)}
    out["from_arrays"] = sum(r["from_arrays"] for r in rows)
    out["searches"] = len(joined["wall"])
    out["wait_s"] = [r["wait_s"] for r in rows]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("catalogue")
    parser.add_argument("queries")
    parser.add_argument("--code", nargs=2, required=True, metavar=("BASELINE", "NEW"), help="two source trees")
    parser.add_argument("--queries", dest="count", type=int, default=105, help="queries a turn (the first 5 warm up)")
    parser.add_argument("--pairs", type=int, default=1)
    parser.add_argument("--make", action="store_true", help="make (or check) the cache first, timed")
    parser.add_argument("--cache-dirs", nargs=2, metavar=("BASELINE_DIR", "NEW_DIR"), default=("", ""),
                        help="each tree's cache folder (trees of different cache FORMATs; default: $SWIMSEARCH_CACHE_DIR for both)")
    parser.add_argument("--settings", default="{}", help='EngineConfig fields as JSON for both trees, e.g. \'{"expand_rounds": 2}\'')
    args = parser.parse_args(argv)
    if not os.environ.get("SWIMSEARCH_CACHE_DIR"):
        print("note: SWIMSEARCH_CACHE_DIR is not set: the user's cache folder is used")
    made = None
    if args.make:
        made = make(args.catalogue)
        print(f"array cache {'made' if made['made'] else 'checked'} in {made['seconds']:.1f} s: {made['bytes'] / 1e9:.2f} GB {made['path']}")
    turns: dict[str, list[dict]] = {code: [] for code in args.code}
    lists: dict[str, list] = {}
    folders = dict(zip(args.code, args.cache_dirs))
    for pair in range(args.pairs):
        for code in args.code if pair % 2 == 0 else args.code[::-1]:
            out = run_with_tree(code, CHILD, str(Path(args.catalogue).resolve()), str(Path(args.queries).resolve()), str(args.count),
                                json.dumps(json.loads(args.settings)), folders[code])
            lists[code] = out.pop("lists")
            turns[code].append(out)
            print(f"pair {pair + 1} {code}: search {median(out['wall']):.2f} ms wall / {median(out['cpu']):.2f} ms CPU median, "
                  f"candidate stage {median(out['stage']):.2f} ms, {median(out['faults']):.0f} page faults; {out['from_arrays']} of {len(out['wall'])} from arrays "
                  f"(ready after {out['wait_s']:.1f} s)", flush=True)
    same = sum(a == b for a, b in zip(*(lists[code] for code in args.code)))
    results = {code: summary(rows) for code, rows in turns.items()}
    base, new = (results[code] for code in args.code)
    print(f"\n{'':24s}{'baseline':>22s}{'new':>22s}   (median / p90, ms)")
    for key, label in (("wall", "search stage, wall"), ("cpu", "search stage, CPU"), ("stage", "candidate stage, wall"),
                       ("stage_cpu", "candidate stage, CPU"), ("after", "after candidates, wall"), ("after_cpu", "after candidates, CPU")):
        cells = [f"{r[key]['median']:8.2f} / {r[key]['p90']:7.2f}" for r in (base, new)]
        print(f"{label:24s}{cells[0]:>22s}{cells[1]:>22s}")
    cells = [f"{r['faults']['median']:8.0f} / {r['faults']['p90']:7.0f}" for r in (base, new)]
    print(f"{'page faults a search':24s}{cells[0]:>22s}{cells[1]:>22s}   (minor faults: first touches of mapped pages)")
    ratio = new["wall"]["median"] / base["wall"]["median"]
    print(f"new / baseline search stage: {ratio:.3f} x wall, {new['cpu']['median'] / base['cpu']['median']:.3f} x CPU; "
          f"lists identical (ids, scores, bands): {same} of {len(lists[args.code[0]])}")
    name = f"arrays-{Path(args.catalogue).stem}"
    for key, value in json.loads(args.settings).items():  # other settings: another results file
        name += f"-{key}{value}"
    path = save(name, {"catalogue": args.catalogue, "baseline": args.code[0], "new": args.code[1], "made": made,
                       "cache_dirs": list(args.cache_dirs),
                       "settings": json.loads(args.settings),
                       "results": results, "same_lists": same, "queries": len(lists[args.code[0]]), "turns": turns})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
