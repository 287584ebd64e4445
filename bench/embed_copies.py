"""Embed transformed copies of every clothing photo with one model file, once, into a cache.

For each photo (labelled and unlabelled) and each copy kind of
`swimsearch.copies.COPY_KINDS`, the copy is made from the upright original
and read exactly as a dropped query is (`load_image` on the PIL picture),
then embedded with the given model: trunk embedding and pHash per copy. The
random choices (crop place, jitter, rotation sign) are seeded by the file
name, so the copies are the same whichever subset or order is asked for.

The cache (`copies-<model sha256[:12]>.npz`, 30 kB per photo) is what
bench/bench_ranking.py and models/make_calibration.py read. It is written in
parts and resumes after an interruption.

    nice -n 10 python bench/embed_copies.py [--model models/X.onnx] [--out /work/cache/quality-research]
"""

from __future__ import annotations

import argparse
import sys
import time
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from swimsearch.copies import COPY_KINDS, transformed_copy  # noqa: E402
from swimsearch.images import load_image  # noqa: E402
from swimsearch.model import Embedder, default_model_path  # noqa: E402

CLOTHING = ROOT.parent / "shared" / "datasets" / "clothing"
DEFAULT_OUT = Path("/work/cache/quality-research")


def copy_rng(name: str, kind: str) -> np.random.Generator:
    """The random source of one copy, fixed by the photo's name and the kind."""
    return np.random.default_rng([zlib.crc32(name.encode()), COPY_KINDS.index(kind)])


def photo_names(root: Path) -> list[str]:
    """'images/<file>' and 'unlabelled/<file>' names, as the shared embedding cache names them."""
    return [f"{p.parent.name}/{p.name}" for sub in ("images", "unlabelled") for p in sorted((root / sub).glob("*.jpg"))]


def embed_originals(embedder: Embedder, root: Path, out: Path) -> Path:
    """Trunk embeddings and pHashes of every photo (batch 1, as a build reads them), cached per model."""
    final = out / f"originals-{embedder.sha256[:12]}.npz"
    if final.exists():
        return final
    names = photo_names(root)
    embeddings = np.zeros((len(names), embedder.dim), np.float32)
    phash = np.zeros(len(names), np.uint64)
    started = time.perf_counter()
    for i, name in enumerate(names):
        loaded = load_image(root / name, embedder.size)
        embeddings[i], phash[i] = embedder.embed(loaded.pixels[None])[0], loaded.phash
        if (i + 1) % 500 == 0:
            print(f"{i + 1}/{len(names)} originals, {(i + 1) / (time.perf_counter() - started):.1f} photos/s", flush=True)
    np.savez(final, names=np.array(names), embeddings=embeddings, phash=phash, model_sha256=embedder.sha256)
    return final


def embed_copies(embedder: Embedder, root: Path, out: Path, limit: int = 0) -> Path:
    """Embeddings and pHashes of the copies of the first `limit` photos (0: all), cached per model; resumable."""
    names = photo_names(root)
    if limit:
        names = names[:limit]
    out.mkdir(parents=True, exist_ok=True)
    final = out / f"copies-{embedder.sha256[:12]}.npz"
    if final.exists() and len(np.load(final)["names"]) >= len(names):
        return final
    partial = out / f"copies-{embedder.sha256[:12]}.partial.npz"
    embeddings = np.zeros((len(names), len(COPY_KINDS), embedder.dim), np.float32)
    phash = np.zeros((len(names), len(COPY_KINDS)), np.uint64)
    done = 0
    if partial.exists():
        saved = np.load(partial)
        done = min(len(saved["names"]), len(names))
        if list(saved["names"][:done]) == names[:done]:
            embeddings[:done], phash[:done] = saved["embeddings"][:done], saved["phash"][:done]
            print(f"resuming after {done} photos", flush=True)
        else:
            done = 0
    started = time.perf_counter()
    for i in range(done, len(names)):
        with Image.open(root / names[i]) as opened:
            original = ImageOps.exif_transpose(opened).convert("RGB")
        pixels = []
        for k, kind in enumerate(COPY_KINDS):
            loaded = load_image(transformed_copy(original, kind, copy_rng(names[i], kind)), embedder.size)
            pixels.append(loaded.pixels)
            phash[i, k] = loaded.phash
        embeddings[i] = embedder.embed(np.stack(pixels))
        if (i + 1) % 250 == 0 or i + 1 == len(names):
            with open(partial.with_suffix(".tmp"), "wb") as fh:  # readers never see half a file
                np.savez(fh, names=np.array(names[: i + 1]), embeddings=embeddings[: i + 1], phash=phash[: i + 1])
            partial.with_suffix(".tmp").replace(partial)
            rate = (i + 1 - done) / (time.perf_counter() - started)
            print(f"{i + 1}/{len(names)} photos, {rate:.1f} photos/s", flush=True)
    np.savez(final, names=np.array(names), kinds=np.array(COPY_KINDS), embeddings=embeddings, phash=phash,
             model_sha256=embedder.sha256)
    partial.unlink(missing_ok=True)
    return final


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=str(default_model_path()))
    parser.add_argument("--data", default=str(CLOTHING))
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--limit", type=int, default=0, help="only the first N photos (the names sort in random order)")
    args = parser.parse_args()
    embedder = Embedder(args.model, threads=args.threads)
    print(f"wrote {embed_copies(embedder, Path(args.data), Path(args.out), args.limit)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
