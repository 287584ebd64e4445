"""Ranking above exact cosine on the clothing set: DBA, alpha-QE, power normalisation, honestly measured.

Every figure comes with its same-run baseline (exact cosine on embeddings
centred on the catalogue's mean, the 0.5249 of today's pipeline) and a ratio
to it. Protocols (see docs/QUALITY_RESEARCH.md for why each exists):

  naive        the query is a catalogue photo, so DBA lets its own vector
               pull its neighbours' augmented vectors towards it (leaks);
  LOO          leak-free leave-one-out: the neighbours' augmented vectors are
               recomputed as if the query were not in the catalogue (the
               query's sender's other photos stay, as in a real catalogue);
  LOSO         leak-free leave-one-sender-out: the query's whole sender is in
               neither the gallery nor the DBA graph (the cross-sender
               protocol taken literally);
  halves       catalogue = the photos of half the senders (DBA on it alone),
               queries = the other half; both ways round;
  +distractors the 358 unlabelled photos join the gallery as wrong answers.

The --pipeline section runs the recommended method through the engine's own
pieces (fit_index on the augmented vectors, snapshot_from_embeddings,
ExactSearch and LshSearch with the LSH path forced) on the sender halves,
beside today's pipeline on the raw vectors. --cost measures the neighbour
graph taken from the engine's LSH search (recall, ranking, time per image)
and what an added image forces an update to recompute.

    cd bench && nice -n 10 python bench_ranking.py [--quick] [--pipeline] [--cost] | [--grid] | [--only pipeline|cost]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass

import numpy as np

from clothing_data import Clothing, allowed_mask, hits_from_sims, load, map10, relevant_counts
from common import save, table

from swimsearch.augment import augment, augment_rows, nearest_neighbours, power_normalise, prepare, weighted_mean

GRAPH_DEPTH = 64


@dataclass(frozen=True)
class Method:
    name: str
    k_dba: int = 0
    alpha_dba: float = 3.0
    k_qe: int = 0
    alpha_qe: float = 1.0
    power: float = 1.0


BASELINE = Method("exact cosine (catalogue mean)")
RECOMMENDED = Method("DBA k5 a3 + QE k5 a1", k_dba=5, alpha_dba=3.0, k_qe=5, alpha_qe=1.0)
METHODS = (
    BASELINE,
    Method("power 0.5, exact cosine", power=0.5),
    Method("DBA k5 a3", k_dba=5, alpha_dba=3.0),
    Method("QE k5 a1", k_qe=5, alpha_qe=1.0),
    RECOMMENDED,
)
#: --grid: the sweep that chose RECOMMENDED (LOSO only; slow).
GRID = tuple(
    Method(f"DBA k{kd} a{ad:g} + QE k{kq} a{aq:g}", k_dba=kd, alpha_dba=ad, k_qe=kq, alpha_qe=aq)
    for kd, ad in ((0, 3.0), (3, 3.0), (5, 1.0), (5, 3.0), (5, 5.0), (7, 3.0), (10, 3.0))
    for kq, aq in ((0, 1.0), (3, 1.0), (5, 0.0), (5, 1.0), (5, 3.0), (10, 1.0))
)


class Ranker:
    """Augmented catalogue of one method over catalogue rows `members`, with leak-free variants."""

    def __init__(self, data: Clothing, method: Method, members: np.ndarray, mean: np.ndarray):
        self.data, self.method = data, method
        self.members = members  # bool (n,): rows in the catalogue (DBA graph and gallery candidates)
        self.v = prepare(data.embeddings, mean, method.power)
        inside = np.flatnonzero(members)
        nb_local, self.ns = nearest_neighbours(self.v[inside], GRAPH_DEPTH)
        self.nb = np.where(nb_local >= 0, inside[np.maximum(nb_local, 0)], -1)
        self.rows = inside
        self.A = self.v.copy()
        self.A[inside] = augment_rows(self.v, inside, self._full(self.nb), self._full(self.ns), k=method.k_dba, alpha=method.alpha_dba)

    def _full(self, local: np.ndarray) -> np.ndarray:
        out = np.full((len(self.data.names),) + local.shape[1:], -1 if local.dtype.kind == "i" else np.nan, local.dtype)
        out[self.rows] = local
        return out

    def without(self, removed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows whose augmented vector changes when `removed` rows leave the catalogue, and their new vectors."""
        k = self.method.k_dba
        if k == 0:
            return np.empty(0, np.int64), np.empty((0, self.v.shape[1]), np.float32)
        gone = np.zeros(len(self.data.names), bool)
        gone[removed] = True
        listed = gone[np.maximum(self.nb[:, :k], 0)] & (self.nb[:, :k] >= 0)
        local = np.flatnonzero(listed.any(axis=1) & ~gone[self.rows])
        if len(local) == 0:
            return np.empty(0, np.int64), np.empty((0, self.v.shape[1]), np.float32)
        nb, ns = self.nb[local], self.ns[local]
        keep = ~gone[np.maximum(nb, 0)] & (nb >= 0)
        order = np.argsort(~keep, axis=1, kind="stable")[:, :k]
        fnb = np.where(np.take_along_axis(keep, order, axis=1), np.take_along_axis(nb, order, axis=1), -1)
        fns = np.take_along_axis(ns, order, axis=1)
        if (keep.sum(axis=1) < k).any():  # ran past the stored depth: recompute exactly
            short = np.flatnonzero(keep.sum(axis=1) < k)
            for i in short:
                sims = self.v[self.rows] @ self.v[self.rows[local[i]]]
                sims[gone[self.rows] | (self.rows == self.rows[local[i]])] = -np.inf
                top = np.argsort(-sims)[:k]
                fnb[i], fns[i] = self.rows[top], sims[top]
        fixed = weighted_mean(self.v[self.rows[local]], self.v[np.maximum(fnb, 0)], np.where(fnb >= 0, fns, np.nan),
                              self.method.alpha_dba)
        return self.rows[local], fixed

    def sims(self, queries: np.ndarray, allowed: np.ndarray, fixes: list | None) -> np.ndarray:
        """(len(queries), n) final similarities (after QE), with per-query fixes (rows, vectors) or None."""
        qv = self.v[queries]
        sims = qv @ self.A.T
        self._apply(sims, qv, fixes)
        if self.method.k_qe:
            masked = np.where(allowed, sims, -np.inf)
            top = np.argpartition(-masked, self.method.k_qe, axis=1)[:, : self.method.k_qe]
            top_sims = np.take_along_axis(masked, top, axis=1)
            others = self.A[top]
            if fixes is not None:
                for i, fix in enumerate(fixes):
                    if fix is not None and len(fix[0]):
                        where = {int(r): j for j, r in enumerate(fix[0])}
                        for j, r in enumerate(top[i]):
                            if int(r) in where:
                                others[i, j] = fix[1][where[int(r)]]
            qv = weighted_mean(qv, others, np.where(np.isfinite(top_sims), top_sims, np.nan), self.method.alpha_qe)
            sims = qv @ self.A.T
            self._apply(sims, qv, fixes)
        return sims

    @staticmethod
    def _apply(sims, qv, fixes):
        if fixes is None:
            return
        for i, fix in enumerate(fixes):
            if fix is not None and len(fix[0]):
                sims[i, fix[0]] = fix[1] @ qv[i]


def score(data: Clothing, queries, sims, allowed) -> np.ndarray:
    hits = hits_from_sims(data, queries, sims, allowed)
    return map10(hits, relevant_counts(data, queries, allowed))


def run_protocol(data: Clothing, method: Method, protocol: str, distractors: bool = False) -> np.ndarray:
    """Per-query AP@10 of one method under one protocol (queries: all usable photos, or one half's)."""
    n = len(data.names)
    everything = np.ones(n, bool)
    gallery = data.usable | (data.unlabelled if distractors else False)
    cross = protocol != "same naive" and protocol != "same LOO"
    if protocol == "halves":
        aps = []
        for half, other in (data.sender_halves(), data.sender_halves()[::-1]):
            members = half | (data.unlabelled if distractors else False)
            ranker = Ranker(data, method, members, power_normalise(data.embeddings[members], method.power).mean(0))
            queries = np.flatnonzero(other & data.usable)
            allowed = allowed_mask(data, queries, gallery & members, cross_sender=True)
            aps.append(score(data, queries, ranker.sims(queries, allowed, None), allowed))
        return np.concatenate(aps)
    ranker = Ranker(data, method, everything, power_normalise(data.embeddings, method.power).mean(0))
    queries = data.queries
    allowed = allowed_mask(data, queries, gallery, cross_sender=cross)
    if protocol.endswith("naive") or method.k_dba == 0 and protocol != "LOSO":
        return score(data, queries, ranker.sims(queries, allowed, None), allowed)
    if protocol.endswith("LOO"):
        fixes = [ranker.without(np.array([q])) for q in queries]
        return score(data, queries, ranker.sims(queries, allowed, fixes), allowed)
    if protocol == "LOSO":
        sims = np.empty((len(queries), n), np.float32)
        for s in np.unique(data.sender[queries]):
            at = np.flatnonzero(data.sender[queries] == s)
            fix = ranker.without(np.flatnonzero(data.sender == s)) if method.k_dba else None
            sims[at] = ranker.sims(queries[at], allowed[at], None if fix is None else [fix] * len(at))
        return score(data, queries, sims, allowed)
    raise ValueError(protocol)


PROTOCOLS = ("cross naive", "cross LOO", "LOSO", "halves", "same naive", "same LOO")


def ranking_section(data: Clothing, methods, protocols, distractor_protocols) -> list[dict]:
    rows = []
    baselines: dict = {}
    for protocol, distractors in [(p, False) for p in protocols] + [(p, True) for p in distractor_protocols]:
        label = protocol + (" +distractors" if distractors else "")
        for method in methods:
            started = time.perf_counter()
            aps = run_protocol(data, method, protocol, distractors)
            if method is BASELINE:
                baselines[label] = aps
            base = baselines[label]
            rows.append({"protocol": label, "method": method.name, "map10": float(aps.mean()),
                         "ratio": float(aps.mean() / base.mean()), "seconds": time.perf_counter() - started,
                         "per_query": aps})
            print(f"  {label:26s} {method.name:34s} mAP@10 {aps.mean():.4f}  x{aps.mean() / base.mean():.4f}"
                  f"  ({time.perf_counter() - started:.0f} s)", flush=True)
    return rows


def per_label(data: Clothing, rows: list[dict], protocol: str, method: Method) -> list[dict]:
    """mAP@10 per label of the recommended method against the baseline, under one protocol."""
    base = next(r["per_query"] for r in rows if r["protocol"] == protocol and r["method"] == BASELINE.name)
    new = next(r["per_query"] for r in rows if r["protocol"] == protocol and r["method"] == method.name)
    if len(base) != len(data.queries):
        return []
    out = []
    labels = data.label[data.queries]
    for code, name in enumerate(data.label_names):
        mask = labels == code
        out.append({"label": f"{name} ({mask.sum()})", "baseline": float(base[mask].mean()), "new": float(new[mask].mean()),
                    "ratio": float(new[mask].mean() / max(base[mask].mean(), 1e-9))})
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--embeddings", default=None, help="embedding cache (default: the shared fp32 cache)")
    parser.add_argument("--quick", action="store_true", help="baseline and the recommended method only")
    parser.add_argument("--pipeline", action="store_true", help="also run the engine's own index on the sender halves")
    parser.add_argument("--cost", action="store_true", help="also measure the LSH neighbour graph and update cost")
    parser.add_argument("--only", choices=("pipeline", "cost", "order"), help="skip the protocol table")
    parser.add_argument("--order", metavar="CALIBRATION.json", help="also measure how often shown scores rise down the list")
    parser.add_argument("--grid", action="store_true", help="sweep DBA/QE settings under LOSO instead (slow)")
    args = parser.parse_args()
    data = load() if args.embeddings is None else load(args.embeddings)
    print(f"{len(data.queries)} usable labelled photos, {int(data.unlabelled.sum())} unlabelled, "
          f"{len(np.unique(data.sender[data.queries]))} senders", flush=True)
    results: dict = {}
    if args.grid:
        rows = ranking_section(data, (BASELINE,) + GRID, ("LOSO",), ())
        results["grid"] = [{k: v for k, v in r.items() if k != "per_query"} for r in rows]
    elif args.only is None:
        methods = (BASELINE, RECOMMENDED) if args.quick else METHODS
        rows = ranking_section(data, methods, PROTOCOLS, ("LOSO", "same LOO"))
        print()
        print(table(rows, [("method", "method", ""), ("protocol", "protocol", ""), ("map10", "mAP@10", ".4f"),
                           ("ratio", "x baseline", ".4f")]))
        for protocol in ("LOSO", "same LOO"):
            labels = per_label(data, rows, protocol, RECOMMENDED)
            print(f"\nper label, {protocol}: {RECOMMENDED.name} against {BASELINE.name}")
            print(table(labels, [("label", "label (queries)", ""), ("baseline", "baseline", ".4f"), ("new", "new", ".4f"),
                                 ("ratio", "ratio", ".3f")]))
            results[f"per_label {protocol}"] = labels
        results["ranking"] = [{k: v for k, v in r.items() if k != "per_query"} for r in rows]
    if args.pipeline or args.only == "pipeline":
        from ranking_pipeline import pipeline_section

        results["pipeline"] = pipeline_section(data, RECOMMENDED, BASELINE)
    if args.cost or args.only == "cost":
        from ranking_pipeline import cost_section

        results["cost"] = cost_section(data, RECOMMENDED)
    if args.order:
        from ranking_pipeline import order_section

        results["order"] = order_section(data, RECOMMENDED, args.order)
    path = save("ranking-grid" if args.grid else "ranking" if args.only is None else f"ranking-{args.only}", results)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
