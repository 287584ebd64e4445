"""The recommended ranking through the engine's own index pieces, and what it costs (bench_ranking.py --pipeline/--cost).

Pipeline, per sender half (catalogue = one half's photos, queries = the
other half's usable photos):
  * baseline: exact cosine in memory;
  * today: fit_index on the raw embeddings, ExactSearch or LshSearch (forced),
    then exact cosine on the full centred embeddings, as the engine does;
  * new: vectors prepared on the catalogue's mean, DBA over the catalogue,
    fit_index on the augmented vectors (codes and re-ranking vectors fitted
    on them), search, rescore the candidates on the full augmented vectors,
    alpha-QE from the top results, search and rescore again.
"""

from __future__ import annotations

import time

import numpy as np

from clothing_data import Clothing, allowed_mask, hits_from_sims, map10, relevant_counts
from common import table

from swimsearch.augment import augment, l2_normalise, nearest_neighbours, prepare, weighted_mean
from swimsearch.config import EngineConfig
from swimsearch.index import fit_index, snapshot_from_embeddings
from swimsearch.search import RESCORE_MARGIN
from swimsearch.searchers import ExactSearch, LshSearch


def _searchers(fitted, vectors):
    snap = snapshot_from_embeddings(fitted, np.arange(len(vectors)), vectors)
    config = EngineConfig()
    return snap, {
        "exact path": ExactSearch(snap),
        "LSH path (forced)": LshSearch(snap, rerank_depth=config.rerank_depth, probe_radius=config.probe_radius,
                                       code_distance=config.code_distance),
    }


def _ranked(searcher, fitted, full, query, depth, reduced_only=False):
    """Rows of the catalogue best first: the searcher's candidates, rescored on `full` unit vectors."""
    ranking = searcher.search(fitted.codes(query[None])[0], fitted.vectors(query[None])[0], depth)
    rows = ranking.ids
    sims = ranking.similarities if reduced_only else full[rows] @ query
    order = np.argsort(-sims, kind="stable")
    return rows[order], sims[order]


def _ap(data, q, ranked_rows, catalogue_rows):
    """AP@10 of one query from catalogue-local ranked rows."""
    sims = np.full((1, len(data.names)), -np.inf, np.float32)
    rows = catalogue_rows[ranked_rows]
    sims[0, rows] = -np.arange(len(rows), dtype=np.float32)  # rank order as similarity
    allowed = allowed_mask(data, np.array([q]), np.isin(np.arange(len(data.names)), rows) & data.usable, cross_sender=True)
    return map10(hits_from_sims(data, np.array([q]), sims, allowed), relevant_counts(data, np.array([q]), allowed))[0]


def pipeline_section(data: Clothing, method, baseline) -> list[dict]:
    config = EngineConfig()
    results: dict[str, list] = {}
    times: dict[str, list] = {}
    for half, other in (data.sender_halves(), data.sender_halves()[::-1]):
        cat = np.flatnonzero(half)
        queries = np.flatnonzero(other & data.usable)
        depth = 100 + int((~data.usable[cat]).sum()) + 1
        raw = data.embeddings[cat]
        mean = raw.mean(0)
        v_all = prepare(data.embeddings, mean, method.power)
        v = v_all[cat]
        allowed_all = allowed_mask(data, queries, half & data.usable, cross_sender=True)
        base = map10(*_hits(data, queries, v_all[queries] @ v_all.T, allowed_all))
        results.setdefault("baseline: exact cosine in memory", []).append(base)
        # today's pipeline on the raw embeddings
        fitted = fit_index(raw, config)
        _, searchers = _searchers(fitted, raw)
        full_raw = l2_normalise(raw - fitted.mean)
        for name, searcher in searchers.items():
            aps, spent = [], []
            for q in queries:
                query = data.embeddings[q]
                started = time.perf_counter()
                rows = _today(searcher, fitted, full_raw, query, depth)
                spent.append((time.perf_counter() - started) * 1000)
                aps.append(_ap(data, q, rows, cat))
            results.setdefault(f"today's pipeline, {name}", []).append(np.array(aps))
            times.setdefault(f"today's pipeline, {name}", []).extend(spent)
        # the new pipeline
        nb, ns = nearest_neighbours(v, method.k_dba)
        A = augment(v, nb, ns, k=method.k_dba, alpha=method.alpha_dba)
        fitted_a = fit_index(A, config)
        _, searchers = _searchers(fitted_a, A)
        for name, searcher in searchers.items():
            variants = [(False, False), (True, False)] + ([(False, True)] if isinstance(searcher, LshSearch) else [])
            for reduced_only, one_search in variants:
                label = (f"new pipeline, {name}" + (", re-ranking vectors only" if reduced_only else "")
                         + (", QE within the first candidates" if one_search else ""))
                aps, spent = [], []
                for q in queries:
                    started = time.perf_counter()
                    rows = _new(searcher, fitted_a, A, v_all[q], depth, method, reduced_only, one_search)
                    spent.append((time.perf_counter() - started) * 1000)
                    aps.append(_ap(data, q, rows, cat))
                results.setdefault(label, []).append(np.array(aps))
                times.setdefault(label, []).extend(spent)
        print(f"  half of {len(cat)} photos, {len(queries)} queries done", flush=True)
    rows = []
    base = np.concatenate(results["baseline: exact cosine in memory"]).mean()
    for name, parts in results.items():
        value = float(np.concatenate(parts).mean())
        rows.append({"method": name, "map10": value, "ratio": value / base,
                     "median_ms": float(np.median(times[name])) if name in times else float("nan")})
    print()
    print(table(rows, [("method", "sender halves, cross-sender", ""), ("map10", "mAP@10", ".4f"), ("ratio", "x exact", ".4f"),
                       ("median_ms", "search ms", ".2f")]))
    return rows


def _hits(data, queries, sims, allowed):
    return hits_from_sims(data, queries, sims, allowed), relevant_counts(data, queries, allowed)


def _today(searcher, fitted, full_raw, query, depth):
    """Today's engine: candidates from the searcher, rescored by cosine of the centred full embeddings."""
    q = l2_normalise((query - fitted.mean)[None])[0]
    ranking = searcher.search(fitted.codes(query[None])[0], fitted.vectors(query[None])[0], depth + RESCORE_MARGIN)
    rows = ranking.ids
    sims = full_raw[rows] @ q
    return rows[np.argsort(-sims, kind="stable")]


def _new(searcher, fitted, A, q, depth, method, reduced_only, one_search=False):
    """DBA catalogue + alpha-QE through a searcher; rescored on the full augmented vectors (or not).

    one_search: the expanded query re-ranks the first search's candidates
    (its M best by code distance) instead of searching again, which keeps
    the search stage at one probe.
    """
    wanted = max(depth, method.k_qe) + RESCORE_MARGIN
    first = searcher.rerank_depth if one_search else (wanted if not method.k_qe else method.k_qe + RESCORE_MARGIN)
    rows, sims = _ranked(searcher, fitted, A, q, first, reduced_only)
    if method.k_qe:
        top = rows[: method.k_qe]
        top_sims = sims[: method.k_qe] if not reduced_only else A[top] @ q
        q = weighted_mean(q[None], A[top][None], top_sims[None], method.alpha_qe)[0]
        if one_search:
            reduced = fitted.vectors(q[None])[0]
            vec_sims = searcher.snapshot.vectors[rows].astype(np.float32) @ reduced
            rows = rows[np.argsort(-vec_sims, kind="stable")[:wanted]]
            sims = vec_sims[np.argsort(-vec_sims, kind="stable")[:wanted]] if reduced_only else A[rows] @ q
            return rows[np.argsort(-sims, kind="stable")]
        rows, sims = _ranked(searcher, fitted, A, q, wanted, reduced_only)
    return rows


def cost_section(data: Clothing, method) -> dict:
    """The neighbour graph from the engine's LSH search, and what an added image makes an update recompute."""
    config = EngineConfig()
    k = method.k_dba
    v = prepare(data.embeddings, data.embeddings.mean(0), method.power)
    n = len(v)
    exact_nb, exact_ns = nearest_neighbours(v, 100)
    # the graph from the engine's own LSH path (an index fitted on the prepared, not yet augmented, vectors)
    fitted = fit_index(v, config)
    snap, searchers = _searchers(fitted, v)
    lsh = searchers["LSH path (forced)"]
    started = time.perf_counter()
    lsh_nb = np.full((n, k), -1, np.int64)
    lsh_ns = np.full((n, k), np.nan, np.float32)
    for i in range(n):
        ranking = lsh.search(snap.codes[i], snap.vectors[i].astype(np.float32), k + 1 + RESCORE_MARGIN)
        rows = ranking.ids[ranking.ids != i]
        sims = v[rows] @ v[i]
        order = np.argsort(-sims, kind="stable")[:k]
        lsh_nb[i, : len(order)], lsh_ns[i, : len(order)] = rows[order], sims[order]
    per_image_ms = (time.perf_counter() - started) * 1000 / n
    recall = float(np.mean([len(set(lsh_nb[i]) & set(exact_nb[i, :k])) / k for i in range(n)]))
    # ranking with either graph (naive protocol, cross-sender, the same for both)
    queries = data.queries
    allowed = allowed_mask(data, queries, data.usable, cross_sender=True)
    figures = {}
    for name, (nb, ns) in {"exact graph": (exact_nb, exact_ns), "LSH graph": (lsh_nb, lsh_ns)}.items():
        A = augment(v, nb, ns, k=k, alpha=method.alpha_dba)
        sims = v[queries] @ A.T
        masked = np.where(allowed, sims, -np.inf)
        top = np.argpartition(-masked, method.k_qe, axis=1)[:, : method.k_qe]
        qv = weighted_mean(v[queries], A[top], np.take_along_axis(masked, top, axis=1), method.alpha_qe)
        figures[name] = float(map10(*_hits(data, queries, qv @ A.T, allowed)).mean())
    # an added image x changes the augmented vectors of the rows that list x among their k neighbours
    # (its reverse neighbours); how deep in x's own ranking do they sit?
    counts = np.bincount(exact_nb[:, :k].ravel(), minlength=n)
    ranks = []
    for start in range(0, n, 1024):
        rows = np.arange(start, min(start + 1024, n))
        sims = v[exact_nb[rows, :k].ravel()] @ v.T  # each listed x against everything
        listed_by = np.repeat(rows, k)
        own = sims[np.arange(len(listed_by)), listed_by]
        sims[np.arange(len(listed_by)), exact_nb[rows, :k].ravel()] = -np.inf  # x is not its own neighbour
        ranks.append((sims > own[:, None]).sum(axis=1) + 1)
    ranks = np.concatenate(ranks)
    found = {depth: float(np.mean(ranks <= depth)) for depth in (10, 20, 50, 100, 200, 500, 1000)}
    out = {
        "graph_recall_at_k": recall,
        "graph_search_ms_per_image": per_image_ms,
        "map10_exact_graph": figures["exact graph"],
        "map10_lsh_graph": figures["LSH graph"],
        "reverse_neighbours_mean": float(counts.mean()),
        "reverse_neighbours_p99": float(np.percentile(counts, 99)),
        "reverse_neighbours_max": int(counts.max()),
        "reverse_neighbours_within_top": found,
        "reverse_neighbour_deepest_rank": int(ranks.max()),
    }
    print(f"\nneighbour graph (k={k}) from the LSH path: recall@{k} of the exact graph {recall:.4f}, "
          f"{per_image_ms:.2f} ms per image here")
    print(f"cross-sender mAP@10 (naive protocol) with the exact graph {figures['exact graph']:.4f}, "
          f"with the LSH graph {figures['LSH graph']:.4f}")
    print(f"an added image enters the neighbour lists of {counts.mean():.1f} rows on average "
          f"(p99 {out['reverse_neighbours_p99']:.0f}, max {counts.max()})"
          + "; within its own top " + ", ".join(f"{d}: {100 * f:.2f} %" for d, f in found.items())
          + f" (deepest rank {ranks.max()})")
    return out


def order_section(data: Clothing, method, calibration_file) -> dict:
    """How often the shown (calibrated) score is out of step with the ranking's order, in the top 10."""
    from swimsearch.calibration import BAND_PERCENT, load_calibration

    calibration = load_calibration(calibration_file)
    v = prepare(data.embeddings, data.embeddings.mean(0), method.power)
    nb, ns = nearest_neighbours(v, method.k_dba)
    A = augment(v, nb, ns, k=method.k_dba, alpha=method.alpha_dba)
    queries = data.queries
    allowed = allowed_mask(data, queries, data.usable, cross_sender=True)
    rankings = {}
    base = np.where(allowed, v[queries] @ v.T, -np.inf)
    rankings["exact cosine"] = np.argsort(-base, axis=1)[:, :100]
    sims = np.where(allowed, v[queries] @ A.T, -np.inf)
    top = np.argpartition(-sims, method.k_qe, axis=1)[:, : method.k_qe]
    qv = weighted_mean(v[queries], A[top], np.take_along_axis(sims, top, axis=1), method.alpha_qe)
    rankings[method.name] = np.argsort(-np.where(allowed, qv @ A.T, -np.inf), axis=1)[:, :100]
    n_relevant = relevant_counts(data, queries, allowed)
    out = {}
    edges = np.array(BAND_PERCENT[:-1])
    for name, ranked in rankings.items():
        pct = calibration.similarity_rows(data.embeddings[queries], data.embeddings, ranked)
        for fix in (False, True):
            p = pct
            order = np.broadcast_to(np.arange(p.shape[1]), p.shape)
            if fix:  # band first (same design, very similar, similar, unrelated), ranking order inside a band
                level = (p[:, :, None] < edges).sum(axis=2)  # 0 = same design ... 3 = unrelated
                order = np.argsort(level, axis=1, kind="stable")
                p = np.take_along_axis(p, order, axis=1)
            shown_rows = np.take_along_axis(ranked, order, axis=1)
            ap = map10(data.label[shown_rows] == data.label[queries][:, None], n_relevant).mean()
            p = p[:, :10]
            level = (p[:, :, None] < edges).sum(axis=2)
            band_rise = (np.diff(level, axis=1) < 0).any(axis=1)  # a later result in a higher band
            rise = np.diff(p, axis=1)
            later_max = np.maximum.accumulate(p[:, ::-1], axis=1)[:, ::-1][:, 1:] - p[:, :-1]
            label = name + (", band first" if fix else "")
            out[label] = {"map10_cross_sender_naive": float(ap),
                          "queries_with_a_later_result_in_a_higher_band": float(band_rise.mean()),
                          "queries_with_a_rise_over_1_point": float((rise > 1.0).any(axis=1).mean()),
                          "queries_with_a_rise_over_5_points": float((rise > 5.0).any(axis=1).mean()),
                          "median_largest_rise_points": float(np.median(np.maximum(later_max.max(axis=1), 0))),
                          "median_top1_percent": float(np.median(p[:, 0]))}
            o = out[label]
            print(f"  {label}: mAP@10 {ap:.4f}; a later result in a higher band in {100 * o['queries_with_a_later_result_in_a_higher_band']:.1f} % "
                  f"of queries; a later score over 1 / 5 points higher in {100 * o['queries_with_a_rise_over_1_point']:.1f} / "
                  f"{100 * o['queries_with_a_rise_over_5_points']:.1f} %; median largest rise {o['median_largest_rise_points']:.1f} points")
    return out
