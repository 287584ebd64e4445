"""Retrieval quality on the clothing photos, side by side, and the settings it decides.

Cross-sender protocol of the data set's README: every usable photo queries
all other usable photos; relevant = same label; gallery photos of the query's
own sender are dropped. Methods compared in one run:
  * exact cosine on the centred, normalised embeddings (the ceiling),
  * our codes alone (spherical Hamming ranking, no re-rank),
  * imagehash pHash ranking (what a perceptual-hash duplicate finder gives),
  * the full pipeline as the app runs it (exact path at this size), with the
    graph path forced (what catalogues above `exact_below` use; the graph is
    made here for these photos), and with the LSH path forced (catalogues
    that keep no graph), with and without the mirrored query.
Then near-duplicate recall@1/@10 of transformed copies of 300 catalogue
photos, the pHash threshold for "duplicate", and (--tune) sweeps over the
hash layer variant, d, B, the re-rank depth M and the re-ranking dimension R.

By default (and with --issue11) it prints issue 11's figures instead
(quality_issue11.py): the new search (augmented vectors, query expansion,
pHash candidates, calibrated scores) beside exact cosine and today's
pipeline, cross- and same-sender, per label, on the exact, LSH and graph
paths; transformed copies on the LSH path against exact cosine and pHash
ranking; how often pairs read *same design*; a fixed pair's score across
catalogue sizes; query time. --before runs the tables of before.

--sections grown (not in the default run) grows the catalogue past the
exact-path size with synthetic distractors (bench/quality_grown.py: a real
catalogue file of --grow images, 40,000 by default) and measures the copies
there on the LSH path and the graph path against exact cosine and pHash
ranking of the grown catalogue; --reuse keeps the grown file of an earlier run.

    swimsearch index CLOTHING/images --catalogue bench/work/clothing.swimcat   # or bench_build.py --limit 0
    cd bench && nice -n 10 python bench_quality.py [--copies 100] [--leak-free] | --before [--tune]
    cd bench && nice -n 10 python bench_quality.py --sections grown --copies 100 [--grow 40000] [--reuse]
    cd bench && nice -n 10 python bench_quality.py --sections ranking --paths exact [--every 2]
    cd bench && nice -n 10 python bench_quality.py --sections ranking --paths exact,lsh --protocols naive,leak-free \
        [--split held-out] [--check-leak-free 3]

The ranking section runs two protocols side by side (--protocols): *naive*,
the query is a catalogue photo searched as one (its own vector sits in its
neighbours' augmented vectors), and *leak-free*, the catalogue as an update
that removed the query would leave it, the query searched as a new picture
(bench/quality_leakfree.py; --check-leak-free N compares N of those searches
with real removals through the store). --split runs one sender half's queries:
ranking settings are chosen on "tuning" and reported on "held-out".
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import time

from common import CLOTHING, WORK, save, table, with_settings

import numpy as np
from PIL import Image

from swimsearch.catalogue import Catalogue
from swimsearch.index import fit_index, snapshot_from_embeddings
from swimsearch.config import EngineConfig
from swimsearch.copies import COPY_KINDS, transformed_copy as transformed
from swimsearch.inputs import read_labels
from swimsearch.metrics import quality
from swimsearch.images import load_image
from swimsearch.model import Embedder, default_model_path
from swimsearch.search import SearchEngine
from swimsearch.graph import VectorGraph
from swimsearch.searchers import choose_searcher
from swimsearch.spherical import hamming, spherical_hamming

TRANSFORMS = COPY_KINDS


def normalise(x):
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


class Protocol:
    """Labelled queries against the catalogue rows, with the cross-sender exclusions."""

    def __init__(self, relpaths: list[str]):
        labels = read_labels(CLOTHING / "labels.csv", exclude_column="sender_id", filter_column="usable")
        row_of = {name: i for i, name in enumerate(relpaths)}
        self.rows = np.array([row_of[p.rsplit("/", 1)[-1]] for p in labels.paths])  # labelled -> catalogue row
        self.labels = labels
        self.n_relevant = labels.relevant_counts()
        self.label_of_row = np.full(len(relpaths), -1)
        self.label_of_row[self.rows] = np.arange(len(self.rows))
        self.depth = 100 + int(np.bincount(labels.groups).max()) + 1

    def allowed(self, q: int) -> np.ndarray:
        """Catalogue rows that query q (a labelled index) may be compared with."""
        mask = np.zeros(len(self.label_of_row), dtype=bool)
        mask[self.rows[self.labels.gallery_mask(q)]] = True
        return mask

    def hits_from_ranking(self, q: int, ranked_rows, allowed: np.ndarray) -> np.ndarray:
        out = np.zeros(100, dtype=bool)
        n = 0
        for row in ranked_rows:
            if allowed[row]:
                out[n] = self.labels.labels[self.label_of_row[row]] == self.labels.labels[q]
                n += 1
                if n == 100:
                    break
        return out

    def hits_from_scores(self, score_fn) -> np.ndarray:
        hits = np.zeros((len(self.rows), 100), dtype=bool)
        for q in range(len(self.rows)):
            scores = np.asarray(score_fn(self.rows[q]), dtype=np.float64).copy()
            allowed = self.allowed(q)
            scores[~allowed] = -np.inf
            top = np.argpartition(-scores, 100)[:100]
            top = top[np.argsort(-scores[top], kind="stable")]
            hits[q] = self.labels.labels[self.label_of_row[top]] == self.labels.labels[q]
        return hits


def pipeline_hits(protocol, fitted, embeddings, full, *, depth, probe_radius=2, distance=hamming):
    """Candidate quality of the pipeline at re-rank depth M, run in memory.

    LSH candidates (all codes when the buckets give fewer than M), the best M
    by code distance (Hamming, or spherical Hamming), ranked by exact cosine. The cross-sender
    protocol needs long lists (100 results after dropping the sender's own
    photos), so every one of the M is scored exactly here; the reduced
    re-ranking space is measured separately (`rerank_recall`).
    """
    snap = snapshot_from_embeddings(fitted, np.arange(len(embeddings)), embeddings)
    hits = np.zeros((len(protocol.rows), 100), dtype=bool)
    for q, row in enumerate(protocol.rows):
        rows, _ = snap.lsh_tables().probe(snap.codes[row], enough=depth, max_radius=probe_radius)
        if len(rows) < depth:
            rows = np.arange(len(snap))
        distances = distance(snap.codes[row], snap.codes[rows])
        rows = rows[np.argsort(distances, kind="stable")[:depth]]
        rows = rows[np.argsort(-(full[rows] @ full[row]), kind="stable")]
        hits[q] = protocol.hits_from_ranking(q, rows, protocol.allowed(q))
    return hits


def rerank_recall(fitted, embeddings, full, margin: int) -> float:
    """Recall@10 against exact cosine of ranking by the re-ranking vectors, then rescoring top 10+margin exactly."""
    vectors = fitted.vectors(embeddings).astype(np.float16).astype(np.float32)
    exact = full @ full.T
    reduced = vectors @ vectors.T
    np.fill_diagonal(exact, -np.inf)
    np.fill_diagonal(reduced, -np.inf)
    truth = np.argsort(-exact, axis=1)[:, :10]
    shortlist = np.argsort(-reduced, axis=1)[:, : 10 + margin]
    found = [
        len(set(t) & set(c[np.argsort(-exact[i, c])][:10])) / 10 for i, (t, c) in enumerate(zip(truth, shortlist))
    ]
    return float(np.mean(found))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--catalogue", default=str(WORK / "clothing.swimcat"))
    parser.add_argument("--tune", action="store_true", help="also sweep the index settings")
    parser.add_argument("--tune-only", action="store_true", help="only the sweeps (results go to quality-tuning.json)")
    parser.add_argument("--copies", type=int, default=300, help="catalogue photos used for near-duplicate recall")
    parser.add_argument("--before", action="store_true", help="the tables of before issue 11 (codes, pHash, mirror, thresholds)")
    parser.add_argument("--leak-free", action="store_true", help="issue 11: also the research's leak-free protocols (slow)")
    parser.add_argument("--limit", type=int, default=0, help="issue 11: only the first N labelled queries (quick look)")
    parser.add_argument("--every", type=int, default=1, help="issue 11: every N-th labelled query (time on a busy machine)")
    parser.add_argument("--sections", default="ranking,copies,bands,top10,timing,order,store",
                        help="issue 11: which sections to run (comma-separated; default: all but grown)")
    parser.add_argument("--paths", default="today,exact,lsh,graph",
                        help="issue 11, section ranking: which searches beside exact cosine (the exact path always)")
    parser.add_argument("--protocols", default="naive,leak-free",
                        help="issue 11, section ranking: naive (the query is a catalogue photo) and/or leak-free "
                             "(the catalogue without the query, which is searched as a new picture)")
    parser.add_argument("--split", default="all", choices=("all", "tuning", "held-out"),
                        help="issue 11, section ranking: all labelled queries, or one sender half's "
                             "(settings are chosen on the tuning half, reported on the held-out half)")
    parser.add_argument("--check-leak-free", type=int, default=0, metavar="N",
                        help="issue 11, section ranking: compare N leak-free searches with real removals through the store")
    parser.add_argument("--leak-free-picture", action="store_true",
                        help="issue 11, section ranking: a leak-free query is searched with its picture file, as a "
                             "user's new picture (the engine looks at its same-design pairs, as for a catalogue photo)")
    parser.add_argument("--settings", default="",
                        help="engine query settings for every section, e.g. expand_k=5,query_augment_k=0 (the settings before this round)")
    parser.add_argument("--grow", type=int, default=40_000,
                        help="issue 11, section grown: the size the catalogue is grown to with distractors")
    parser.add_argument("--top10-queries", type=int, default=1000, help="issue 11, section top10: labelled photos queried")
    parser.add_argument("--reuse", action="store_true", help="section grown: reuse the grown catalogue of an earlier run")
    args = parser.parse_args()

    config = with_settings(EngineConfig(), args.settings)
    if args.settings:
        print(f"engine settings changed: {args.settings}")
    embedder = Embedder(default_model_path())
    if not (args.before or args.tune or args.tune_only):
        return issue11(args, config, embedder)
    results: dict = {}
    with Catalogue.open(args.catalogue) as catalogue:
        snap = catalogue.load_snapshot()
        engine = SearchEngine(catalogue, embedder, config, searcher=choose_searcher(snap, config))
        records = catalogue.records(snap.ids)
        relpaths = [records[int(i)].relpath for i in snap.ids]
        stored = catalogue.embedding_matrix(snap.ids)
        assert np.array_equal(stored.ids, snap.ids)  # every searchable image has its embedding
        phash = catalogue.phashes(snap.ids)
        embeddings = stored.vectors
        protocol = Protocol(relpaths)
        full = normalise(embeddings - snap.fitted.mean)
        print(f"{len(protocol.rows)} labelled queries against {len(snap)} catalogue photos", flush=True)
        if args.tune_only:
            ceiling = quality(protocol.hits_from_scores(lambda r: full @ full[r]), protocol.n_relevant).map10
            path = save("quality-tuning", {"ceiling_map10": ceiling, "tuning": tune(protocol, embeddings, full, ceiling)})
            print(f"\nwrote {path}")
            return 0

        # Mirrored embeddings of every photo, for the mirror-merged pipeline.
        started = time.perf_counter()
        mirrored = np.empty_like(embeddings)
        for s in range(0, len(relpaths), 32):
            chunk = [catalogue.root / p for p in relpaths[s : s + 32]]
            mirrored[s : s + len(chunk)] = embedder.embed(np.stack([load_image(p, embedder.size, mirror=True).pixels for p in chunk]))
        print(f"embedded mirrored photos in {time.perf_counter() - started:.0f} s", flush=True)

        methods = {}
        methods["exact cosine (ceiling)"] = protocol.hits_from_scores(lambda r: full @ full[r])
        methods["codes only (spherical Hamming)"] = protocol.hits_from_scores(
            lambda r: -spherical_hamming(snap.codes[r], snap.codes)
        )
        methods["codes only (Hamming)"] = protocol.hits_from_scores(lambda r: -hamming(snap.codes[r], snap.codes).astype(float))
        methods["pHash (Hamming)"] = protocol.hits_from_scores(
            lambda r: -np.bitwise_count(phash ^ phash[r]).astype(np.float64)
        )
        no_graph = dataclasses.replace(snap, graph=None)
        lsh_engine = SearchEngine(catalogue, embedder, config, searcher=choose_searcher(no_graph, config.with_changes(exact_below=0)))
        # The graph a catalogue of 20,000 images or more keeps, made here for these photos.
        with_graph = dataclasses.replace(snap, graph=snap.graph or VectorGraph.build(snap.ids, snap.vectors))
        graph_engine = SearchEngine(catalogue, embedder, config, searcher=choose_searcher(with_graph, config.with_changes(exact_below=0)))
        for name, eng, mirror in (
            ("pipeline, app default (exact path)", engine, False),
            ("pipeline, graph path", graph_engine, False),
            ("pipeline, LSH path", lsh_engine, False),
            ("pipeline, app default + mirror", engine, True),
            ("pipeline, LSH path + mirror", lsh_engine, True),
        ):
            hits = np.zeros((len(protocol.rows), 100), dtype=bool)
            times = []
            for q, row in enumerate(protocol.rows):
                query = embeddings[row : row + 1] if not mirror else np.stack([embeddings[row], mirrored[row]])
                result = eng.search_embeddings(query, top_n=protocol.depth, query_id=int(snap.ids[row]))
                times.append(result.search_ms)
                ranked = snap.rows_of(np.array([m.image_id for m in result.matches]))
                hits[q] = protocol.hits_from_ranking(q, ranked, protocol.allowed(q))
            methods[name] = hits
            print(f"  {name}: search median {np.median(times):.1f} ms", flush=True)
        ceiling = quality(methods["exact cosine (ceiling)"], protocol.n_relevant[: len(protocol.rows)]).map10
        rows = []
        for name, hits in methods.items():
            report = quality(hits, protocol.n_relevant)
            rows.append({"method": name, "map10": report.map10, "ratio": report.map10 / ceiling, "p1": report.p1,
                         "p10": report.p10, "r100": report.r100})
        print()
        print(table(rows, [("method", "method (cross-sender)", ""), ("map10", "mAP@10", ".4f"), ("ratio", "/ceiling", ".4f"),
                           ("p1", "P@1", ".4f"), ("p10", "P@10", ".4f"), ("r100", "R@100", ".4f")]))
        results["quality"] = rows

        # Near-duplicates: transformed copies against their originals.
        rng = np.random.default_rng(7)
        chosen = np.sort(rng.choice(len(relpaths), args.copies, replace=False))
        with_mirror = SearchEngine(catalogue, embedder, config.with_changes(mirror=True))
        no_mirror = SearchEngine(catalogue, embedder, config.with_changes(mirror=False))
        dup_rows = []
        pair_distances: dict[str, list[int]] = {}
        for kind in TRANSFORMS:
            for label, eng in (("mirror on", with_mirror), ("mirror off", no_mirror)):
                at1 = at10 = 0
                distances = []
                for row in chosen:
                    original = Image.open(catalogue.root / relpaths[row]).convert("RGB")
                    copy = transformed(original, kind, np.random.default_rng(int(row)))
                    matches = eng.search(copy, top_n=10).matches
                    names = [m.relpath for m in matches]
                    at1 += names[:1] == [relpaths[row]]
                    at10 += relpaths[row] in names
                    hit = [m for m in matches if m.relpath == relpaths[row]]
                    if hit and hit[0].phash_distance is not None:
                        distances.append(hit[0].phash_distance)
                dup_rows.append({"copy": f"{kind} ({label})", "at1": at1 / len(chosen), "at10": at10 / len(chosen)})
                if label == "mirror on":
                    pair_distances[kind] = distances
                print(f"  {kind} ({label}): recall@1 {at1 / len(chosen):.3f}  recall@10 {at10 / len(chosen):.3f}", flush=True)
        print()
        print(table(dup_rows, [("copy", "transformed copy", ""), ("at1", "recall@1", ".3f"), ("at10", "recall@10", ".3f")]))
        results["near_duplicates"] = dup_rows

        # The pHash threshold for "duplicate": copies flagged vs distinct nearest neighbours flagged.
        sims = full @ full.T
        np.fill_diagonal(sims, -np.inf)
        nearest = sims.argmax(axis=1)
        neighbour_distance = np.bitwise_count(phash ^ phash[nearest]).astype(int)
        threshold_rows = []
        for t in range(0, 15, 2):
            row = {"t": t, "distinct_flagged": float((neighbour_distance <= t).mean())}
            for kind in ("rescale50_jpeg40", "colour_jitter", "crop80", "rotate8"):
                row[kind] = float((np.array(pair_distances[kind]) <= t).mean())
            threshold_rows.append(row)
        print()
        print(table(threshold_rows, [("t", "pHash bits <= t", ""), ("rescale50_jpeg40", "rescale", ".3f"), ("colour_jitter", "colour", ".3f"),
                                     ("crop80", "crop", ".3f"), ("rotate8", "rotate", ".3f"), ("distinct_flagged", "distinct", ".4f")]))
        results["duplicate_threshold"] = threshold_rows

    if args.tune:
        results["tuning"] = tune(protocol, embeddings, full, ceiling)
    path = save("quality", results)
    print(f"\nwrote {path}")
    return 0


def issue11(args, config: EngineConfig, embedder: Embedder) -> int:
    import quality_grown
    import quality_issue11 as q11

    results: dict = {}
    with Catalogue.open(args.catalogue, readonly=True) as catalogue:
        data = q11.Catalogued(catalogue)
        print(f"{len(data.rows)} labelled queries against {len(data.relpaths)} catalogue photos "
              f"(model {data.model_sha256[:12]})", flush=True)
        wanted = set(args.sections.split(","))
        sections = (
            ("ranking", f"1. ranking, protocols {args.protocols} (quality_leakfree.py says what each measures)",
             lambda: q11.ranking(catalogue, embedder, config, data, limit=args.limit, every=args.every, paths=args.paths,
                                 protocols=args.protocols, split=args.split, check=args.check_leak_free,
                                 leak_free_picture=args.leak_free_picture)),
            ("copies", "2. transformed copies: the original in the top 10",
             lambda: q11.copies(catalogue, embedder, config, data, count=args.copies)),
            ("bands", "3. bands and catalogue invariance", lambda: q11.bands(data)),
            ("top10", "3b. same design among the 10 best, with the picture check and without",
             lambda: q11.top10(catalogue, embedder, config, data, queries=args.top10_queries)),
            ("timing", "4. query time", lambda: q11.timing(catalogue, embedder, config, data)),
            ("order", "5. scores down the list", lambda: q11.order(catalogue, embedder, config, data)),
            ("store", "6. the search stage read from the store, as above 50,000 images",
             lambda: q11.store_reads(catalogue, embedder, config, data)),
            ("grown", f"8. transformed copies past the exact-path size: the catalogue grown to {args.grow:,} with distractors",
             lambda: quality_grown.copies(catalogue, embedder, config, size=args.grow, count=args.copies, work=WORK,
                                          reuse=args.reuse)),
        )
        for name, title, run in sections:
            if name in wanted:
                print(f"\n{title}", flush=True)
                results[name] = run()
    if args.leak_free:
        print("\n7. leak-free protocols (shared fp32 cache, bench_ranking.py)", flush=True)
        results["leak_free"] = q11.leak_free()
    path = save("quality-issue11" if wanted == {"ranking", "copies", "bands", "top10", "timing", "order", "store"} else
                "quality-issue11-" + "-".join(sorted(wanted)), results)
    print(f"\nwrote {path}")
    return 0


def tune(protocol, embeddings, full, ceiling) -> list[dict]:
    """Sweep index settings with the pipeline run in memory (same steps as the engine)."""
    rows = []
    base = EngineConfig()

    def run(name, config, depth, distance=hamming):
        started = time.perf_counter()
        fitted = fit_index(embeddings, config)
        fit_s = time.perf_counter() - started
        snap = snapshot_from_embeddings(fitted, np.arange(len(embeddings)), embeddings)
        codes_only = quality(
            protocol.hits_from_scores(lambda r: -distance(snap.codes[r], snap.codes).astype(float)), protocol.n_relevant
        ).map10
        pipe = quality(pipeline_hits(protocol, fitted, embeddings, full, depth=depth, distance=distance), protocol.n_relevant).map10
        row = {"setting": name, "codes": codes_only / ceiling, "pipeline": pipe / ceiling, "fit_s": fit_s,
               "rerank_recall0": rerank_recall(fitted, embeddings, full, 0),
               "rerank_recall30": rerank_recall(fitted, embeddings, full, 30)}
        rows.append(row)
        print(f"  {name}: codes {row['codes']:.4f}  pipeline {row['pipeline']:.4f}  fit {fit_s:.1f}s  "
              f"R-space recall@10 {row['rerank_recall0']:.3f} / +30 rescored {row['rerank_recall30']:.4f}", flush=True)

    for variant, dim, bits in itertools.product(("pca", "laplacian"), (64, 128), (64, 128)):
        run(f"{variant} d={dim} B={bits} M=500", base.with_changes(hash_variant=variant, hash_dim=dim, bits=bits), 500)
    run("pca d=64 B=128 M=500 spherical Hamming", base, 500, distance=spherical_hamming)
    for depth in (100, 200, 1000):
        run(f"pca d=64 B=128 M={depth}", base, depth)
    for dim in (64, 256):
        run(f"pca d=64 B=128 M=500 R={dim}", base.with_changes(rerank_dim=dim), 500)
    print()
    print(table(rows, [("setting", "setting", ""), ("codes", "codes/ceil", ".4f"), ("pipeline", "pipe/ceil", ".4f"),
                       ("rerank_recall0", "R rec@10", ".3f"), ("rerank_recall30", "+30 rec@10", ".4f"), ("fit_s", "fit s", ".1f")]))
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
