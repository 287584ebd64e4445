"""Make the similarity calibration of a model file: reference statistics, band edges, and the figures behind them.

One command per model file (the fp32 trunk today, an int8 one tomorrow):

    nice -n 10 python models/make_calibration.py --model models/efficientnet-lite2-trunk.onnx

It embeds the clothing photos and their transformed copies with that model
(cached under --cache; the shared fp32 cache is used when its sha256
matches), splits the photos by sender into a calibration half and an
evaluation half, and from the calibration half alone decides:

* the reference mean (of power-normalised embeddings) the scores centre on;
* the *same design* edge: the cosine that at least 99 % of the copies of
  every kind (crop 80 %, half size + JPEG 40, colour jitter, mirror,
  rotation 8 degrees) reach;
* the *very similar* and *similar* edges: the cosines from which pairs of
  different photos by different senders share their label at least 85 %
  and 50 % of the time (counting every pair from that cosine up);
* the cosine that reads 0 %: the median of such pairs (a typical unrelated pair).

The same-design edge is a cosine after the whitening (see
swimsearch/calibration.py); the other three are cosines of the centred
embeddings. The setting (power, whitened dimensions, shrinkage) is chosen by
sender cross-validation inside the calibration half.

It then measures the evaluation half with those edges (copies in the
same-design band per kind, different photos in it, label agreement per band,
and how far a fixed pair's score moves between catalogues of 36, 600 and
5,398 photos under the old catalogue-mean score and the calibrated one) and
writes everything to `<model stem>.calibration.json` beside the model.
"""

from __future__ import annotations

import argparse
import datetime
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from embed_copies import copy_rng, embed_copies, embed_originals  # noqa: E402
from PIL import Image, ImageOps  # noqa: E402

from swimsearch.augment import l2_normalise  # noqa: E402
from swimsearch.calibration import (  # noqa: E402
    BAND_NAMES,
    BAND_PERCENT,
    Calibration,
    band,
    calibration_path,
    label_agreement_edge,
    same_design_edge,
    save_calibration,
    whitening,
)
from swimsearch.copies import COPY_KINDS, transformed_copy  # noqa: E402
from swimsearch.images import load_image  # noqa: E402
from swimsearch.model import Embedder  # noqa: E402

CLOTHING = ROOT.parent / "shared" / "datasets" / "clothing"
SHARED_CACHE = Path("/work/cache/clothing-fp32.npz")
#: Label agreement (cumulative, from the top) where *very similar* and *similar* begin.
VERY_SIMILAR, SIMILAR = 0.85, 0.5
#: Settings tried (power, whitened dimensions or None for centring only, shrinkage).
SETTINGS = ((1.0, None, 0.0), (0.5, None, 0.0), (1.0, 256, 0.5), (0.5, 256, 0.5), (1.0, 512, 0.1), (0.5, 512, 0.1))


def _same_embeddings(embedder: Embedder, cache: np.lib.npyio.NpzFile, data: Path, copies: bool) -> bool:
    """Whether `embedder` gives bit-identical embeddings to a cache made with another model file.

    A re-export that only adds outputs (the trunk gained its feature map
    beside the embedding) leaves the embedding untouched; re-embedding the
    photos and their copies for it would cost an hour here for nothing.
    Checked on three photos (or the copies of two).
    """
    names = [str(n) for n in cache["names"]]
    if copies:
        for i in (0, len(names) - 1):
            with Image.open(data / names[i]) as opened:
                original = ImageOps.exif_transpose(opened).convert("RGB")
            pixels = np.stack([load_image(transformed_copy(original, kind, copy_rng(names[i], kind)), embedder.size).pixels
                               for kind in COPY_KINDS])
            if not np.array_equal(embedder.embed(pixels), cache["embeddings"][i]):
                return False
        return True
    for i in (0, len(names) // 2, len(names) - 1):
        pixels = load_image(data / names[i], embedder.size).pixels[None]
        if not np.array_equal(embedder.embed(pixels)[0], cache["embeddings"][i]):
            return False
    return True


def _load(model: Path, data: Path, cache: Path, copies_limit: int, threads: int):
    """Originals and copies of every photo, lined up with labels and senders, and where they came from."""
    import clothing_data

    embedder = Embedder(model, threads=threads)
    sources = {}
    originals = cache / f"originals-{embedder.sha256[:12]}.npz"
    if not originals.exists() and SHARED_CACHE.exists():
        shared = np.load(SHARED_CACHE)
        if str(shared["model_sha256"]) == embedder.sha256 or _same_embeddings(embedder, shared, data, copies=False):
            originals = SHARED_CACHE
            sources["originals"] = f"{SHARED_CACHE.name} (model {str(shared['model_sha256'])[:12]}, bit-identical embeddings checked)"
    if not originals.exists():
        originals = embed_originals(embedder, data, cache)
    photos = clothing_data.load(originals, data)
    copies_file = cache / f"copies-{embedder.sha256[:12]}.npz"
    if not copies_file.exists():
        for other in sorted(cache.glob("copies-*.npz")):
            if other.name.endswith(".partial.npz"):
                continue
            found = np.load(other)
            if len(found["names"]) >= copies_limit and _same_embeddings(embedder, found, data, copies=True):
                copies_file = other
                sources["copies"] = f"{other.name} (model {str(found['model_sha256'])[:12]}, bit-identical embeddings checked)"
                break
    copies = np.load(copies_file if copies_file.exists() else embed_copies(embedder, data, cache, copies_limit))
    take = slice(0, copies_limit or None)
    row_of = {str(n): i for i, n in enumerate(photos.names)}
    copy_rows = np.array([row_of[str(n)] for n in copies["names"][take]])
    return embedder.sha256, photos, copy_rows, copies["embeddings"][take], sources


def _pairs(vectors: np.ndarray, rows: np.ndarray, photos, *, cross_sender: bool):
    """Cosines and same-label flags of every pair of distinct usable photos among `rows`."""
    rows = rows[photos.usable[rows]]
    sims = vectors[rows] @ vectors[rows].T
    i, j = np.triu_indices(len(rows), 1)
    keep = photos.sender[rows[i]] != photos.sender[rows[j]] if cross_sender else photos.sender[rows[i]] == photos.sender[rows[j]]
    return sims[i[keep], j[keep]], photos.label[rows[i[keep]]] == photos.label[rows[j[keep]]]


def _nearest_other(vectors: np.ndarray, rows: np.ndarray, *, photos=None, cross_sender: bool | None = None) -> np.ndarray:
    """Each row's cosine with its most similar other photo among `rows` (optionally other/same sender only)."""
    sims = vectors[rows] @ vectors[rows].T
    np.fill_diagonal(sims, -np.inf)
    if cross_sender is not None:
        same = photos.sender[rows][:, None] == photos.sender[rows][None, :]
        sims[same if cross_sender else ~same] = -np.inf
    return sims.max(axis=1)


def _copy_cosines(vectors_of, photos, copy_rows, copy_embeddings, rows_mask):
    """(photos, kinds) calibrated cosine of each copy with its original, for copies whose original is in rows_mask."""
    take = rows_mask[copy_rows]
    copies = vectors_of(copy_embeddings[take].reshape(-1, copy_embeddings.shape[-1]))
    copies = copies.reshape(int(take.sum()), len(COPY_KINDS), -1)
    return np.einsum("nd,nkd->nk", vectors_of(photos.embeddings[copy_rows[take]]), copies)


def split_by_sender(photos, mask: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two halves of `mask`'s photos, no sender in both (random senders fill the first to about half)."""
    rng = np.random.default_rng(seed)
    senders = rng.permutation(np.unique(photos.sender[mask]))
    counts = np.bincount(photos.sender[mask], minlength=photos.sender.max() + 1)
    first, total = [], 0
    for s in senders:
        if total + counts[s] <= mask.sum() / 2 or not first:
            first.append(s)
            total += counts[s]
    a = mask & np.isin(photos.sender, first)
    return a, mask & ~a


def decide(photos, copy_rows, copy_embeddings, sha: str, setting: tuple, reference: np.ndarray) -> Calibration:
    """Reference statistics and band edges of one setting (power, whitened dims, shrink) from `reference` photos only."""
    power, dims, shrink = setting
    mean, projection = whitening(photos.embeddings[reference], power, dims, shrink)
    probe = Calibration(sha, power, mean, (0.9, 0.6, 0.3, 0.0), projection=projection)
    copy_cos = _copy_cosines(probe.vectors, photos, copy_rows, copy_embeddings, reference)
    per_kind = {kind: same_design_edge(copy_cos[:, k]) for k, kind in enumerate(COPY_KINDS)}
    same = min(per_kind.values())
    cos, agree = _pairs(probe.centred(photos.embeddings), np.flatnonzero(reference), photos, cross_sender=True)
    very = label_agreement_edge(cos, agree, VERY_SIMILAR)
    similar = label_agreement_edge(cos, agree, SIMILAR)
    zero = float(np.median(cos))
    figures = {"copies_per_kind_1pct_whitened_cosine": per_kind,
               "raw_edges": {"same (whitened)": same, "very (centred)": very, "similar (centred)": similar, "zero (centred)": zero},
               "label_agreement_all_cross_sender_pairs": float(agree.mean())}
    # the bands must nest; when the data says otherwise, squeeze and say so
    notes = []
    if very >= 0.98:
        notes.append(f"label agreement never reached {VERY_SIMILAR:.0%} below cosine 0.98; very similar starts at 0.98")
        very = 0.98
    if similar >= very - 0.02:
        notes.append(f"label agreement 50 % at {similar:.3f} is not below the very-similar edge; similar squeezed")
        similar = very - 0.02
    zero = min(zero, similar - 0.02)
    figures["notes"] = notes
    return Calibration(sha, power, mean, (same, very, similar, zero), figures, projection)


HARDEST = "each photo's most similar other photo, different sender"


def choose(photos, copy_rows, copy_embeddings, sha: str, reference: np.ndarray) -> tuple[tuple, dict]:
    """The setting whose same-design band admits fewest look-alikes, by two-fold cross-validation inside `reference`."""
    inner = split_by_sender(photos, reference, seed=1)
    scores = {}
    for setting in SETTINGS:
        rates = []
        for fit, held in (inner, inner[::-1]):
            cal = decide(photos, copy_rows, copy_embeddings, sha, setting, fit)
            rates.append(evaluate(cal, photos, copy_rows, copy_embeddings, held)["different_photos_in_same_design"][HARDEST])
        scores[setting] = float(np.mean(rates))
        print(f"  power {setting[0]}, whitened dims {setting[1]}, shrink {setting[2]}: {100 * scores[setting]:.2f} % of "
              f"held-out photos have a different-sender look-alike in the same-design band", flush=True)
    best = min(SETTINGS, key=lambda s: scores[s])
    return best, {f"power {s[0]}, dims {s[1]}, shrink {s[2]}": v for s, v in scores.items()}


def evaluate(calibration: Calibration, photos, copy_rows, copy_embeddings, half: np.ndarray) -> dict:
    """Figures of a calibration on the photos of `half`."""
    vectors = calibration.vectors(photos.embeddings)
    copy_cos = _copy_cosines(calibration.vectors, photos, copy_rows, copy_embeddings, half)
    pct = calibration.percent(copy_cos)
    copies = {kind: float((pct[:, k] >= BAND_PERCENT[0]).mean()) for k, kind in enumerate(COPY_KINDS)}
    copies["all kinds"] = float((pct >= BAND_PERCENT[0]).mean())
    rows = np.flatnonzero(half & photos.usable)
    cross_cos, cross_agree = _pairs(vectors, rows, photos, cross_sender=True)
    cross_garment, _ = _pairs(calibration.centred(photos.embeddings), rows, photos, cross_sender=True)
    same_cos, _ = _pairs(vectors, rows, photos, cross_sender=False)
    nearest_cross = _nearest_other(vectors, rows, photos=photos, cross_sender=True)
    nearest_any = _nearest_other(vectors, rows)
    top = BAND_PERCENT[0]
    distinct = {
        "all pairs, different senders": float((calibration.percent(cross_cos) >= top).mean()),
        "all pairs, same sender": float((calibration.percent(same_cos) >= top).mean()),
        "each photo's most similar other photo, different sender": float((calibration.percent(nearest_cross) >= top).mean()),
        "each photo's most similar other photo, any sender": float((calibration.percent(nearest_any) >= top).mean()),
    }
    bands = {}
    cross_pct = calibration.percent(cross_cos, cross_garment)
    names = np.array([band(p) for p in cross_pct[:: max(1, len(cross_pct) // 400_000)]])
    sampled_agree = cross_agree[:: max(1, len(cross_pct) // 400_000)]
    for name in BAND_NAMES:
        inside = names == name
        bands[name] = {"share_of_pairs": float(inside.mean()),
                       "label_agreement": float(sampled_agree[inside].mean()) if inside.any() else None}
    return {"copies_in_same_design": copies, "different_photos_in_same_design": distinct,
            "cross_sender_pairs_by_band": bands, "photos": int(half.sum()), "usable_photos": int(len(rows))}


def invariance(calibration: Calibration, photos, copy_rows, copy_embeddings, seed: int = 3) -> dict:
    """How far fixed pairs' scores move between catalogues of 36, 600 and all photos: old score vs calibrated."""
    rng = np.random.default_rng(seed)
    small = rng.choice(len(photos.names), 36, replace=False)
    middle = np.union1d(small, rng.choice(len(photos.names), 600 - 36, replace=False))
    catalogues = {"36": small, "600": middle, str(len(photos.names)): np.arange(len(photos.names))}
    # fixed pairs inside the smallest catalogue, and each of its photos with its crop copy
    i, j = np.triu_indices(len(small), 1)
    pairs_a, pairs_b = photos.embeddings[small[i]], photos.embeddings[small[j]]
    old = []
    for rows in catalogues.values():
        mean = photos.embeddings[rows].mean(0)
        a, b = l2_normalise(pairs_a - mean), l2_normalise(pairs_b - mean)
        old.append(100 * np.clip((a * b).sum(1), -1, 1))  # today: cosine of catalogue-centred embeddings, in %
    old = np.array(old)
    # the calibrated score takes no catalogue statistic at all; computed per catalogue all the same
    new = np.array([np.diag(calibration.similarity(pairs_a, pairs_b)) for _ in catalogues.values()])
    return {"pairs": int(len(i)), "catalogues": list(catalogues),
            "old_score_max_spread_points": float((old.max(0) - old.min(0)).max()),
            "old_score_median_spread_points": float(np.median(old.max(0) - old.min(0))),
            "calibrated_max_spread_points": float((new.max(0) - new.min(0)).max())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=str(ROOT / "models" / "efficientnet-lite2-trunk.onnx"))
    parser.add_argument("--data", default=str(CLOTHING))
    parser.add_argument("--cache", default="/work/cache/quality-research")
    parser.add_argument("--copies", type=int, default=3000, help="photos whose copies are embedded (0: all)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", help="default: <model stem>.calibration.json beside the model")
    args = parser.parse_args()

    model = Path(args.model)
    sha, photos, copy_rows, copy_embeddings, sources = _load(model, Path(args.data), Path(args.cache), args.copies, args.threads)
    calibration_half, evaluation_half = photos.sender_halves(seed=0)
    print(f"calibration half {int(calibration_half.sum())} photos, evaluation half {int(evaluation_half.sum())}; "
          f"copies of {len(copy_rows)} photos", flush=True)
    setting, cross_validation = choose(photos, copy_rows, copy_embeddings, sha, calibration_half)
    calibration = decide(photos, copy_rows, copy_embeddings, sha, setting, calibration_half)
    on_calibration = evaluate(calibration, photos, copy_rows, copy_embeddings, calibration_half)
    held_out = evaluate(calibration, photos, copy_rows, copy_embeddings, evaluation_half)
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        changed = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no", "swimsearch", "models/make_calibration.py"],
                                 capture_output=True, text=True).stdout.strip()
        commit += " with uncommitted changes" if changed else ""
    except OSError:
        commit = ""
    figures = {
        "made_by": f"python models/make_calibration.py --model models/{model.name} --copies {args.copies}",
        "made_at": datetime.date.today().isoformat(),
        "code_commit": commit,
        "model_file": model.name,
        "embeddings_reused": sources,
        "reference_set": (f"clothing data set (CC0), photos of half its senders ({int(calibration_half.sum())} photos, "
                          f"sender split seed 0); copies of {len(copy_rows)} photos"),
        "setting": {"power": setting[0], "whitened_dims": setting[1], "shrink": setting[2]},
        "setting_chosen_by": "two-fold sender cross-validation inside the calibration half: share of held-out photos "
                             "whose most similar different-sender photo lands in the same-design band",
        "cross_validation": cross_validation,
        "calibration_half": on_calibration | {"decision": calibration.figures},
        "evaluation_half": held_out,
        "invariance": invariance(calibration, photos, copy_rows, copy_embeddings),
    }
    ranking_mean = photos.embeddings[calibration_half].mean(0)  # plain embeddings: the ranking's fixed centre
    calibration = Calibration(sha, setting[0], calibration.mean, calibration.edges, figures, calibration.projection, ranking_mean)
    out = Path(args.out) if args.out else calibration_path(model)
    save_calibration(calibration, out)
    print_report(calibration)
    print(f"\nwrote {out}")
    return 0


def print_report(calibration: Calibration) -> None:
    f = calibration.figures
    print(f"\npower {calibration.power}, whitened dims {None if calibration.projection is None else calibration.projection.shape[1]}; "
          "bands (cosine -> percent):")
    for name, pct, edge in zip(BAND_NAMES, BAND_PERCENT, calibration.edges):
        print(f"  {name:13s} from {pct:3.0f} %  ({'whitened' if name == BAND_NAMES[0] else 'centred'} cosine {edge:.3f})")
    for half in ("calibration_half", "evaluation_half"):
        h = f[half]
        print(f"\n{half.replace('_', ' ')} ({h['photos']} photos):")
        print("  copies in the same-design band: " + ", ".join(f"{k} {100 * v:.1f} %" for k, v in h["copies_in_same_design"].items()))
        for k, v in h["different_photos_in_same_design"].items():
            print(f"  different photos in the same-design band, {k}: {100 * v:.3f} %")
        for name, b in h["cross_sender_pairs_by_band"].items():
            agree = "-" if b["label_agreement"] is None else f"{100 * b['label_agreement']:.1f} %"
            print(f"  {name:13s}: {100 * b['share_of_pairs']:.3f} % of cross-sender pairs, same label {agree}")
    inv = f["invariance"]
    print(f"\nscore of {inv['pairs']} fixed pairs across catalogues of {', '.join(inv['catalogues'])} photos: "
          f"today's score moves up to {inv['old_score_max_spread_points']:.1f} points "
          f"(median {inv['old_score_median_spread_points']:.1f}); the calibrated score does not depend on the catalogue")


if __name__ == "__main__":
    raise SystemExit(main())
