"""Retrieval quality measures: mAP@10, P@k, R@k, precision by rank, PR curve.

All measures work on a `hits` matrix: row i is query i's ranking, column r is
rank r+1, True where that result is relevant. The number of relevant gallery
items per query is passed separately, because a ranking cut at 100 results
does not show how many relevant items exist.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from .inputs import Labels

log = logging.getLogger(__name__)


def average_precision(hits: np.ndarray, n_relevant: np.ndarray, k: int = 10) -> np.ndarray:
    """Per-query AP@k, normalised by min(n_relevant, k) (0 where nothing is relevant)."""
    hits = np.asarray(hits[:, :k], dtype=np.float64)
    ranks = np.arange(1, hits.shape[1] + 1)
    precision_at = np.cumsum(hits, axis=1) / ranks
    denom = np.minimum(np.asarray(n_relevant, dtype=np.float64), k)
    total = (precision_at * hits).sum(axis=1)
    return np.divide(total, denom, out=np.zeros_like(total), where=denom > 0)


def precision_by_rank(hits: np.ndarray, max_rank: int = 100) -> np.ndarray:
    """Mean precision at each rank 1..max_rank over queries."""
    hits = np.asarray(hits[:, :max_rank], dtype=np.float64)
    return (np.cumsum(hits, axis=1) / np.arange(1, hits.shape[1] + 1)).mean(axis=0)


def recall_by_rank(hits: np.ndarray, n_relevant: np.ndarray, max_rank: int = 100) -> np.ndarray:
    """Mean recall at each rank 1..max_rank over queries that have relevant items."""
    hits = np.asarray(hits[:, :max_rank], dtype=np.float64)
    n_relevant = np.asarray(n_relevant, dtype=np.float64)
    keep = n_relevant > 0
    return (np.cumsum(hits[keep], axis=1) / n_relevant[keep, None]).mean(axis=0)


@dataclass(frozen=True)
class QualityReport:
    """Retrieval quality of one method over a query set."""

    map10: float
    p1: float
    p10: float
    r100: float
    precision_at: tuple[float, ...]  # rank 1..100
    recall_at: tuple[float, ...]  # rank 1..100
    queries: int

    def as_dict(self) -> dict:
        return {
            "queries": self.queries,
            "map@10": self.map10,
            "p@1": self.p1,
            "p@10": self.p10,
            "r@100": self.r100,
            "precision_by_rank": list(self.precision_at),
            "recall_by_rank": list(self.recall_at),
        }


def quality(hits: np.ndarray, n_relevant: np.ndarray, max_rank: int = 100) -> QualityReport:
    """mAP@10, P@1, P@10, R@100 and the curves for a hits matrix."""
    n_relevant = np.asarray(n_relevant)
    precision_at = precision_by_rank(hits, max_rank)
    recall_at = recall_by_rank(hits, n_relevant, max_rank)
    return QualityReport(
        map10=float(average_precision(hits, n_relevant, 10).mean()),
        p1=float(precision_at[0]),
        p10=float(precision_at[min(9, len(precision_at) - 1)]),
        r100=float(recall_at[min(99, len(recall_at) - 1)]),
        precision_at=tuple(float(v) for v in precision_at),
        recall_at=tuple(float(v) for v in recall_at),
        queries=len(hits),
    )


def exact_cosine_hits(vectors: np.ndarray, labels: Labels, max_rank: int = 100, chunk: int = 512) -> np.ndarray:
    """Hits matrix of exact cosine ranking of `vectors` (rows already L2-normalised)."""
    n = len(vectors)
    hits = np.zeros((n, max_rank), dtype=bool)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        sims = vectors[start:stop] @ vectors.T
        for row, q in enumerate(range(start, stop)):
            s = sims[row]
            s[~labels.gallery_mask(q)] = -np.inf
            top = np.argpartition(-s, max_rank)[:max_rank]
            top = top[np.argsort(-s[top], kind="stable")]
            hits[q] = (labels.labels[top] == labels.labels[q]) & np.isfinite(s[top])
    return hits
