"""What `swimsearch eval` and bench/bench_quality.py set beside a catalogue's own search.

* **exact cosine**: every labelled catalogue image ranked by the cosine of
  its embedding centred on the catalogue's mean: the ceiling of the pipeline
  before issue 11, and the baseline of docs/QUALITY_RESEARCH.md;
* **the earlier search** (without neighbour lists, as before issue 11): the
  same catalogue indexed in memory as it was then (``vectors="embeddings"``: the index fitted on the
  raw embeddings, one search, no query expansion, no pHash candidates),
  searched by the same engine, so the two differ only in the method.

Each is judged by the same rules as `evaluate` (evaluation.py): with the
labels' exclusion groups (cross-sender for the clothing set), without them
(same-sender), and per label.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Callable, Sequence

import numpy as np

from .evaluation import EvalReport, chosen_queries, evaluate, per_label_map10
from .index import fit_index, snapshot_from_embeddings
from .inputs import Labels
from .metrics import exact_cosine_hits, quality
from .search import SearchEngine
from .searchers import choose_searcher

log = logging.getLogger(__name__)

#: Names of the compared methods, in the order they are reported.
#: The second is the search before issue 11, named as a user knows it (README: each image's neighbour list).
METHODS = ("this catalogue's search", "the earlier search (without neighbour lists)", "exact cosine")


def baseline_engine(engine: SearchEngine, *, graph: bool = False) -> SearchEngine:
    """The engine's catalogue searched by the pipeline before issue 11 (its index made in memory;
    `graph`: with its candidates from an HNSW graph, as above 20,000 images)."""
    config = engine.config.with_changes(vectors="embeddings", phash_radius=-1)
    ids = engine.searchable_ids()
    stored = engine.reader.embedding_matrix(ids.tolist())
    sample = stored.vectors[np.sort(np.random.default_rng(config.seed).permutation(len(ids))[: config.fit_sample])]
    fitted = fit_index(sample, config, count=len(ids))
    snapshot = snapshot_from_embeddings(fitted, stored.ids, stored.vectors)
    if graph:
        from .graph import VectorGraph

        snapshot = replace(snapshot, graph=VectorGraph.build(snapshot.ids, snapshot.vectors))
        config = config.with_changes(exact_below=0, graph_from=0)
    baseline = SearchEngine(engine.reader, engine.embedder, config, searcher=choose_searcher(snapshot, config))
    baseline.picture_check.enabled = False  # no look at the pictures before issue 11: bands from the embeddings
    return baseline


def exact_cosine(engine: SearchEngine, labels: Labels, queries: Sequence[str] | None = None, limit: int = 0) -> EvalReport:
    """Exact cosine ranking of the labelled catalogue images (embeddings centred on the catalogue's mean)."""
    started = time.perf_counter()
    image_of, rows = chosen_queries(engine, labels, queries, limit)
    inside = np.array(sorted(image_of), dtype=np.int64)  # label rows of catalogue images
    sub = replace(
        labels,
        paths=tuple(labels.paths[i] for i in inside),
        labels=labels.labels[inside],
        groups=None if labels.groups is None else labels.groups[inside],
    )
    everything = engine.reader.embedding_matrix(engine.searchable_ids().tolist()).vectors.astype(np.float64)
    stored = engine.reader.embedding_matrix([image_of[i] for i in inside])
    centred = stored.vectors.astype(np.float64) - everything.mean(axis=0)
    vectors = centred / np.maximum(np.linalg.norm(centred, axis=1, keepdims=True), 1e-12)
    chosen = np.searchsorted(inside, rows)
    reports = []
    for judged in [sub] + ([replace(sub, groups=None)] if sub.groups is not None else []):
        hits = exact_cosine_hits(vectors, judged, max_rank=min(100, max(len(inside) - 1, 1)))
        hits = np.pad(hits, ((0, 0), (0, 100 - hits.shape[1])))[chosen]
        reports.append((hits, judged.relevant_counts()[chosen]))
    return EvalReport(
        quality=quality(*reports[0]),
        searchable_images=len(engine),
        method="exact cosine",
        mirror=False,
        embed_ms=(),
        search_ms=(),
        seconds=time.perf_counter() - started,
        without_exclusions=quality(*reports[1]) if len(reports) > 1 else None,
        per_label=per_label_map10(*reports[0], sub.labels[chosen], labels.names),
    )


def compare(
    engine: SearchEngine,
    labels: Labels,
    queries: Sequence[str] | None = None,
    *,
    limit: int = 0,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, EvalReport]:
    """The catalogue's search, the earlier search and exact cosine on the same queries, by `METHODS` name."""
    def step(name: str) -> Callable[[int, int], None] | None:
        return None if progress is None else (lambda done, total: progress(name, done, total))

    out = {METHODS[0]: evaluate(engine, labels, queries, limit=limit, progress=step("this catalogue"))}
    out[METHODS[1]] = evaluate(baseline_engine(engine), labels, queries, limit=limit, progress=step("the earlier search"))
    out[METHODS[2]] = exact_cosine(engine, labels, queries, limit)
    return out


def ratio(reports: dict[str, EvalReport], name: str, *, same_sender: bool = False) -> float:
    """mAP@10 of a method over exact cosine's."""
    def map10(report: EvalReport) -> float:
        judged = report.without_exclusions if same_sender else report.quality
        return float("nan") if judged is None else judged.map10

    base = map10(reports[METHODS[2]])
    return map10(reports[name]) / base if base > 0 else float("nan")

