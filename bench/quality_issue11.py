"""Issue 11's figures through the engine, on a real catalogue of the clothing photos (bench_quality.py runs these).

Every method runs on the same catalogue and the same stored embeddings, so
the ratios are exact; timings are from a shared, loaded machine and only
meaningful against the baseline measured in the same run.

* `ranking`: mAP@10 of exact cosine (embeddings centred on the catalogue's
  mean, the ceiling of the pipeline before issue 11), today's pipeline (that
  pipeline, index made in memory), and the new search on the exact path, the
  LSH path and the graph path (both forced), cross-sender and same-sender,
  per label. The query is a catalogue photo, so its own vector takes part in
  its neighbours' augmented vectors: the research's *naive* protocol (its
  leak-free figures come from `bench_ranking.py`, `leak_free` below).
* `copies`: transformed copies (crop 80 %, half size + JPEG 40, colour
  jitter, mirror, rotation 8 degrees) of catalogue photos, embedded with the
  real model: is the original in the top 10 on the LSH path and on the
  graph path (both forced), against exact cosine ranking and pHash ranking
  of the same catalogue; does it read *same design* (the picture check
  included: the copy is given as the picture a user pasted).
* `bands`: how often pairs of different photos read *same design* (by the
  embeddings alone, over random pairs), and a fixed pair's score in
  catalogues of 36, 600 and all photos.
* `top10`: what a user reads among the best matches: the pairs in *same
  design* among each query's 10 best, with the picture check and without it
  (the embedding band alone) in one run, by sender and by label.
* `timing`: query time by file (embedding included) at this size, new
  (with and without the picture check) against today's pipeline in turns.
* `order`: the list is ordered by band, then by the ranking, while each
  match shows the calibrated score of the two pictures: how often a later
  match reads higher than one above it.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from common import CLOTHING, table

from swimsearch.calibration import BAND_NAMES, BAND_PERCENT, shipped_calibration
from swimsearch.comparison import METHODS, baseline_engine
from swimsearch.copies import COPY_KINDS, transformed_copy
from swimsearch.feature_cache import FeatureCache
from swimsearch.graph import VectorGraph
from swimsearch.look_verdicts import AHEAD_PAGE, LookVerdicts, look_ahead
from swimsearch.images import load_image
from swimsearch.inputs import read_labels
from swimsearch.metrics import average_precision, quality
from swimsearch.rocchio import Example
from swimsearch.search import SearchEngine
from swimsearch.searchers import choose_searcher

SAME_DESIGN = BAND_PERCENT[0]
TODAY = "today's pipeline"
#: The query settings of round 5's defaults (before the query was augmented and expanded twice), timed beside
#: the defaults; `--settings` takes the same names.
ROUND5 = "round-5 defaults"
UNCHECKED = "new, no picture check"
NOTHING_KEPT = "new, nothing looked ahead"
ROUND5_QUERY = {"expand_k": 5, "query_augment_k": 0, "expand_rounds": 1, "rerank_depth": 3000}


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


class Catalogued:
    """The catalogue's searchable photos with their labels, senders and stored embeddings."""

    def __init__(self, catalogue):
        snap = catalogue.load_snapshot()
        self.snap = snap
        records = catalogue.records(snap.ids)
        self.relpaths = [records[int(i)].relpath for i in snap.ids]
        self.paths = [records[int(i)].path for i in snap.ids]  # the picture files (a leak-free query's picture)
        stored = catalogue.embedding_matrix(snap.ids)
        assert np.array_equal(stored.ids, snap.ids)
        self.embeddings = stored.vectors.astype(np.float32)
        self.phash = catalogue.phashes(snap.ids)
        self.root = catalogue.root
        self.model_sha256 = catalogue.identity().model_sha256
        labels = read_labels(CLOTHING / "labels.csv", exclude_column="sender_id", filter_column="usable")
        row_of = {p.rsplit("/", 1)[-1]: i for i, p in enumerate(self.relpaths)}
        self.labels = labels
        self.rows = np.array([row_of[p.rsplit("/", 1)[-1]] for p in labels.paths])  # label row -> catalogue row
        self.label_of_row = np.full(len(self.relpaths), -1)
        self.label_of_row[self.rows] = np.arange(len(self.rows))
        self.depth = 100 + int(np.bincount(labels.groups).max()) + 1

    def judged(self, cross_sender: bool):
        return self.labels if cross_sender else replace(self.labels, groups=None)

    def hits(self, queries: np.ndarray, rankings: list[np.ndarray], cross_sender: bool) -> tuple[np.ndarray, np.ndarray]:
        """Top-100 hits of the labelled queries' ranked catalogue rows, and their relevant counts."""
        labels = self.judged(cross_sender)
        hits = np.zeros((len(queries), 100), dtype=bool)
        for n, (q, ranked) in enumerate(zip(queries, rankings)):
            allowed = np.zeros(len(self.relpaths), dtype=bool)
            allowed[self.rows[labels.gallery_mask(q)]] = True
            kept = [r for r in ranked if allowed[r]][:100]
            hits[n, : len(kept)] = labels.labels[self.label_of_row[kept]] == labels.labels[q]
        return hits, labels.relevant_counts()[queries]


def forced_graph_engine(catalogue, embedder, config) -> SearchEngine:
    """The new search with its candidates from an HNSW graph made in memory (the catalogue keeps one from 20,000)."""
    snap = catalogue.load_snapshot()
    graph = VectorGraph.build(snap.ids, snap.vectors)
    forced = config.with_changes(exact_below=0, graph_from=0)
    return SearchEngine(catalogue, embedder, forced, searcher=choose_searcher(replace(snap, graph=graph), forced))


def ranking(catalogue, embedder, config, data: Catalogued, *, limit: int = 0, every: int = 1,
            paths: str = "today,exact,lsh,graph", protocols: str = "naive,leak-free", split: str = "all",
            check: int = 0, leak_free_picture: bool = False) -> dict:
    """mAP@10 of each method over the labelled queries (every `every`-th, the first `limit`, of `split`),
    on `paths`, under `protocols`: "naive" (the query is a catalogue photo, searched as one) and
    "leak-free" (quality_leakfree.py: the catalogue without the query, the query searched as a new
    picture; exact and LSH paths). `check`: that many leak-free searches are also compared with real
    removals through the store (quality_leakfree.check). `leak_free_picture`: a leak-free query is searched
    with its picture file, as a user's new picture is, so the engine looks at the pairs its *same design*
    band shows (same_picture.py) as it does for a catalogue photo in the naive protocol; else from its
    embedding alone (no look)."""
    import quality_leakfree

    lsh_config = config.with_changes(exact_below=0, graph_from=10**9)
    makers = {
        "today": (METHODS[1], config, lambda: baseline_engine(SearchEngine(catalogue, embedder, config))),
        "exact": ("new, exact path", config, lambda: SearchEngine(catalogue, embedder, config)),
        "lsh": ("new, LSH path (forced)", lsh_config, lambda: SearchEngine(catalogue, embedder, lsh_config)),
        "graph": ("new, graph path (forced)", config, lambda: forced_graph_engine(catalogue, embedder, config)),
    }
    wanted = {p.strip() for p in paths.split(",")} | {"exact"}
    asked = [p.strip() for p in protocols.split(",") if p.strip()]
    unknown = set(asked) - {"naive", "leak-free"}
    if unknown or not asked:
        raise SystemExit(f"--protocols takes naive and/or leak-free, not {protocols!r}")
    engines = {name: (make(), cfg) for key, (name, cfg, make) in makers.items() if key in wanted}
    queries = np.arange(len(data.rows))
    if split != "all":
        tuning, held_out = sender_halves(data.labels.groups)
        queries = {"tuning": tuning, "held-out": held_out}[split]
    queries = queries[:: max(1, every)][: limit or None]
    full = _unit(data.embeddings - data.embeddings.mean(axis=0))
    rankings: dict[str, list[np.ndarray]] = {"exact cosine": []}
    for q in queries:
        sims = full @ full[data.rows[q]]
        sims[data.rows[q]] = np.inf
        rankings["exact cosine"].append(np.argsort(-sims, kind="stable")[: data.depth + 200])
    methods_used: dict[str, dict] = {}
    for protocol in asked:
        for name, (engine, engine_config) in engines.items():
            leave = None
            if protocol == "leak-free":
                if not name.startswith(("new, exact", "new, LSH")):
                    continue  # today's pipeline has no neighbour leak; the forced graph is not rebuilt per query
                leave = quality_leakfree.LeaveOneOut(engine, catalogue, engine_config)
            found, times, used, changed = [], [], {}, []
            for q in queries:
                row = int(data.rows[q])
                image_id = int(data.snap.ids[row])
                if leave is None:
                    result = engine.search_embeddings(data.embeddings[row : row + 1], phash=int(data.phash[row]),
                                                      top_n=data.depth, query_id=image_id)
                else:
                    with leave.without(image_id) as moved:
                        result = engine.search_embeddings(data.embeddings[row : row + 1], phash=int(data.phash[row]),
                                                          top_n=data.depth,
                                                          label=data.paths[row] if leak_free_picture else "embedding")
                    changed.append(moved)
                times.append(result.search_ms)
                used[result.method] = used.get(result.method, 0) + 1
                ids = np.array([m.image_id for m in result.matches], dtype=np.int64)
                found.append(data.snap.rows_of(ids))
            key = name if protocol == "naive" else f"{name}, leak-free"
            rankings[key] = found
            methods_used[key] = {"search_ms_median": float(np.median(times)), "methods": used}
            extra = f"; augmented vectors rebuilt per query: mean {np.mean(changed):.1f}, max {max(changed)}" if changed else ""
            print(f"  {key}: search median {np.median(times):.1f} ms ({used}){extra}", flush=True)
            if leave is not None and check:
                picked = [int(data.rows[q]) for q in queries[:check]]
                differ = quality_leakfree.check(Path(catalogue.location), engine_config, embedder, leave,
                                                [int(data.snap.ids[r]) for r in picked], data.embeddings[picked],
                                                data.phash[picked])
                methods_used[key]["check_differ"] = differ
    rows, per_label = [], {}
    names = list(rankings)
    codes = data.labels.labels[queries]
    base: dict[bool, float] = {}
    for cross in (True, False):
        for name in names:
            hits, relevant = data.hits(queries, rankings[name], cross)
            report = quality(hits, relevant)
            base.setdefault(cross, report.map10)
            rows.append({"method": name, "protocol": "cross-sender" if cross else "same-sender", "map10": report.map10,
                         "ratio": report.map10 / base[cross], "p1": report.p1, "p10": report.p10, "r100": report.r100})
            if cross:
                ap = average_precision(hits, relevant, 10)
                per_label[name] = {data.labels.names[c]: float(ap[codes == c].mean()) for c in np.unique(codes)}
    print()
    print(table(rows, [("method", "method", ""), ("protocol", "protocol", ""), ("map10", "mAP@10", ".4f"),
                       ("ratio", "x exact cosine", ".4f"), ("p1", "P@1", ".4f"), ("p10", "P@10", ".4f"), ("r100", "R@100", ".4f")]))
    ratios = {}
    for suffix in ("", ", leak-free"):
        exact = next((r["map10"] for r in rows if r["method"] == f"new, exact path{suffix}" and r["protocol"] == "cross-sender"), None)
        lsh = next((r["map10"] for r in rows if r["method"] == f"new, LSH path (forced){suffix}" and r["protocol"] == "cross-sender"), None)
        if exact is not None and lsh is not None:
            ratios[suffix or "naive"] = lsh / exact
            print(f"LSH path / exact path (cross-sender{suffix}): {lsh / exact:.4f}")
    # The same lists read per sender half: settings were chosen on the tuning half's queries, so the
    # held-out half's ratios are the ones that say whether a gain holds beyond the queries it was tuned on.
    tuning, held_out = sender_halves(data.labels.groups)
    parts = {"all": np.ones(len(queries), bool), "tuning half": np.isin(queries, tuning), "held-out half": np.isin(queries, held_out)}
    summary = []
    for name in names[1:]:
        row = {"method": name}
        for cross in (True, False):
            scored = {n: average_precision(*data.hits(queries, rankings[n], cross), 10) for n in ("exact cosine", name)}
            for part, mask in parts.items():
                if mask.any():
                    row[f"{'cross' if cross else 'same'} {part}"] = scored[name][mask].mean() / scored["exact cosine"][mask].mean()
        summary.append(row)
    print(f"\nx exact cosine, side by side ({len(queries)} queries of split {split!r}; halves: sender_halves, seed 0)")
    columns = [(f"{c} {p}", f"{c} {p}", ".4f") for c in ("cross", "same") for p in parts if parts[p].any()]
    print(table(summary, [("method", "method", "")] + columns))
    best = "new, exact path" if "new, exact path" in per_label else names[-1]
    label_rows = [
        {"label": f"{label} ({int(np.sum(codes == data.labels.names.index(label)))})",
         **{n: per_label[n][label] for n in ("exact cosine", best)},
         "ratio": per_label[best][label] / max(per_label["exact cosine"][label], 1e-9)}
        for label in sorted(per_label["exact cosine"])
    ]
    print("\nper label, cross-sender")
    print(table(label_rows, [("label", "label (queries)", ""), ("exact cosine", "exact cosine", ".4f"),
                             (best, best, ".4f"), ("ratio", "ratio", ".3f")]))
    return {"queries": len(queries), "split": split, "rows": rows, "by_half": summary, "per_label": label_rows, "engines": methods_used,
            "lsh_over_exact": ratios}


def sender_halves(groups: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labelled queries split by sender into a tuning half and a held-out half (about half the photos each):
    ranking settings are chosen on the tuning half's queries and reported on the held-out half's."""
    senders = np.unique(groups)
    order = np.random.default_rng(seed).permutation(senders)
    counts = np.bincount(groups)
    half, total = set(), 0
    for s in order:
        if total + counts[s] <= counts.sum() / 2 or not half:
            half.add(int(s))
            total += counts[s]
    tuning = np.isin(groups, list(half))
    return np.flatnonzero(tuning), np.flatnonzero(~tuning)


def copies(catalogue, embedder, config, data: Catalogued, *, count: int, seed: int = 7) -> dict:
    """Copies of `count` catalogue photos: original in the top 10 on the LSH path, by exact cosine, by pHash."""
    engines = {"new, LSH path": SearchEngine(catalogue, embedder, config.with_changes(exact_below=0, graph_from=10**9)),
               "new, graph path": forced_graph_engine(catalogue, embedder, config)}
    full = _unit(data.embeddings - data.embeddings.mean(axis=0))
    chosen = np.sort(np.random.default_rng(seed).choice(len(data.relpaths), count, replace=False))
    out = []
    for kind in COPY_KINDS:
        found = {"new, LSH path": 0, "new, graph path": 0, "exact cosine": 0, "pHash ranking": 0}
        same_design = scans = 0
        for row in chosen:
            original = ImageOps.exif_transpose(Image.open(data.root / data.relpaths[row])).convert("RGB")
            copy = transformed_copy(original, kind, np.random.default_rng(int(row)))
            loaded = load_image(copy, embedder.size)  # as a pasted picture: the app's own loader
            embedding = embedder.embed(loaded.pixels[None])
            for name, engine in engines.items():
                engine.picture_check.remember(Example(embedding, None, "pasted image", loaded.phash), copy)  # as pasted
                result = engine.search_embeddings(embedding, phash=loaded.phash, top_n=10)
                hit = [m for m in result.matches if m.image_id == int(data.snap.ids[row])]
                found[name] += bool(hit)
                if name == "new, LSH path":
                    scans += result.method == "scan"
                    same_design += bool(hit) and hit[0].band == BAND_NAMES[0]
            q = _unit(embedding.astype(np.float32) - data.embeddings.mean(axis=0))[0]
            found["exact cosine"] += row in np.argsort(-(full @ q), kind="stable")[:10]
            distances = np.bitwise_count(data.phash ^ np.uint64(loaded.phash)).astype(np.int64)
            found["pHash ranking"] += row in np.argsort(distances, kind="stable")[:10]
        best_other = max(found["exact cosine"], found["pHash ranking"])
        out.append({"kind": kind, **{k: v / count for k, v in found.items()}, "same_design": same_design / count,
                    "met": min(found["new, LSH path"], found["new, graph path"]) >= best_other, "scans": scans})
        print(f"  {kind}: LSH {found['new, LSH path'] / count:.3f}  graph {found['new, graph path'] / count:.3f}  "
              f"exact cosine {found['exact cosine'] / count:.3f}  pHash {found['pHash ranking'] / count:.3f}  "
              f"same design {same_design / count:.3f}", flush=True)
    print()
    print(table(out, [("kind", "copy kind", ""), ("new, LSH path", "new, LSH path", ".3f"),
                      ("new, graph path", "new, graph path", ".3f"), ("exact cosine", "exact cosine", ".3f"),
                      ("pHash ranking", "pHash ranking", ".3f"), ("same_design", "same design (LSH)", ".3f"),
                      ("scans", "scanned (thin buckets)", "d")]))
    return {"photos": count, "kinds": out}


def bands(data: Catalogued, *, seed: int = 3) -> dict:
    """Pairs of different photos reading *same design*; a fixed pair's score in catalogues of 36, 600 and all."""
    calibration = shipped_calibration(data.model_sha256)
    assert calibration is not None, "the catalogue's model ships no calibration"
    labelled = data.rows
    sender = np.full(len(data.relpaths), -1)
    sender[labelled] = data.labels.groups
    same_vectors = calibration.vectors(data.embeddings[labelled]).astype(np.float32)
    centred = calibration.centred(data.embeddings[labelled]).astype(np.float32)
    s = sender[labelled]
    in_band = total = 0
    nearest_in_band = 0
    for start in range(0, len(labelled), 512):
        part = slice(start, start + 512)
        percent = calibration.percent(np.clip(same_vectors[part] @ same_vectors.T, -1, 1), np.clip(centred[part] @ centred.T, -1, 1))
        other = s[part, None] != s[None, :]
        in_band += int(((percent >= SAME_DESIGN) & other).sum())
        total += int(other.sum())
        nearest = np.where(other, percent, -1.0).max(axis=1)
        nearest_in_band += int((nearest >= SAME_DESIGN).sum())
    # today's score (cosine centred on the catalogue's mean) and the calibrated one of 630 fixed pairs
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(data.relpaths))
    small, middle = np.sort(order[:36]), np.sort(order[:600])
    pairs = np.array([(a, b) for i, a in enumerate(small) for b in small[i + 1 :]])
    today, calibrated = [], []
    for members in (small, middle, np.arange(len(data.relpaths))):
        mean = data.embeddings[members].mean(axis=0)
        v = _unit(data.embeddings - mean)
        today.append(100 * np.einsum("ij,ij->i", v[pairs[:, 0]], v[pairs[:, 1]]))
        calibrated.append(np.array([float(calibration.similarity(data.embeddings[a : a + 1], data.embeddings[b : b + 1])[0, 0])
                                    for a, b in pairs]))
    moved_today = np.ptp(np.stack(today), axis=0)
    moved_calibrated = np.ptp(np.stack(calibrated), axis=0)
    figures = {
        "different_sender_pairs_same_design": in_band / total,
        "nearest_different_sender_lookalike_same_design": nearest_in_band / len(labelled),
        "pairs": len(pairs),
        "today_moves_max": float(moved_today.max()), "today_moves_median": float(np.median(moved_today)),
        "calibrated_moves_max": float(moved_calibrated.max()),
    }
    print(f"  pairs of photos by different senders reading same design: {100 * in_band / total:.3f} % of {total}")
    print(f"  each photo's most similar different-sender photo reading same design: {100 * nearest_in_band / len(labelled):.1f} %")
    print(f"  {len(pairs)} fixed pairs in catalogues of 36, 600, {len(data.relpaths)}: today's score moves up to "
          f"{moved_today.max():.1f} points (median {np.median(moved_today):.1f}), the calibrated one {moved_calibrated.max():.1f}")
    return figures


def timing(catalogue, embedder, config, data: Catalogued, *, queries: int = 60) -> dict:
    """Query time by file at this size (the whole pipeline), new and today's pipeline in turns, for two kinds of file:

    * a file of the catalogue, unchanged since it was read (a design dragged from its folder): its stored
      embedding is used, no decoding and no network pass (examples.from_picture);
    * the same picture from outside the catalogue's folder (a byte copy in a temporary folder): read,
      decoded and embedded, as any new picture is.

    "new" has looked ahead at the whole catalogue first (look_verdicts.py, as the window does while nobody
    searches; its cost is printed), "new, nothing looked ahead" keeps no verdict; each engine runs first in turn.
    Today's pipeline is the ranking before issue 11 without the look (comparison.baseline_engine) on the same
    trunk; issue 15's figure, against the fp32 trunk and the data path before it, is bench_build.py's.
    """
    import shutil
    import tempfile

    unchecked = SearchEngine(catalogue, embedder, config)
    unchecked.picture_check.enabled = False
    engines = {TODAY: baseline_engine(SearchEngine(catalogue, embedder, config)),
               "new": SearchEngine(catalogue, embedder, config),
               NOTHING_KEPT: SearchEngine(catalogue, embedder, config),
               ROUND5: SearchEngine(catalogue, embedder, config.with_changes(**ROUND5_QUERY)),
               UNCHECKED: unchecked}
    for name, engine in engines.items():
        if name != "new":
            engine.picture_check.verdicts = None  # no verdicts kept: every pair looked at when it is searched
    rows = np.random.default_rng(11).choice(len(data.relpaths), queries, replace=False)
    out: dict = {}
    with tempfile.TemporaryDirectory() as outside:
        new = engines["new"]
        new.picture_check.verdicts = LookVerdicts(Path(outside) / "looks.sqlite")
        started = time.perf_counter()
        searched = look_ahead(new, data.snap.ids.tolist(), top_n=AHEAD_PAGE)
        spent = time.perf_counter() - started
        out["look_ahead"] = {"images": searched, "seconds": spent, "ms_per_image": 1000 * spent / max(searched, 1),
                             "pairs_looked_at": new.picture_check.looked}
        print(f"  looked ahead (the window does it while nobody searches): {searched} designs searched with a page of "
              f"{AHEAD_PAGE} in {spent:.0f} s ({1000 * spent / max(searched, 1):.1f} ms each), "
              f"{new.picture_check.looked} pairs looked at and kept", flush=True)
        files = {"catalogue file": [data.root / data.relpaths[r] for r in rows], "outside file": []}
        for n, path in enumerate(files["catalogue file"]):
            files["outside file"].append(shutil.copy(path, f"{outside}/{n:03d}{path.suffix}"))
        for kind, paths in files.items():
            for engine in engines.values():
                engine.picture_check.cache = FeatureCache()  # no features read by the other kind's searches
            times: dict[str, dict[str, list[float]]] = {n: {"total": [], "embed": [], "search": []} for n in engines}
            for n, path in enumerate(paths):
                turn = list(engines.items())
                for name, engine in turn[n % len(turn):] + turn[: n % len(turn)]:  # each engine first as often
                    result = engine.search(path, top_n=50)
                    times[name]["total"].append(result.total_ms)
                    times[name]["embed"].append(result.embed_ms)
                    times[name]["search"].append(result.search_ms)
            got = {n: {k: float(np.median(v)) for k, v in t.items()} for n, t in times.items()}
            new, today, before, plain = got["new"], got[TODAY], got[ROUND5], got[UNCHECKED]
            cold = got[NOTHING_KEPT]
            print(f"  {kind}: {NOTHING_KEPT}: {cold['total']:.1f} ms (search {cold['search']:.1f}); "
                  f"/ today's pipeline {cold['total'] / today['total']:.2f}", flush=True)
            ratio, ratio5 = new["total"] / today["total"], new["total"] / before["total"]
            print(f"  {kind}: the picture check of same design: new {new['total']:.1f} ms against {plain['total']:.1f} ms "
                  f"without it (x{new['total'] / plain['total']:.2f}; search {new['search']:.1f} against {plain['search']:.1f} ms); "
                  f"without it / today's pipeline {plain['total'] / today['total']:.2f}", flush=True)
            print(f"  {kind}: median per query, {queries} queries in turns: new {new['total']:.1f} ms (picture "
                  f"{new['embed']:.1f}, search {new['search']:.1f}), today's pipeline {today['total']:.1f} ms (picture "
                  f"{today['embed']:.1f}, search {today['search']:.1f}), {ROUND5} {before['total']:.1f} ms (search "
                  f"{before['search']:.1f}); new/today {ratio:.2f}, new/{ROUND5} {ratio5:.2f} (search "
                  f"{new['search'] / before['search']:.2f})", flush=True)
            out[kind] = {**got, "new_over_today": ratio, "nothing_kept_over_today": cold["total"] / today["total"], "new_over_round5": ratio5, "new_over_unchecked": new["total"] / plain["total"]}
    return out


def order(catalogue, embedder, config, data: Catalogued, *, queries: int = 1000, seed: int = 5) -> dict:
    """How the shown scores sit down the list (top 10 of each query, band-first order): how often a later
    match is in a higher band (the order rules it out), or reads more points than one above it."""
    engine = SearchEngine(catalogue, embedder, config)
    rows = np.random.default_rng(seed).choice(len(data.relpaths), min(queries, len(data.relpaths)), replace=False)
    higher_band = rise1 = rise5 = 0
    rises = []
    for row in rows:
        result = engine.search_embeddings(data.embeddings[row : row + 1], phash=int(data.phash[row]), top_n=11,
                                          query_id=int(data.snap.ids[row]))
        matches = [m for m in result.matches if m.image_id != int(data.snap.ids[row])][:10]
        scores = np.array([100 * m.score for m in matches])
        levels = np.array([BAND_NAMES.index(m.band) for m in matches])
        plain = np.array([not m.duplicate for m in matches])  # pHash duplicates lead the list, whatever their band
        s, lv = scores[plain], levels[plain]
        higher_band += bool(len(lv) and np.any(np.diff(lv) < 0))
        rise = float(np.max(s - np.minimum.accumulate(s))) if len(s) else 0.0
        rises.append(rise)
        rise1 += rise > 1
        rise5 += rise > 5
    n = len(rows)
    out = {"queries": n, "later_match_in_a_higher_band": higher_band / n, "later_score_1_point_higher": rise1 / n,
           "later_score_5_points_higher": rise5 / n, "median_largest_rise": float(np.median(rises))}
    print(f"  {n} queries, top 10: a later match in a higher band {100 * higher_band / n:.1f} %; a later score more than "
          f"1 / 5 points above an earlier one {100 * rise1 / n:.1f} % / {100 * rise5 / n:.1f} % "
          f"(median largest rise {np.median(rises):.1f} points)")
    return out


def store_reads(catalogue, embedder, config, data: Catalogued, *, queries: int = 200, seed: int = 13) -> dict:
    """The search stage as a catalogue above `rescore_in_memory_up_to` (50,000) runs it: candidates from the
    graph, and everything rescoring reads (embeddings, neighbour lists, records) from the store, per query.

    A proxy for the cost at 1M measured on this catalogue: the reads are one indexed query each, so
    their cost grows with how many rows a search reads, not with the catalogue (the page cache is warm
    here, as after the first searches of a session). Today's pipeline runs the same way beside it.
    """
    forced = config.with_changes(rescore_in_memory_up_to=0)
    engines = {TODAY: baseline_engine(SearchEngine(catalogue, embedder, forced), graph=True),
               "new": forced_graph_engine(catalogue, embedder, forced)}
    rows = np.random.default_rng(seed).choice(len(data.relpaths), queries, replace=False)
    times: dict[str, list[float]] = {n: [] for n in engines}
    for row in rows:
        for name, engine in engines.items():
            result = engine.search_embeddings(data.embeddings[row : row + 1], phash=int(data.phash[row]), top_n=10)
            assert result.method == "graph"
            times[name].append(result.search_ms)
    out = {n: {"median": float(np.median(t)), "p95": float(np.percentile(t, 95))} for n, t in times.items()}
    ratio = out["new"]["median"] / out[TODAY]["median"]
    print(f"  search stage, top 10, graph candidates, every read from the store ({queries} queries in turns): "
          f"new {out['new']['median']:.1f} ms median (p95 {out['new']['p95']:.1f}), today's pipeline "
          f"{out[TODAY]['median']:.1f} ms (p95 {out[TODAY]['p95']:.1f}); new/today {ratio:.2f}")
    return {**out, "new_over_today": ratio}


def leak_free() -> dict:
    """The research's leak-free protocols (LOSO cross-sender, LOO same-sender) on the shared fp32 cache."""
    from bench_ranking import BASELINE, RECOMMENDED, run_protocol
    from clothing_data import load

    data = load()
    out = {}
    for protocol in ("LOSO", "same LOO"):
        base = run_protocol(data, BASELINE, protocol).mean()
        new = run_protocol(data, RECOMMENDED, protocol).mean()
        out[protocol] = {"exact_cosine": float(base), "new": float(new), "ratio": float(new / base)}
        print(f"  {protocol}: exact cosine {base:.4f}  DBA + QE {new:.4f}  x{new / base:.4f}", flush=True)
    return out


def top10(catalogue, embedder, config, data: Catalogued, *, queries: int = 1000, seed: int = 17) -> dict:
    """Pairs in *same design* among each query's 10 best (the query left out), with the picture check of the
    band (same_picture.py) and without it, in turns: all, another sender's, another kind of garment's, and
    pHash near-identical ones (photos in the set twice). Queries: labelled photos as catalogue images."""
    checked = SearchEngine(catalogue, embedder, config.with_changes(exact_below=0, graph_from=10**9))  # the LSH path
    unchecked = SearchEngine(catalogue, embedder, config.with_changes(exact_below=0, graph_from=10**9))
    unchecked.picture_check.enabled = False
    labels = data.labels
    rows = np.sort(np.random.default_rng(seed).choice(len(labels.paths), min(queries, len(labels.paths)), replace=False))
    counts = {name: {"pairs": 0, "same_design": 0, "other_sender": 0, "other_label": 0, "near_identical": 0, "queries_with_one": 0,
                     "pairs_other_sender": 0, "pairs_other_label": 0, "ms": []} for name in ("with the check", "without")}
    passing = []
    for q in rows:
        row = int(data.rows[q])
        for name, engine in (("with the check", checked), ("without", unchecked)):
            result = engine.search_embeddings(data.embeddings[row : row + 1], phash=int(data.phash[row]), top_n=11,
                                              query_id=int(data.snap.ids[row]))
            c = counts[name]
            c["ms"].append(result.search_ms)
            matches = [m for m in result.matches if m.image_id != int(data.snap.ids[row])][:10]
            found = 0
            for m in matches:
                other = int(np.searchsorted(data.snap.ids, m.image_id))
                lab = int(data.label_of_row[other])
                other_sender = lab < 0 or labels.groups[lab] != labels.groups[q]
                other_label = lab < 0 or labels.labels[lab] != labels.labels[q]
                c["pairs"] += 1
                c["pairs_other_sender"] += other_sender
                c["pairs_other_label"] += other_label
                if m.band != BAND_NAMES[0]:
                    continue
                found += 1
                c["same_design"] += 1
                c["other_sender"] += other_sender
                c["other_label"] += other_label
                c["near_identical"] += bool(m.duplicate)
                if name == "with the check" and not m.duplicate:
                    passing.append(f"{data.relpaths[row].rsplit('/', 1)[-1][:8]}~{m.name[:8]} "
                                   f"({'another' if other_sender else 'same'} sender, pHash {m.phash_distance})")
            c["queries_with_one"] += found > 0
    out = {}
    for name, c in counts.items():
        ms = c.pop("ms")
        out[name] = {**c, "search_ms_median": float(np.median(ms)),
                     "other_sender_rate": c["other_sender"] / max(1, c["pairs_other_sender"]),
                     "other_label_rate": c["other_label"] / max(1, c["pairs_other_label"])}
        print(f"  {name}: {len(rows)} queries (LSH path), top 10: {c['queries_with_one']} queries with another photo in same design; "
              f"{c['same_design']} of {c['pairs']} pairs ({c['near_identical']} pHash near-identical); another sender's "
              f"{c['other_sender']} of {c['pairs_other_sender']} ({100 * out[name]['other_sender_rate']:.2f} %), another kind of "
              f"garment {c['other_label']} of {c['pairs_other_label']} ({100 * out[name]['other_label_rate']:.2f} %); "
              f"search {np.median(ms):.1f} ms median", flush=True)
    print("  with the check, in same design but not pHash near-identical: " + ("; ".join(passing) or "none"))
    out["passing_not_near_identical"] = passing
    return out
