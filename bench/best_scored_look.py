"""What the look at the best-scored match costs and raises (same_picture.BELOW_EDGE, round 12).

Since round 12 the candidate reading the best score outside *same design* is
looked at in every lower band, not only in *very similar*, and raised to the
band's edge when it is the same picture (instead of best_scored.py's blind
lift). Each labelled clothing photo is searched as a catalogue photo (the
naive protocol of bench_quality.py, exact path, no verdicts kept, so every
pair is looked at when searched) and the looks are counted: all pairs
(`PictureCheck.looked`), those below *very similar* (the looks round 12
adds), and the candidates they raise, by the query's sender and label.

    cd bench && python best_scored_look.py [--every N] [--settings query_augment_k=2]
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

import numpy as np

from common import WORK, with_settings
from quality_issue11 import Catalogued
from swimsearch import same_picture
from swimsearch.calibration import band_levels
from swimsearch.catalogue import Catalogue
from swimsearch.config import EngineConfig
from swimsearch.model import Embedder, default_model_path
from swimsearch.search import SearchEngine


def counted(seen: list[tuple[int, int, bool]]):
    """checked_page, recording each pair it looks at as (candidate id, band level before the look, passed)."""
    checked_page = same_picture.checked_page

    def wrapper(looks_same, ids, percent, variant, exempt, garment, limit, ranking=None, below=0):
        level = dict(zip(ids.tolist(), band_levels(percent).tolist()))

        def looking(candidates: np.ndarray, rows: np.ndarray) -> np.ndarray:
            passed = looks_same(candidates, rows)
            seen.extend((int(c), level[int(c)], bool(p)) for c, p in zip(candidates.tolist(), passed.tolist()))
            return passed

        return checked_page(looking, ids, percent, variant, exempt, garment, limit, ranking, below)

    return wrapper


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=int, default=1, help="every N-th labelled query")
    parser.add_argument("--settings", default="", help="engine query settings, as bench_quality.py takes them")
    args = parser.parse_args()
    config = with_settings(EngineConfig(), args.settings)
    with Catalogue.open(WORK / "clothing.swimcat") as catalogue:
        data = Catalogued(catalogue)
        engine = SearchEngine(catalogue, Embedder(default_model_path()), config)
        engine.picture_check.verdicts = None  # every pair looked at when searched: counted
        queries = np.arange(len(data.rows))[:: max(1, args.every)]
        label_of = {int(data.snap.ids[r]): int(data.labels.labels[data.label_of_row[r]]) if data.label_of_row[r] >= 0 else -1
                    for r in range(len(data.snap.ids))}
        sender_of = {int(data.snap.ids[r]): int(data.labels.groups[data.label_of_row[r]]) if data.label_of_row[r] >= 0 else -1
                     for r in range(len(data.snap.ids))}
        per_query, lower, raised = [], [], Counter()
        started = time.perf_counter()
        same_picture.checked_page = counted(seen := [])
        for q in queries:
            row = int(data.rows[q])
            image_id = int(data.snap.ids[row])
            seen.clear()
            before = engine.picture_check.looked
            engine.search_embeddings(data.embeddings[row : row + 1], phash=int(data.phash[row]), top_n=data.depth, query_id=image_id)
            per_query.append(engine.picture_check.looked - before)
            below = [(c, lv, ok) for c, lv, ok in seen if lv >= 2]  # looked at only since round 12
            lower.append(len(below))
            for c, lv, ok in seen:
                if lv >= 1 and ok:
                    same_sender = sender_of[c] == int(data.labels.groups[q])
                    same_label = label_of[c] == int(data.labels.labels[q])
                    raised[("very similar" if lv == 1 else "lower bands", same_sender, same_label)] += 1
    n = len(queries)
    print(f"{n} labelled queries searched as catalogue photos (exact path, {args.settings or 'defaults'}), "
          f"{time.perf_counter() - started:.0f} s")
    print(f"  pairs looked at per query: mean {np.mean(per_query):.2f}, median {np.median(per_query):.0f}, max {max(per_query)}")
    print(f"  of them below very similar (the best-scored, looked at since round 12): {sum(lower)} in all, "
          f"{np.mean(lower):.3f} per query, in {int(np.count_nonzero(lower))} of {n} queries")
    print("  raised to same design by the look below the edge (band before the look, the query's sender, its label):")
    for (band, same_sender, same_label), count in sorted(raised.items()):
        print(f"    {band:12s} {'same sender ' if same_sender else 'other sender'} "
              f"{'same label ' if same_label else 'other label'} {count}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
