"""Opening a catalogue and its first search, one fresh process each, for two versions of the code in turns.

What a user waits for when the app opens a large catalogue: Catalogue.open,
SearchEngine (the snapshot: codes, vectors, the stored graph, all checked)
and one search. Each turn runs in a fresh process (cold Python, warm OS file
cache) with the code of one source tree first on the import path; the trees
alternate (A B, B A, ...), so that a loaded machine's load falls on both
alike. Prints wall time, CPU time and peak memory per turn, medians and the
ratios to the first tree (the baseline).

    python bench/bench_open.py CATALOGUE QUERIES --code BASELINE_TREE NEW_TREE [--pairs 3]

e.g. the catalogue and queries `bench_scale.py --sizes 1000000` writes, with
a checkout of main and this tree.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import run_with_tree, save  # noqa: E402

CHILD = """
import json, sys, time
import numpy as np
import swimsearch
from swimsearch.catalogue import Catalogue
from swimsearch.config import EngineConfig
from swimsearch.search import SearchEngine
query = np.load(sys.argv[2])[:1]
phash = int(sys.argv[3]) if len(sys.argv) > 3 else None  # a search by file brings the file's pHash
wall, cpu = time.perf_counter(), time.process_time()
catalogue = Catalogue.open(sys.argv[1], readonly=True)
engine = SearchEngine(catalogue, None, EngineConfig())
engine.search_embeddings(query, top_n=10, phash=phash)
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
peak = [int(line.split()[1]) / 1024 for line in open("/proc/self/status") if line.startswith("VmHWM:")][0]
print(json.dumps({"wall_s": wall, "cpu_s": cpu, "peak_mb": peak, "code": swimsearch.__file__}))
"""


#: Any pHash: a search by file carries its file's, and its first one reads every image's pHash (phash_index.py).
QUERY_PHASH = 0x9C3A_51E7_0F2D_B846


def turn(code: str, catalogue: str, queries: str, phash: bool = False) -> dict:
    return run_with_tree(code, CHILD, str(Path(catalogue).resolve()), str(Path(queries).resolve()),
                         *([str(QUERY_PHASH)] if phash else []))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("catalogue")
    parser.add_argument("queries")
    parser.add_argument("--code", nargs=2, required=True, metavar=("BASELINE", "NEW"), help="two source trees")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--phash", action="store_true", help="the first search brings a pHash, as a search by file does")
    args = parser.parse_args(argv)
    turns: dict[str, list[dict]] = {code: [] for code in args.code}
    for pair in range(args.pairs):
        order = args.code if pair % 2 == 0 else args.code[::-1]
        for code in order:
            out = turn(code, args.catalogue, args.queries, args.phash)
            turns[code].append(out)
            print(f"pair {pair + 1} {code}: open + first search {out['wall_s']:.2f} s wall, {out['cpu_s']:.2f} s CPU, "
                  f"peak {out['peak_mb']:.0f} MB", flush=True)
    summary = {}
    for code, rows in turns.items():
        summary[code] = {key: statistics.median(r[key] for r in rows) for key in ("wall_s", "cpu_s", "peak_mb")}
        summary[code]["wall_s_range"] = [min(r["wall_s"] for r in rows), max(r["wall_s"] for r in rows)]
    base, new = (summary[code] for code in args.code)
    ratios = {key: new[key] / base[key] for key in ("wall_s", "cpu_s", "peak_mb")}
    print(f"medians: baseline {base['wall_s']:.2f} s wall / {base['cpu_s']:.2f} s CPU / {base['peak_mb']:.0f} MB; "
          f"new {new['wall_s']:.2f} s / {new['cpu_s']:.2f} s / {new['peak_mb']:.0f} MB")
    print(f"new / baseline: wall {ratios['wall_s']:.2f} x, CPU {ratios['cpu_s']:.2f} x, peak memory {ratios['peak_mb']:.2f} x")
    path = save("open-phash" if args.phash else "open", {"catalogue": args.catalogue, "phash": args.phash, "baseline": args.code[0], "new": args.code[1],
                         "turns": turns, "medians": summary, "ratios": ratios})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
