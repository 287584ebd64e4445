"""Copies found whichever signal sees them: exact cosine, pHash ranking, today's LSH path, and the merged candidate stage.

Queries are transformed copies (bench/embed_copies.py) of clothing photos;
each must find its original in the top 10. Catalogues: the 5,756 clothing
photos, and the same grown to 44,072 with synthetic distractors (a real
embedding blended with one of its 20 nearest real neighbours by 25-75 %,
plus noise along the data's principal directions, as bench_scale.py makes
them; pHash = the source photo's pHash with each bit flipped with
probability 0.35, i.e. a different photo of a related design), so search is
well past the exact-path size. Per copy kind, in the same run:

  exact cosine     every catalogue image by cosine of centred embeddings;
  pHash ranking    every catalogue image by pHash Hamming distance (ties
                   counted at their expected rank);
  today, LSH       fit_index + snapshot + LshSearch forced (M = 1000,
                   radius 2), the best 40 rescored on full embeddings;
  merged, LSH      the same LSH candidates plus every image within R bits of
                   the query's pHash (PhashIndex), rescored on full
                   embeddings; images within the duplicate distance rank
                   first (pHash as evidence, not only candidates);
  new, LSH         the merged stage on the recommended ranking (DBA + QE),
                   rescoring the best 40 (and 200: "rescore 200"),
                   with pHash duplicates and then matches in the calibrated
                   same-design band first (and, for comparison, without the
                   same-design rule).

    nice -n 10 python bench/bench_copies.py [--queries 1000] [--size 44072]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from clothing_data import load
from common import save, table
from embed_copies import DEFAULT_OUT

from swimsearch.augment import augment, l2_normalise, nearest_neighbours, weighted_mean
from swimsearch.calibration import BAND_PERCENT, calibration_path, load_calibration
from swimsearch.config import EngineConfig
from swimsearch.copies import COPY_KINDS
from swimsearch.index import fit_index, snapshot_from_embeddings
from swimsearch.model import default_model_path
from swimsearch.phash_index import PhashIndex, duplicates_first, hamming64, merge_candidates
from swimsearch.search import RESCORE_MARGIN
from swimsearch.searchers import LshSearch

TOP = 10


def distractors(embeddings: np.ndarray, phash: np.ndarray, count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic catalogue images between real designs, with related pHashes."""
    rng = np.random.default_rng(seed)
    mean = embeddings.mean(0)
    unit = l2_normalise(embeddings - mean)
    nb, _ = nearest_neighbours(unit, 20)
    _, s, vt = np.linalg.svd(embeddings - mean, full_matrices=False)
    directions = (vt[:64] * (s[:64, None] / np.sqrt(len(embeddings)))).astype(np.float32)
    which = rng.integers(len(embeddings), size=count)
    towards = nb[which, rng.integers(20, size=count)]
    beta = rng.uniform(0.25, 0.75, size=(count, 1)).astype(np.float32)
    noise = rng.standard_normal((count, 64)).astype(np.float32) @ directions
    vectors = np.maximum((1 - beta) * embeddings[which] + beta * embeddings[towards] + 0.1 * noise, 0)  # ReLU6 outputs
    flips = rng.random((count, 64)) < 0.35
    masks = (flips.astype(np.uint64) << np.arange(64, dtype=np.uint64)).sum(axis=1, dtype=np.uint64)
    return vectors.astype(np.float32), phash[which] ^ masks


def expected_rank(distances: np.ndarray, target: int) -> float:
    """Rank of `target` when sorting by distance, ties broken at random (expected value)."""
    d = distances[target]
    return float((distances < d).sum() + 1 + ((distances == d).sum() - 1) / 2)


class Stages:
    """One catalogue and every way of ranking a query against it."""

    def __init__(self, embeddings: np.ndarray, phash: np.ndarray, config: EngineConfig, k_dba=5, alpha_dba=3.0,
                 k_qe=5, alpha_qe=1.0, radius=8, calibration=None):
        started = time.perf_counter()
        self.mean = embeddings.mean(0)
        self.full = l2_normalise(embeddings - self.mean)
        self.phash = phash
        self.pindex = PhashIndex.build(phash)
        self.config, self.radius = config, radius
        self.fitted = fit_index(embeddings, config)
        self.full_fit = l2_normalise(embeddings - self.fitted.mean)
        self.snap = snapshot_from_embeddings(self.fitted, np.arange(len(embeddings)), embeddings)
        self.lsh = LshSearch(self.snap, rerank_depth=config.rerank_depth, probe_radius=config.probe_radius,
                             code_distance=config.code_distance)
        # the recommended ranking: DBA over the catalogue, index fitted on the augmented vectors
        nb, ns = nearest_neighbours(self.full, k_dba)
        self.A = augment(self.full, nb, ns, k=k_dba, alpha=alpha_dba)
        self.fitted_a = fit_index(self.A, config)
        self.snap_a = snapshot_from_embeddings(self.fitted_a, np.arange(len(self.A)), self.A)
        self.lsh_a = LshSearch(self.snap_a, rerank_depth=config.rerank_depth, probe_radius=config.probe_radius,
                               code_distance=config.code_distance)
        self.k_qe, self.alpha_qe = k_qe, alpha_qe
        self.calibration = calibration
        self.shown = None if calibration is None else calibration.vectors(embeddings)
        self.build_s = time.perf_counter() - started

    def exact(self, query_embedding) -> np.ndarray:
        q = l2_normalise((query_embedding - self.mean)[None])[0]
        sims = self.full @ q
        return np.argsort(-sims)[:TOP]

    def phash_rank(self, query_phash, target) -> float:
        return expected_rank(hamming64(int(query_phash), self.phash), target)

    def _lsh_rows(self, lsh, fitted, vec, depth=TOP + RESCORE_MARGIN) -> np.ndarray:
        """The searcher's best `depth` rows by re-ranking vector (the engine rescores TOP + 30 of them)."""
        return lsh.search(fitted.codes(vec[None])[0], fitted.vectors(vec[None])[0], depth).ids

    def in_candidates(self, query_embedding) -> bool:
        """Whether the LSH stage's M candidates (before re-ranking) hold the row, for the diagnosis."""
        code = self.fitted.codes(query_embedding[None])[0]
        rows, _ = self.snap.tables.probe(code, enough=self.config.rerank_depth, max_radius=self.config.probe_radius)
        return rows

    def today(self, query_embedding) -> tuple[np.ndarray, bool]:
        rows = self._lsh_rows(self.lsh, self.fitted, query_embedding)
        q = l2_normalise((query_embedding - self.fitted.mean)[None])[0]
        return rows[np.argsort(-(self.full_fit[rows] @ q), kind="stable")][:TOP]

    def _merge(self, rows, sims_of, query_phash) -> np.ndarray:
        rows, distances = merge_candidates(rows, self.pindex, query_phash, self.radius)
        return rows[duplicates_first(sims_of(rows), distances, self.config.duplicate_distance)][:TOP]

    def merged(self, query_embedding, query_phash) -> np.ndarray:
        rows = self._lsh_rows(self.lsh, self.fitted, query_embedding)
        q = l2_normalise((query_embedding - self.fitted.mean)[None])[0]
        return self._merge(rows, lambda r: self.full_fit[r] @ q, query_phash)

    def new(self, query_embedding, query_phash, same_design_first=True, depth=TOP + RESCORE_MARGIN) -> np.ndarray:
        """DBA + QE ranking of merged candidates; pHash duplicates, then same-design matches, come first."""
        q = l2_normalise((query_embedding - self.mean)[None])[0]
        rows = self._lsh_rows(self.lsh_a, self.fitted_a, q, depth)
        sims = self.A[rows] @ q
        top = rows[np.argsort(-sims)[: self.k_qe]]
        q2 = weighted_mean(q[None], self.A[top][None], (self.A[top] @ q)[None], self.alpha_qe)[0]
        rows = np.union1d(rows, self._lsh_rows(self.lsh_a, self.fitted_a, q2, depth))
        rows, distances = merge_candidates(rows, self.pindex, query_phash, self.radius)
        ranking = self.A[rows] @ q2
        if same_design_first and self.calibration is not None:
            shown = self.calibration.percent(self.shown[rows] @ self.calibration.vectors(query_embedding[None])[0])
            # same-design matches rank above the rest, by their shown score
            ranking = np.where(shown >= BAND_PERCENT[0], 10.0 + shown / 100, ranking)
        return rows[duplicates_first(ranking, distances, self.config.duplicate_distance)][:TOP]


def run(stages: Stages, targets: np.ndarray, copy_embeddings: np.ndarray, copy_phash: np.ndarray, kinds=COPY_KINDS) -> list[dict]:
    rows = []
    for k, kind in enumerate(COPY_KINDS):
        if kind not in kinds:
            continue
        found = {"exact cosine": 0, "pHash ranking": 0, "today, LSH": 0, "merged, LSH": 0, "new w/o same-design first": 0,
                 "new, LSH": 0, "new, rescore 200": 0, "in LSH candidates (raw index)": 0}
        times = {"today, LSH": [], "merged, LSH": [], "new w/o same-design first": [], "new, LSH": [], "new, rescore 200": []}
        for i, target in enumerate(targets):
            e, p = copy_embeddings[i, k], int(copy_phash[i, k])
            found["exact cosine"] += target in stages.exact(e)
            found["pHash ranking"] += stages.phash_rank(p, target) <= TOP
            found["in LSH candidates (raw index)"] += target in stages.in_candidates(e)
            for name, fn in (("today, LSH", lambda: stages.today(e)), ("merged, LSH", lambda: stages.merged(e, p)),
                             ("new w/o same-design first", lambda: stages.new(e, p, same_design_first=False)),
                             ("new, LSH", lambda: stages.new(e, p)),
                             ("new, rescore 200", lambda: stages.new(e, p, depth=200))):
                started = time.perf_counter()
                found[name] += target in fn()
                times[name].append((time.perf_counter() - started) * 1000)
        row = {"kind": kind, **{name: count / len(targets) for name, count in found.items()},
               **{f"{name} ms": float(np.median(t)) for name, t in times.items()}}
        best = max(row["exact cosine"], row["pHash ranking"])
        row["target met"] = ("yes" if row["new, LSH"] >= best else "NO") + (" / yes" if row["new, rescore 200"] >= best else " / NO")
        rows.append(row)
        print(f"  {kind:18s} " + "  ".join(f"{name} {row[name]:.3f}" for name in found) + f"  met: {row['target met']}", flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--copies", default=None, help="copies cache (default: the newest for the fp32 model)")
    parser.add_argument("--queries", type=int, default=1000, help="photos whose copies are queried")
    parser.add_argument("--sizes", type=int, nargs="+", default=[0, 44072], help="catalogue sizes (0: the clothing set alone)")
    parser.add_argument("--radius", type=int, default=8, help="pHash candidate radius in bits")
    parser.add_argument("--calibration", default=str(calibration_path(default_model_path())))
    parser.add_argument("--rerank-depth", type=int, default=EngineConfig().rerank_depth, help="LSH candidates kept by code distance (M)")
    parser.add_argument("--kinds", nargs="+", default=list(COPY_KINDS), choices=COPY_KINDS)
    args = parser.parse_args()
    data = load()
    path = args.copies or sorted(DEFAULT_OUT.glob("copies-*.npz"))[-1]
    copies = np.load(path)
    row_of = {str(n): i for i, n in enumerate(data.names)}
    targets = np.array([row_of[str(n)] for n in copies["names"][: args.queries]])
    copy_embeddings = copies["embeddings"][: args.queries]
    copy_phash = copies["phash"][: args.queries]
    print(f"{len(targets)} photos x {len(COPY_KINDS)} copy kinds from {path}", flush=True)
    results = {}
    config = EngineConfig().with_changes(rerank_depth=args.rerank_depth)
    calibration = load_calibration(args.calibration, str(copies["model_sha256"]) if "model_sha256" in copies.files else None)
    for size in args.sizes:
        embeddings, phash = data.embeddings, data.phash
        if size > len(embeddings):
            extra, extra_phash = distractors(embeddings, phash, size - len(embeddings))
            embeddings, phash = np.concatenate([embeddings, extra]), np.concatenate([phash, extra_phash])
        stages = Stages(embeddings, phash, config, radius=args.radius, calibration=calibration)
        print(f"\ncatalogue of {len(embeddings)} images (LSH path forced; indexes built in {stages.build_s:.0f} s)", flush=True)
        rows = run(stages, targets, copy_embeddings, copy_phash, args.kinds)
        print(table(rows, [("kind", f"copy kind, top {TOP}, {len(embeddings)} images", ""), ("exact cosine", "exact", ".3f"),
                           ("pHash ranking", "pHash", ".3f"), ("today, LSH", "today LSH", ".3f"),
                           ("merged, LSH", "merged LSH", ".3f"), ("new w/o same-design first", "new w/o sd", ".3f"),
                           ("new, LSH", "new LSH", ".3f"), ("new, rescore 200", "new R200", ".3f"),
                           ("in LSH candidates (raw index)", "in M", ".3f"), ("target met", "met 40/200", ""),
                           ("today, LSH ms", "today ms", ".1f"), ("new, LSH ms", "new ms", ".1f")]))
        results[str(len(embeddings))] = rows
    name = "copies" if args.sizes == [0, 44072] else "copies-" + "-".join(map(str, args.sizes))
    name += "" if args.rerank_depth == EngineConfig().rerank_depth else f"-M{args.rerank_depth}"
    out = save(name, {"rerank_depth": args.rerank_depth, "queries": len(targets), "radius": args.radius, "copies_cache": str(path), "results": results})
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
