"""How deep each candidate search must go, and how widely a graph must be walked, for the final results to hold.

The pipeline (ranking.find_candidates) searches twice a query (the query,
then the query expanded with its best results), asks each search for
`max(top_n + RESCORE_MARGIN, rescore_depth)` candidates, and rescores the best
`top_n + RESCORE_MARGIN` of their union. This sweeps, on one catalogue of
bench_scale.py's layout:

  * the depth each search asks for (`rescore_depth`: 40 ... 200);
  * for our graph (`GraphSearch`, FAISS `HNSW16,SQ8` over the 128-d re-ranking
    vectors) the walk's width efSearch, and whether it is raised to the depth
    (FAISS walks at least k wide when asked for k);
  * for the peer, FAISS `IndexBinaryHNSW` over the same 128-bit codes, the
    candidates it fetches by Hamming distance (re-ranked by the same vectors,
    the best `depth` handed on) and its efSearch;

and for each setting measures recall@10 of the final top 10 (and recall@50
of the top 50, the user's page) against the very same pipeline on the exact
path at today's depth, and the median time of one candidate search at that
setting, timed on the very searches the pipeline made on the exact path
(each query prepared as the fit wants it, then expanded: bench_scale.RecordingExact).
Every search single-threaded (faiss.omp_set_num_threads(1)). The
rescoring reads every embedding from memory here (`rescore_in_memory_up_to`
raised: the same numbers, checked on the first queries), only so the sweep
finishes; it is not what is timed.

    cd bench && nice -n 10 python bench_depth.py /work/cache/candidates/synthetic-100000.swimcat \
        /work/cache/candidates/scale-queries.npy
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from common import median, save

import numpy as np

from bench_scale import FaissHnswSearch, RecordingExact, faiss_binary_hnsw
from swimsearch.catalogue import Catalogue
from swimsearch.config import EngineConfig
from swimsearch.search import SearchEngine
from swimsearch.searchers import GraphSearch

PASSES = 3


class PeerSearch(FaissHnswSearch):
    """FAISS IndexBinaryHNSW fetching `fetch` candidates by Hamming (at least the depth asked for)."""

    def __init__(self, snapshot, index, effort: int, fetch: int):
        super().__init__(snapshot, index, effort)
        self.fetch = fetch

    def search(self, code, vector, k):
        self.CANDIDATES = max(self.fetch, k)
        return super().search(code, vector, k)


def ours(snap, effort: int) -> GraphSearch:
    """The app's graph search walking `effort` wide, handing on as many candidates as asked."""
    return GraphSearch(snap, candidates=0, effort=effort)


ENGINES: dict = {}


def final_lists(catalogue, config, searcher, queries, top_n: int) -> list[list[int]]:
    """The pipeline's final lists with `searcher` as its candidate stage.

    One engine per rescoring setting, its searcher and depth swapped between
    settings: holding 100,000 images' rescoring data in memory takes a minute
    to set up (and changes no result), so it is set up once.
    """
    engine = ENGINES.get(config.rescore_in_memory_up_to)
    if engine is None:
        engine = ENGINES[config.rescore_in_memory_up_to] = SearchEngine(catalogue, None, config, searcher=searcher)
    engine.config, engine._searcher = config, searcher
    return [[m.image_id for m in engine.search_embeddings(q[None], top_n=top_n).matches] for q in queries]


def recall(found: list[list[int]], truth: list[list[int]]) -> float:
    return float(np.mean([len(set(f) & set(t)) / max(len(t), 1) for f, t in zip(found, truth)]))


def stage_ms(searchers: dict, codes, vectors, depth_of: dict) -> dict:
    """Median time of one candidate search per setting, settings in rotating order over PASSES passes."""
    times: dict[str, list[float]] = {name: [] for name in searchers}
    names = list(searchers)
    for p in range(PASSES):
        for name in names[p % len(names):] + names[: p % len(names)]:
            searcher, depth = searchers[name], depth_of[name]
            for i in range(len(codes)):
                t0 = time.perf_counter()
                searcher.search(codes[i], vectors[i], depth)
                times[name].append((time.perf_counter() - t0) * 1000)
    return {name: median(t) for name, t in times.items()}


def simd_levels(levels: list[str], rows: list[dict], settings: dict, codes, vectors, faiss) -> dict:
    """Each side's fastest setting at recall@10 >= 0.98 timed again at each SIMD level, in one rotation.

    FAISS 1.15's wheel is one dynamic-dispatch build: it picks its kernels
    for the CPU at run time (AVX512_VPOPCNT here), for ours and the peer
    alike; this shows what each side owes to them.
    """
    best = {}
    for kind in ("ours", "faiss"):
        fit = [r for r in rows if r["kind"] == kind and r["recall@10"] >= 0.98]
        if fit:
            best[kind] = min(fit, key=lambda r: r["stage_ms"])["setting"]
    chosen = faiss.SIMDConfig.get_level()
    out: dict = {}
    try:
        for level in levels:
            faiss.SIMDConfig.set_level(faiss.to_simd_level(level))
            name = faiss.SIMDConfig.get_level_name()
            timed = stage_ms({kind: settings[s][3] for kind, s in best.items()}, codes, vectors,
                             {kind: settings[s][1] for kind, s in best.items()})
            out[name] = timed
            ratio = f"  ours / faiss {timed['ours'] / timed['faiss']:.2f}" if len(timed) == 2 else ""
            print(f"FAISS kernels at {name:15s} " + "  ".join(f"{k} {v:.3f} ms" for k, v in timed.items()) + ratio, flush=True)
    finally:
        faiss.SIMDConfig.set_level(chosen)
    return {"settings": best, "ms": out}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("catalogue")
    parser.add_argument("queries")
    parser.add_argument("--count", type=int, default=200, help="queries used (default 200)")
    parser.add_argument("--depths", type=int, nargs="+", default=[40, 120, 200], help="candidates a search asks for")
    parser.add_argument("--exact-depths", type=int, nargs="*", default=[40, 80, 120, 160, 200],
                        help="depths tried on the exact path (what the pipeline itself needs)")
    parser.add_argument("--efforts", type=int, nargs="+", default=[32, 48, 64, 96, 128], help="our walk widths")
    parser.add_argument("--peer-fetch", type=int, nargs="+", default=[100, 200, 400, 800],
                        help="candidates FAISS IndexBinaryHNSW fetches by Hamming (at least the depth)")
    parser.add_argument("--peer-efforts", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--top50", action="store_true", help="also recall@50 of the top 50 (page) for each setting")
    parser.add_argument("--simd", nargs="*", default=[], metavar="LEVEL",
                        help="also time each side's fastest setting at recall@10 >= 0.98 with FAISS's kernels forced "
                             "to these levels (NONE AVX2 AVX512 AVX512_VPOPCNT: faiss.SIMDConfig.set_level)")
    parser.add_argument("--in-memory-up-to", type=int, default=200_000, help="rescore from memory up to this many images "
                        "(faster sweeps; above, from the catalogue file as the app does: at 1M memory would not hold it)")
    args = parser.parse_args()
    import faiss

    faiss.omp_set_num_threads(1)
    queries = np.load(args.queries)[: args.count]
    catalogue = Catalogue.open(args.catalogue, readonly=True)
    snap = catalogue.load_snapshot()
    base = EngineConfig()
    fast = base.with_changes(rescore_in_memory_up_to=len(snap) + 1) if len(snap) <= args.in_memory_up_to else base
    exact = RecordingExact(snap)
    tops = (10, 50) if args.top50 else (10,)
    truth = {10: final_lists(catalogue, fast, exact, queries, 10)}
    # every setting is timed on the searches the pipeline made for these top 10s (each query, then expanded)
    codes, vectors = exact.searches()
    truth.update({n: final_lists(catalogue, fast, exact, queries, n) for n in tops if n != 10})
    # the in-memory rescoring gives the lists the store-reading one gives
    check = final_lists(catalogue, base, exact, queries[:10], 10)
    assert check == truth[10][:10], "in-memory rescoring changed the lists"
    # FAISS's wheel dispatches its kernels at run time (compile options "DD ..."): the level both sides ran at
    simd = faiss.SIMDConfig.get_level_name() if hasattr(faiss, "SIMDConfig") else "unknown"
    out: dict = {"images": len(snap), "queries": len(queries), "searches_timed": len(codes), "faiss_simd": simd, "rows": []}
    print(f"{len(snap)} images, {len(queries)} queries, {len(codes)} candidate searches timed; FAISS {faiss.__version__} "
          f"({faiss.get_compile_options()}) runs its {simd} kernels, single-threaded", flush=True)
    for depth in args.exact_depths:
        for n in tops:
            same = final_lists(catalogue, fast.with_changes(rescore_depth=depth), exact, queries, n)
            print(f"exact path, depth {depth}: recall@{n} {recall(same, truth[n]):.4f} "
                  f"(identical lists {sum(a == b for a, b in zip(same, truth[n]))} of {len(same)})", flush=True)
    index, _ = faiss_binary_hnsw(snap, Path(args.catalogue + ".faiss-bhnsw"))
    settings = {}
    for depth in args.depths:
        settings[f"ours app default depth={depth}"] = ("ours", depth, base.graph_effort, GraphSearch(
            snap, candidates=base.graph_candidates, effort=base.graph_effort, effort_share=base.graph_effort_share))
        for effort in args.efforts:
            settings[f"ours depth={depth} ef={effort}"] = ("ours", depth, effort, ours(snap, effort))
        for fetch in args.peer_fetch:
            if fetch < depth:
                continue
            for effort in args.peer_efforts:
                settings[f"faiss-bhnsw depth={depth} fetch={fetch} ef={effort}"] = ("faiss", depth, effort, PeerSearch(snap, index, effort, fetch))
    timed = stage_ms({k: v[3] for k, v in settings.items()}, codes, vectors, {k: v[1] for k, v in settings.items()})
    for name, (kind, depth, effort, searcher) in settings.items():
        row = {"setting": name, "kind": kind, "depth": depth, "ef": effort, "stage_ms": timed[name]}
        for n in tops:
            if n + 30 > depth and n > 10:  # the pipeline asks for at least top_n + 30: that depth is measured on its own
                row[f"recall@{n}"] = float("nan")
                continue
            row[f"recall@{n}"] = recall(final_lists(catalogue, fast.with_changes(rescore_depth=depth), searcher, queries, n), truth[n])
        out["rows"].append(row)
        print(f"{name:45s} stage {row['stage_ms']:.3f} ms  " + "  ".join(f"recall@{n} {row[f'recall@{n}']:.3f}" for n in tops), flush=True)
    for kind in ("ours", "faiss"):
        for n in tops:
            fit = [r for r in out["rows"] if r["kind"] == kind and r[f"recall@{n}"] >= 0.98]  # nan never passes
            if fit:
                best = min(fit, key=lambda r: r["stage_ms"])
                print(f"fastest {kind} at recall@{n} >= 0.98: {best['setting']} {best['stage_ms']:.3f} ms (recall {best[f'recall@{n}']:.3f})")
    if args.simd:
        out["simd"] = simd_levels(args.simd, out["rows"], settings, codes, vectors, faiss)
    print(f"wrote {save(f'depth-{len(snap)}', out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
