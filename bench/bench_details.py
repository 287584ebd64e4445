"""Search by a detail and the colour control (issue 12 items 2-3), measured on the clothing photos.

One real catalogue is built with the app's own build and default model: the
5,398 labelled photos, plus the pictures of the detail trials. Then:

* **Detail.** A trial takes a picture A, a box of 25 % of its area, and
  pastes that crop onto 20 other catalogue pictures at random places and
  sizes (its long side 30-50 % of the picture's long side), as a motif reused
  across designs. The region query (`search_detail` with A and the box) and
  today's whole-picture search with the crop saved as a file each rank the
  catalogue; printed: how many of the 20 each finds in its top 50.
* **Colour, ignore.** A hue-rotated copy (30-330 degrees) of a catalogue
  picture, outside the catalogue, is the query: how often its original
  ranks first at *ignore colour* (weight 0), against the default (0.5).
* **Colour, match.** A catalogue picture is the query; among results of its
  label from other senders, the first 10: their mean colour distance
  (Hellinger, 0 the same colours, 1 none in common) to the query at the
  default and at *match colour* (1), and the label precision of the first 10.
* **Speed.** Region search at this catalogue's size (embedding + scan) against
  whole-picture search, in the same run; the region scan at 100,000 images
  (the catalogue's regional vectors tiled) against the scan at this size.

    nice -n 10 .venv/bin/python bench/bench_details.py [--trials 20] [--colour-queries 200]

(`--colour-queries 0` measures the detail and the speed alone.)

Writes bench/results/details.json. The catalogue and the generated pictures
are kept under --work (default bench/work/details) and reused by later runs.
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from pathlib import Path

import numpy as np
from PIL import Image

from common import CLOTHING, WORK, Timer, machine, median, percentile, save, table  # noqa: F401  (sets sys.path)
from swimsearch.catalogue import Catalogue
from swimsearch.colour import ColourMix, colour_distance, hue_turned
from swimsearch.config import EngineConfig
from swimsearch.model import Embedder, default_model_path
from swimsearch.regions import REGION_BASIS_FILE, Box, shipped_region_basis
from swimsearch.search import SearchEngine
from swimsearch.steering import RegionIndex, _top

PASTED_PER_TRIAL = 20
TOP = 50


def read_labels(root: Path) -> dict[str, tuple[str, str, bool]]:
    """filename ("<uuid>.jpg") -> (label, sender, usable)."""
    with open(root / "labels.csv", newline="") as fh:
        return {
            Path(r["filename"]).name: (r["label"], r["sender_id"], r["usable"] == "True") for r in csv.DictReader(fh)
        }


def link_photos(names: list[str], source: Path, folder: Path) -> None:
    """The labelled photos in the catalogue's folder, as hard links (a copy where links cannot be made)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        target = folder / name
        if not target.exists():
            try:
                os.link(source / name, target)
            except OSError:
                target.write_bytes((source / name).read_bytes())


def plan(names: list[str], labels: dict, trials: int, colour_queries: int, seed: int) -> tuple[list[dict], list[str]]:
    """The detail trials (picture, box, 20 targets with place and size) and the colour queries, seeded."""
    rng = np.random.default_rng(seed)
    usable = [n for n in names if labels[n][2]]
    order = list(rng.permutation(usable))
    trial_plans = []
    for t in range(trials):
        source = order.pop()
        x, y = rng.uniform(0.1, 0.4, size=2)
        targets = [order.pop() for _ in range(PASTED_PER_TRIAL)]
        places = [(float(rng.uniform(0.3, 0.5)), float(rng.uniform()), float(rng.uniform())) for _ in targets]
        trial_plans.append({"source": source, "box": Box(float(x), float(y), 0.5, 0.5), "targets": targets, "places": places})
    return trial_plans, order[:colour_queries]


def make_pasted(trials: list[dict], photos: Path, folder: Path) -> None:
    """Each trial's crop pasted onto its 20 targets: pasted/tNN-KK.jpg."""
    folder.mkdir(parents=True, exist_ok=True)
    for t, trial in enumerate(trials):
        source = Image.open(photos / trial["source"]).convert("RGB")
        crop = source.crop(trial["box"].pixels(source.width, source.height))
        for k, (name, (size, px, py)) in enumerate(zip(trial["targets"], trial["places"])):
            out = folder / f"t{t:02d}-{k:02d}.jpg"
            if out.exists():
                continue
            picture = Image.open(photos / name).convert("RGB")
            scale = size * max(picture.size) / max(crop.size)
            patch = crop.resize((max(1, round(crop.width * scale)), max(1, round(crop.height * scale))), Image.Resampling.BILINEAR)
            left = round(px * max(0, picture.width - patch.width))
            top = round(py * max(0, picture.height - patch.height))
            picture.paste(patch, (left, top))
            picture.save(out, quality=92)


def detail_trials(engine: SearchEngine, trials: list[dict], photos: Path, work: Path) -> dict:
    crops = work / "crops"
    crops.mkdir(exist_ok=True)
    rows, detail_ms, whole_ms, embed_ms, scan_ms = [], [], [], [], []
    for t, trial in enumerate(trials):
        wanted = {f"pasted/t{t:02d}-{k:02d}.jpg" for k in range(PASTED_PER_TRIAL)}
        source = photos / trial["source"]
        picture = Image.open(source).convert("RGB")
        crop_file = crops / f"t{t:02d}.png"
        picture.crop(trial["box"].pixels(picture.width, picture.height)).save(crop_file)
        with Timer() as took:
            detail = engine.search_detail(str(source), trial["box"], top_n=TOP)
        detail_ms.append(took.seconds * 1000)
        embed_ms.append(detail.embed_ms)
        scan_ms.append(detail.search_ms)
        with Timer() as took:
            whole = engine.search(str(crop_file), top_n=TOP)
        whole_ms.append(took.seconds * 1000)
        found = sum(m.relpath in wanted for m in detail.matches)
        found_whole = sum(m.relpath in wanted for m in whole.matches)
        sizes = trial["places"]
        rows.append({"trial": t, "region": found, "whole": found_whole,
                     "found_by_size": [(s[0], f"pasted/t{t:02d}-{k:02d}.jpg" in {m.relpath for m in detail.matches})
                                       for k, s in enumerate(sizes)]})
        print(f"  trial {t:2d}: region search {found:2d}/20 in its top {TOP}, whole-picture search with the crop {found_whole:2d}/20",
              flush=True)
    by_size = [pair for row in rows for pair in row["found_by_size"]]
    small = [hit for size, hit in by_size if size < 0.4]
    large = [hit for size, hit in by_size if size >= 0.4]
    return {
        "trials": len(rows),
        "region_recall_at_50": float(np.mean([r["region"] for r in rows]) / PASTED_PER_TRIAL),
        "whole_recall_at_50": float(np.mean([r["whole"] for r in rows]) / PASTED_PER_TRIAL),
        "region_trials_at_least_16": int(sum(r["region"] >= 16 for r in rows)),
        "region_recall_pasted_30_40pc": float(np.mean(small)) if small else None,
        "region_recall_pasted_40_50pc": float(np.mean(large)) if large else None,
        "per_trial": [(r["region"], r["whole"]) for r in rows],
        "region_ms_median": median(detail_ms), "region_ms_p90": percentile(detail_ms, 90),
        "region_embed_ms_median": median(embed_ms), "region_scan_ms_median": median(scan_ms),
        "whole_ms_median": median(whole_ms), "whole_ms_p90": percentile(whole_ms, 90),
    }


def colour_ignore(engine: SearchEngine, names: list[str], photos: Path, work: Path, seed: int) -> dict:
    folder = work / "hue"
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(seed + 1)
    first = {"ignore": 0, "default": 0}
    for n, name in enumerate(names):
        turned = folder / f"{Path(name).stem}.jpg"
        if not turned.exists():
            pixels = np.asarray(Image.open(photos / name).convert("RGB"))
            Image.fromarray(hue_turned(pixels, float(rng.uniform(30, 330)))).save(turned, quality=92)
        for key, weight in (("ignore", 0.0), ("default", 0.5)):
            result = engine.search(str(turned), top_n=3, colour=ColourMix(weight))
            first[key] += bool(result.matches) and result.matches[0].relpath == f"images/{name}"
        if n % 50 == 49:
            print(f"  hue-rotated copies: {n + 1} queries, original first at ignore colour {first['ignore']}, at the default {first['default']}",
                  flush=True)
    return {"queries": len(names), "original_first_ignore": first["ignore"] / len(names),
            "original_first_default": first["default"] / len(names)}


def colour_match(engine: SearchEngine, catalogue: Catalogue, names: list[str], labels: dict, photos: Path) -> dict:
    by_weight: dict[float, dict[str, list[float]]] = {w: {"distance": [], "precision": []} for w in (0.0, 0.5, 1.0)}
    for name in names:
        record = catalogue.record_by_path(photos / name)
        if record is None:
            continue
        label, sender, _ = labels[name]
        own = catalogue.colour_signatures([record.image_id]).signatures
        for weight, out in by_weight.items():
            result = engine.search_id(record.image_id, top_n=400, colour=ColourMix(weight))
            others = [m for m in result.matches
                      if m.relpath.startswith("images/") and m.image_id != record.image_id
                      and labels[Path(m.relpath).name][1] != sender]  # cross-sender, as the data set's README asks
            same = [m for m in others if labels[Path(m.relpath).name][0] == label][:10]
            if same and len(own):
                signatures = catalogue.colour_signatures([m.image_id for m in same]).signatures
                out["distance"].append(float(colour_distance(own[0], signatures).mean()))
            out["precision"].append(float(np.mean([labels[Path(m.relpath).name][0] == label for m in others[:10]])))
    return {
        f"w{w:g}": {"mean_colour_distance_top10_same_label": float(np.mean(v["distance"])),
                    "label_precision_at_10": float(np.mean(v["precision"])), "queries": len(v["distance"])}
        for w, v in by_weight.items()
    }


def scan_speed(catalogue: Catalogue, scale: int, repeats: int = 7) -> dict:
    """The region scan (every image's regions against a detail query: 1 row, or 6 towards ignore colour) at two sizes.

    Both steps: the coarse scan of every image and the full vectors of the best REFINE.
    """
    index = RegionIndex.load(catalogue)
    rng = np.random.default_rng(0)
    dim = index.vectors.shape[2]
    out = {}
    big = RegionIndex(np.arange(1, scale + 1), np.resize(index.vectors, (scale, *index.vectors.shape[1:])))
    out["held_bytes_per_image"] = big.bytes_per_image
    for label, idx in (("here", index), (f"{scale}", big)):
        for rows in (1, 6):
            q = rng.standard_normal((rows, dim)).astype(np.float32)
            q /= np.linalg.norm(q, axis=1, keepdims=True)
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                best = idx.best(q).max(axis=1)
                _top(best, TOP + 30)
                times.append((time.perf_counter() - started) * 1000)
            out[f"scan_ms_{label}_{rows}q"] = median(times)
    out["images_here"] = len(index)
    out["scale"] = scale
    out["bytes_per_image"] = int(index.vectors[0].nbytes)  # as stored in the catalogue (float16)
    out["windows"], out["dims"], out["coarse_dims"] = int(index.vectors.shape[1]), int(dim), int(index.coarse_dim)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--colour-queries", type=int, default=200)
    parser.add_argument("--scale", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", type=Path, default=WORK / "details")
    args = parser.parse_args(argv)

    labels = read_labels(CLOTHING)
    photos_source = CLOTHING / "images"
    names = sorted(n for n in labels if (photos_source / n).exists())
    folder = args.work / "pictures"
    link_photos(names, photos_source, folder / "images")
    photos = folder / "images"
    trials, colour_names = plan(names, labels, args.trials, args.colour_queries, args.seed)
    make_pasted(trials, photos, folder / "pasted")
    embedder = Embedder(default_model_path(), threads=args.threads)
    config = EngineConfig()
    path = args.work / "details.swimcat"
    with (Catalogue.open(path) if path.exists() else Catalogue.create(path, folder)) as catalogue:
        with Timer() as built:
            report = catalogue.update(embedder, config)
        print(f"catalogue: {report.summary()} ({built.seconds:.0f} s); details {dict(catalogue.detail_counts())}", flush=True)
        kept, shipped = catalogue.region_basis(), shipped_region_basis(embedder.feature_map_shape)
        if kept is None or shipped is None or not np.array_equal(kept.basis, shipped.basis):
            # a catalogue keeps the basis it was built with: measuring it would measure an older method
            raise SystemExit(f"{path} keeps regions of another basis than models/{REGION_BASIS_FILE}: delete it to build it again")
        engine = SearchEngine(catalogue, embedder, config)
        load = os.getloadavg()
        print(f"detail: {len(trials)} trials of {PASTED_PER_TRIAL} pasted pictures each", flush=True)
        detail = detail_trials(engine, trials, photos, args.work)
        ignore = match = None
        if colour_names:  # --colour-queries 0: the detail figures and the speed alone (a few minutes less)
            print(f"colour: {len(colour_names)} hue-rotated copies", flush=True)
            ignore = colour_ignore(engine, colour_names, photos, args.work, args.seed)
            print("colour: match colour among designs of one label", flush=True)
            match = colour_match(engine, catalogue, colour_names, labels, photos)
        print(f"speed: the region scan at {len(engine):,} and {args.scale:,} images", flush=True)
        speed = scan_speed(catalogue, args.scale)
        images = catalogue.counts()["readable"]
    load = (*load, *os.getloadavg())
    rows = [
        {"what": f"detail: found of 20 in the top {TOP}, region search", "value": detail["region_recall_at_50"] * 20,
         "note": f"recall {detail['region_recall_at_50']:.1%}; >=16/20 in {detail['region_trials_at_least_16']}/{detail['trials']} trials"},
        {"what": f"detail: found of 20 in the top {TOP}, whole picture (crop)", "value": detail["whole_recall_at_50"] * 20,
         "note": f"recall {detail['whole_recall_at_50']:.1%}"},
        {"what": "detail: region recall, pasted at 30-40 % / 40-50 %", "value": detail["region_recall_pasted_30_40pc"],
         "note": f"{detail['region_recall_pasted_40_50pc']:.3f}"},
    ]
    if ignore is not None:
        rows.append({"what": "hue-rotated copy: original first, ignore colour", "value": ignore["original_first_ignore"],
                     "note": f"default: {ignore['original_first_default']:.3f} ({ignore['queries']} queries)"})
    for key, words in (("w0", "ignore"), ("w0.5", "default"), ("w1", "match")) if match is not None else ():
        rows.append({"what": f"top 10 of its label: colour distance, {words}", "value": match[key]["mean_colour_distance_top10_same_label"],
                     "note": f"label P@10 {match[key]['label_precision_at_10']:.3f}"})
    rows += [
        {"what": f"region search at {images:,} (median / p90 ms)", "value": detail["region_ms_median"],
         "note": f"{detail['region_ms_p90']:.0f}; embed {detail['region_embed_ms_median']:.0f}, scan {detail['region_scan_ms_median']:.1f}"},
        {"what": f"whole-picture search at {images:,} (median / p90 ms)", "value": detail["whole_ms_median"],
         "note": f"{detail['whole_ms_p90']:.0f}; region/whole {detail['region_ms_median'] / detail['whole_ms_median']:.2f}x"},
        {"what": f"region scan at {images:,}, 1 / 6 query rows (ms)", "value": speed[f"scan_ms_here_1q"],
         "note": f"{speed['scan_ms_here_6q']:.1f}"},
        {"what": f"region scan at {args.scale:,}, 1 / 6 query rows (ms)", "value": speed[f"scan_ms_{args.scale}_1q"],
         "note": f"{speed[f'scan_ms_{args.scale}_6q']:.1f}; "
                 f"{speed[f'scan_ms_{args.scale}_1q'] / speed['scan_ms_here_1q']:.1f}x the scan here"},
        {"what": "regions per image: stored bytes (float16)", "value": speed["bytes_per_image"],
         "note": f"{speed['windows']} windows x {speed['dims']} dims; held in memory {speed['held_bytes_per_image']:,} B "
                 f"(coarse scan on {speed['coarse_dims']} dims); at {args.scale:,}: "
                 f"{speed['bytes_per_image'] * args.scale / 1e9:.2f} GB stored, {speed['held_bytes_per_image'] * args.scale / 1e9:.2f} GB held"},
    ]
    print(table(rows, [("what", "measure", ""), ("value", "value", ".3f"), ("note", "also", "")]))
    print(f"load average before/after: {load[0]:.1f} / {load[3]:.1f} (2 cores shared by several engineers: times are noisy)")
    save("details", {"images": images, "build_seconds": built.seconds, "load_average": load, "detail": detail,
                     "colour_ignore": ignore, "colour_match": match, "speed": speed, "trials": len(trials),
                     "model": embedder.name})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
