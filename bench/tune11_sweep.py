"""Round 11 sweep: query settings x best-scored rule settings on one sender half, naive and leak-free (exact path).

Each query setting (--settings) is searched once per protocol with the rule off and lists 400 deeper than
the protocol reads; the rule settings (within, lead) are then applied to those lists as the engine applies
them (best_scored_rule.py's emulation, which reproduces the engine's figures). mAP@10 x exact cosine.

    cd bench && nice -n 10 python tune11_sweep.py --split tuning [--settings k=v,...] [--path exact|lsh]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import quality_leakfree
from best_scored_rule import exact_lists, listed, ruled, save_lists
from common import WORK, with_settings
from quality_issue11 import Catalogued, sender_halves
from swimsearch.catalogue import Catalogue
from swimsearch.config import EngineConfig
from swimsearch.metrics import average_precision
from swimsearch.search import SearchEngine

SETTINGS = [(0, 0.0), (1, 1.0), (1, 2.0), (1, 3.0), (1, 4.0), (1, 5.0), (2, 3.0)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--catalogue", default=str(WORK / "clothing.swimcat"))
    parser.add_argument("--split", default="tuning", choices=("all", "tuning", "held-out"))
    parser.add_argument("--settings", default="")
    parser.add_argument("--path", default="exact", choices=("exact", "lsh"))
    parser.add_argument("--protocols", default="naive,leak-free")
    parser.add_argument("--every", type=int, default=1)
    parser.add_argument("--save", default="", help="keep the lists in this .npz (for rule variants read offline)")
    args = parser.parse_args()
    config = with_settings(EngineConfig(), args.settings).with_changes(best_scored_within=0)
    if args.path == "lsh":
        config = config.with_changes(exact_below=0, graph_from=10**9)
    print(f"# split {args.split}, path {args.path}, settings {args.settings or 'defaults'}", flush=True)
    started = time.time()
    with Catalogue.open(args.catalogue, readonly=True) as catalogue:
        data = Catalogued(catalogue)
        engine = SearchEngine(catalogue, None, config)
        queries = np.arange(len(data.rows))
        tuning, held_out = sender_halves(data.labels.groups)
        if args.split != "all":
            queries = {"tuning": tuning, "held-out": held_out}[args.split]
        queries = queries[:: args.every]
        lists = {}
        for protocol in args.protocols.split(","):
            leave = quality_leakfree.LeaveOneOut(engine, catalogue, config) if protocol == "leak-free" else None
            out = []
            for q in queries:
                row = int(data.rows[q])
                image_id = int(data.snap.ids[row])
                if leave is None:
                    result = engine.search_embeddings(data.embeddings[row : row + 1], phash=int(data.phash[row]),
                                                      top_n=data.depth + 400, query_id=image_id)
                else:
                    with leave.without(image_id):
                        result = engine.search_embeddings(data.embeddings[row : row + 1], phash=int(data.phash[row]),
                                                          top_n=data.depth + 400)
                out.append(listed(data, result, row))
            lists[protocol] = out
            print(f"  {protocol}: {len(queries)} queries searched ({time.time() - started:.0f} s)", flush=True)
    if args.save:
        save_lists(args.save, queries, lists)
    exact = exact_lists(data, queries)
    base = {cross: average_precision(*data.hits(queries, exact, cross), 10) for cross in (True, False)}
    print(f"{len(queries)} queries; mAP@10 x exact cosine (exact cosine cross {base[True].mean():.4f}, same {base[False].mean():.4f})")
    print(f"{'protocol':>9} {'within':>6} {'lead':>5} | {'cross':>7} {'same':>7} | changed")
    for protocol, got in lists.items():
        for within, lead in SETTINGS:
            rule_lists, changed = ruled(data, got, within, lead)
            cells = [average_precision(*data.hits(queries, rule_lists, cross), 10).mean() / base[cross].mean()
                     for cross in (True, False)]
            print(f"{protocol:>9} {within:>6} {lead:>5.1f} | {cells[0]:>7.4f} {cells[1]:>7.4f} | {changed}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
