"""Retrieval quality measures: mAP@10, P@k, R@k, precision by rank, PR curve.

All measures work on a `hits` matrix: row i is query i's ranking, column r is
rank r+1, True where that result is relevant. The number of relevant gallery
items per query is passed separately, because a ranking cut at 100 results
does not show how many relevant items exist.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np


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


@dataclass(frozen=True)
class Labels:
    """A labelled image set: absolute paths, labels, and an optional exclusion group."""

    paths: tuple[str, ...]
    labels: np.ndarray  # int codes, one per path
    groups: np.ndarray | None  # int codes of the exclusion column, or None
    names: tuple[str, ...]  # label names, indexed by the codes

    def gallery_mask(self, query: int) -> np.ndarray:
        """Gallery items query `query` may be compared with: not itself, not its group."""
        mask = np.ones(len(self.paths), dtype=bool)
        if self.groups is not None:
            mask &= self.groups != self.groups[query]
        mask[query] = False
        return mask

    def relevant_counts(self) -> np.ndarray:
        """How many relevant (same label, allowed) gallery items each query has."""
        counts = np.empty(len(self.paths), dtype=np.int64)
        for i in range(len(self.paths)):
            counts[i] = int(((self.labels == self.labels[i]) & self.gallery_mask(i)).sum())
        return counts


def read_labels(
    csv_path: str | os.PathLike,
    *,
    root: str | os.PathLike | None = None,
    path_column: str | None = None,
    label_column: str = "label",
    exclude_column: str | None = None,
    filter_column: str | None = None,
) -> Labels:
    """Read a CSV of image paths and labels.

    Args:
        csv_path: the CSV file (header row required).
        root: folder that relative paths are resolved against (default: the CSV's folder).
        path_column: column with the image path (default: 'path', else 'filename', else the first).
        label_column: column with the label.
        exclude_column: optional column; gallery items sharing it with the query are dropped
            (e.g. the clothing set's `sender_id`).
        filter_column: optional column; rows where it reads false/0/no are skipped
            (e.g. the clothing set's `usable`).
    """
    csv_path = Path(csv_path)
    root = Path(root) if root is not None else csv_path.parent
    with open(csv_path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        columns = reader.fieldnames or []
        if path_column is None:
            path_column = next((c for c in ("path", "filename", "file") if c in columns), columns[0] if columns else "")
        for needed in (path_column, label_column, exclude_column, filter_column):
            if needed and needed not in columns:
                raise ValueError(f"{csv_path} has no column '{needed}' (columns: {', '.join(columns)})")
        rows = [
            r
            for r in reader
            if not filter_column or str(r[filter_column]).strip().lower() not in ("false", "0", "no", "")
        ]
    paths = tuple(str((root / r[path_column]).resolve()) for r in rows)
    names, labels = np.unique([r[label_column] for r in rows], return_inverse=True)
    groups = None
    if exclude_column:
        _, groups = np.unique([r[exclude_column] for r in rows], return_inverse=True)
    return Labels(paths=paths, labels=labels, groups=groups, names=tuple(str(n) for n in names))


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
