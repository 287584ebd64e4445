"""Retrieval quality of a catalogue's search on a labelled image set: `evaluate()`.

Every labelled catalogue image is searched for in turn, exactly as a user's
query is (embedding, index, rescoring), and its ranking is judged against the
labels: same label is right, the query itself and its exclusion group (e.g.
the same sender) are left out. Reading the labels is `inputs.read_labels`,
the measures are `metrics`, and printing, JSON and plots are the caller's.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import numpy as np

from .inputs import Labels
from .metrics import QualityReport, average_precision, quality

log = logging.getLogger(__name__)

#: Ranks judged per query (the measures go up to R@100).
MAX_RANK = 100


class EvaluationError(ValueError):
    """Nothing to evaluate (the message is one plain sentence)."""


@dataclass(frozen=True)
class EvalReport:
    """Quality and timings of one evaluation run.

    Attributes:
        quality: mAP@10, P@k, R@100 and the curves.
        searchable_images: images in the searched catalogue.
        method: the searcher that ranked them (e.g. "ExactSearch", "LshSearch").
        mirror: queries were also searched mirrored.
        embed_ms, search_ms: per query, in query order.
        seconds: wall time of the searches.
        without_exclusions: the same rankings judged with no exclusion group
            (the query itself still left out): the same-sender figure where
            the groups are senders; None when the labels have no groups.
        per_label: mAP@10 of the queries of each label (by label name), as judged
            in `quality`.
    """

    quality: QualityReport
    searchable_images: int
    method: str
    mirror: bool
    embed_ms: tuple[float, ...]
    search_ms: tuple[float, ...]
    seconds: float
    without_exclusions: QualityReport | None = None
    per_label: dict[str, float] = field(default_factory=dict)

    @property
    def total_ms(self) -> tuple[float, ...]:
        return tuple(e + s for e, s in zip(self.embed_ms, self.search_ms))

    def timing(self, name: str) -> dict[str, float]:
        """Median and 95th percentile of "embed_ms", "search_ms" or "total_ms"."""
        values = np.asarray(getattr(self, name), dtype=np.float64)
        if not len(values):
            return {"median": float("nan"), "p95": float("nan")}
        return {"median": float(np.percentile(values, 50)), "p95": float(np.percentile(values, 95))}

    def as_dict(self) -> dict:
        """The figures as plain JSON-ready values."""
        return {
            "searchable_images": self.searchable_images,
            "method": self.method,
            "mirror": self.mirror,
            **self.quality.as_dict(),
            "without_exclusions": None if self.without_exclusions is None else self.without_exclusions.as_dict(),
            "per_label_map@10": self.per_label,
            **{name: self.timing(name) for name in ("embed_ms", "search_ms", "total_ms")},
            "seconds": self.seconds,
        }


class _EngineView(NamedTuple):
    root: Path  # the catalogue's folder, resolved
    images: list[tuple[int, str]]  # (image id, path relative to root) of every searchable image
    method: str
    mirror: bool


def _engine_view(engine) -> _EngineView:
    """What evaluation needs of the engine beyond `search()`, through its public methods."""
    ids = engine.searchable_ids()
    records = engine.records(ids)
    images = [(int(i), records[int(i)].relpath) for i in ids]
    return _EngineView(engine.root.resolve(), images, engine.searcher_name, engine.config.mirror)


def evaluate(
    engine,
    labels: Labels,
    queries: Sequence[str | os.PathLike] | None = None,
    *,
    keep_unlabelled: bool = False,
    limit: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> EvalReport:
    """Search for every labelled catalogue image and measure the rankings against the labels.

    Args:
        engine: a `SearchEngine` with an embedder, over the catalogue to judge.
        labels: the labelled set (`inputs.read_labels`); images outside the catalogue are left out.
        queries: only these images as queries (paths; relative ones from the current folder).
        keep_unlabelled: count catalogue images without a label as wrong answers
            (default: skip them, as if the catalogue held only the labelled set).
        limit: use only the first `limit` queries (0: all).
        progress: called with (queries done, queries in all) after each query.

    Raises:
        EvaluationError: no labelled image of the set is a query in this catalogue.
        ImageError: a query image cannot be read.
    """
    view = _engine_view(engine)
    label_of_id = _labels_of_images(view, labels)
    in_catalogue = np.zeros(len(labels.paths), dtype=bool)
    in_catalogue[[index for index in label_of_id.values() if index is not None]] = True
    chosen = _choose_queries(labels, in_catalogue, queries, limit)
    if len(chosen) == 0:
        raise EvaluationError(_nothing_to_evaluate(view, labels, in_catalogue))
    unlabelled = 0 if keep_unlabelled else sum(1 for index in label_of_id.values() if index is None)
    depth = _search_depth(labels, unlabelled)
    protocols = [labels] + ([replace(labels, groups=None)] if labels.groups is not None else [])
    hits = np.zeros((len(protocols), len(chosen), MAX_RANK), dtype=bool)
    n_relevant = np.zeros((len(protocols), len(chosen)), dtype=np.int64)
    embed_ms, search_ms = [], []
    started = time.perf_counter()
    for row, q in enumerate(chosen):
        result = engine.search(labels.paths[q], top_n=depth)
        embed_ms.append(result.embed_ms)
        search_ms.append(result.search_ms)
        for p, judged in enumerate(protocols):
            allowed = judged.gallery_mask(q) & in_catalogue
            n_relevant[p, row] = int((allowed & (labels.labels == labels.labels[q])).sum())
            ranked = _judge(result, q, labels, allowed, label_of_id, keep_unlabelled)
            hits[p, row, : len(ranked)] = ranked
        if progress is not None:
            progress(row + 1, len(chosen))
    return EvalReport(
        quality=quality(hits[0], n_relevant[0]),
        searchable_images=len(view.images),
        method=view.method,
        mirror=view.mirror,
        embed_ms=tuple(embed_ms),
        search_ms=tuple(search_ms),
        seconds=time.perf_counter() - started,
        without_exclusions=quality(hits[1], n_relevant[1]) if len(protocols) > 1 else None,
        per_label=per_label_map10(hits[0], n_relevant[0], labels.labels[chosen], labels.names),
    )


def _nothing_to_evaluate(view: _EngineView, labels: Labels, in_catalogue: np.ndarray) -> str:
    """Why no query is left, saying where the labelled paths were looked for (relative ones from the CSV's folder)."""
    if in_catalogue.any():
        return "none of the queries is a labelled image of the CSV in this catalogue"
    if not labels.paths:
        return "the CSV labels no image"
    return (f"no labelled image of the CSV is in this catalogue of {view.root}: the CSV's paths were looked for "
            f"as written, relative ones from the CSV's folder (the first as {labels.paths[0]})")


def per_label_map10(hits: np.ndarray, n_relevant: np.ndarray, codes: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    """mAP@10 of each label's queries (averaged as `quality` averages all of them)."""
    ap = average_precision(hits, n_relevant, 10)
    return {names[int(c)]: float(ap[codes == c].mean()) for c in np.unique(codes)}


def chosen_queries(
    engine, labels: Labels, queries: Sequence[str | os.PathLike] | None = None, limit: int = 0
) -> tuple[dict[int, int], np.ndarray]:
    """Which labelled images are in the engine's catalogue (label row -> image id), and the label rows
    `evaluate` queries with (those, of `queries` if given, the first `limit`)."""
    label_of_id = _labels_of_images(_engine_view(engine), labels)
    image_of = {index: image_id for image_id, index in label_of_id.items() if index is not None}
    in_catalogue = np.zeros(len(labels.paths), dtype=bool)
    in_catalogue[list(image_of)] = True
    return image_of, _choose_queries(labels, in_catalogue, queries, limit)


def _labels_of_images(view: _EngineView, labels: Labels) -> dict[int, int | None]:
    """Each searchable image id -> its row in the labels (None: not labelled)."""
    by_relpath = {}
    for index, path in enumerate(labels.paths):
        try:
            by_relpath[Path(path).resolve().relative_to(view.root).as_posix()] = index
        except ValueError:  # labelled, but outside the catalogue's folder
            continue
    return {image_id: by_relpath.get(relpath) for image_id, relpath in view.images}


def _choose_queries(
    labels: Labels, in_catalogue: np.ndarray, queries: Sequence[str | os.PathLike] | None, limit: int
) -> np.ndarray:
    """Label rows to query with, in the labels' order: catalogue images, of `queries` if given, the first `limit`."""
    chosen = np.flatnonzero(in_catalogue)
    if queries is not None:
        wanted = {str(Path(p).resolve()) for p in queries}
        chosen = np.array([q for q in chosen if labels.paths[q] in wanted], dtype=np.int64)
    return chosen[:limit] if limit else chosen


def _search_depth(labels: Labels, unlabelled: int) -> int:
    """Results to ask for so that MAX_RANK judged ones remain.

    A ranking skips the query, its exclusion group and (unless they count)
    the catalogue's unlabelled images, so search that much deeper.
    """
    largest_group = int(np.bincount(labels.groups).max()) if labels.groups is not None else 0
    return MAX_RANK + largest_group + unlabelled + 1


def _judge(result, q: int, labels: Labels, allowed: np.ndarray, label_of_id: dict, keep_unlabelled: bool) -> list[bool]:
    """Right (True) or wrong (False) for each judged result of query row `q`, best first."""
    ranked: list[bool] = []
    for m in result.matches:
        index = label_of_id.get(m.image_id)
        if index is None:
            if keep_unlabelled and m.image_id != result.query_image_id:
                ranked.append(False)
        elif allowed[index]:
            ranked.append(bool(labels.labels[index] == labels.labels[q]))
        if len(ranked) == MAX_RANK:
            break
    return ranked
