"""What checking a stored search graph costs when a catalogue opens, against FAISS reading the same bytes.

Builds the graph graph.py keeps (HNSW16,SQ8) over N random 128-d unit
vectors, cuts it into the stored parts, then times in turns: the check of
graph_check.py over the parts, FAISS reading them (`VectorGraph.from_parts`),
and both in the one pass opening a catalogue makes (FAISS reading the
checked stream, `checked_parts`).
Both single-threaded; medians of --repeat turns; the ratio is what counts on
a loaded machine.

    python bench/bench_graph_check.py [--nodes 100000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from swimsearch.graph import VectorGraph, faiss_module  # noqa: E402
from swimsearch.graph_check import check_graph_stream, checked_parts  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "graph_check.json"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((args.nodes, args.dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    started = time.perf_counter()
    graph = VectorGraph.build(np.arange(args.nodes), vectors)
    build_s = time.perf_counter() - started
    parts = list(graph.parts())
    faiss_module().omp_set_num_threads(1)
    check, read, both = [], [], []
    for _ in range(args.repeat):
        started = time.perf_counter()
        check_graph_stream(iter(parts), args.nodes, args.dim)
        check.append(time.perf_counter() - started)
        started = time.perf_counter()
        VectorGraph.from_parts(iter(parts), graph.ids)
        read.append(time.perf_counter() - started)
        started = time.perf_counter()
        VectorGraph.from_parts(checked_parts(iter(parts), args.nodes, args.dim), graph.ids)
        both.append(time.perf_counter() - started)
    out = {
        "nodes": args.nodes,
        "bytes": sum(len(p) for p in parts),
        "build_s": build_s,
        "check_s_median": statistics.median(check),
        "faiss_read_s_median": statistics.median(read),
        "check_over_read": statistics.median(check) / statistics.median(read),
        "checked_read_s_median": statistics.median(both),
        "checked_read_over_read": statistics.median(both) / statistics.median(read),
        "when": time.strftime("%Y-%m-%d %H:%M"),
        "command": "python bench/bench_graph_check.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    print(f"{args.nodes:,} nodes, {out['bytes'] / 1e6:.1f} MB of graph (built in {build_s:.1f} s)")
    print(f"check  {out['check_s_median'] * 1000:8.1f} ms median")
    print(f"FAISS read {out['faiss_read_s_median'] * 1000:8.1f} ms median")
    print(f"check / read: {out['check_over_read']:.2f}")
    print(f"FAISS reading the checked stream (one pass, as opening does) {out['checked_read_s_median'] * 1000:8.1f} ms median, "
          f"{out['checked_read_over_read']:.2f} x the read alone")
    RESULTS.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
