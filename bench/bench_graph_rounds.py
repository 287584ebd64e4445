"""Query expansion on the graph: ranking the first walk's candidates again against walking again, held to the exact path.

Round 17 (config.graph_walk_again, graph_near_share): on a catalogue searched
through its HNSW graph, expansion's rounds rank the candidates of the search
before by the expanded query instead of walking the graph again, all but the
last round for a longer list. Here three engines search the same queries: the
app's defaults, every round walking again (as before round 17), and the exact
path (every re-ranking vector scanned: what the graph stands in for). For each
list size it prints each graph way's recall against the exact path's list, how
many lists are the same as walking again's (ids and scores), and the walks a
search made.

Queries are the catalogue's real photos (paths not under distractors/), each
embedding with a little noise (a new picture of the design, not the stored one).

    python bench/bench_graph_rounds.py bench/work/clothing-grown-40000.swimcat [--queries 300] [--top-n 10 50 200]

(the grown catalogue is written by `cd bench && python bench_quality.py --sections grown`.)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from common import save  # noqa: E402

from swimsearch.catalogue import Catalogue  # noqa: E402
from swimsearch.config import EngineConfig  # noqa: E402
from swimsearch.search import SearchEngine  # noqa: E402
from swimsearch.searchers import ExactSearch  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("catalogue")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--top-n", type=int, nargs="+", default=[10, 50, 200])
    parser.add_argument("--noise", type=float, default=0.002, help="standard deviation added to each query embedding")
    args = parser.parse_args()
    with Catalogue.open(args.catalogue, readonly=True) as catalogue:
        snap = catalogue.load_snapshot()
        config = EngineConfig()
        engines = {"app": SearchEngine(catalogue, None, config),
                   "walking again": SearchEngine(catalogue, None, config.with_changes(graph_walk_again=True)),
                   "exact path": SearchEngine(catalogue, None, config, searcher=ExactSearch(snap))}
        if engines["app"].searcher_name != "GraphSearch":
            raise SystemExit(f"{args.catalogue} is not searched through a graph ({engines['app'].searcher_name})")
        walks = {"app": 0, "walking again": 0}
        for name in walks:
            graph = engines[name]._searcher.graph  # noqa: SLF001 (counting the walks)
            walk = graph.search_nodes

            def counted(*a, _name=name, _walk=walk):
                walks[_name] += 1
                return _walk(*a)

            graph.search_nodes = counted
        records = catalogue.records(snap.ids)
        real = [int(i) for i in snap.ids if not records[int(i)].relpath.startswith("distractors/")]
        chosen = np.random.default_rng(1).choice(real, min(args.queries, len(real)), replace=False)
        stored = catalogue.embedding_matrix(chosen.tolist())
        at = {int(i): n for n, i in enumerate(stored.ids)}
        rows = []
        for top_n in args.top_n:
            lists: dict[str, list] = {name: [] for name in engines}
            times: dict[str, list[float]] = {name: [] for name in engines}
            walks.update({name: 0 for name in walks})
            for n, image_id in enumerate(chosen):
                vector = stored.vectors[at[int(image_id)]].astype(np.float32)
                query = (vector + np.random.default_rng(n).normal(0, args.noise, vector.shape)).astype(np.float32)[None]
                for name, engine in engines.items():
                    started = time.perf_counter()
                    result = engine.search_embeddings(query, top_n=top_n)
                    times[name].append(1000 * (time.perf_counter() - started))
                    lists[name].append([(m.image_id, m.score) for m in result.matches])
            row = {"top_n": top_n, "queries": len(chosen)}
            for name in ("app", "walking again"):
                row[f"{name} recall"] = float(np.mean([
                    len({i for i, _ in got} & {i for i, _ in want}) / max(len(want), 1)
                    for got, want in zip(lists[name], lists["exact path"])]))
                row[f"{name} walks a search"] = walks[name] / len(chosen)
                row[f"{name} ms"] = float(np.median(times[name]))
            row["same lists"] = sum(a == b for a, b in zip(lists["app"], lists["walking again"]))
            rows.append(row)
            print(f"top {top_n}: recall against the exact path's list: app {row['app recall']:.4f}, walking again "
                  f"{row['walking again recall']:.4f}; lists the same {row['same lists']} of {len(chosen)}; walks a search "
                  f"{row['app walks a search']:.1f} against {row['walking again walks a search']:.1f}", flush=True)
        save("graph-rounds", {"catalogue": str(args.catalogue), "images": len(snap), "noise": args.noise, "rows": rows})


if __name__ == "__main__":
    main()
