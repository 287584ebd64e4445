"""Candidates among some catalogue images only: a search narrowed to one or more subfolders.

A searcher finds the best k of the whole catalogue; cutting that list to a
folder afterwards leaves too few when the folder is a small part of it (a
season of 300 designs in a catalogue of 100,000: the best 230 hold about one
of them). So the narrowed search ranks the folder's own images when they are
few enough to score them all (`EXACT_SUBSET`; exact, and cheaper than a deep
search), and otherwise asks the searcher for as many more as the folder is
small, scoring the folder's images exactly when even that leaves too few.
"""

from __future__ import annotations

import logging
import math
from typing import Callable

import numpy as np

from .index import FittedIndex
from .rocchio import Adapter, Steering, combine, scoring_space
from .searchers import Ranking, Searcher

log = logging.getLogger(__name__)

#: Up to this many images a narrowed search scores every one of them: 50,000
#: re-ranking vectors take a few milliseconds to gather and multiply.
EXACT_SUBSET = 50_000
#: Scoring a large subset exactly goes by chunks of this many vectors (bounded memory).
CHUNK = 65_536


def narrowed_ids(searcher: Searcher, allowed: np.ndarray) -> np.ndarray:
    """The searchable ones of `allowed` image ids, sorted."""
    return np.intersect1d(searcher.ids, np.asarray(allowed, dtype=np.int64), assume_unique=False)


def candidates(searcher: Searcher, code: np.ndarray, vector: np.ndarray, k: int, allowed: np.ndarray | None) -> Ranking:
    """The best k images for one query, among `allowed` (sorted searchable ids) or all when None.

    A narrowed search's method reads "folder" when it scored the folder's
    images exactly, or the searcher's own ("lsh", ...) when it searched deeper.
    """
    if allowed is None:
        return searcher.search(code, vector, k)
    if len(allowed) <= max(k, EXACT_SUBSET):
        return _exact(searcher, vector, k, allowed)
    deeper = min(len(searcher), math.ceil(2 * k * len(searcher) / len(allowed)))
    ranking = searcher.search(code, vector, deeper)
    inside = np.isin(ranking.ids, allowed, assume_unique=True)
    if inside.sum() < k:  # the folder's images lie far from the query: rank them all
        log.debug("narrowed search found %d of %d at depth %d; scoring the folder exactly", inside.sum(), k, deeper)
        return _exact(searcher, vector, k, allowed)
    keep = np.flatnonzero(inside)[:k]
    return Ranking(ranking.ids[keep], ranking.similarities[keep], ranking.candidates, ranking.method)


def _exact(searcher: Searcher, vector: np.ndarray, k: int, allowed: np.ndarray) -> Ranking:
    """The best k of `allowed` by cosine of re-ranking vectors, every one of them scored."""
    vector = np.asarray(vector, dtype=np.float32)
    if len(allowed) == 0:
        return Ranking(np.empty(0, np.int64), np.empty(0, np.float32), 0, "folder")
    best_ids: list[np.ndarray] = []
    best_sims: list[np.ndarray] = []
    for start in range(0, len(allowed), CHUNK):
        ids = allowed[start : start + CHUNK]
        sims = searcher.vectors(ids) @ vector
        top = np.argpartition(-sims, min(k, len(sims)) - 1)[:k] if len(sims) > k else np.arange(len(sims))
        best_ids.append(ids[top])
        best_sims.append(sims[top])
    ids, sims = np.concatenate(best_ids), np.concatenate(best_sims)
    order = np.argsort(-sims, kind="stable")[:k]
    return Ranking(ids[order], sims[order], len(allowed), "folder")


def steered_candidates(
    searcher: Searcher, steering: Steering, wanted: int, allowed: np.ndarray | None, stored_as: np.dtype, adapter: Adapter | None
) -> tuple[FittedIndex, Callable[[np.ndarray], np.ndarray], np.ndarray, np.ndarray, list[Ranking]]:
    """Under the searcher's fit (read once: a team catalogue may be refitted meanwhile): the scoring
    space, the steered queries, the first probe's codes, and the rankings of every probe.

    Candidates come from the searcher in the catalogue's own space: a lone example
    probes with its own embeddings; a steered query with the combination (and each example).
    """
    fitted = searcher.fitted
    origin = fitted.centre if fitted.centre is not None else fitted.mean  # raw embeddings are centred here
    prepare = scoring_space(origin, stored_as, adapter)
    queries = combine([prepare(e.embeddings) for e in steering.like], [prepare(e.embeddings) for e in steering.unlike], steering.variants)
    if len(steering.like) == 1 and not steering.unlike and adapter is None:
        probes = [steering.like[0].embeddings[: steering.variants]]
    else:
        scale = np.mean([np.linalg.norm(e.embeddings[0] - origin) for e in steering.like])
        probes = [origin + queries * scale] + [e.embeddings for e in steering.like]
    ready = [fitted.prepare(rows) for rows in probes]  # what codes and vectors take (centred on the fit's centre)
    rankings = [candidates(searcher, c, v, wanted, allowed) for rows in ready for c, v in zip(fitted.codes(rows), fitted.vectors(rows))]
    return fitted, prepare, queries, fitted.codes(ready[0]), rankings
