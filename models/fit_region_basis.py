"""Fit the region basis of search by a detail (models/region-basis.npz) and write its sha256 into the model card.

The basis maps each pooled window of the trunk's 7 x 7 feature map
(swimsearch/regions.py: max-pooled, L2-normalised, centred) to the few
dimensions a catalogue keeps per window. Plain principal components keep
what varies most between windows, which is mostly what a picture is, not
which detail it holds; the basis here is a *learned whitening* (Radenovic,
Tolias and Chum, 2018) fitted on detail queries and the windows that hold
them:

1. principal components of the windows (`--pca` of them);
2. matching pairs made the way a user meets them: a quarter of photo A (a
   box of half its width and height) pasted onto photo B at 30-50 % of B's
   long side, B read as a catalogue reads it (JPEG, the app's square), and
   the crop framed as a detail query (`regions.framed_detail`); the pair is
   the query's vector and B's stored window that overlaps the paste most;
3. the directions in which matching pairs differ are whitened away
   (their covariance to the power -1/2, shrunk towards the identity), and
   of what is left the `--dim` directions that vary most over all windows
   are kept, most first: a search scans a prefix of them first
   (`regions.COARSE_DIM`) and the rest only for its best candidates.

Everything is fitted on photos the benchmarks never search: the 358
unlabelled clothing photos (bench/bench_details.py uses the labelled ones,
and draws its trials with other seeds), run through the app's own
preprocessing and the default int8 trunk; the fp32 trunk's maps are the
same to within its quantisation noise and use the same basis. Every
catalogue keeps a copy of the basis it was built with.

Run (needs only the app's dependencies; about 3 minutes on a quiet 2-core machine):
    python models/fit_region_basis.py                 # the shipped basis
    python models/fit_region_basis.py --dim 64 --output /tmp/basis-64.npz --no-card
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from swimsearch.images import ImageError, load_image, load_picture  # noqa: E402  (the app's own preprocessing)
from swimsearch.model import Embedder, default_model_path, file_sha256  # noqa: E402
from swimsearch.regions import (  # noqa: E402
    QUERY_FRACTION, REGION_BASIS_FILE, Box, default_windows, fit_learned_basis, framed_detail, pool_windows,
    save_region_basis,
)
from trunk_files import set_card_sha256  # noqa: E402

CLOTHING = ROOT.parent / "shared" / "datasets" / "clothing"
DIM = 256
PCA_DIM = 256
PAIRS = 1200
#: The query frames of a pair: the product's, and a little either side (the pastes vary in size).
PAIR_FRACTIONS = (QUERY_FRACTION - 0.05, QUERY_FRACTION, QUERY_FRACTION + 0.05)


def photos_in(folder: Path) -> list[Path]:
    found = []
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")):
        try:
            load_picture(path, 64)
            found.append(path)
        except ImageError as exc:
            print(f"skipped {path.name}: {exc.reason}")
    return found


def paste_pair(a: Path, b: Path, rng: np.random.Generator, size: int) -> tuple[Image.Image, Box, np.ndarray, tuple[float, float, float, float]]:
    """A quarter of photo `a` pasted onto photo `b`: (a's picture, the box, b's pixels as a catalogue reads them, the paste on b's square)."""
    source = load_picture(a, 1600)[0]
    target = load_picture(b, 1600)[0].copy()
    x, y = rng.uniform(0.1, 0.4, size=2)
    box = Box(float(x), float(y), 0.5, 0.5)
    crop = source.crop(box.pixels(source.width, source.height))
    share, px, py = rng.uniform(0.3, 0.5), rng.uniform(), rng.uniform()
    scale = share * max(target.size) / max(crop.size)
    patch = crop.resize((max(1, round(crop.width * scale)), max(1, round(crop.height * scale))), Image.Resampling.BILINEAR)
    left, top = round(px * max(0, target.width - patch.width)), round(py * max(0, target.height - patch.height))
    target.paste(patch, (left, top))
    buffer = io.BytesIO()
    target.save(buffer, "JPEG", quality=92)
    buffer.seek(0)
    pixels = load_image(Image.open(buffer), size).pixels
    side = max(target.size)  # load_image centres the picture on a white square
    s = size / side
    ox, oy = (side - target.width) // 2, (side - target.height) // 2
    return source, box, pixels, ((left + ox) * s, (top + oy) * s, patch.width * s, patch.height * s)


def overlap(windows: np.ndarray, paste: tuple[float, float, float, float], cell: float) -> np.ndarray:
    """Intersection over union of each window (in cells) with a pasted box (in pixels)."""
    bx, by, bw, bh = (v / cell for v in paste)
    r0, c0, r1, c1 = (windows[:, k].astype(float) for k in range(4))
    ix = np.clip(np.minimum(c1, bx + bw) - np.maximum(c0, bx), 0, None)
    iy = np.clip(np.minimum(r1, by + bh) - np.maximum(r0, by), 0, None)
    inter = ix * iy
    return inter / ((c1 - c0) * (r1 - r0) + bw * bh - inter)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, default=CLOTHING / "unlabelled", help="folder of photos to fit on")
    parser.add_argument("--dim", type=int, default=DIM, help="dimensions kept per region (default: %(default)s)")
    parser.add_argument("--pca", type=int, default=PCA_DIM, help="principal components whitened in (default: %(default)s)")
    parser.add_argument("--pairs", type=int, default=PAIRS, help="pasted pairs to learn from (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--model", type=Path, default=default_model_path())
    parser.add_argument("--output", type=Path, default=HERE / REGION_BASIS_FILE)
    parser.add_argument("--no-card", action="store_true", help="do not write the sha256 into MODEL_CARD.md")
    args = parser.parse_args(argv)

    embedder = Embedder(args.model, threads=2)
    if embedder.feature_map_shape is None:
        raise SystemExit(f"FAILED: {args.model} gives no feature map")
    channels, grid, _ = embedder.feature_map_shape
    windows = default_windows(grid)
    photos = photos_in(args.photos)
    started = time.perf_counter()
    pooled = []
    for start in range(0, len(photos), 8):
        pixels = np.stack([load_image(photo, embedder.size).pixels for photo in photos[start : start + 8]])
        pooled.append(pool_windows(embedder.embed_with_maps(pixels)[1], windows))
    sample = np.concatenate(pooled).reshape(-1, channels)
    print(f"{len(sample)} windows of {len(photos)} photos ({time.perf_counter() - started:.0f} s)", flush=True)

    rng = np.random.default_rng(args.seed)
    queries, candidates, overlaps = [], [], []
    batch: list[tuple[Image.Image, Box, np.ndarray, tuple]] = []
    for n in range(args.pairs):
        a, b = rng.choice(len(photos), 2, replace=False)
        batch.append(paste_pair(photos[a], photos[b], rng, embedder.size))
        if len(batch) < 8 and n < args.pairs - 1:
            continue
        _, maps = embedder.embed_with_maps(np.stack([pixels for _, _, pixels, _ in batch]))
        target_windows = pool_windows(maps, windows)
        framed = [framed_detail(source, box, embedder.size, grid, f) for source, box, _, _ in batch for f in PAIR_FRACTIONS]
        _, query_maps = embedder.embed_with_maps(np.stack([pixels for pixels, _ in framed]))
        for k, (_, _, _, paste) in enumerate(batch):
            covered = overlap(windows, paste, embedder.size / grid)
            for j in range(len(PAIR_FRACTIONS)):
                row = k * len(PAIR_FRACTIONS) + j
                queries.append(pool_windows(query_maps[row : row + 1], np.array([framed[row][1]], np.int16))[0, 0])
                candidates.append(target_windows[k].astype(np.float16))  # the float16 copies keep memory small
                overlaps.append(covered)
        batch = []
        if (n + 1) % 200 == 0:
            print(f"{n + 1} pairs ({time.perf_counter() - started:.0f} s)", flush=True)
    basis = fit_learned_basis(sample, np.array(queries), np.array(candidates), np.array(overlaps), windows, args.dim,
                              args.pca, grid, name=args.output.name)
    save_region_basis(basis, args.output)
    digest = file_sha256(args.output)
    print(
        f"fitted {basis.regions} windows x {basis.dim} dimensions on {len(sample)} regions of {len(photos)} photos and "
        f"{len(queries)} query-window pairs ({time.perf_counter() - started:.0f} s): {basis.bytes_per_image} bytes per image; "
        f"sha256 {digest}"
    )
    if not args.no_card:
        set_card_sha256(args.output, digest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
