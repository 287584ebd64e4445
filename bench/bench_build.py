"""Build throughput and query latency on the clothing photos.

Measures, in one run and side by side:
  * pure decode rate (the app's loader, 1 thread and a 2-thread pool),
  * pure inference rate of the trunk (batch 1 and batch 16), and the network's
    own rate inside the build (images / time spent in the network): the ceiling,
  * catalogue build throughput (images/s of the embed phase, and in all),
  * one query end-to-end (file -> ranked list), with and without the mirror.

    python bench/bench_build.py                 # all 5,398 photos
    python bench/bench_build.py --limit 1000    # a quicker look
    python bench/bench_build.py --sweep         # also builds 1,000 photos per decoder/batch setting
"""

from __future__ import annotations

import argparse
import shutil
import time
from concurrent.futures import ThreadPoolExecutor

from common import CLOTHING, WORK, Timer, median, percentile, save, table

import numpy as np

from swimsearch.catalogue import Catalogue
from swimsearch.config import EngineConfig
from swimsearch.images import load_image
from swimsearch.model import Embedder, default_model_path
from swimsearch.search import SearchEngine


def decode_rate(paths, size: int, threads: int) -> float:
    with Timer() as t:
        if threads == 1:
            for p in paths:
                load_image(p, size)
        else:
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(lambda p: load_image(p, size), paths))
    return len(paths) / t.seconds


def inference_rate(embedder: Embedder, batch: int, rounds: int) -> float:
    pixels = np.random.default_rng(0).integers(0, 256, (batch, embedder.size, embedder.size, 3), dtype=np.uint8)
    embedder.embed(pixels)
    with Timer() as t:
        for _ in range(rounds):
            embedder.embed(pixels)
    return batch * rounds / t.seconds


def link_folder(paths, folder):
    """A folder of symlinks to a subset of the photos (builds read through them)."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for p in paths:
        (folder / p.name).symlink_to(p)
    return folder


def build(folder, catalogue_path, embedder, config) -> dict:
    for suffix in ("", "-wal", "-shm"):
        catalogue_path.with_name(catalogue_path.name + suffix).unlink(missing_ok=True)
    with Catalogue.create(catalogue_path, folder) as catalogue:
        report = catalogue.update(embedder, config)
    return {
        "images": report.added,
        "embed_images_per_s": report.images_per_second,
        "network_only_images_per_s": report.added / report.network_seconds if report.network_seconds else 0.0,
        "seconds": report.seconds,
        "index_seconds": report.seconds - report.embed_seconds,
    }


def query_latency(catalogue_path, embedder, queries, mirror: bool) -> dict:
    with Catalogue.open(catalogue_path) as catalogue:
        engine = SearchEngine(catalogue, embedder, EngineConfig(mirror=mirror))
        for q in queries[:5]:
            engine.search(q, top_n=50)  # warm-up
        total, embed, search = [], [], []
        for q in queries:
            started = time.perf_counter()
            result = engine.search(q, top_n=50)
            total.append((time.perf_counter() - started) * 1000)
            embed.append(result.embed_ms)
            search.append(result.search_ms)
    return {
        "mirror": mirror,
        "total_ms_median": median(total),
        "total_ms_p95": percentile(total, 95),
        "embed_ms_median": median(embed),
        "search_ms_median": median(search),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--sweep", action="store_true")
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()

    photos = sorted((CLOTHING / "images").glob("*.jpg"))
    if args.limit:
        photos = photos[: args.limit]
    embedder = Embedder(default_model_path())
    config = EngineConfig()
    sample = photos[:400]
    rates = {
        "decode_1_thread": decode_rate(sample, embedder.size, 1),
        "decode_2_threads": decode_rate(sample, embedder.size, 2),
        "inference_batch1": inference_rate(embedder, 1, 60),
        "inference_batch16": inference_rate(embedder, 16, 6),
    }
    folder = link_folder(photos, WORK / "clothing-photos")
    catalogue_path = WORK / "clothing.swimcat"
    built = build(folder, catalogue_path, embedder, config)
    sweep = []
    if args.sweep:
        subset = link_folder(photos[:1000], WORK / "sweep-photos")
        for decoders in (1, 2, 3):
            for batch in (8, 16, 32):
                row = build(subset, WORK / "sweep.swimcat", embedder, config.with_changes(decoders=decoders, batch_size=batch))
                sweep.append({"decoders": decoders, "batch_size": batch, **row})
                print(f"  sweep decoders={decoders} batch={batch}: {row['embed_images_per_s']:.1f} images/s", flush=True)
    rng = np.random.default_rng(1)
    queries = [photos[i] for i in rng.choice(len(photos), min(args.queries, len(photos)), replace=False)]
    latency = [query_latency(catalogue_path, embedder, queries, mirror) for mirror in (True, False)]

    rows = [
        {"what": "decode, 1 thread (images/s)", "value": rates["decode_1_thread"]},
        {"what": "decode, 2 threads (images/s)", "value": rates["decode_2_threads"]},
        {"what": "inference, batch 1 (images/s)", "value": rates["inference_batch1"]},
        {"what": "inference, batch 16 (images/s)", "value": rates["inference_batch16"]},
        {"what": f"build of {built['images']} photos (images/s)", "value": built["embed_images_per_s"]},
        {"what": "  the network's own rate inside that build", "value": built["network_only_images_per_s"]},
        {"what": "build / network's own rate (same build)", "value": built["embed_images_per_s"] / built["network_only_images_per_s"]},
        {"what": "fit + index after embedding (s)", "value": built["index_seconds"]},
    ]
    for lat in latency:
        tag = "mirror on" if lat["mirror"] else "mirror off"
        rows.append({"what": f"query end-to-end, {tag}, median (ms)", "value": lat["total_ms_median"]})
        rows.append({"what": f"query end-to-end, {tag}, p95 (ms)", "value": lat["total_ms_p95"]})
        rows.append({"what": "  of which decode+embed, median (ms)", "value": lat["embed_ms_median"]})
        rows.append({"what": "  of which search, median (ms)", "value": lat["search_ms_median"]})
    print(table(rows, [("what", "measure", ""), ("value", "value", ".2f")]))
    path = save("build", {"rates": rates, "build": built, "sweep": sweep, "latency": latency, "photos": len(photos)})
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
