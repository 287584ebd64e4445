"""The ranking adapted to a catalogue's decisions: a small metric fitted on the pairs people marked.

Pairs marked *same design* tell which ways two pictures of one design may
differ (a background, the light); pairs marked *not similar* tell which
differences matter. In the top `DIRECTIONS` principal directions of the
catalogue, the covariance of the differences of same-design pairs (S) and of
not-similar pairs (N) is compared; directions where same-design pairs differ
more than not-similar ones are shrunk, the others stretched, by
``exp(-STRENGTH * eigenvalue)`` of (S - N) (scaled by how much neighbouring
catalogue images differ, C), never beyond `MAX_WEIGHT` either way. Everything outside those directions is left as
it is, so with no decisions the ranking is exactly the plain cosine.

Never hurting comes from two shrinkages. Each of S and N is pulled towards C
as if `PRIOR_PAIRS` more pairs of neighbours had been seen, so a few decisions
move little. And the whole difference (S - N) is shrunk by how much of it
decisions with their verdicts shuffled produce too (a James-Stein estimate of
the part that is noise): random or contradictory verdicts give a difference
no larger than shuffled ones, and then nothing is adapted.

Measured on the clothing set (bench/bench_steering.py; simulated users mark
results in the top 10 of their queries, labels as the truth; mAP@10
cross-sender of the queries in no decision): see `STRENGTH` for the figures
that chose the settings, the benchmark for the committed ones.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .searchers import Searcher
from .stores.base import CatalogueReader
from .stores.verdicts import SAME, Decision

log = logging.getLogger(__name__)

#: Fewer decisions than this adapt nothing. The shrinkage leaves little of 20-50 decisions anyway,
#: but that little measured -0.6 % to +0.6 % on the clothing set; from 50, -0.1 % to +0.6 %.
MIN_DECISIONS = 50
#: Principal directions of the catalogue the metric may reweigh.
DIRECTIONS = 32
#: Each of S and N is pulled towards the neighbours' covariance as if this many pairs more were seen.
PRIOR_PAIRS = 20
#: How strongly a direction is stretched or shrunk per unit of (S - N) / C. Measured on the
#: clothing set (200 decisions, 3 draws, 500 held-out queries; mAP@10 ratio to plain cosine),
#: 32 directions, 20 prior pairs: strength 1.0 / 1.5 / 2.0 / 3.0 gave 1.015 / 1.016 / 1.019 /
#: 1.015 with true verdicts and 1.000-1.001 with random ones; 16 or 64 directions 1.015, and
#: 60 prior pairs about half the gain. Without the noise estimate, random verdicts cost up to 3 %.
STRENGTH = 2.0
#: No direction's weight goes beyond this factor either way (its length at most doubled or halved).
#: On the clothing set 200 decisions gave weights of 0.44-4.7; on pictures whose neighbours are
#: near-copies, differences between designs dwarf those between neighbours and unbounded
#: weights reached 1e19, ranking by a few directions alone.
MAX_WEIGHT = 4.0
#: Verdict shuffles for the noise estimate, and the seeds that make it repeatable.
SHUFFLES = 20
SEED = 0
#: Catalogue images whose embeddings give the principal directions (a seeded sample).
BASIS_SAMPLE = 4000
#: Catalogue images, and neighbours of each, whose differences give C.
NEIGHBOUR_SAMPLE = 300
NEIGHBOURS = 5


@dataclass(frozen=True)
class Metric:
    """A reweighing of some orthonormal directions: x -> x + Q diag(sqrt(w) - 1) Q^T x."""

    directions: np.ndarray  # (D, k) orthonormal
    weights: np.ndarray  # (k,) > 0
    kept: float  # the share of (S - N) kept by the noise estimate, 0..1
    decisions: int

    def __call__(self, centred: np.ndarray) -> np.ndarray:
        """Centred embeddings (n, D) in the adapted space (normalise afterwards)."""
        x = np.asarray(centred, dtype=np.float64)
        return x + ((x @ self.directions) * (np.sqrt(self.weights) - 1.0)) @ self.directions.T


def normalised(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def difference_covariance(a: np.ndarray, b: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Covariance (k, k) of the differences of normalised pairs (rows of a and b) within `basis`."""
    d = (normalised(a) - normalised(b)) @ basis
    return d.T @ d / max(len(d), 1)


def fit_metric(
    a: np.ndarray,
    b: np.ndarray,
    same: np.ndarray,
    neighbours: np.ndarray,
    basis: np.ndarray,
    *,
    strength: float = STRENGTH,
    prior_pairs: int = PRIOR_PAIRS,
    shuffles: int = SHUFFLES,
) -> Metric | None:
    """The metric for decided pairs, or None when the decisions hold no more than shuffled ones would.

    Args:
        a, b: centred embeddings (n, D) of each decided pair's two images.
        same: (n,) True where the pair was marked the same design.
        neighbours: (C, k) the covariance of differences of neighbouring catalogue images in `basis`.
        basis: (D, k) orthonormal principal directions of the catalogue.
    """
    same = np.asarray(same, dtype=bool)
    if len(same) < MIN_DECISIONS:
        return None
    d = (normalised(a) - normalised(b)) @ basis  # (n, k): each pair's difference, once
    scale = basis.shape[1] / max(float(np.trace(neighbours)), 1e-12)

    def difference(verdicts: np.ndarray) -> np.ndarray:
        s, n = d[verdicts], d[~verdicts]
        s_cov = (s.T @ s + prior_pairs * neighbours) / (len(s) + prior_pairs)
        n_cov = (n.T @ n + prior_pairs * neighbours) / (len(n) + prior_pairs)
        return (s_cov - n_cov) * scale

    delta = difference(same)
    rng = np.random.default_rng(SEED)
    noise = np.mean([np.sum(difference(rng.permutation(same)) ** 2) for _ in range(shuffles)])
    kept = max(0.0, 1.0 - float(noise) / max(float(np.sum(delta**2)), 1e-12))
    if kept <= 0.0:
        log.info("%d decisions hold no more than shuffled verdicts: the ranking is not adapted", len(same))
        return None
    values, vectors = np.linalg.eigh(delta * kept)
    weights = np.clip(np.exp(-strength * values), 1 / MAX_WEIGHT, MAX_WEIGHT)
    log.info("ranking adapted to %d decisions (%.0f %% of their signal kept; weights %.2f-%.2f)",
             len(same), 100 * kept, weights.min(), weights.max())
    return Metric(basis @ vectors, weights, kept, len(same))


def principal_basis(centred: np.ndarray, k: int = DIRECTIONS) -> np.ndarray:
    """The top k principal directions of centred catalogue embeddings (n, D) as compared (unit length), orthonormal (D, k).

    Not the index's re-ranking basis: since issue 11 that is fitted on
    power-normalised, augmented vectors, another space than the centred
    embeddings the metric reweighs; its directions let 200 random verdicts
    cost 1.5 % of held-out mAP@10 (bench_steering.py) where these cost none.
    """
    x = normalised(centred)
    x = x - x.mean(axis=0)
    values, vectors = np.linalg.eigh(x.T @ x)
    return vectors[:, np.argsort(-values)[: min(k, len(x))]]


def catalogue_sample(reader: CatalogueReader, searcher: Searcher, size: int = BASIS_SAMPLE) -> np.ndarray:
    """Centred embeddings (n, D) of a seeded sample of the catalogue's searchable images."""
    rng = np.random.default_rng(SEED)
    ids = np.sort(rng.choice(searcher.ids, min(size, len(searcher.ids)), replace=False))
    return reader.embedding_matrix(ids.tolist()).vectors.astype(np.float64) - origin_of(searcher.fitted)


def neighbour_covariance(reader: CatalogueReader, searcher: Searcher, basis: np.ndarray) -> np.ndarray:
    """How much neighbouring catalogue images differ (C): a seeded sample of images and their nearest few."""
    ids = searcher.ids
    rng = np.random.default_rng(SEED)
    sample = np.sort(rng.choice(ids, min(NEIGHBOUR_SAMPLE, len(ids)), replace=False))
    vectors = searcher.vectors(sample)
    pairs: list[tuple[int, int]] = []
    for image_id, vector in zip(sample, vectors):
        found = searcher.search(searcher.codes(np.array([image_id]))[0], vector, NEIGHBOURS + 1).ids
        pairs.extend((int(image_id), int(other)) for other in found if other != image_id)
    stored = reader.embedding_matrix(sorted({i for pair in pairs for i in pair}))
    row = {int(i): n for n, i in enumerate(stored.ids)}
    pairs = [(x, y) for x, y in pairs if x in row and y in row]
    centred = stored.vectors - origin_of(searcher.fitted)
    return difference_covariance(centred[[row[x] for x, _ in pairs]], centred[[row[y] for _, y in pairs]], basis)


class Adaptation:
    """Fits the metric of one open catalogue's decisions; the catalogue's statistics are computed once."""

    def __init__(self, reader: CatalogueReader, searcher: Searcher):
        self.reader = reader
        self.searcher = searcher
        self._basis: np.ndarray | None = None
        self._neighbours: np.ndarray | None = None

    def fit(self, decisions: Sequence[Decision]) -> Metric | None:
        if len(decisions) < MIN_DECISIONS or len(self.searcher) <= NEIGHBOURS + 1:
            return None
        if self._basis is None or self._neighbours is None:
            self._basis = principal_basis(catalogue_sample(self.reader, self.searcher))
            self._neighbours = neighbour_covariance(self.reader, self.searcher, self._basis)
        stored = self.reader.embedding_matrix(sorted({i for d in decisions for i in (d.a, d.b)}))
        row = {int(i): n for n, i in enumerate(stored.ids)}
        kept = [d for d in decisions if d.a in row and d.b in row]
        if len(kept) < MIN_DECISIONS:
            return None
        centred = stored.vectors - origin_of(self.searcher.fitted)
        a = centred[[row[d.a] for d in kept]]
        b = centred[[row[d.b] for d in kept]]
        return fit_metric(a, b, np.array([d.verdict == SAME for d in kept]), self._neighbours, self._basis)


def origin_of(fitted: Any) -> np.ndarray:
    """Where raw embeddings are centred for scoring: the fit's fixed centre (an index on augmented
    vectors) or the mean of its sample (an index on raw embeddings)."""
    return fitted.centre if fitted.centre is not None else fitted.mean
