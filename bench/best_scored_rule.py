"""How the rule that lifts the best-scored match (swimsearch/best_scored.py) was chosen: mAP@10 of each setting.

The list reads band by band and, inside a band, by the ranking (query
expansion on augmented vectors), while each match shows the calibrated score
of the two pictures. Where the ranking puts a match that reads more far down
(a crop's original ranked 233rd), the rule lifts the best-scored match of the
list (outside *same design*, duplicates and the query) to position `within`
inside its band when it reads `lead` points more than those it passes.

Every labelled clothing photo is searched once as a catalogue photo (the
engine with the rule off, the list 400 deeper than the protocol reads), each
setting is applied to those lists as the engine applies it, and mAP@10 is
printed against exact cosine, cross-sender and same-sender, on all queries
and each sender half (quality_issue11.sender_halves), with how many lists
change. bench_quality.py --sections ranking measures the chosen setting
through the engine (naive and leak-free).

    cd bench && python best_scored_rule.py [--every N]    # ~6 min on a quiet machine for all 5,096 queries
"""

from __future__ import annotations

import argparse

import numpy as np

from common import WORK
from quality_issue11 import Catalogued, _unit, sender_halves
from swimsearch.best_scored import ordered
from swimsearch.calibration import BAND_NAMES
from swimsearch.catalogue import Catalogue
from swimsearch.config import EngineConfig
from swimsearch.metrics import average_precision
from swimsearch.search import SearchEngine

SETTINGS = [(0, 0.0), (1, 0.0), (1, 1.0), (1, 2.0), (1, 3.0), (1, 4.0), (3, 0.0), (3, 3.0), (10, 0.0), (10, 3.0)]


def listed(data: Catalogued, result, row: int) -> tuple:
    """A search's list as the rule reads it: catalogue rows, scores, band levels, pHash duplicates, the query itself."""
    rows = data.snap.rows_of(np.array([m.image_id for m in result.matches], np.int64))
    scores = np.array([m.score for m in result.matches])
    bands = np.array([BAND_NAMES.index(m.band) for m in result.matches], np.float64)
    duplicate = np.array([m.duplicate for m in result.matches])
    return rows, scores, bands, duplicate, rows == row


FIELDS = ("rows", "scores", "bands", "duplicate", "itself")


def save_lists(path: str, queries: np.ndarray, lists: dict[str, list[tuple]]) -> None:
    """Lists (`listed`) by protocol in one .npz (each field's lists end to end, with their lengths; no pickle)."""
    arrays: dict[str, np.ndarray] = {"queries": np.asarray(queries)}
    for protocol, got in lists.items():
        arrays[f"{protocol}/lengths"] = np.array([len(one[0]) for one in got], np.int64)
        for n, name in enumerate(FIELDS):
            arrays[f"{protocol}/{name}"] = np.concatenate([one[n] for one in got]) if got else np.zeros(0)
    np.savez(path, **arrays)


def load_lists(path: str) -> tuple[np.ndarray, dict[str, list[tuple]]]:
    """What `save_lists` wrote."""
    data = np.load(path)
    lists: dict[str, list[tuple]] = {}
    for key in data.files:
        if key.endswith("/lengths"):
            protocol = key.rsplit("/", 1)[0]
            ends = np.cumsum(data[key])
            fields = [np.split(data[f"{protocol}/{name}"], ends[:-1]) for name in FIELDS]
            lists[protocol] = list(zip(*fields))
    return data["queries"], lists


def exact_lists(data: Catalogued, queries: np.ndarray) -> list[np.ndarray]:
    """Each labelled query's exact-cosine list (centred embeddings, the query first), `data.depth` long."""
    full = _unit(data.embeddings - data.embeddings.mean(axis=0))
    exact = []
    for q in queries:
        sims = full @ full[data.rows[q]]
        sims[data.rows[q]] = np.inf
        exact.append(np.argsort(-sims, kind="stable")[: data.depth])
    return exact


def ruled(data: Catalogued, lists: list[tuple], within: int, lead: float) -> tuple[list[np.ndarray], int]:
    """Each list (`listed`) in the rule's order, `data.depth` long, and how many the rule changed."""
    changed, out = 0, []
    for rows, scores, bands, duplicate, itself in lists:
        order = rule_order(scores, bands, duplicate, itself, within, lead)
        changed += not np.array_equal(order, np.arange(len(rows)))
        out.append(rows[order][: data.depth])
    return out, changed


def rule_order(scores: np.ndarray, bands: np.ndarray, duplicate: np.ndarray, itself: np.ndarray, within: int,
               lead: float) -> np.ndarray:
    """The order the engine's rule (best_scored.ordered) gives a list searched with the rule off."""
    m = len(scores)
    first = np.where(duplicate | itself, 0.0, 65.0)  # the query and duplicates stand first, as in the engine
    others = (bands > 0) & ~duplicate & ~itself
    # the list's own order is the ranking (higher first): its positions, reversed
    _, order = ordered(np.arange(m), first, bands * (first == 65), np.zeros(m), -np.arange(m, dtype=np.float64),
                       scores, others, within, lead)
    return order


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--every", type=int, default=1, help="every N-th labelled query")
    args = parser.parse_args()
    with Catalogue.open(WORK / "clothing.swimcat", readonly=True) as catalogue:
        data = Catalogued(catalogue)
        engine = SearchEngine(catalogue, None, EngineConfig(best_scored_within=0))
        queries = np.arange(0, len(data.rows), args.every)
        lists = []
        for q in queries:
            row = int(data.rows[q])
            result = engine.search_embeddings(data.embeddings[row : row + 1], phash=int(data.phash[row]),
                                              top_n=data.depth + 400, query_id=int(data.snap.ids[row]))
            lists.append(listed(data, result, row))
    exact = exact_lists(data, queries)
    tuning, _ = sender_halves(data.labels.groups)
    halves = {"all": np.ones(len(queries), bool), "tuning": np.isin(queries, tuning), "held-out": ~np.isin(queries, tuning)}
    base = {cross: average_precision(*data.hits(queries, exact, cross), 10) for cross in (True, False)}
    print(f"{len(queries)} labelled queries, catalogue photos searched as such; mAP@10 x exact cosine")
    print(f"{'within':>6} {'lead':>5} | " + " ".join(f"{'cross ' + h:>14}" for h in halves) + " | "
          + " ".join(f"{'same ' + h:>13}" for h in halves) + " | lists changed")
    for within, lead in SETTINGS:
        rule_lists, changed = ruled(data, lists, within, lead)
        cells = []
        for cross in (True, False):
            ap = average_precision(*data.hits(queries, rule_lists, cross), 10)
            cells += [ap[mask].mean() / base[cross][mask].mean() for mask in halves.values()]
        print(f"{within:>6} {lead:>5.1f} | " + " ".join(f"{c:>14.4f}" for c in cells[:3]) + " | "
              + " ".join(f"{c:>13.4f}" for c in cells[3:]) + f" | {changed}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
