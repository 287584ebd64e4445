"""Build throughput and query latency on the clothing photos: today's default against the old baseline.

Measures, in one run and side by side:
  * pure decode rate (the app's loader, 1 thread and a 2-thread pool),
  * pure inference rate of both trunks (batch 1 and batch 16),
  * the catalogue build of the same photos in two configurations, interleaved
    (old, new, old, new, ...) so that both see the same load:
      - "old": the fp32 trunk run at batch 16 with two decoders (the default
        before issue 15, kept here as the baseline),
      - "new": the default trunk (int8 once it ships) at the default shape
        (batch 1) with decoders chosen by file size;
    with where each build's time went (network, waiting for decodes, commits,
    the rest, fitting + indexing), the ratio new / old and new / the new
    trunk's own pure rate,
  * one query end-to-end (file -> ranked list, top 50) on each
    configuration's catalogue, interleaved query by query, by a catalogue
    photo and by a byte copy of it in another folder (a new picture): the old
    one as the app answered before issues 11 and 15 (fp32, the ranking before
    issue 11, no look at the pictures, rescored embeddings and records read
    from the store, every match's file looked up on disk), the old trunk and
    data path with today's ranking and look, and today's default
    (`query_engines`).

    python bench/bench_build.py                  # all 5,398 photos, one pair of builds
    python bench/bench_build.py --pairs 2        # two pairs (report the range)
    python bench/bench_build.py --limit 1000     # a quicker look
    python bench/bench_build.py --model A.onnx --baseline-model B.onnx
    python bench/bench_build.py --sweep          # also builds 1,000 photos per decoder/inference-batch setting
    python bench/bench_build.py --catalogues OLD.swimcat NEW.swimcat   # the queries alone, on catalogues
        # of the clothing photos made by the fp32 trunk (OLD) and the default one (NEW)
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import CLOTHING, WORK, Timer, median, percentile, save, table

import numpy as np

from swimsearch import model as model_module
from swimsearch.catalogue import Catalogue
from swimsearch.comparison import baseline_engine
from swimsearch.config import EngineConfig
from swimsearch.feature_cache import FeatureCache
from swimsearch.images import load_image
from swimsearch.model import Embedder, default_model_path
from swimsearch.search import SearchEngine

#: The configuration every build used before issue 15: fp32 trunk, batch 16, two decoders.
OLD = EngineConfig(inference_batch=16, batch_size=16, decoders=2)
NEW = EngineConfig()
#: Queries: the old configuration reads every rescored embedding and record
#: from the store and checks every match's file, as the engine did before issue 15.
QUERY_CONFIGS = {"old": EngineConfig(rescore_in_memory_up_to=0), "new": EngineConfig()}


def fp32_model_path() -> Path:
    """The fp32 trunk that ships beside the default one."""
    name = getattr(model_module, "FP32_MODEL_FILE", model_module.MODEL_FILE)
    return default_model_path().with_name(name)


def open_embedder(path: Path) -> Embedder:
    shipped = path.resolve().parent == default_model_path().resolve().parent
    return Embedder(path, verify=shipped)


def decode_rate(paths, size: int, threads: int) -> float:
    with Timer() as t:
        if threads == 1:
            for p in paths:
                load_image(p, size)
        else:
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(lambda p: load_image(p, size), paths))
    return len(paths) / t.seconds


def inference_rate(embedder: Embedder, batch: int, images: int) -> float:
    """Images per second of the network alone, at one shape (median of 3 rounds)."""
    pixels = np.random.default_rng(0).integers(0, 256, (batch, embedder.size, embedder.size, 3), dtype=np.uint8)
    embedder.embed(pixels)
    rates = []
    for _ in range(3):
        rounds = max(1, images // batch)
        with Timer() as t:
            for _ in range(rounds):
                embedder.embed(pixels)
        rates.append(batch * rounds / t.seconds)
    return median(rates)


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
    embed = report.embed_seconds
    return {
        "images": report.added,
        "build_images_per_s": report.added / report.seconds,
        "embed_images_per_s": report.images_per_second,
        "network_only_images_per_s": report.added / report.network_seconds if report.network_seconds else 0.0,
        "seconds": report.seconds,
        "embed_seconds": embed,
        "network_seconds": report.network_seconds,
        "decode_wait_seconds": report.decode_wait_seconds,
        "commit_seconds": report.commit_seconds,
        "other_seconds": embed - report.network_seconds - report.decode_wait_seconds - report.commit_seconds,
        "decode_seconds_all_threads": report.decode_seconds,
        "decoders": report.decoders,
        "index_seconds": report.seconds - embed,
    }


def query_engines(catalogues: dict[str, Catalogue], embedders: dict[str, Embedder]) -> dict[str, SearchEngine]:
    """The query configurations, on the old trunk's catalogue and the new one's:

    * "old": as the app answered when issues 11 and 15 were filed: the fp32 trunk, the ranking before
      issue 11 (comparison.baseline_engine: raw embeddings, no pHash candidates) and no look at the
      pictures, every rescored embedding and record read from the store, every match's file looked up;
    * "old + issue 11": the same trunk and data path with today's ranking and look (issue 15's own
      part: what the int8 trunk and the data path change, with issue 11's work on both sides);
    * "new": today's default.
    No verdict is kept (look_verdicts.py): every pair a search would look at is looked at, as for a
    picture never seen before."""
    old = SearchEngine(catalogues["old"], embedders["old"], QUERY_CONFIGS["old"])
    engines = {"old": baseline_engine(old), "old + issue 11": old,
               "new": SearchEngine(catalogues["new"], embedders["new"], QUERY_CONFIGS["new"])}
    for engine in engines.values():
        engine.picture_check.verdicts = None
    return engines


def query_latency(catalogues: dict[str, Path], embedders: dict[str, Embedder], queries) -> dict[str, dict[str, dict]]:
    """File -> ranked list per configuration (`query_engines`), the configurations taking turns query by
    query (each first as often), for two kinds of file: the photo as the catalogue read it ("catalogue
    file": a design dragged from its folder) and a byte copy in another folder ("outside file": a new picture,
    read, decoded and embedded)."""
    opened = {name: Catalogue.open(path) for name, path in catalogues.items()}
    out: dict[str, dict[str, dict]] = {}
    try:
        engines = query_engines(opened, embedders)
        with tempfile.TemporaryDirectory() as outside:
            kinds = {"catalogue file": list(queries),
                     "outside file": [shutil.copy(q, f"{outside}/{n:04d}{Path(q).suffix}") for n, q in enumerate(queries)]}
            for kind, files in kinds.items():
                for engine in engines.values():
                    engine.picture_check.cache = FeatureCache()  # no features read by the other kind's searches
                for q in files[:5]:
                    for engine in engines.values():
                        engine.search(q, top_n=50)  # warm-up
                times: dict[str, dict[str, list[float]]] = {n: {"total": [], "embed": [], "search": []} for n in engines}
                for n, q in enumerate(files):
                    turn = list(engines.items())
                    for name, engine in turn[n % len(turn):] + turn[: n % len(turn)]:
                        started = time.perf_counter()
                        result = engine.search(q, top_n=50)
                        if name.startswith("old"):  # the engine before issue 15 looked at the disk for every match
                            [m.missing for m in result.matches]
                        times[name]["total"].append((time.perf_counter() - started) * 1000)
                        times[name]["embed"].append(result.embed_ms)
                        times[name]["search"].append(result.search_ms)
                out[kind] = {
                    name: {"total_ms_median": median(t["total"]), "total_ms_p95": percentile(t["total"], 95),
                           "embed_ms_median": median(t["embed"]), "search_ms_median": median(t["search"])}
                    for name, t in times.items()
                }
    finally:
        for catalogue in opened.values():
            catalogue.close()
    return out


def chosen_queries(photos: list[Path], count: int) -> list[Path]:
    rng = np.random.default_rng(1)
    return [photos[i] for i in rng.choice(len(photos), min(count, len(photos)), replace=False)]


def queries_only(catalogues: dict[str, Path], embedders: dict[str, Embedder], photos: list[Path], count: int) -> int:
    """`--catalogues`: the query comparison alone."""
    latency = query_latency(catalogues, embedders, chosen_queries(photos, count))
    print(table(latency_rows(latency), [("what", "measure", ""), ("value", "value", ".2f")]))
    path = save("build-queries", {"latency": latency, "catalogues": {n: str(p) for n, p in catalogues.items()},
                                  "models": {n: {"file": e.path.name, "sha256": e.sha256} for n, e in embedders.items()}})
    print(f"\nwrote {path}")
    return 0


def latency_rows(latency: dict[str, dict[str, dict]]) -> list[dict]:
    rows = []
    for kind, got in latency.items():
        for name, lat in got.items():
            rows.append({"what": f"query, {kind}, {name}: median (ms)", "value": lat["total_ms_median"]})
            rows.append({"what": f"  p95 (ms)", "value": lat["total_ms_p95"]})
            rows.append({"what": f"  decode+embed, median (ms)", "value": lat["embed_ms_median"]})
            rows.append({"what": f"  search, median (ms)", "value": lat["search_ms_median"]})
        for base in ("old", "old + issue 11"):
            rows.append({"what": f"query, {kind}: new / {base}, median",
                         "value": got["new"]["total_ms_median"] / got[base]["total_ms_median"]})
    return rows


def time_rows(tag: str, b: dict) -> list[dict]:
    rows = [
        {"what": f"{tag}: build of {b['images']} photos, embed phase (images/s)", "value": b["embed_images_per_s"]},
        {"what": f"{tag}:   whole build incl. fit + index (images/s)", "value": b["build_images_per_s"]},
    ]
    for key, label in (("network_seconds", "in the network"), ("decode_wait_seconds", "waiting for decoded pictures"),
                       ("commit_seconds", "committing batches"), ("other_seconds", "the rest of the embed loop"),
                       ("index_seconds", "fitting + indexing")):
        rows.append({"what": f"{tag}:   {label} (s, {100 * b[key] / b['seconds']:.1f} %)", "value": b[key]})
    rows.append({"what": f"{tag}:   decoding on {b['decoders']} thread(s), beside the network (s)",
                 "value": b["decode_seconds_all_threads"]})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--pairs", type=int, default=1, help="old/new build pairs, interleaved")
    parser.add_argument("--sweep", action="store_true")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--model", type=Path, default=None, help="the new configuration's trunk (default: the app's)")
    parser.add_argument("--baseline-model", type=Path, default=None, help="the old configuration's trunk (default: fp32)")
    parser.add_argument("--catalogues", type=Path, nargs=2, metavar=("OLD", "NEW"), default=None,
                        help="no builds: time the queries on these catalogues (fp32 trunk's, default trunk's)")
    args = parser.parse_args()

    photos = sorted((CLOTHING / "images").glob("*.jpg"))
    if args.limit:
        photos = photos[: args.limit]
    embedders = {
        "old": open_embedder(args.baseline_model or fp32_model_path()),
        "new": open_embedder(args.model or default_model_path()),
    }
    configs = {"old": OLD, "new": NEW}
    if args.catalogues:
        return queries_only(dict(zip(("old", "new"), args.catalogues)), embedders, photos, args.queries)
    size = embedders["new"].size
    sample = photos[:400]
    rates = {
        "decode_1_thread": decode_rate(sample, size, 1),
        "decode_2_threads": decode_rate(sample, size, 2),
    }
    for name, embedder in embedders.items():
        for batch in (1, 16):
            rates[f"inference_{name}_batch{batch}"] = inference_rate(embedder, batch, 64)
    folder = link_folder(photos, WORK / "clothing-photos")
    paths = {"old": WORK / "clothing-old.swimcat", "new": WORK / "clothing.swimcat"}
    builds: dict[str, list[dict]] = {"old": [], "new": []}
    pure_beside: list[float] = []  # the new trunk's pure batch-1 rate, measured right before and after each new build
    for pair in range(args.pairs):
        for name in ("old", "new"):
            before = inference_rate(embedders["new"], 1, 64) if name == "new" else 0.0
            builds[name].append(build(folder, paths[name], embedders[name], configs[name]))
            if name == "new":
                pure_beside.append((before + inference_rate(embedders["new"], 1, 64)) / 2)
            print(f"  pair {pair + 1}: {name} build {builds[name][-1]['embed_images_per_s']:.1f} images/s", flush=True)
    sweep = []
    if args.sweep:
        subset = link_folder(photos[:1000], WORK / "sweep-photos")
        for decoders in (1, 2):
            for shape in (1, 4, 16):
                row = build(subset, WORK / "sweep.swimcat", embedders["new"],
                            NEW.with_changes(decoders=decoders, inference_batch=shape))
                sweep.append({"decoders": decoders, "inference_batch": shape, **row})
                print(f"  sweep decoders={decoders} inference batch={shape}: {row['embed_images_per_s']:.1f} images/s",
                      flush=True)
    latency = query_latency(paths, embedders, chosen_queries(photos, args.queries))

    speedups = [n["embed_images_per_s"] / o["embed_images_per_s"] for o, n in zip(builds["old"], builds["new"])]
    of_pure = [n["embed_images_per_s"] / pure for n, pure in zip(builds["new"], pure_beside)]
    of_inside = [n["embed_images_per_s"] / n["network_only_images_per_s"] for n in builds["new"]]
    rows = [
        {"what": "decode, 1 thread (images/s)", "value": rates["decode_1_thread"]},
        {"what": "decode, 2 threads (images/s)", "value": rates["decode_2_threads"]},
    ]
    for name in ("old", "new"):
        for batch in (1, 16):
            rows.append({"what": f"network alone, {name} trunk ({embedders[name].path.name}), batch {batch} (images/s)",
                         "value": rates[f"inference_{name}_batch{batch}"]})
    for name, label in (("old", "old = fp32, batch 16, 2 decoders"), ("new", "new = default")):
        for b in builds[name]:
            rows += time_rows(label, b)
    rows += [
        {"what": "build new / old, same pair (min)", "value": min(speedups)},
        {"what": "build new / old, same pair (max)", "value": max(speedups)},
        {"what": "build new / the new trunk's pure batch-1 rate just before and after it (min)", "value": min(of_pure)},
        {"what": "build new / the new trunk's pure batch-1 rate just before and after it (max)", "value": max(of_pure)},
        {"what": "build new / its network's own rate inside the build (min)", "value": min(of_inside)},
        {"what": "build new / its network's own rate inside the build (max)", "value": max(of_inside)},
    ]
    rows += latency_rows(latency)
    print(table(rows, [("what", "measure", ""), ("value", "value", ".2f")]))
    path = save("build", {
        "rates": rates, "builds": builds, "speedups": speedups, "pure_rate_beside_new_builds": pure_beside,
        "of_pure_rate": of_pure, "of_network_inside": of_inside, "sweep": sweep,
        "latency": latency, "photos": len(photos),
        "models": {name: {"file": e.path.name, "sha256": e.sha256} for name, e in embedders.items()},
        "configs": {"old": {"inference_batch": 16, "decoders": 2}, "new": {"inference_batch": NEW.inference_batch, "decoders": NEW.decoders}},
    })
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
