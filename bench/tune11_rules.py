"""Round 11: best-scored rule variants read offline from tune11_sweep.py --save lists: cd bench && python tune11_rules.py LISTS.npz"""
import sys
import numpy as np
sys.path.insert(0, ".")
from best_scored_rule import exact_lists, load_lists, rule_order
from common import WORK
from quality_issue11 import Catalogued, sender_halves
from swimsearch.catalogue import Catalogue
from swimsearch.metrics import average_precision

VARIANTS = [(0, 0.0, 0), (1, 3.0, 0), (1, 2.0, 0), (1, 3.0, 3), (1, 3.0, 5), (1, 3.0, 10), (1, 0.0, 10), (1, 2.0, 10), (1, 5.0, 10), (10, 3.0, 0), (10, 3.0, 10), (10, 0.0, 10)]
queries, lists = load_lists(sys.argv[1])
with Catalogue.open(WORK / "clothing.swimcat", readonly=True) as catalogue:
    data = Catalogued(catalogue)
exact = exact_lists(data, queries)
tuning, _ = sender_halves(data.labels.groups)
halves = {"all": np.ones(len(queries), bool), "tuning": np.isin(queries, tuning), "held-out": ~np.isin(queries, tuning)}
halves = {k: v for k, v in halves.items() if v.any()}
base = {cross: average_precision(*data.hits(queries, exact, cross), 10) for cross in (True, False)}
print(f"{len(queries)} queries; x exact cosine; beyond: lift only a match standing >= beyond places below its target")
print(f"{'protocol':>9} {'within':>6} {'lead':>5} {'beyond':>6} | " + " ".join(f"{'cross ' + h:>14}" for h in halves) + " | " + " ".join(f"{'same ' + h:>14}" for h in halves) + " | changed  P@1c  P@1s")
for protocol, got in lists.items():
    for within, lead, beyond in VARIANTS:
        changed, rule_lists = 0, []
        for rows, scores, bands, duplicate, itself in got:
            m = len(rows)
            order = rule_order(scores, bands, duplicate, itself, within, lead)
            if beyond and not np.array_equal(order, np.arange(m)):
                i = int(np.flatnonzero(order != np.arange(m))[0])
                at = int(order[i])  # the lifted row's position before (the identity order)
                if at - i < beyond:
                    order = np.arange(m)
            changed += not np.array_equal(order, np.arange(m))
            rule_lists.append(rows[order][: data.depth])
        cells, p1 = [], []
        for cross in (True, False):
            hits, rel = data.hits(queries, rule_lists, cross)
            ap = average_precision(hits, rel, 10)
            cells += [ap[mask].mean() / base[cross][mask].mean() for mask in halves.values()]
            p1.append(hits[:, 0].mean())
        n = len(halves)
        print(f"{protocol:>9} {within:>6} {lead:>5.1f} {beyond:>6} | " + " ".join(f"{c:>14.4f}" for c in cells[:n]) + " | " + " ".join(f"{c:>14.4f}" for c in cells[n:]) + f" | {changed:>6} {p1[0]:.3f} {p1[1]:.3f}", flush=True)
