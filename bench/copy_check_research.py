"""Research for the same-design picture check (swimsearch/copy_check.py): rules chosen on one half, figures on the other.

Issue 11's band *same design* names copies of one picture (crop 80 %, half
size + JPEG 40, colour jitter, mirror, rotation 8 degrees), yet on the
5,398 clothing photos the embedding band alone puts look-alike garments
there. The look (ORB fit + aligned block comparison) is made both ways
round, because ORB's matches differ with which picture is described first.
For the pictures of the clothing catalogue this measures:

* `band` pairs: those the embedding band calls *same design* among each
  query's top 10 (queries: labelled photos, the query itself left out);
  `below` pairs: the first two of *very similar* in the list's order (what a
  look below the band's edge would see), counted apart by sender (cross /
  same) and label (same / other kind of garment): how many pass the check
  (they should not, except photos in the set twice: pHash near-identical
  pairs pass without the check and are counted apart);
* transformed copies of catalogue photos (copies.py) against their original
  file: how many pass (they should);
* the time per pair of `copy_check.same_picture` (features already read),
  and of a file's features.

Every pair is fitted four ways (query -> other and other -> query, plain and
mirrored) and the rules are applied to those fits:

* *both ways*: one orientation in which each way's fit has >= t inliers and
  its aligned look (made in both frames) <= d;
* *second pass* (copy_check.same_picture today): *both ways*, or each way
  finds a fit with >= t inliers and the better of the two fits' looks is
  <= d2 (a crop's fit one way can be a few pixels off and fail the look
  that the other way's fit passes; the look is made in both frames, so it
  does not depend on which picture is the query).

Queries and copied photos are split by sender into a tuning half and a
held-out half (quality_issue11.sender_halves). (t, d) are chosen on the
tuning half (look-alikes of the band at most 0.1 %, then the most copies,
then the loosest), then d2 (no look-alike of the tuning half, band or below,
passes that *both ways* did not, then the most copies, then the strictest);
the figures are printed for the held-out half.

    cd bench && nice -n 10 python copy_check_research.py [--catalogue CAT] [--queries 1000] [--copies 400] [--settings 160x250,200x300]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from PIL import Image, ImageOps

from common import WORK, save

from quality_issue11 import Catalogued, sender_halves
from swimsearch import copy_check
from swimsearch.calibration import BAND_NAMES
from swimsearch.catalogue import Catalogue
from swimsearch.config import EngineConfig
from swimsearch.copies import COPY_KINDS, transformed_copy
from swimsearch.images import load_picture
from swimsearch.model import Embedder, default_model_path
from swimsearch.search import SearchEngine

THRESHOLDS = list(range(8, 41, 2))
DIFFERENCES = [round(0.2 + 0.025 * i, 3) for i in range(13)]  # 0.2 .. 0.5
SECOND = [round(0.02 + 0.01 * i, 2) for i in range(39)]  # 0.02 .. 0.4
BELOW = 2  # rows of *very similar* a look below the edge would see, in the list's order


def four_fits(q: copy_check.Picture, o: copy_check.Picture) -> np.ndarray:
    """(2 orientations, 2 ways, (inliers, look, refined look)): query -> other and other -> query, plain then mirrored.
    The refined look (copy_check.refined_look) only where a fit of THRESHOLDS[0] inliers was found (inf otherwise)."""
    ways = [(q.plain, o.plain), (o.plain, q.plain), (q.mirrored(), o.plain), (o.mirrored(), q.plain)]
    out = []
    for a, b in ways:
        f = copy_check.fit(a, b)
        refined = (copy_check.refined_look(a.gray, b.gray, f.matrix) if f.matrix is not None and f.inliers >= THRESHOLDS[0]
                   else float("inf"))
        out.append((f.inliers, f.worst_block, refined))
    return np.array(out).reshape(2, 2, 3)


def both_ways(fits: np.ndarray, t: int, d: float) -> np.ndarray:
    ok = (fits[..., 0] >= t) & (fits[..., 1] <= d)  # (n, orientation, way)
    return ok.all(axis=2).any(axis=1)


def second_pass(fits: np.ndarray, t: int, d: float, d2: float) -> np.ndarray:
    """copy_check.decided: both ways, or each way >= t inliers and one of the two fits' refined looks <= d2."""
    found = (fits[..., 0] >= t).all(axis=2) & (fits[..., 2].min(axis=2) <= d2)
    return both_ways(fits, t, d) | found.any(axis=1)


def best_fit(query: copy_check.Picture, other: copy_check.Picture, least: int) -> copy_check.Fit:
    """Round 8's fit: the query as it is, or (when that fails) mirrored, the better of the two."""
    plain = copy_check.fit(query.plain, other.plain, least=least)
    if copy_check.passes(plain):
        return plain
    mirrored = copy_check.fit(query.mirrored(), other.plain, least=least)
    return mirrored if (copy_check.passes(mirrored), mirrored.inliers) > (copy_check.passes(plain), plain.inliers) else plain


def round8(query: copy_check.Picture, other: copy_check.Picture) -> bool:
    """Round 8's decision, for the time beside it: each way's best fit (plain, else mirrored) must pass the look."""
    least = copy_check.MIN_INLIERS
    return copy_check.passes(best_fit(query, other, least)) and copy_check.passes(best_fit(other, query, least))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalogue", default=str(WORK / "clothing.swimcat"))
    parser.add_argument("--queries", type=int, default=1000, help="labelled photos queried (0: all)")
    parser.add_argument("--copies", type=int, default=400, help="catalogue photos copied in each kind")
    parser.add_argument("--settings", default=f"{copy_check.SIDE}x{copy_check.KEYPOINTS}",
                        help="long side x keypoints of the features, comma-separated (e.g. 160x250,200x300,256x500)")
    args = parser.parse_args()
    settings = [tuple(int(v) for v in s.split("x")) for s in args.settings.split(",")]
    config = EngineConfig()
    Embedder(default_model_path())
    with Catalogue.open(args.catalogue, readonly=True) as catalogue:
        data = Catalogued(catalogue)
        engine = SearchEngine(catalogue, Embedder(default_model_path()), config)
        engine.picture_check.enabled = False  # the pairs the embedding band alone calls same design
        labels = data.labels
        tuning, held_out = sender_halves(labels.groups)
        half_of = np.zeros(len(labels.paths), np.int64)
        half_of[held_out] = 1
        rng = np.random.default_rng(1)
        queries = np.arange(len(labels.paths)) if not args.queries else np.sort(rng.choice(len(labels.paths), args.queries, replace=False))

        # 1. the band's pairs among each query's top 10, and the first of *very similar*
        started = time.perf_counter()
        pairs = []  # (query row, other row, half, cross sender, other label, pHash distance, below the edge)
        for q in queries:
            row = int(data.rows[q])
            result = engine.search_embeddings(data.embeddings[row : row + 1], phash=int(data.phash[row]), top_n=11,
                                              query_id=int(data.snap.ids[row]))
            matches = [m for m in result.matches if m.image_id != int(data.snap.ids[row])][:10]
            below = 0
            for m in matches:
                if m.band == BAND_NAMES[1]:
                    below += 1
                if m.band != BAND_NAMES[0] and not (m.band == BAND_NAMES[1] and below <= BELOW):
                    continue
                other = int(np.searchsorted(data.snap.ids, m.image_id))
                lab = int(data.label_of_row[other])
                cross = lab < 0 or labels.groups[lab] != labels.groups[q]
                other_label = lab < 0 or labels.labels[lab] != labels.labels[q]
                distance = int(np.bitwise_count(data.phash[row] ^ data.phash[other]))
                pairs.append((row, other, int(half_of[q]), bool(cross), bool(other_label), distance, m.band != BAND_NAMES[0]))
        print(f"{len(queries)} queries, top 10: {sum(not p[6] for p in pairs)} pairs in same design by the embeddings, "
              f"{sum(p[6] for p in pairs)} of the first {BELOW} in very similar ({time.perf_counter() - started:.0f} s)", flush=True)

        # 2. copies of catalogue photos
        copied = np.sort(np.random.default_rng(7).choice(len(labels.paths), args.copies, replace=False))
        copy_pictures = []  # (original catalogue row, kind, half, picture)
        for q in copied:
            row = int(data.rows[q])
            original = ImageOps.exif_transpose(Image.open(data.root / data.relpaths[row])).convert("RGB")
            for kind in COPY_KINDS:
                copy_pictures.append((row, kind, int(half_of[q]), transformed_copy(original, kind, np.random.default_rng(row))))

        results = {}
        for side, keypoints in settings:
            name = f"side {side}, {keypoints} keypoints"
            held: dict[int, copy_check.Picture] = {}
            feature_ms: list[float] = []

            def features(row: int) -> copy_check.Picture:
                if row not in held:
                    t = time.perf_counter()
                    picture, _ = load_picture(data.root / data.relpaths[row], side)
                    held[row] = copy_check.picture_features(picture, side=side, keypoints=keypoints)
                    feature_ms.append(1000 * (time.perf_counter() - t))
                return held[row]

            started = time.perf_counter()
            pair_fits = np.array([four_fits(features(q), features(o)) for q, o, *_ in pairs]).reshape(-1, 2, 2, 3)
            copy_fits = np.array([four_fits(copy_check.picture_features(p, side=side, keypoints=keypoints), features(row))
                                  for row, _, _, p in copy_pictures]).reshape(-1, 2, 2, 3)
            # what the engine's decision costs a pair, features already read (its own settings only)
            # against round 8's decision (each way's best fit must pass), in turns on the same pairs
            decision_ms: list[float] = []
            round8_ms: list[float] = []
            if (side, keypoints) == (copy_check.SIDE, copy_check.KEYPOINTS):
                for q, o, *_ in pairs[:600]:
                    a, b = features(q), features(o)
                    a.mirrored(), b.mirrored()  # described once a search, whichever decision runs first
                    t = time.perf_counter()
                    copy_check.same_picture(a, b)
                    decision_ms.append(1000 * (time.perf_counter() - t))
                    t = time.perf_counter()
                    round8(a, b)
                    round8_ms.append(1000 * (time.perf_counter() - t))
            results[name] = (pair_fits, copy_fits, float(np.median(feature_ms)),
                             float(np.mean(decision_ms)) if decision_ms else None)
            print(f"{name}: decode + features {np.median(feature_ms):.1f} ms median per file"
                  + (f"; a look-alike pair's decision (features read) {np.mean(decision_ms):.2f} ms mean, median "
                     f"{np.median(decision_ms):.2f} (round 8's {np.mean(round8_ms):.2f} / {np.median(round8_ms):.2f}: x"
                     f"{np.mean(decision_ms) / np.mean(round8_ms):.2f} in the mean)" if decision_ms else "")
                  + f" ({time.perf_counter() - started:.0f} s)", flush=True)

        pair_half = np.array([p[2] for p in pairs])
        cross = np.array([p[3] for p in pairs])
        other_label = np.array([p[4] for p in pairs])
        duplicate = np.array([p[5] for p in pairs]) <= config.duplicate_distance
        below = np.array([p[6] for p in pairs])
        copy_half = np.array([c[2] for c in copy_pictures])
        copy_kind = np.array([c[1] for c in copy_pictures])
        summary: dict = {"queries": len(queries), "band_pairs": int((~below).sum()), "below_pairs": int(below.sum()),
                         "copies": len(copy_pictures), "settings": {}}
        print(f"\nband pairs: {(~below).sum()} ({(cross & ~below).sum()} cross-sender, {(other_label & ~below).sum()} another "
              f"label, {(duplicate & ~below).sum()} pHash near-identical: pass without the check); below the edge: {below.sum()}")
        np.savez(WORK / "copy-check-research.npz", pair_half=pair_half, cross=cross, other_label=other_label, duplicate=duplicate,
                 below=below, copy_half=copy_half, copy_kind=copy_kind, pairs=np.array([p[:2] for p in pairs]).reshape(-1, 2),
                 copy_rows=np.array([c[0] for c in copy_pictures]),
                 **{f"pair_fits {n}": r[0] for n, r in results.items()}, **{f"copy_fits {n}": r[1] for n, r in results.items()})
        look = ~duplicate
        tune_copy = copy_half == 0
        for name, (pair_fits, copy_fits, feat, decision) in results.items():
            tune_band, tune_any = look & (pair_half == 0) & ~below, look & (pair_half == 0)
            best = None
            for t in THRESHOLDS:
                for d in DIFFERENCES:
                    copies_ok = float(both_ways(copy_fits[tune_copy], t, d).mean())
                    false = float(both_ways(pair_fits[tune_band], t, d).mean())
                    key = (false <= 0.001, copies_ok, -false, -t, d)
                    if best is None or key > best[0]:
                        best = (key, t, d)
            assert best is not None
            _, t, d = best
            before = both_ways(pair_fits[tune_any], t, d).sum()
            # d2, added to the engine's first pass: half-way between the strictest that passes the most tuning
            # copies and the loosest that lets no tuning look-alike (band or below) pass beyond it: a margin either side
            t, d = copy_check.MIN_INLIERS, copy_check.MAX_DIFFERENCE
            allowed = [d2 for d2 in SECOND if second_pass(pair_fits[tune_any], t, d, d2).sum() <= before]
            most = max(float(second_pass(copy_fits[tune_copy], t, d, d2).mean()) for d2 in allowed)
            low = min(d2 for d2 in allowed if float(second_pass(copy_fits[tune_copy], t, d, d2).mean()) >= most)
            high = max(d2 for d2 in allowed if d2 >= low and all(x in allowed for x in SECOND if low <= x <= d2))
            d2 = min(SECOND, key=lambda x: abs(x - (low + high) / 2))
            print(f"  second pass on the tuning half: the most copies from {low}, no added look-alike up to {high}", flush=True)
            rules = {f"both ways (inliers >= {best[1]}, look <= {best[2]}: chosen alone)": lambda f: both_ways(f, best[1], best[2]),
                     f"both ways (inliers >= {t}, look <= {d}: the engine's first pass, round 8)": lambda f: both_ways(f, t, d),
                     f"second pass (+ each way >= {t} inliers, the better look <= {d2})": lambda f: second_pass(f, t, d, d2),
                     f"engine's (inliers >= {copy_check.MIN_INLIERS}, look <= {copy_check.MAX_DIFFERENCE}, second pass "
                     f"<= {copy_check.SECOND_LOOK})": lambda f: second_pass(f, copy_check.MIN_INLIERS, copy_check.MAX_DIFFERENCE,
                                                                         copy_check.SECOND_LOOK)}
            print(f"\n{name}: chosen on the tuning half: inliers >= {best[1]}, look <= {best[2]} (both ways alone); second pass "
                  f"<= {d2} (after the engine's first pass); figures of the held-out half"
                  + (f"; copy_check.same_picture {decision:.2f} ms a look-alike pair (mean)" if decision else ""))
            summary["settings"][name] = {"min_inliers": t, "max_difference": d, "second_look": d2, "both_ways_alone": best[1:], "feature_ms": feat,
                                         "same_picture_ms": decision, "rules": {}}
            h = (pair_half == 1) & look
            for rule, decide in rules.items():
                passes, copy_pass = decide(pair_fits), decide(copy_fits)

                def rate(mask: np.ndarray) -> tuple[int, int]:
                    return int(passes[mask].sum()), int(mask.sum())

                figures = {
                    "band": rate(h & ~below), "band_cross_sender": rate(h & ~below & cross),
                    "band_other_label": rate(h & ~below & other_label), "below": rate(h & below),
                    "below_cross_sender": rate(h & below & cross), "below_other_label": rate(h & below & other_label),
                    "copies": {k: float(copy_pass[(copy_kind == k) & (copy_half == 1)].mean()) for k in COPY_KINDS},
                    "copies_tuning": {k: float(copy_pass[(copy_kind == k) & (copy_half == 0)].mean()) for k in COPY_KINDS},
                }
                summary["settings"][name]["rules"][rule] = figures
                print(f"  {rule}:")
                print("    look-alikes passing: " + ", ".join(
                    f"{k.replace('_', ' ')} {v[0]} of {v[1]} ({100 * v[0] / max(1, v[1]):.2f} %)"
                    for k, v in figures.items() if isinstance(v, tuple)))
                print("    copies passing (held-out): " + ", ".join(f"{k} {100 * v:.1f} %" for k, v in figures["copies"].items())
                      + "; tuning half: " + ", ".join(f"{k} {100 * v:.1f} %" for k, v in figures["copies_tuning"].items()))
                top = np.flatnonzero(look & passes)[:8]
                print("    look-alikes passing (both halves): " + ("; ".join(
                    f"{data.relpaths[pairs[i][0]].rsplit('/', 1)[-1][:8]}~{data.relpaths[pairs[i][1]].rsplit('/', 1)[-1][:8]} "
                    f"{pair_fits[i, 0, :, 0].min():.0f}/{pair_fits[i, 0, :, 1].min():.2f}-{pair_fits[i, 0, :, 1].max():.2f} "
                    f"(pHash {pairs[i][5]}, {'cross' if pairs[i][3] else 'same'}-sender, {'below' if pairs[i][6] else 'band'})"
                    for i in top) or "none"))
    path = save("copy-check-research", summary)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
