"""Fit the region basis of search by a detail (models/region-basis.npz) and write its sha256 into the model card.

The basis reduces each pooled window of the trunk's 7 x 7 feature map
(swimsearch/regions.py: max-pooled, L2-normalised) to its first principal
directions. It is fitted once, on photos the benchmarks never search: the
358 unlabelled clothing photos (bench/bench_details.py uses the labelled
ones), run through the app's own preprocessing and the default int8 trunk;
the fp32 trunk's maps are the same to within its quantisation noise and use
the same basis. Every catalogue keeps a copy of the basis it was built with.

Run (needs only the app's dependencies):
    python models/fit_region_basis.py                 # the shipped basis
    python models/fit_region_basis.py --dim 64 --output /tmp/basis-64.npz --no-card
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from swimsearch.images import ImageError, load_image  # noqa: E402  (the app's own preprocessing)
from swimsearch.model import Embedder, default_model_path, file_sha256  # noqa: E402
from swimsearch.regions import REGION_BASIS_FILE, default_windows, fit_region_basis, pool_windows, save_region_basis  # noqa: E402
from trunk_files import set_card_sha256  # noqa: E402

CLOTHING = ROOT.parent / "shared" / "datasets" / "clothing"
DIM = 96


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, default=CLOTHING / "unlabelled", help="folder of photos to fit on")
    parser.add_argument("--dim", type=int, default=DIM, help="dimensions kept per region (default: %(default)s)")
    parser.add_argument("--model", type=Path, default=default_model_path())
    parser.add_argument("--output", type=Path, default=HERE / REGION_BASIS_FILE)
    parser.add_argument("--no-card", action="store_true", help="do not write the sha256 into MODEL_CARD.md")
    args = parser.parse_args(argv)

    embedder = Embedder(args.model, threads=2)
    if embedder.feature_map_shape is None:
        raise SystemExit(f"FAILED: {args.model} gives no feature map")
    channels, grid, _ = embedder.feature_map_shape
    windows = default_windows(grid)
    photos = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    started = time.perf_counter()
    pooled = []
    for start in range(0, len(photos), 8):
        pixels = []
        for photo in photos[start : start + 8]:
            try:
                pixels.append(load_image(photo, embedder.size).pixels)
            except ImageError as exc:
                print(f"skipped {photo.name}: {exc.reason}")
        if pixels:
            _, maps = embedder.embed_with_maps(np.stack(pixels))
            pooled.append(pool_windows(maps, windows).reshape(-1, channels))
    sample = np.concatenate(pooled)
    basis = fit_region_basis(sample, windows, args.dim, grid, name=args.output.name)
    save_region_basis(basis, args.output)
    digest = file_sha256(args.output)
    print(
        f"fitted {basis.regions} windows x {basis.dim} dimensions on {len(sample)} regions of {len(photos)} photos "
        f"({time.perf_counter() - started:.0f} s): {basis.bytes_per_image} bytes per image; sha256 {digest}"
    )
    if not args.no_card:
        set_card_sha256(args.output, digest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
