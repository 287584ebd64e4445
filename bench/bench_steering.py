"""Steering the search on the clothing set (issue 12 items 1 and 4), each figure beside the single-picture baseline.

Simulated users, labels as the truth, cross-sender (gallery photos of the
query's own sender left out), on the cached embeddings of the default (int8)
model:

1. Several examples: each usable photo is a query; the user adds 2 more
   examples of its label picked at random from its top 20 and marks 2 of
   another label from its top 20 "not like this" (fewer where the top 20 has
   fewer). mAP@10 over what the user has not seen as an example, steered
   (steering.combine, the engine's own) against the single picture, both
   with the examples left out. Also: the same with the positives only.
   The pure ranking is checked against `SearchEngine.search_examples` on a
   real catalogue for a sample of queries.
2. Speed at 5,398 images: a catalogue built from the cached embeddings
   (no network); the time to re-rank after "not like this" (the unliked
   design's stored embedding read, steered search) against a plain search
   from a catalogue image, interleaved, median and p95.
3. Decisions: 200 simulated decisions (a user marks a random result in the
   top 10 of a random query: same label -> same design, else not similar),
   and 200 random (contradictory) ones; the ranking adapted to them
   (adaptation.py, fitted through the engine's `Adaptation` on the
   catalogue) against plain cosine, mAP@10 cross-sender over the queries in
   no decision; several draws. Also 20 and 50 true decisions.

    nice -n 10 python bench/bench_steering.py                 # everything (bench/results/steering.json)
    python bench/bench_steering.py --draws 2 --timing 50      # quicker
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from common import CLOTHING, median, percentile, save

import numpy as np

from clothing_data import Clothing, load
from swimsearch.adaptation import Adaptation
from swimsearch.build import index_catalogue
from swimsearch.catalogue import Catalogue
from swimsearch.config import EngineConfig
from swimsearch.metrics import average_precision
from swimsearch.model import card_sha256, default_model_path
from swimsearch.search import SearchEngine
from swimsearch.rocchio import UNLIKE_WEIGHT, Steering, combine
from swimsearch.stores.base import ModelInfo, NewImage
from swimsearch.stores.verdicts import DIFFERENT, SAME, Decision

FP32_CACHE = Path("/work/cache/clothing-fp32.npz")
WORK = Path("/work/cache/steer-examples")


def normalised(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def int8_data(cache: Path) -> tuple[Clothing, str]:
    """The clothing set with the cached int8 embeddings (pHashes and layout from the fp32 cache)."""
    data = load(FP32_CACHE)
    cached = np.load(cache)
    if [str(n) for n in cached["names"]] != [str(n) for n in data.names]:
        raise SystemExit(f"{cache} does not list the photos of {FP32_CACHE} in the same order")
    data.embeddings = cached["embeddings"].astype(np.float32)
    return data, str(cached["model_sha256"])


class Protocol:
    """Usable photos, centred on their mean and normalised; cross-sender top lists."""

    def __init__(self, data: Clothing, mean: np.ndarray):
        self.rows = data.queries  # usable photos: queries and gallery
        self.label = data.label[self.rows]
        self.sender = data.sender[self.rows]
        self.x = normalised(data.embeddings[self.rows].astype(np.float64) - mean).astype(np.float32)

    def gallery(self, q: int) -> np.ndarray:
        mask = self.sender != self.sender[q]
        mask[q] = False
        return mask

    def ranking(self, scores: np.ndarray, mask: np.ndarray, k: int) -> np.ndarray:
        scores = np.where(mask, scores, -np.inf)
        top = np.argpartition(-scores, k)[:k]
        return top[np.argsort(-scores[top], kind="stable")]

    def ap10(self, q: int, scores: np.ndarray, mask: np.ndarray) -> float:
        top = self.ranking(scores, mask, 10)
        relevant = int(((self.label == self.label[q]) & mask).sum())
        return float(average_precision((self.label[top] == self.label[q])[None], np.array([relevant]))[0])


# --- 1. several examples ------------------------------------------------------------------------------


def pick_examples(p: Protocol, q: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """2 of the query's label and 2 of others, at random from its cross-sender top 20."""
    top = p.ranking(p.x @ p.x[q], p.gallery(q), 20)
    same, other = top[p.label[top] == p.label[q]], top[p.label[top] != p.label[q]]
    like = rng.choice(same, min(2, len(same)), replace=False) if len(same) else np.empty(0, np.int64)
    unlike = rng.choice(other, min(2, len(other)), replace=False) if len(other) else np.empty(0, np.int64)
    return like, unlike


def several_examples(p: Protocol, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    single, positives, steered, full = [], [], [], 0
    for q in range(len(p.rows)):
        like, unlike = pick_examples(p, q, rng)
        full += len(like) == 2 and len(unlike) == 2
        mask = p.gallery(q)
        mask[like] = mask[unlike] = False  # what the user has seen as an example does not count
        rows = [p.x[q][None]] + [p.x[i][None] for i in like]
        single.append(p.ap10(q, p.x @ p.x[q], mask))
        positives.append(p.ap10(q, p.x @ combine(rows, [], 1)[0].astype(np.float32), mask))
        steered.append(p.ap10(q, p.x @ combine(rows, [p.x[i][None] for i in unlike], 1)[0].astype(np.float32), mask))
    base = float(np.mean(single))
    return {
        "queries": len(p.rows),
        "queries_with_2_like_and_2_unlike": full,
        "unlike_weight": UNLIKE_WEIGHT,
        "single_map10": base,
        "positives_only_map10": float(np.mean(positives)),
        "positives_only_ratio": float(np.mean(positives)) / base,
        "steered_map10": float(np.mean(steered)),
        "steered_ratio": float(np.mean(steered)) / base,
    }


def engine_agrees(p: Protocol, engine: SearchEngine, ids: np.ndarray, queries: int, seed: int) -> float:
    """Share of sampled queries whose steered top 10 (cross-sender, examples out) the engine ranks the same."""
    rng = np.random.default_rng(seed)
    agree = 0
    sample = rng.choice(len(p.rows), queries, replace=False)
    row_of = {int(i): n for n, i in enumerate(ids)}
    for q in sample:
        like, unlike = pick_examples(p, q, rng)
        mask = p.gallery(q)
        mask[like] = mask[unlike] = False
        rows = [p.x[q][None]] + [p.x[i][None] for i in like]
        pure = p.ranking(p.x @ combine(rows, [p.x[i][None] for i in unlike], 1)[0].astype(np.float32), mask, 10)
        steering = Steering(
            tuple(engine.example(int(ids[i])) for i in [q, *like]), tuple(engine.example(int(ids[i])) for i in unlike)
        )
        result = engine.search_examples(steering, top_n=400)
        found = [row_of[m.image_id] for m in result.matches if m.image_id in row_of]
        found = [r for r in found if mask[r]][:10]
        agree += found == list(pure)
    return agree / queries


# --- 2. a catalogue from the cache, and speed --------------------------------------------------------


def catalogue_from_cache(data: Clothing, sha256: str, config: EngineConfig) -> Path:
    """A real catalogue of the 5,398 labelled photos made from cached embeddings (kept under WORK)."""
    labelled = np.flatnonzero(data.sender >= 0)
    path = WORK / f"clothing-{len(labelled)}-{sha256[:12]}.swimcat"
    if path.exists():
        return path
    WORK.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with Catalogue.create(path, CLOTHING) as catalogue:
        writer = catalogue.writer()
        with writer.writer_lock():
            writer.set_model(ModelInfo(name=f"{default_model_path().stem}@224", sha256=sha256, dim=data.embeddings.shape[1]))
            for start in range(0, len(labelled), 500):
                batch = []
                for row in labelled[start : start + 500]:
                    info = os.stat(CLOTHING / str(data.names[row]))
                    batch.append(NewImage(relpath=str(data.names[row]), size=info.st_size, mtime=info.st_mtime,
                                          phash=int(data.phash[row]), embedding=data.embeddings[row]))
                writer.add_batch(batch)
            index_catalogue(writer, config)
    print(f"  made {path.name} from the cache in {time.perf_counter() - started:.0f} s", flush=True)
    return path


def speed(engine: SearchEngine, ids: np.ndarray, rounds: int, seed: int) -> dict:
    """Plain search from a catalogue image against the re-ranking after one "not like this", interleaved."""
    rng = np.random.default_rng(seed)
    plain, rerank = [], []
    for n in range(rounds):
        query = engine.example(int(ids[rng.integers(len(ids))]))  # kept by the window once shown
        shown = engine.search_examples(Steering((query,)), top_n=200)
        unliked = shown.matches[int(rng.integers(5, 40))].image_id
        for kind in ("plain", "rerank") if n % 2 == 0 else ("rerank", "plain"):
            started = time.perf_counter()
            if kind == "plain":
                engine.search_examples(Steering((engine.example(int(query.image_id)),)), top_n=200)
                plain.append((time.perf_counter() - started) * 1000)
            else:
                engine.search_examples(Steering((query,), (engine.example(unliked),)), top_n=200)
                rerank.append((time.perf_counter() - started) * 1000)
    return {
        "catalogue_images": len(ids),
        "rounds": rounds,
        "plain_search_ms_median": median(plain),
        "plain_search_ms_p95": percentile(plain, 95),
        "rerank_after_not_like_this_ms_median": median(rerank),
        "rerank_after_not_like_this_ms_p95": percentile(rerank, 95),
        "rerank_over_plain": median(rerank) / median(plain),
    }


# --- 3. decisions ------------------------------------------------------------------------------------


def simulate_decisions(p: Protocol, count: int, rng: np.random.Generator, *, random_verdicts: bool) -> np.ndarray:
    """(count, 3) rows of (photo a, photo b, 1 same / 0 not similar): a user marks a result of a query's top 10."""
    seen, out = set(), []
    while len(out) < count:
        q = int(rng.integers(len(p.rows)))
        b = int(rng.choice(p.ranking(p.x @ p.x[q], p.gallery(q), 10)))
        if (min(q, b), max(q, b)) in seen:
            continue
        seen.add((min(q, b), max(q, b)))
        same = bool(rng.integers(2)) if random_verdicts else p.label[q] == p.label[b]
        out.append((q, b, int(same)))
    return np.array(out)


def held_out_map(p: Protocol, x: np.ndarray, queries: np.ndarray, chunk: int = 256) -> float:
    aps = []
    for start in range(0, len(queries), chunk):
        part = queries[start : start + chunk]
        sims = x[part] @ x.T
        for row, q in enumerate(part):
            aps.append(p.ap10(int(q), sims[row], p.gallery(int(q))))
    return float(np.mean(aps))


def decisions(p: Protocol, catalogue: Catalogue, engine: SearchEngine, ids: np.ndarray, draws: int, queries: int) -> list[dict]:
    adaptation = Adaptation(catalogue, engine._ready_searcher())
    mean = engine._ready_searcher().fitted.mean
    relpath = {r.image_id: r.relpath for r in catalogue.records(ids.tolist()).values()}
    out = []
    for draw in range(draws):
        for kind, count in (("true", 200), ("random", 200), ("true", 50), ("true", 20)):
            rng = np.random.default_rng(1000 * draw + count)
            simulated = simulate_decisions(p, count, rng, random_verdicts=kind == "random")
            records = [
                Decision(int(ids[a]), int(ids[b]), relpath[int(ids[a])], relpath[int(ids[b])], SAME if s else DIFFERENT, "bench", 0.0)
                for a, b, s in simulated
            ]
            metric = adaptation.fit(records)
            involved = set(simulated[:, 0]) | set(simulated[:, 1])
            held = np.array([q for q in np.random.default_rng(draw).permutation(len(p.rows)) if q not in involved])[:queries]
            base = held_out_map(p, p.x, held)
            if metric is None:
                adapted = base
            else:  # the engine scores centred embeddings through the metric, then normalises
                x = normalised(metric(p.x.astype(np.float64))).astype(np.float32)
                adapted = held_out_map(p, x, held)
            out.append({
                "draw": draw, "verdicts": kind, "decisions": count, "same_share": float(simulated[:, 2].mean()),
                "held_out_queries": len(held), "kept": 0.0 if metric is None else metric.kept,
                "plain_map10": base, "adapted_map10": adapted, "ratio": adapted / base,
            })
            print(f"  draw {draw}: {count} {kind} decisions ({out[-1]['same_share']:.0%} same): kept {out[-1]['kept']:.2f}, "
                  f"mAP@10 {base:.4f} -> {adapted:.4f} (x{adapted / base:.4f})", flush=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", type=Path, help="int8 embeddings of the clothing set (default: the default model's)")
    parser.add_argument("--draws", type=int, default=5, help="decision draws (default %(default)s)")
    parser.add_argument("--held-out", type=int, default=2000, help="held-out queries per draw (default %(default)s)")
    parser.add_argument("--timing", type=int, default=200, help="timed rounds (default %(default)s)")
    parser.add_argument("--check", type=int, default=200, help="queries checked against the engine (default %(default)s)")
    args = parser.parse_args()
    sha = card_sha256(default_model_path()) or ""
    cache = args.cache or Path("/work/cache/model-int8") / f"clothing-{default_model_path().stem}-{sha[:12]}.npz"
    data, cached_sha = int8_data(cache)
    if cached_sha != sha:
        print(f"note: {cache.name} was made with another model file than the default ({cached_sha[:12]})")
    config = EngineConfig()
    path = catalogue_from_cache(data, cached_sha, config)
    results: dict = {"cache": cache.name, "model_sha256": cached_sha, "load": os.getloadavg()}
    with Catalogue.open(path, readonly=True) as catalogue:
        engine = SearchEngine(catalogue, None, config)
        searchable = engine.searchable_ids()
        by_name = {r.relpath: r.image_id for r in catalogue.records(searchable.tolist()).values()}
        p = Protocol(data, engine._ready_searcher().fitted.mean)  # centred as the engine centres
        ids = np.array([by_name[str(data.names[r])] for r in p.rows], dtype=np.int64)

        print("1. several examples and 'not like this' (all usable photos, cross-sender)", flush=True)
        results["several_examples"] = several_examples(p, seed=0)
        s = results["several_examples"]
        print(f"  single picture mAP@10 {s['single_map10']:.4f}; +2 examples {s['positives_only_map10']:.4f} "
              f"(x{s['positives_only_ratio']:.3f}); +2 examples, 2 not like this {s['steered_map10']:.4f} "
              f"(x{s['steered_ratio']:.3f}); {s['queries_with_2_like_and_2_unlike']} of {s['queries']} queries had 2+2")
        results["engine_agreement"] = engine_agrees(p, engine, ids, args.check, seed=1)
        print(f"  the engine's steered top 10 equals this ranking for {results['engine_agreement']:.1%} of {args.check} queries")

        print(f"2. speed at {len(searchable):,} images (load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)", flush=True)
        results["speed"] = speed(engine, ids, args.timing, seed=2)
        t = results["speed"]
        print(f"  plain search {t['plain_search_ms_median']:.1f} ms (p95 {t['plain_search_ms_p95']:.1f}); re-rank after "
              f"'not like this' {t['rerank_after_not_like_this_ms_median']:.1f} ms (p95 "
              f"{t['rerank_after_not_like_this_ms_p95']:.1f}), x{t['rerank_over_plain']:.2f}")

        print("3. decisions (held-out queries, cross-sender)", flush=True)
        rows = decisions(p, catalogue, engine, ids, args.draws, args.held_out)
        results["decisions"] = rows
        for kind, count in (("true", 200), ("random", 200), ("true", 50), ("true", 20)):
            ratios = [r["ratio"] for r in rows if r["verdicts"] == kind and r["decisions"] == count]
            print(f"  {count} {kind} decisions: mAP@10 x{np.mean(ratios):.4f} (range {min(ratios):.4f}-{max(ratios):.4f})")
    print(f"wrote {save('steering', results)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
