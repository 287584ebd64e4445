"""Trunk speed and retrieval quality for one or more ONNX trunk files (e.g. 224 vs 260).

For each model: ms/image at batch 1 and 16 (onnxruntime, all cores), and the
cross-sender mAP@10 / P@10 / R@100 of exact cosine ranking on the centred,
L2-normalised embeddings of the clothing set (protocol of its README).

    python bench/bench_trunk.py models/efficientnet-lite2-trunk.onnx /tmp/lite2_224.onnx

--outputs times, instead, what the `feature_map` output costs: each model
asked for `embedding` alone (Embedder.embed) and for both outputs
(Embedder.embed_with_maps), interleaved round by round on the same
random pixels, as ratios to the first model's embedding-only time:

    git show 70b3a1a:models/efficientnet-lite2-trunk.onnx > /tmp/one_output.onnx   # the last one-output export
    python bench/bench_trunk.py --outputs /tmp/one_output.onnx models/efficientnet-lite2-trunk.onnx

The int8 model runs its folded graph (models/fold_pads.py); a copy of the
file with no folded graph beside it runs the file itself, so the two compare:

    cp models/efficientnet-lite2-trunk-int8.onnx /tmp/int8-plain.onnx
    python bench/bench_trunk.py --outputs /tmp/int8-plain.onnx models/efficientnet-lite2-trunk-int8.onnx
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from swimsearch.inputs import read_labels  # noqa: E402
from swimsearch.metrics import exact_cosine_hits, quality  # noqa: E402
from swimsearch.images import load_image  # noqa: E402
from swimsearch.model import Embedder  # noqa: E402

CLOTHING = ROOT.parent / "shared" / "datasets" / "clothing"


def time_batches(embedder: Embedder, batch: int, repeats: int) -> float:
    """Median ms per image for batches of `batch` random images."""
    pixels = np.random.default_rng(0).integers(0, 256, (batch, embedder.size, embedder.size, 3), dtype=np.uint8)
    embedder.embed(pixels)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        embedder.embed(pixels)
        times.append((time.perf_counter() - start) * 1000 / batch)
    return statistics.median(times)


def time_outputs(models: list[Path], batches: tuple[int, ...], rounds: int, repeats: int, threads: int) -> list[dict]:
    """Median ms/image per (model, outputs, batch), each round running every variant in turn.

    Interleaving keeps a shared machine's load swings from favouring one
    variant; the ratio to the baseline is taken within each round, and its
    median and range over the rounds are reported.
    """
    variants = []
    for model in models:
        embedder = Embedder(model, threads=threads, verify=False)
        variants.append((f"{model.name} embedding", embedder, embedder.embed))
        if embedder.has_feature_map:
            variants.append((f"{model.name} embedding+feature_map", embedder, embedder.embed_with_maps))
    rows = []
    for batch in batches:
        pixels = np.random.default_rng(batch).integers(0, 256, (batch, 224, 224, 3), dtype=np.uint8)
        times: dict[str, list[float]] = {name: [] for name, _, _ in variants}
        for _, embedder, run in variants:
            run(pixels[:, : embedder.size, : embedder.size])  # warm-up
        for _ in range(rounds):
            for name, embedder, run in variants:
                x = pixels[:, : embedder.size, : embedder.size]
                start = time.perf_counter()
                for _ in range(repeats):
                    run(x)
                times[name].append((time.perf_counter() - start) * 1000 / (batch * repeats))
        base = times[variants[0][0]]
        for name, _, _ in variants:
            ratios = [t / b for t, b in zip(times[name], base)]
            rows.append(
                {
                    "variant": name,
                    "batch": batch,
                    "ms_per_image": round(statistics.median(times[name]), 3),
                    "ratio_median": round(statistics.median(ratios), 3),
                    "ratio_min": round(min(ratios), 3),
                    "ratio_max": round(max(ratios), 3),
                }
            )
    return rows


def embed_all(embedder: Embedder, paths: list[str]) -> np.ndarray:
    out = np.empty((len(paths), embedder.dim), dtype=np.float32)
    with ThreadPoolExecutor(2) as pool:
        for start in range(0, len(paths), 32):
            chunk = paths[start : start + 32]
            pixels = np.stack([img.pixels for img in pool.map(lambda p: load_image(p, embedder.size), chunk)])
            out[start : start + len(chunk)] = embedder.embed(pixels)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--limit", type=int, default=0, help="use only the first N labelled photos")
    parser.add_argument("--json", type=Path, default=None, help="default: bench/results/trunk.json (trunk-outputs.json)")
    parser.add_argument("--outputs", action="store_true", help="time the feature_map output instead (no quality run)")
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime threads for --outputs (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=9, help="interleaved rounds for --outputs (default %(default)s)")
    args = parser.parse_args()

    if args.outputs:
        rows = time_outputs(args.models, (1, 16), args.rounds, 20, args.threads)
        print(f"{'variant':60s} {'batch':>5s} {'ms/img':>7s} {'ratio':>6s} {'range':>13s}")
        for r in rows:
            print(
                f"{r['variant']:60s} {r['batch']:5d} {r['ms_per_image']:7.2f} {r['ratio_median']:6.3f} "
                f"{r['ratio_min']:6.3f}-{r['ratio_max']:.3f}"
            )
        path = args.json or ROOT / "bench" / "results" / "trunk-outputs.json"
        path.write_text(json.dumps({"threads": args.threads, "rounds": args.rounds, "results": rows}, indent=2) + "\n")
        print(f"wrote {path}")
        return 0

    labels = read_labels(CLOTHING / "labels.csv", exclude_column="sender_id", filter_column="usable")
    paths = list(labels.paths)
    if args.limit:
        raise SystemExit("--limit is not supported with the cross-sender protocol; use the whole set")
    results = []
    for model in args.models:
        embedder = Embedder(model, verify=False)
        b1 = time_batches(embedder, 1, 50)
        b16 = time_batches(embedder, 16, 10)
        start = time.perf_counter()
        emb = embed_all(embedder, paths)
        seconds = time.perf_counter() - start
        centred = emb - emb.mean(axis=0)
        centred /= np.linalg.norm(centred, axis=1, keepdims=True)
        report = quality(exact_cosine_hits(centred, labels), labels.relevant_counts())
        row = {
            "model": str(model),
            "input": embedder.size,
            "ms_per_image_batch1": round(b1, 2),
            "ms_per_image_batch16": round(b16, 2),
            "decode_and_embed_images_per_s": round(len(paths) / seconds, 1),
            "cross_sender_map@10": round(report.map10, 4),
            "cross_sender_p@10": round(report.p10, 4),
            "cross_sender_r@100": round(report.r100, 4),
        }
        results.append(row)
        print(json.dumps(row))
    print()
    print(f"{'model':40s} {'input':>5s} {'b1 ms':>6s} {'b16 ms':>6s} {'img/s':>6s} {'mAP@10':>7s} {'P@10':>6s} {'R@100':>6s}")
    for r in results:
        print(
            f"{Path(r['model']).name:40s} {r['input']:5d} {r['ms_per_image_batch1']:6.2f} {r['ms_per_image_batch16']:6.2f} "
            f"{r['decode_and_embed_images_per_s']:6.1f} {r['cross_sender_map@10']:7.4f} {r['cross_sender_p@10']:6.4f} "
            f"{r['cross_sender_r@100']:6.4f}"
        )
    args.json = args.json or ROOT / "bench" / "results" / "trunk.json"
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"labelled_photos": len(paths), "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
