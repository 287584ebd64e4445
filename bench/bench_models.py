"""The int8 trunk against the fp32 one: the quality gate of issue 15, and the network's speed.

Quality (exact cosine ranking of centred, L2-normalised embeddings, the
clothing set's protocol; the 96 calibration photos of the int8 model are left
out of queries and gallery, so no figure rewards the calibration):
  * mAP@10 and P@10, cross-sender (the honest figure) and same-sender, int8 / fp32;
  * how many of each photo's 10 nearest neighbours stay the same;
  * cosine of the int8 embedding to the fp32 one (raw and centred; mean, worst);
  * transformed-copy recall@1/@10: copies (bench_quality's crop 80 %, half
    size + JPEG 40, colour jitter, mirror, rotation 8 degrees) of --copies
    photos queried against all 5,756 photos embedded by the same model.
Speed: the network alone (Embedder.embed) at batch 1, 4, 8, 16 on --threads
onnxruntime threads, both models interleaved round by round; median ms/image
and the int8/fp32 ratio of each round (median and range).

fp32 embeddings come from the shared cache /work/cache/clothing-fp32.npz,
after checking on a sample that the fp32 model given reproduces them within
1e-4; int8 embeddings are made once (load_image + batch 1, as the cache was)
and kept under --cache-dir.

    nice -n 10 python bench/bench_models.py            # everything (about 10 minutes on 2 loaded cores)
    python bench/bench_models.py --no-speed            # quality only (bench/results/models-quality.json)
    python bench/bench_models.py --no-quality          # speed only (bench/results/models-speed.json)
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from common import CLOTHING, ROOT, save, table

import numpy as np
from PIL import Image

from bench_quality import TRANSFORMS, transformed
from swimsearch.inputs import Labels, read_labels
from swimsearch.metrics import exact_cosine_hits, quality
from swimsearch.images import load_image
from swimsearch.model import FP32_MODEL_FILE, INT8_MODEL_FILE, Embedder

FP32_CACHE = Path("/work/cache/clothing-fp32.npz")
CALIBRATION_LIST = ROOT / "models" / "calibration_photos.txt"
BATCHES = (1, 4, 8, 16)


def normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def embed_files(embedder: Embedder, paths: list[Path]) -> np.ndarray:
    """One photo at a time, as the shared fp32 cache was made."""
    out = np.empty((len(paths), embedder.dim), dtype=np.float32)
    for i, path in enumerate(paths):
        out[i] = embedder.embed(load_image(path, embedder.size).pixels)[0]
    return out


def int8_embeddings(embedder: Embedder, names: list[str], cache_dir: Path) -> np.ndarray:
    """All photos' int8 embeddings, made once per model file and kept in cache_dir."""
    path = cache_dir / f"clothing-{embedder.path.stem}-{embedder.sha256[:12]}.npz"
    if path.is_file():
        cached = np.load(path)
        if list(cached["names"]) == names and str(cached["model_sha256"]) == embedder.sha256:
            return cached["embeddings"]
    started = time.perf_counter()
    embeddings = embed_files(embedder, [CLOTHING / n for n in names])
    print(f"  embedded {len(names)} photos with {embedder.name} in {time.perf_counter() - started:.0f} s", flush=True)
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.savez(path, names=np.array(names), embeddings=embeddings, model_sha256=embedder.sha256)
    return embeddings


def subset(labels: Labels, keep: np.ndarray, *, cross_sender: bool) -> Labels:
    return Labels(
        paths=tuple(p for p, k in zip(labels.paths, keep) if k),
        labels=labels.labels[keep],
        groups=labels.groups[keep] if cross_sender else None,
        names=labels.names,
    )


def neighbours(vectors: np.ndarray, k: int = 10) -> np.ndarray:
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    top = np.argpartition(-sims, k, axis=1)[:, :k]
    return np.sort(top, axis=1)


def retrieval(emb: dict[str, np.ndarray], row_of: dict[str, int], calibration: set[str]) -> list[dict]:
    """mAP@10 / P@10 per model, protocol and photo set, with the int8/fp32 ratio."""
    labels = read_labels(CLOTHING / "labels.csv", exclude_column="sender_id", filter_column="usable")
    names = ["images/" + Path(p).name for p in labels.paths]
    rows_ = np.array([row_of[n] for n in names])
    honest = np.array([n not in calibration for n in names])
    out = []
    for photos, keep in (("without calibration photos", honest), ("all usable photos", np.ones(len(names), bool))):
        for protocol, cross in (("cross-sender", True), ("same-sender", False)):
            lab = subset(labels, keep, cross_sender=cross)
            n_relevant = lab.relevant_counts()
            figures = {}
            for model, e in emb.items():
                x = e[rows_[keep]]
                vectors = normalise(x - x.mean(axis=0))
                figures[model] = quality(exact_cosine_hits(vectors, lab), n_relevant)
            out.append(
                {
                    "set": f"{protocol}, {photos} ({keep.sum()})",
                    "fp32_map10": figures["fp32"].map10,
                    "int8_map10": figures["int8"].map10,
                    "ratio_map10": figures["int8"].map10 / figures["fp32"].map10,
                    "fp32_p10": figures["fp32"].p10,
                    "int8_p10": figures["int8"].p10,
                }
            )
            print(f"  {out[-1]['set']}: mAP@10 fp32 {out[-1]['fp32_map10']:.4f}, int8 {out[-1]['int8_map10']:.4f}", flush=True)
    return out


def copies(models: dict[str, Embedder], emb: dict[str, np.ndarray], names: list[str], chosen: np.ndarray) -> list[dict]:
    """Recall@1/@10 of transformed copies of the chosen photos, per kind and model."""
    galleries = {m: normalise(e - e.mean(axis=0)) for m, e in emb.items()}
    means = {m: e.mean(axis=0) for m, e in emb.items()}
    found = {(kind, m): [0, 0] for kind in TRANSFORMS for m in models}
    for row in chosen:
        original = Image.open(CLOTHING / names[row]).convert("RGB")
        for kind in TRANSFORMS:
            copy = transformed(original, kind, np.random.default_rng(int(row)))
            for m, embedder in models.items():
                q = normalise(embedder.embed(load_image(copy, embedder.size).pixels) - means[m])[0]
                scores = galleries[m] @ q
                top = np.argpartition(-scores, 10)[:10]
                top = top[np.argsort(-scores[top])]
                found[kind, m][0] += top[0] == row
                found[kind, m][1] += row in top
    out = []
    for kind in TRANSFORMS:
        r = {"copy": kind}
        for m in models:
            r[f"{m}_at1"] = found[kind, m][0] / len(chosen)
            r[f"{m}_at10"] = found[kind, m][1] / len(chosen)
        out.append(r)
    return out


def speed(models: dict[str, Embedder], pixels: np.ndarray, rounds: int, seconds: float) -> list[dict]:
    """ms/image of the network per batch size; int8/fp32 ratio within each round."""
    out = []
    for batch in BATCHES:
        x = pixels[:batch]
        repeats = {}
        for m, embedder in models.items():
            embedder.embed(x)  # warm-up
            start = time.perf_counter()
            embedder.embed(x)
            repeats[m] = max(1, int(seconds / max(time.perf_counter() - start, 1e-4)))
        times: dict[str, list[float]] = {m: [] for m in models}
        for r in range(rounds):
            order = list(models) if r % 2 == 0 else list(models)[::-1]  # neither always runs first
            for m in order:
                start = time.perf_counter()
                for _ in range(repeats[m]):
                    models[m].embed(x)
                times[m].append((time.perf_counter() - start) * 1000 / (batch * repeats[m]))
        ratios = [i / f for i, f in zip(times["int8"], times["fp32"])]
        out.append(
            {
                "batch": batch,
                "fp32_ms": statistics.median(times["fp32"]),
                "fp32_range": f"{min(times['fp32']):.2f}-{max(times['fp32']):.2f}",
                "int8_ms": statistics.median(times["int8"]),
                "int8_range": f"{min(times['int8']):.2f}-{max(times['int8']):.2f}",
                "speedup": statistics.median([1 / r for r in ratios]),
                "speedup_range": f"{min(1 / r for r in ratios):.2f}-{max(1 / r for r in ratios):.2f}",
            }
        )
        print(f"  batch {batch}: fp32 {out[-1]['fp32_ms']:.2f} ms/image, int8 {out[-1]['int8_ms']:.2f}", flush=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fp32", type=Path, default=ROOT / "models" / FP32_MODEL_FILE)
    parser.add_argument("--int8", type=Path, default=ROOT / "models" / INT8_MODEL_FILE)
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime threads (default %(default)s)")
    parser.add_argument("--copies", type=int, default=400, help="photos with transformed copies (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved speed rounds (default %(default)s)")
    parser.add_argument("--round-seconds", type=float, default=1.5, help="time per model per round and batch")
    parser.add_argument("--cache-dir", type=Path, default=Path("/work/cache/model-int8"))
    parser.add_argument("--no-quality", action="store_true")
    parser.add_argument("--no-speed", action="store_true")
    args = parser.parse_args()

    models = {"fp32": Embedder(args.fp32, threads=args.threads), "int8": Embedder(args.int8, threads=args.threads)}
    cached = np.load(FP32_CACHE)
    names = [str(n) for n in cached["names"]]
    calibration = {line.strip() for line in CALIBRATION_LIST.read_text().splitlines() if line.strip() and line[0] != "#"}
    results: dict = {"models": {m: {"file": e.path.name, "sha256": e.sha256} for m, e in models.items()}}

    if not args.no_quality:
        sample = np.random.default_rng(1).choice(len(names), 64, replace=False)
        drift = float(np.abs(embed_files(models["fp32"], [CLOTHING / names[i] for i in sample]) - cached["embeddings"][sample]).max())
        print(f"fp32 model vs the shared cache ({cached['model_sha256']!s:.12}...) on 64 photos: max |difference| {drift:.1e}")
        if drift > 1e-4:
            raise SystemExit("the fp32 model does not reproduce the cached embeddings: refresh the cache first")
        emb = {"fp32": cached["embeddings"], "int8": int8_embeddings(models["int8"], names, args.cache_dir)}
        row_of = {n: i for i, n in enumerate(names)}

        raw = (normalise(emb["int8"]) * normalise(emb["fp32"])).sum(1)
        centred = (normalise(emb["int8"] - emb["int8"].mean(0)) * normalise(emb["fp32"] - emb["fp32"].mean(0))).sum(1)
        kept = [row_of[n] for n in names if n not in calibration]
        near = {m: neighbours(normalise(e[kept] - e[kept].mean(0))) for m, e in emb.items()}
        overlap = float(np.mean([len(np.intersect1d(a, b)) for a, b in zip(near["int8"], near["fp32"])])) / 10
        results["cosine_int8_fp32"] = {
            "photos": len(names),
            "raw_mean": float(raw.mean()), "raw_worst": float(raw.min()), "raw_p1": float(np.percentile(raw, 1)),
            "centred_mean": float(centred.mean()), "centred_worst": float(centred.min()),
            "centred_p1": float(np.percentile(centred, 1)),
            "top10_neighbours_kept": overlap,
        }
        c = results["cosine_int8_fp32"]
        print(f"cosine int8 vs fp32 over {len(names)} photos: raw mean {c['raw_mean']:.4f} (1st percentile {c['raw_p1']:.4f}, "
              f"worst {c['raw_worst']:.4f}); centred mean {c['centred_mean']:.4f} (1st percentile {c['centred_p1']:.4f}, "
              f"worst {c['centred_worst']:.4f}); 10 nearest neighbours kept {overlap:.1%}", flush=True)

        results["retrieval"] = retrieval(emb, row_of, calibration)
        print()
        print(table(results["retrieval"], [("set", "photo set (exact cosine, centred)", ""), ("fp32_map10", "fp32 mAP@10", ".4f"),
                                           ("int8_map10", "int8 mAP@10", ".4f"), ("ratio_map10", "int8/fp32", ".4f"),
                                           ("fp32_p10", "fp32 P@10", ".4f"), ("int8_p10", "int8 P@10", ".4f")]))

        labelled = [i for i, n in enumerate(names) if n.startswith("images/") and n not in calibration]
        chosen = np.sort(np.random.default_rng(7).choice(labelled, args.copies, replace=False))
        started = time.perf_counter()
        results["copies"] = copies(models, emb, names, chosen)
        print(f"\ntransformed copies of {len(chosen)} photos against all {len(names)} ({time.perf_counter() - started:.0f} s)")
        print(table(results["copies"], [("copy", "transformed copy", ""), ("fp32_at1", "fp32 R@1", ".4f"), ("int8_at1", "int8 R@1", ".4f"),
                                         ("fp32_at10", "fp32 R@10", ".4f"), ("int8_at10", "int8 R@10", ".4f")]))

    if not args.no_speed:
        pixels = np.stack([load_image(CLOTHING / n, 224).pixels for n in names[:16]])
        results["speed"] = speed(models, pixels, args.rounds, args.round_seconds)
        results["speed_threads"] = args.threads
        print(f"\nthe network alone, {args.threads} onnxruntime threads, {args.rounds} interleaved rounds (the machine is shared)")
        print(table(results["speed"], [("batch", "batch", ""), ("fp32_ms", "fp32 ms/img", ".2f"), ("fp32_range", "range", ""),
                                       ("int8_ms", "int8 ms/img", ".2f"), ("int8_range", "range", ""),
                                       ("speedup", "int8 speed-up", ".2f"), ("speedup_range", "range", "")]))
    path = save("models-speed" if args.no_quality else "models-quality" if args.no_speed else "models", results)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
