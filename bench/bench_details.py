"""Search by a detail and the colour control (issue 12 items 2-3), measured on the clothing photos.

One real catalogue is built with the app's own build and default model: the
5,398 labelled photos, plus the pictures of the detail trials of every seed
(400 a seed). Then:

* **Detail.** A trial takes a picture A, a box of 25 % of its area, and
  pastes that crop onto 20 other catalogue pictures at random places and
  sizes (its long side 30-50 % of the picture's long side), as a motif reused
  across designs. The region query (`search_detail` with A and the box; also
  its first look alone, without the expanded second look) and today's
  whole-picture search with the crop saved as a file each rank the catalogue;
  printed: how many of the 20 each finds in its top 50, per seed and pooled.
  The region method was chosen on seed 5 (TUNING_SEEDS); the other seeds are
  held out, and the issue's 80 % is judged on them pooled.
* **A recoloured detail.** The same query with A's hues turned (30-330
  degrees), searched by the region at *ignore colour* and at the default:
  how many of the 20 pasted pictures (in the original colours) it finds.
* **Colour, ignore.** A hue-rotated copy (30-330 degrees) of a catalogue
  picture, outside the catalogue, is the query: how often its original
  ranks first at *ignore colour* (weight 0), against the default (0.5).
* **Colour, match.** A catalogue picture is the query; among results of its
  label from other senders, the first 10: their mean colour distance
  (Hellinger, 0 the same colours, 1 none in common) to the query at the
  default and at *match colour* (1), and the label precision of the first 10.
* **Speed.** Region search end to end at this catalogue's size at each
  colour setting, against whole-picture search in the same run; the work
  after the network (both scans and the expansion) at 5,398 images, here,
  and at 100,000 (the catalogue's regional vectors tiled).

    nice -n 10 .venv/bin/python bench/bench_details.py [--trials 20] [--seeds 5,12,21,34,47] [--colour-queries 200]

(`--colour-queries 0` measures the detail and the speed alone.)

Writes bench/results/details.json. The catalogue and the generated pictures
are kept under --work (default bench/work/details) and reused by later runs;
the pasted pictures of seed 12 are in pasted/, of another seed in pasted-sN/.
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
from swimsearch.region_index import RegionIndex, _top
from swimsearch.steering import DETAIL_HUE_TURNS

PASTED_PER_TRIAL = 20
TOP = 50
LABELLED = 5398  # the labelled clothing photos: the catalogue size the times name
#: Seeds of the detail trials. The region method (the basis, the scan, the expanded second look) was chosen on
#: seed 5 only (docs/DETAILS.md); the others are held out, and the target is judged on them pooled.
SEEDS = (5, 12, 21, 34, 47)
TUNING_SEEDS = (5,)


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


def pasted_folder(seed: int) -> str:
    """Where a seed's pasted pictures live in the catalogue's folder (the benchmark's first seed, 12, in pasted/)."""
    return "pasted" if seed == 12 else f"pasted-s{seed}"


def make_pasted(trials: list[dict], photos: Path, folder: Path) -> None:
    """Each trial's crop pasted onto its 20 targets: FOLDER/tNN-KK.jpg."""
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


class Clock:
    """Wall and CPU time of a block (ms). The process's CPU time is a load-independent upper bound on the wall
    time of its single-threaded parts on an idle machine: on the shared machine wall times are 3-10x it."""

    def __enter__(self):
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = (time.perf_counter() - self._wall) * 1000, (time.process_time() - self._cpu) * 1000


class OneSeed:
    """The catalogue as one seed's trials see it: the labelled photos and that seed's pasted pictures only.

    The issue's protocol has one set of trials in the catalogue. The pasted
    pictures of the other seeds are a few thousand more pictures that each
    carry a crop pasted as a rectangle, which a framed crop resembles, so
    each seed is measured without them: the detail search scans a region
    index of the others (as a catalogue without them would hold), and the
    whole-picture search drops them from its list before its top 50.
    """

    def __init__(self, engine: SearchEngine, catalogue: Catalogue):
        self.engine = engine
        self.index = RegionIndex.load(catalogue)
        records = catalogue.records(self.index.ids.tolist())
        self.folder = np.array([records[int(i)].relpath.split("/")[0] for i in self.index.ids])
        self.others: set[str] = set()

    def use(self, seed: int) -> None:
        self.others = {f for f in set(self.folder.tolist()) if f.startswith("pasted") and f != pasted_folder(seed)}
        keep = ~np.isin(self.folder, list(self.others))
        self.engine._details._index = RegionIndex(self.index.ids[keep], self.index.vectors[keep])  # the search's own index, narrowed

    def whole(self, query: str) -> list:
        matches = self.engine.search(query, top_n=TOP + 400).matches
        return [m for m in matches if m.relpath.split("/")[0] not in self.others][:TOP]


def detail_trials(engine: SearchEngine, trials: list[dict], photos: Path, work: Path, seed: int, view: OneSeed) -> dict:
    """One seed's trials: the region search (expanded, and its first look alone), whole-picture search with the crop,
    and the crop's picture hue-rotated searched by the region at *ignore colour* and at the default."""
    view.use(seed)
    crops = work / "crops"
    crops.mkdir(exist_ok=True)
    pasted = pasted_folder(seed)
    rng = np.random.default_rng(seed + 7)
    rows, times = [], {k: [] for k in ("default", "ignore", "match", "whole", "embed", "scan", "embed_ignore",
                                       "default_cpu", "ignore_cpu", "match_cpu", "whole_cpu")}
    for t, trial in enumerate(trials):
        wanted = {f"{pasted}/t{t:02d}-{k:02d}.jpg" for k in range(PASTED_PER_TRIAL)}
        source = photos / trial["source"]
        picture = Image.open(source).convert("RGB")
        crop_file = crops / (f"t{t:02d}.png" if seed == 12 else f"s{seed}-t{t:02d}.png")
        picture.crop(trial["box"].pixels(picture.width, picture.height)).save(crop_file)
        with Clock() as took:
            detail = engine.search_detail(str(source), trial["box"], top_n=TOP)
        times["default"].append(took.wall)
        times["default_cpu"].append(took.cpu)
        times["embed"].append(detail.embed_ms)
        times["scan"].append(detail.search_ms)
        first = engine.search_detail(str(source), trial["box"], top_n=TOP, expand=False)
        with Clock() as took:
            engine.search(str(crop_file), top_n=TOP)
        times["whole"].append(took.wall)
        times["whole_cpu"].append(took.cpu)
        whole_list = view.whole(str(crop_file))
        # the same detail in another colourway: the picture's hues turned 30-330 degrees (outside the catalogue)
        turned = Image.fromarray(hue_turned(np.asarray(picture), float(rng.uniform(30, 330))))
        with Clock() as took:
            recoloured = engine.search_detail(turned, trial["box"], top_n=TOP, colour=ColourMix(0.0))
        times["ignore"].append(took.wall)
        times["ignore_cpu"].append(took.cpu)
        times["embed_ignore"].append(recoloured.embed_ms)
        recoloured_default = engine.search_detail(turned, trial["box"], top_n=TOP)
        if t < 5:  # *match colour* reads colour signatures too: timed on a few
            with Clock() as took:
                engine.search_detail(str(source), trial["box"], top_n=TOP, colour=ColourMix(1.0))
            times["match"].append(took.wall)
            times["match_cpu"].append(took.cpu)
        found = {key: sum(m.relpath in wanted for m in listed) for key, listed in (
            ("region", detail.matches), ("first", first.matches), ("whole", whole_list), ("hue_ignore", recoloured.matches),
            ("hue_default", recoloured_default.matches))}
        listed = {m.relpath for m in detail.matches}
        rows.append({"trial": t, **found,
                     "found_by_size": [(s[0], f"{pasted}/t{t:02d}-{k:02d}.jpg" in listed) for k, s in enumerate(trial["places"])]})
        print(f"  seed {seed} trial {t:2d}: region search {found['region']:2d}/20 in its top {TOP} (first look alone {found['first']:2d}), "
              f"whole picture with the crop {found['whole']:2d}; recoloured detail at ignore colour {found['hue_ignore']:2d} "
              f"(default {found['hue_default']:2d})", flush=True)
    by_size = [pair for row in rows for pair in row["found_by_size"]]
    small = [hit for size, hit in by_size if size < 0.4]
    large = [hit for size, hit in by_size if size >= 0.4]
    out = {"seed": seed, "trials": len(rows), "found": {key: [r[key] for r in rows] for key in FOUND_KEYS},
           "region_trials_at_least_16": int(sum(r["region"] >= 16 for r in rows)),
           "region_pasted_30_40pc": [int(h) for h in small], "region_pasted_40_50pc": [int(h) for h in large],
           "times_ms": times}
    out.update({f"{key}_recall_at_50": float(np.mean(out["found"][key]) / PASTED_PER_TRIAL) for key in FOUND_KEYS})
    return out


#: What each trial counts: region search, its first look alone, whole picture with the crop, the recoloured detail.
FOUND_KEYS = ("region", "first", "whole", "hue_ignore", "hue_default")


def pooled(per_seed: list[dict]) -> dict:
    """The trials of several seeds together: recall per way of searching, by paste size, and the times."""
    found = {key: [n for s in per_seed for n in s["found"][key]] for key in FOUND_KEYS}
    small = [h for s in per_seed for h in s["region_pasted_30_40pc"]]
    large = [h for s in per_seed for h in s["region_pasted_40_50pc"]]
    times = {key: [v for s in per_seed for v in s["times_ms"][key]] for key in per_seed[0]["times_ms"]}
    return {"seeds": [s["seed"] for s in per_seed], "trials": len(found["region"]),
            **{f"{key}_recall_at_50": float(np.mean(v) / PASTED_PER_TRIAL) for key, v in found.items()},
            "region_trials_at_least_16": int(sum(n >= 16 for n in found["region"])),
            "region_recall_pasted_30_40pc": float(np.mean(small)) if small else None,
            "region_recall_pasted_40_50pc": float(np.mean(large)) if large else None,
            **{f"{key}_ms_median": median(v) for key, v in times.items() if v},
            **{f"{key}_ms_p90": percentile(v, 90) for key, v in times.items() if v}}


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
    """The region search after the network at three sizes: its scan (1 query row, or 3 towards *ignore colour*:
    the detail and its hue turns), then the query expanded and the refined images scored again, as
    steering.DetailSearch runs them.

    Each scan has both steps: the coarse scan of every image and the full vectors of the best REFINE.
    """
    index = RegionIndex.load(catalogue)
    rng = np.random.default_rng(0)
    dim = index.vectors.shape[2]
    out = {}
    big = RegionIndex(np.arange(1, scale + 1), np.resize(index.vectors, (scale, *index.vectors.shape[1:])))
    out["held_bytes_per_image"] = big.bytes_per_image
    labelled = RegionIndex(index.ids[:LABELLED], index.vectors[:LABELLED])  # the size the issue names
    for label, idx in ((f"{LABELLED}", labelled), ("here", index), (f"{scale}", big)):
        for rows in (1, 1 + len(DETAIL_HUE_TURNS)):
            q = rng.standard_normal((rows, dim)).astype(np.float32)
            q /= np.linalg.norm(q, axis=1, keepdims=True)
            first, whole, cpu = [], [], []
            for _ in range(repeats):
                started, cpu_started = time.perf_counter(), time.process_time()
                scan = idx.scan(q)
                _top(scan.values.max(axis=1), TOP + 30)
                first.append((time.perf_counter() - started) * 1000)
                _top(scan.second_look(q, scan.values), TOP + 30)
                whole.append((time.perf_counter() - started) * 1000)
                cpu.append((time.process_time() - cpu_started) * 1000)
            out[f"first_ms_{label}_{rows}q"] = median(first)
            out[f"scan_ms_{label}_{rows}q"] = median(whole)
            out[f"scan_cpu_ms_{label}_{rows}q"] = median(cpu)
    out["images_here"] = len(index)
    out["scale"] = scale
    out["bytes_per_image"] = int(index.vectors[0].nbytes)  # as stored in the catalogue (float16)
    out["windows"], out["dims"], out["coarse_dims"] = int(index.vectors.shape[1]), int(dim), int(index.coarse_dim)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20, help="detail trials per seed")
    parser.add_argument("--seeds", default=",".join(map(str, SEEDS)), help="seeds of the detail trials, comma-separated")
    parser.add_argument("--colour-queries", type=int, default=200)
    parser.add_argument("--scale", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=12, help="seed of the colour queries")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", type=Path, default=WORK / "details")
    args = parser.parse_args(argv)
    seeds = [int(x) for x in args.seeds.split(",") if x.strip()]

    labels = read_labels(CLOTHING)
    photos_source = CLOTHING / "images"
    names = sorted(n for n in labels if (photos_source / n).exists())
    folder = args.work / "pictures"
    link_photos(names, photos_source, folder / "images")
    photos = folder / "images"
    _, colour_names = plan(names, labels, 0, args.colour_queries, args.seed)
    trials = {seed: plan(names, labels, args.trials, 0, seed)[0] for seed in seeds}
    for seed, seed_trials in trials.items():
        make_pasted(seed_trials, photos, folder / pasted_folder(seed))
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
        per_seed = []
        engine.search_detail(str(photos / names[0]), Box(0.25, 0.25, 0.5, 0.5))  # loads the region index
        view = OneSeed(engine, catalogue)
        for seed, seed_trials in trials.items():
            print(f"detail, seed {seed}: {len(seed_trials)} trials of {PASTED_PER_TRIAL} pasted pictures each", flush=True)
            per_seed.append(detail_trials(engine, seed_trials, photos, args.work, seed, view))
        engine._details.reset()
        ignore = match = None
        if colour_names:  # --colour-queries 0: the detail figures and the speed alone (a few minutes less)
            print(f"colour: {len(colour_names)} hue-rotated copies", flush=True)
            ignore = colour_ignore(engine, colour_names, photos, args.work, args.seed)
            print("colour: match colour among designs of one label", flush=True)
            match = colour_match(engine, catalogue, colour_names, labels, photos)
        print(f"speed: the region scan at {LABELLED:,}, {len(engine):,} and {args.scale:,} images", flush=True)
        speed = scan_speed(catalogue, args.scale)
        images = catalogue.counts()["readable"]
    load = (*load, *os.getloadavg())
    held_out = [s for s in per_seed if s["seed"] not in TUNING_SEEDS]
    every = pooled(per_seed)
    summary = pooled(held_out) if held_out else None
    print(f"\ndetail: found of 20 in the top {TOP} per seed (the method was chosen on seed(s) "
          f"{', '.join(map(str, TUNING_SEEDS))}; the others are held out)")
    rows = []
    for s in per_seed:
        rows.append({"what": f"seed {s['seed']}{' (tuning)' if s['seed'] in TUNING_SEEDS else ''}: region search",
                     "value": s["region_recall_at_50"],
                     "note": f"first look alone {s['first_recall_at_50']:.3f}; whole picture with the crop {s['whole_recall_at_50']:.3f}; "
                             f">=16/20 in {s['region_trials_at_least_16']}/{s['trials']} trials; recoloured detail at ignore colour "
                             f"{s['hue_ignore_recall_at_50']:.3f} (default {s['hue_default_recall_at_50']:.3f})"})
    for words, p in (("held-out seeds pooled", summary), ("every seed pooled", every)):
        if p is None:
            continue
        rows.append({"what": f"{words} ({p['trials']} trials): region search", "value": p["region_recall_at_50"],
                     "note": f"first look alone {p['first_recall_at_50']:.3f}; whole picture with the crop {p['whole_recall_at_50']:.3f}; "
                             f">=16/20 in {p['region_trials_at_least_16']}/{p['trials']}"})
        rows.append({"what": f"{words}: recoloured detail, ignore colour", "value": p["hue_ignore_recall_at_50"],
                     "note": f"default colour {p['hue_default_recall_at_50']:.3f} (the crop's picture hue-turned 30-330 degrees)"})
        rows.append({"what": f"{words}: region recall, pasted at 30-40 % / 40-50 %", "value": p["region_recall_pasted_30_40pc"],
                     "note": f"{p['region_recall_pasted_40_50pc']:.3f}"})
    print(table(rows, [("what", "measure", ""), ("value", "recall@50", ".3f"), ("note", "also", "")]))
    rows = []
    if ignore is not None:
        rows.append({"what": "hue-rotated copy: original first, ignore colour", "value": ignore["original_first_ignore"],
                     "note": f"default: {ignore['original_first_default']:.3f} ({ignore['queries']} queries)"})
    for key, words in (("w0", "ignore"), ("w0.5", "default"), ("w1", "match")) if match is not None else ():
        rows.append({"what": f"top 10 of its label: colour distance, {words}", "value": match[key]["mean_colour_distance_top10_same_label"],
                     "note": f"label P@10 {match[key]['label_precision_at_10']:.3f}"})
    big = f"{args.scale}"
    searched = LABELLED + PASTED_PER_TRIAL * args.trials  # what each seed's searches scan (OneSeed)
    embed, embed_ignore = every["embed_ms_median"], every["embed_ignore_ms_median"]
    rows += [
        {"what": f"region search at {searched:,}, default colour (median / p90 ms)", "value": every["default_ms_median"],
         "note": f"{every['default_ms_p90']:.0f}; embed {embed:.0f}, after it {every['scan_ms_median']:.1f}; CPU {every['default_cpu_ms_median']:.0f}"},
        {"what": f"region search at {searched:,}, ignore colour (median / p90 ms)", "value": every["ignore_ms_median"],
         "note": f"{every['ignore_ms_p90']:.0f}; embed (3 framed copies) {embed_ignore:.0f}; CPU {every['ignore_cpu_ms_median']:.0f}"},
        {"what": f"region search at {searched:,}, match colour (median / p90 ms)", "value": every["match_ms_median"],
         "note": f"{every['match_ms_p90']:.0f}; CPU {every['match_cpu_ms_median']:.0f}"},
        {"what": f"whole-picture search at {images:,} (median / p90 ms)", "value": every["whole_ms_median"],
         "note": f"{every['whole_ms_p90']:.0f}; region/whole {every['default_ms_median'] / every['whole_ms_median']:.2f}x; "
                 f"CPU {every['whole_cpu_ms_median']:.0f}"},
    ]
    for label, size in ((f"{LABELLED}", LABELLED), ("here", images), (big, args.scale)):
        one, three = speed[f"scan_ms_{label}_1q"], speed[f"scan_ms_{label}_3q"]
        rows.append({"what": f"after the network at {size:,}: 1 / 3 query rows (ms)", "value": one,
                     "note": f"{three:.1f} (first look alone {speed[f'first_ms_{label}_1q']:.1f} / {speed[f'first_ms_{label}_3q']:.1f}); "
                             f"with the embedding measured here: default {embed + one:.0f}, ignore colour {embed_ignore + three:.0f}; "
                             f"CPU {speed[f'scan_cpu_ms_{label}_1q']:.0f} / {speed[f'scan_cpu_ms_{label}_3q']:.0f}"})
    rows.append({"what": "regions per image: stored bytes (float16)", "value": speed["bytes_per_image"],
                 "note": f"{speed['windows']} windows x {speed['dims']} dims; held in memory {speed['held_bytes_per_image']:,} B "
                         f"(coarse scan on {speed['coarse_dims']} dims); at {args.scale:,}: "
                         f"{speed['bytes_per_image'] * args.scale / 1e9:.2f} GB stored, {speed['held_bytes_per_image'] * args.scale / 1e9:.2f} GB held"})
    print(table(rows, [("what", "measure", ""), ("value", "value", ".3f"), ("note", "also", "")]))
    print(f"load average before/after: {load[0]:.1f} / {load[3]:.1f} (2 cores shared by several engineers: times are noisy)")
    save("details", {"images": images, "build_seconds": built.seconds, "load_average": load, "detail": per_seed,
                     "held_out": summary, "pooled": every, "tuning_seeds": list(TUNING_SEEDS),
                     "colour_ignore": ignore, "colour_match": match, "speed": speed, "model": embedder.name})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
