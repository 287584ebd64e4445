"""Steering the search on the clothing set (issue 12 items 1 and 4), each figure beside the single-picture baseline.

Simulated users, labels as the truth, cross-sender (gallery photos of the
query's own sender left out), on the cached embeddings of the default (int8)
model, in a real catalogue made from them with main's index (issue 11:
augmented vectors, query expansion, bands):

1. Several examples: a photo is a query; the user adds 2 more examples of
   its label picked at random from its top 20 and marks 2 of another label
   from its top 20 "not like this" (fewer where the top 20 has fewer).
   mAP@10 over what the user has not seen as an example. The headline is
   the engine's (`SearchEngine.search_examples`) steered list against the
   engine's own single-picture list (main's ranking) on a sample of queries;
   the pure Rocchio ranking on plain cosine (steering.combine) against plain
   cosine is printed too, on every query, and the engine's steered top 10 is
   checked against it.
2. Speed at 5,398 images: the time to re-rank after "not like this" (the
   unliked design's stored embedding read, steered search) against a plain
   search from a catalogue image, interleaved, median and p95.
3. Decisions: 200 simulated decisions (a user marks a random result in the
   top 10 of a random query: same label -> same design, else not similar),
   and 200 random (contradictory) ones, 50 and 20 true ones. Held-out
   queries (in no decision) searched through the engine with the decisions
   (the adapted ranking, decisions.py / steered.py) against the engine
   without them (main's plain search): mAP@10 cross-sender, 5 draws, each
   figure per draw.

    nice -n 10 .venv/bin/python bench/bench_steering.py               # everything (bench/results/steering.json)
    nice -n 10 .venv/bin/python bench/bench_steering.py --only decisions   # the decisions alone (steering-decisions.json)
    .venv/bin/python bench/bench_steering.py --draws 1 --sample 100 --held-out 100 --timing 50   # quicker
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
from swimsearch.decisions import DecisionBook
from swimsearch.metrics import average_precision
from swimsearch.model import card_sha256, default_model_path
from swimsearch.search import SearchEngine
from swimsearch.rocchio import UNLIKE_WEIGHT, Steering, combine
from swimsearch.stores.base import ModelInfo, NewImage
from swimsearch.stores.verdicts import DIFFERENT, SAME, Decision

FP32_CACHE = Path("/work/cache/clothing-fp32.npz")
WORK = Path("/work/cache/steer-fixes")


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


def pick_examples(p: Protocol, q: int, rng: np.random.Generator, cosines: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """2 of the query's label and 2 of others, at random from its cross-sender top 20."""
    top = p.ranking(p.x @ p.x[q] if cosines is None else cosines, p.gallery(q), 20)
    same, other = top[p.label[top] == p.label[q]], top[p.label[top] != p.label[q]]
    like = rng.choice(same, min(2, len(same)), replace=False) if len(same) else np.empty(0, np.int64)
    unlike = rng.choice(other, min(2, len(other)), replace=False) if len(other) else np.empty(0, np.int64)
    return like, unlike


def several_examples(p: Protocol, seed: int) -> dict:
    """The pure Rocchio ranking (steering.combine's query) against plain cosine, on every usable photo.

    combine's query is normalise(mean of liked - UNLIKE_WEIGHT x mean of unliked); a positive
    scale does not change a ranking, so its cosines are the same combination of the examples'
    rows of the cosine matrix, computed once.
    """
    rng = np.random.default_rng(seed)
    cosines = p.x @ p.x.T
    single, positives, steered, full = [], [], [], 0
    for q in range(len(p.rows)):
        like, unlike = pick_examples(p, q, rng, cosines[q])
        full += len(like) == 2 and len(unlike) == 2
        mask = p.gallery(q)
        mask[like] = mask[unlike] = False  # what the user has seen as an example does not count
        liked = cosines[[q, *like]].mean(axis=0)
        single.append(p.ap10(q, cosines[q], mask))
        positives.append(p.ap10(q, liked, mask))
        steered.append(p.ap10(q, liked - UNLIKE_WEIGHT * cosines[unlike].mean(axis=0) if len(unlike) else liked, mask))
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


#: Results asked of the engine per query: enough for 10 after the query's own sender and the examples are left out.
ENGINE_TOP = 200


def engine_ap10(p: Protocol, engine: SearchEngine, ids: np.ndarray, row_of: dict, q: int, steering: Steering,
                mask: np.ndarray) -> tuple[float, list[int]]:
    """AP@10 of the engine's list for `steering` (cross-sender, `mask` applied), and that top 10 (protocol rows)."""
    result = engine.search_examples(steering, top_n=ENGINE_TOP)
    found = [row_of[m.image_id] for m in result.matches if m.image_id in row_of]
    top = [r for r in found if mask[r]][:10]
    relevant = int(((p.label == p.label[q]) & mask).sum())
    hits = (p.label[np.array(top, dtype=np.int64)] == p.label[q])[None] if top else np.zeros((1, 0), bool)
    return (float(average_precision(hits, np.array([relevant]))[0]) if top else 0.0), top


def several_examples_engine(p: Protocol, engine: SearchEngine, ids: np.ndarray, queries: int, check: int, seed: int) -> dict:
    """The engine's steered list against its own single-picture list (main's ranking), on a sample of queries;
    and the share of the first `check` whose steered top 10 equals the pure Rocchio ranking's."""
    rng = np.random.default_rng(seed)
    row_of = {int(i): n for n, i in enumerate(ids)}
    sample = rng.choice(len(p.rows), min(queries, len(p.rows)), replace=False)
    single, positives, steered, agree = [], [], [], 0
    started = time.perf_counter()
    for n, q in enumerate(sample):
        like, unlike = pick_examples(p, q, rng)
        mask = p.gallery(q)
        mask[like] = mask[unlike] = False
        example = lambda i: engine.example(int(ids[i]))  # noqa: E731 - a stored embedding: no network
        single.append(engine_ap10(p, engine, ids, row_of, q, Steering((example(q),)), mask)[0])
        liked = tuple(example(i) for i in [q, *like])
        positives.append(engine_ap10(p, engine, ids, row_of, q, Steering(liked), mask)[0])
        ap, top = engine_ap10(p, engine, ids, row_of, q, Steering(liked, tuple(example(i) for i in unlike)), mask)
        steered.append(ap)
        if n < check:
            rows = [p.x[q][None]] + [p.x[i][None] for i in like]
            pure = p.ranking(p.x @ combine(rows, [p.x[i][None] for i in unlike], 1)[0].astype(np.float32), mask, 10)
            agree += top == list(pure)
    base = float(np.mean(single))
    return {
        "queries": len(sample),
        "single_map10": base,
        "positives_only_map10": float(np.mean(positives)),
        "positives_only_ratio": float(np.mean(positives)) / base,
        "steered_map10": float(np.mean(steered)),
        "steered_ratio": float(np.mean(steered)) / base,
        "agreement_with_pure_ranking": agree / max(1, min(check, len(sample))),
        "seconds": time.perf_counter() - started,
    }


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


def decisions(p: Protocol, catalogue: Catalogue, engine: SearchEngine, ids: np.ndarray, draws: int, queries: int) -> list[dict]:
    """Per draw and kind: held-out mAP@10 of the engine with the decisions against without them."""
    adaptation = Adaptation(engine._ready_searcher(), engine._data.augmented)
    relpath = {r.image_id: r.relpath for r in catalogue.records(ids.tolist()).values()}
    row_of = {int(i): n for n, i in enumerate(ids)}
    plain_ap: dict[int, float] = {}  # a query's plain list does not depend on the draw

    def engine_map(held: np.ndarray, book: DecisionBook, cache: dict | None) -> float:
        engine.decisions = book
        aps = []
        for q in held:
            q = int(q)
            if cache is not None and q in cache:
                aps.append(cache[q])
                continue
            ap = engine_ap10(p, engine, ids, row_of, q, Steering((engine.example(int(ids[q])),)), p.gallery(q))[0]
            if cache is not None:
                cache[q] = ap
            aps.append(ap)
        return float(np.mean(aps))

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
            order = [q for q in np.random.default_rng(draw).permutation(len(p.rows)) if q not in involved]
            held = np.array(order[:queries])
            base = engine_map(held, DecisionBook(), plain_ap)
            # with the decisions: their pins and demotions (none reach a held-out query) and the adapted ranking
            adapted = base if metric is None else engine_map(held, DecisionBook(records, metric), None)
            out.append({
                "draw": draw, "verdicts": kind, "decisions": count, "same_share": float(simulated[:, 2].mean()),
                "held_out_queries": len(held), "adapted": metric is not None, "kept": 0.0 if metric is None else metric.metric.kept,
                "plain_map10": base, "adapted_map10": adapted, "ratio": adapted / base,
            })
            print(f"  draw {draw}: {count} {kind} decisions ({out[-1]['same_share']:.0%} same): "
                  f"{'adapted, ' + format(out[-1]['kept'], '.0%') + ' of their signal kept' if metric else 'not adapted'}; "
                  f"held-out mAP@10 {base:.4f} -> {adapted:.4f} (x{adapted / base:.4f})", flush=True)
    engine.decisions = DecisionBook()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", type=Path, help="int8 embeddings of the clothing set (default: the default model's)")
    parser.add_argument("--sample", type=int, default=300, help="queries searched through the engine in 1 (default %(default)s)")
    parser.add_argument("--check", type=int, default=200, help="of those, checked against the pure ranking (default %(default)s)")
    parser.add_argument("--timing", type=int, default=200, help="timed rounds (default %(default)s)")
    parser.add_argument("--draws", type=int, default=5, help="decision draws (default %(default)s)")
    parser.add_argument("--held-out", type=int, default=600, help="held-out queries per draw, through the engine (default %(default)s)")
    parser.add_argument("--only", choices=("examples", "speed", "decisions"), action="append",
                        help="run only these parts (repeatable; default all)")
    args = parser.parse_args()
    started = time.perf_counter()
    sha = card_sha256(default_model_path()) or ""
    cache = args.cache or Path("/work/cache/model-int8") / f"clothing-{default_model_path().stem}-{sha[:12]}.npz"
    data, cached_sha = int8_data(cache)
    if cached_sha != sha:
        print(f"note: {cache.name} was made with another model file than the default ({cached_sha[:12]})")
    config = EngineConfig()
    path = catalogue_from_cache(data, cached_sha, config)
    results: dict = {"cache": cache.name, "model_sha256": cached_sha, "load": os.getloadavg(), "args": vars(args) | {"cache": str(cache)}}
    with Catalogue.open(path, readonly=True) as catalogue:
        engine = SearchEngine(catalogue, None, config)
        searchable = engine.searchable_ids()
        by_name = {r.relpath: r.image_id for r in catalogue.records(searchable.tolist()).values()}
        fitted = engine._ready_searcher().fitted
        results["index"] = {"augmented": bool(fitted.augmented), "vectors": config.vectors, "expand_k": config.expand_k}
        p = Protocol(data, fitted.centre if fitted.centre is not None else fitted.mean)  # centred as the engine centres
        ids = np.array([by_name[str(data.names[r])] for r in p.rows], dtype=np.int64)

        parts = set(args.only or ("examples", "speed", "decisions"))
        if "examples" in parts:
            print("1. several examples and 'not like this' (cross-sender)", flush=True)
            results["several_examples_engine"] = e = several_examples_engine(p, engine, ids, args.sample, args.check, seed=1)
            print(f"  engine, {e['queries']} queries (main's ranking): single picture mAP@10 {e['single_map10']:.4f}; "
                  f"+2 examples {e['positives_only_map10']:.4f} (x{e['positives_only_ratio']:.3f}); +2 examples, 2 not like this "
                  f"{e['steered_map10']:.4f} (x{e['steered_ratio']:.3f}) [{e['seconds']:.0f} s]")
            print(f"  the engine's steered top 10 equals the pure Rocchio ranking for {e['agreement_with_pure_ranking']:.1%} "
                  f"of {min(args.check, e['queries'])} queries")
            results["several_examples"] = s = several_examples(p, seed=0)
            print(f"  pure ranking on plain cosine, all {s['queries']} queries: single picture mAP@10 {s['single_map10']:.4f}; "
                  f"+2 examples x{s['positives_only_ratio']:.3f}; +2 examples, 2 not like this {s['steered_map10']:.4f} "
                  f"(x{s['steered_ratio']:.3f}); {s['queries_with_2_like_and_2_unlike']} of {s['queries']} queries had 2+2")

        if "speed" in parts:
            print(f"2. speed at {len(searchable):,} images (load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)", flush=True)
            results["speed"] = t = speed(engine, ids, args.timing, seed=2)
            print(f"  plain search {t['plain_search_ms_median']:.1f} ms (p95 {t['plain_search_ms_p95']:.1f}); re-rank after "
                  f"'not like this' {t['rerank_after_not_like_this_ms_median']:.1f} ms (p95 "
                  f"{t['rerank_after_not_like_this_ms_p95']:.1f}), x{t['rerank_over_plain']:.2f}")

        if "decisions" in parts:
            print("3. decisions (held-out queries, cross-sender, through the engine)", flush=True)
            rows = decisions(p, catalogue, engine, ids, args.draws, args.held_out)
            results["decisions"] = rows
            for kind, count in (("true", 200), ("random", 200), ("true", 50), ("true", 20)):
                chosen = [r for r in rows if r["verdicts"] == kind and r["decisions"] == count]
                ratios = [r["ratio"] for r in chosen]
                print(f"  {count} {kind} decisions: held-out mAP@10 x{np.mean(ratios):.4f} (per draw "
                      f"{', '.join(format(r, '.4f') for r in ratios)}; adapted in {sum(r['adapted'] for r in chosen)} of {len(chosen)})")
    results["seconds"] = time.perf_counter() - started
    name = "steering" if not args.only else "steering-" + "-".join(sorted(set(args.only)))
    print(f"wrote {save(name, results)} ({results['seconds']:.0f} s in all)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
