"""A new picture's query with the int8 trunk's folded graph against the int8 file itself, in turns.

models/fold_pads.py folds the int8 graph's 22 Pad nodes into their convolutions (the same outputs, bit
for bit). This times what a user waits for: the whole search of a new picture (a byte copy of a
clothing photo outside the catalogue's folder: read, decoded, embedded, searched, its same-design pairs
looked at), with two engines on one catalogue that differ only in the graph onnxruntime runs. They take
turns query by query (each first as often), and each reads its own features (no verdict kept), so the
machine's speed moves both alike. The lists must be the same: the script fails otherwise.

    cd bench && python bench_folded.py                      # work/clothing.swimcat, 200 queries
    cd bench && python bench_folded.py --build 2000 --rounds 4

`--build N` times builds of the first N clothing photos instead: the int8 file itself at batch 1 (the
default before round 15) against the folded graph at today's default batch (4), in turns.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from common import CLOTHING, WORK, median, save, table

from bench_build import build, chosen_queries, link_folder
from swimsearch.catalogue import Catalogue
from swimsearch.config import EngineConfig
from swimsearch.feature_cache import FeatureCache
from swimsearch.model import MODEL_CARD, Embedder, default_model_path
from swimsearch.search import SearchEngine


def _file_itself(tmp: Path) -> Embedder:
    """The int8 file run as it is: a copy with its card and no folded graph beside it, in `tmp`."""
    plain = tmp / "models"
    plain.mkdir()
    for name in (default_model_path().name, MODEL_CARD):
        shutil.copy(default_model_path().with_name(name), plain / name)
    return Embedder(plain / default_model_path().name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--catalogue", type=Path, default=WORK / "clothing.swimcat", help="built with the int8 trunk")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--build", type=int, default=0, help="time builds of this many photos instead")
    parser.add_argument("--rounds", type=int, default=4, help="builds of each, in turns (--build)")
    args = parser.parse_args()
    if args.build:
        return builds(args.build, args.rounds)

    with tempfile.TemporaryDirectory() as tmp:
        embedders = {"folded": Embedder(default_model_path()), "file": _file_itself(Path(tmp))}
        assert embedders["folded"].graph != embedders["folded"].path and embedders["file"].graph == embedders["file"].path
        photos = sorted((CLOTHING / "images").glob("*.jpg"))
        files = [shutil.copy(q, f"{tmp}/{n:04d}{q.suffix}") for n, q in enumerate(chosen_queries(photos, args.queries))]
        with Catalogue.open(args.catalogue) as catalogue:
            engines = {name: SearchEngine(catalogue, e, EngineConfig()) for name, e in embedders.items()}
            for engine in engines.values():
                engine.picture_check.verdicts = None  # every pair looked at when it is searched
                for q in files[:5]:
                    engine.search(q, top_n=50)  # warm-up
                engine.picture_check.cache = FeatureCache()
            times = {name: {"total": [], "embed": [], "search": []} for name in engines}
            lists = {name: [] for name in engines}
            for n, q in enumerate(files):
                turn = list(engines.items())
                for name, engine in turn[n % 2:] + turn[: n % 2]:
                    started = time.perf_counter()
                    result = engine.search(q, top_n=50)
                    times[name]["total"].append((time.perf_counter() - started) * 1000)
                    times[name]["embed"].append(result.embed_ms)
                    times[name]["search"].append(result.search_ms)
                    lists[name].append([(m.image_id, m.score, m.band) for m in result.matches])
    same = sum(a == b for a, b in zip(lists["folded"], lists["file"]))
    rows = [{"graph": name, "total": median(t["total"]), "embed": median(t["embed"]), "search": median(t["search"])}
            for name, t in times.items()]
    paired = median([a - b for a, b in zip(times["folded"]["total"], times["file"]["total"])])
    print(f"A new picture's query at {args.catalogue.name}, {len(files)} queries in turns (median ms)")
    print(table(rows, [("graph", "graph run", ""), ("total", "total", ".2f"), ("embed", "decode+embed", ".2f"),
                       ("search", "search", ".2f")]))
    print(f"folded / file, median total: {rows[0]['total'] / rows[1]['total']:.3f}; median of the paired differences "
          f"{paired:+.2f} ms; lists identical (ids, scores, bands): {same} of {len(files)}")
    save("query-folded", {"rows": rows, "paired_difference_ms": paired, "identical_lists": same, "queries": len(files)})
    return 0 if same == len(files) else 1


def builds(count: int, rounds: int) -> int:
    """--build: the two graphs at their defaults' batch, building the same photos in turns."""
    with tempfile.TemporaryDirectory() as tmp:
        shapes = {"file, batch 1": (_file_itself(Path(tmp)), 1),
                  f"folded, batch {EngineConfig().inference_batch}": (Embedder(default_model_path()), EngineConfig().inference_batch)}
        folder = link_folder(sorted((CLOTHING / "images").glob("*.jpg"))[:count], Path(tmp) / "photos")
        rows: dict[str, list[dict]] = {name: [] for name in shapes}
        for n in range(rounds):
            for name in list(shapes)[:: 1 if n % 2 == 0 else -1]:
                embedder, batch = shapes[name]
                rows[name].append(build(folder, Path(tmp) / "c.swimcat", embedder, EngineConfig(inference_batch=batch)))
                print(f"  {name}: {rows[name][-1]['embed_images_per_s']:.1f} images/s embedded", flush=True)
    first, second = (rows[name] for name in shapes)
    ratios = [b["embed_images_per_s"] / a["embed_images_per_s"] for a, b in zip(first, second)]
    print(f"builds of {count} photos, embed phase: {' / '.join(reversed(shapes))} = {min(ratios):.2f}-{max(ratios):.2f} x "
          f"(in turns, {rounds} of each)")
    save("build-folded", {"photos": count, "builds": rows, "ratios": ratios})
    return 0


if __name__ == "__main__":
    sys.exit(main())
