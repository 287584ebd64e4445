"""Retrieval quality measures: mAP@10, P@k, R@k, precision by rank, PR curve.

All measures work on a `hits` matrix: row i is query i's ranking, column r is
rank r+1, True where that result is relevant. The number of relevant gallery
items per query is passed separately, because a ranking cut at 100 results
does not show how many relevant items exist.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .inputs import read_path_list


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


# --- `swimsearch eval` ----------------------------------------------------------------


def add_eval_arguments(parser) -> None:
    """Arguments of `swimsearch eval`."""
    parser.add_argument("--catalogue", required=True)
    parser.add_argument("--labels", required=True, metavar="LABELS.csv", help="CSV with an image path column and a label column")
    parser.add_argument("--queries", metavar="LIST", help="only these images as queries (one path per line)")
    parser.add_argument("--path-column", help="column with the image path (default: path, else filename)")
    parser.add_argument("--group-column", default="label", help="column whose equal values are relevant (default: %(default)s)")
    parser.add_argument(
        "--exclude-column", help="drop gallery images sharing this column with the query (e.g. sender_id)"
    )
    parser.add_argument("--filter-column", help="leave out rows where this column is false/0/no (e.g. usable)")
    parser.add_argument("--keep-unlabelled", action="store_true", help="count catalogue images without a label as wrong answers")
    parser.add_argument("--plot", metavar="OUT.png", help="draw the PR curve and precision by rank")
    parser.add_argument("--json", metavar="OUT", help="write all figures as JSON ('-' for stdout)")
    parser.add_argument("--mirror", action="store_true", help="also search the mirrored query")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N queries (quick look)")


def _percentile(values, q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if len(values) else float("nan")


def run_eval(args, config, embedder, open_catalogue) -> int:
    """Rank every labelled catalogue image against the others; print and save the figures."""
    from .search import SearchEngine

    labels = read_labels(
        args.labels,
        path_column=args.path_column,
        label_column=args.group_column,
        exclude_column=args.exclude_column,
        filter_column=args.filter_column,
    )
    with open_catalogue(args.catalogue) as catalogue:
        engine = SearchEngine(catalogue, embedder, config)
        root = catalogue.root.resolve()
        by_relpath = {}
        for i, path in enumerate(labels.paths):
            try:
                by_relpath[Path(path).resolve().relative_to(root).as_posix()] = i
            except ValueError:
                continue
        ids = engine.snapshot.ids if engine.snapshot is not None else np.empty(0, np.int64)
        records = catalogue.records(ids)
        label_of_id = {int(i): by_relpath.get(records[int(i)].relpath) for i in ids}
        in_catalogue = np.zeros(len(labels.paths), dtype=bool)
        for index in label_of_id.values():
            if index is not None:
                in_catalogue[index] = True
        queries = np.flatnonzero(in_catalogue)
        if args.queries:
            wanted = {str(Path(p).resolve()) for p in read_path_list(args.queries)}
            queries = np.array([q for q in queries if labels.paths[q] in wanted], dtype=np.int64)
        if args.limit:
            queries = queries[: args.limit]
        if len(queries) == 0:
            print("swimsearch: no labelled image of the CSV is in this catalogue", file=sys.stderr)
            return 1
        largest_group = int(np.bincount(labels.groups).max()) if labels.groups is not None else 0
        # Search deep enough that 100 gallery images remain after skipping the
        # query, its excluded group, and catalogue images the CSV leaves out.
        unlabelled = 0 if args.keep_unlabelled else sum(1 for index in label_of_id.values() if index is None)
        depth = 100 + largest_group + unlabelled + 1
        hits = np.zeros((len(queries), 100), dtype=bool)
        n_relevant = np.zeros(len(queries), dtype=np.int64)
        embed_ms, search_ms = [], []
        started = time.perf_counter()
        for row, q in enumerate(queries):
            result = engine.search(labels.paths[q], top_n=depth)
            embed_ms.append(result.embed_ms)
            search_ms.append(result.search_ms)
            allowed = labels.gallery_mask(q) & in_catalogue
            n_relevant[row] = int((allowed & (labels.labels == labels.labels[q])).sum())
            ranked = []
            for m in result.matches:
                index = label_of_id.get(m.image_id)
                if index is None:
                    if args.keep_unlabelled and m.image_id != result.query_image_id:
                        ranked.append(False)
                elif allowed[index]:
                    ranked.append(bool(labels.labels[index] == labels.labels[q]))
                if len(ranked) == 100:
                    break
            hits[row, : len(ranked)] = ranked
            if sys.stderr.isatty() and (row % 25 == 0 or row == len(queries) - 1):
                print(f"\reval {row + 1}/{len(queries)}", end="", file=sys.stderr, flush=True)
        if sys.stderr.isatty():
            print(file=sys.stderr)
        report = quality(hits, n_relevant)
        total_ms = np.asarray(embed_ms) + np.asarray(search_ms)
        figures = {
            "catalogue": str(catalogue.path),
            "labels": str(args.labels),
            "exclude_column": args.exclude_column,
            "searchable_images": len(engine),
            "method": engine.searcher.__class__.__name__,
            "mirror": config.mirror,
            **report.as_dict(),
            "embed_ms": {"median": _percentile(embed_ms, 50), "p95": _percentile(embed_ms, 95)},
            "search_ms": {"median": _percentile(search_ms, 50), "p95": _percentile(search_ms, 95)},
            "total_ms": {"median": _percentile(total_ms, 50), "p95": _percentile(total_ms, 95)},
            "seconds": time.perf_counter() - started,
        }
    print(f"queries     {report.queries}  (catalogue {figures['searchable_images']} images, {figures['method']})")
    print(f"mAP@10      {report.map10:.4f}")
    print(f"P@1         {report.p1:.4f}")
    print(f"P@10        {report.p10:.4f}")
    print(f"R@100       {report.r100:.4f}")
    for name in ("embed_ms", "search_ms", "total_ms"):
        print(f"{name:11s} median {figures[name]['median']:.1f}  p95 {figures[name]['p95']:.1f}")
    if args.json:
        text = json.dumps(figures, indent=2)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n")
    if args.plot:
        from .plot import draw_quality_plot

        draw_quality_plot(report, args.plot, title=f"{Path(args.labels).parent.name}: {report.queries} queries")
        print(f"plot        {args.plot}")
    return 0
