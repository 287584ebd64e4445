"""Catalogue-side re-ranking: power normalisation, database-side augmentation, query expansion.

Exact cosine on the trunk's embeddings is the ceiling of the index, not of
the ranking. Three cheap steps measured above it on the clothing set
(docs/QUALITY_RESEARCH.md):

* power normalisation: the trunk's embeddings are non-negative averages of
  ReLU6 activations, dominated by a few large channels; x**p (p < 1) before
  centring evens them out;
* database-side augmentation (DBA): each catalogue vector is replaced by a
  similarity-weighted mean of itself and its k nearest neighbours, so a
  design sits nearer the designs around it and less near its background;
* alpha query expansion (alpha-QE): the query is re-issued as the same kind
  of weighted mean of itself and its top results.

Everything here is pure NumPy on given vectors and neighbour lists, so the
engine can take its neighbour lists from any search (exact or LSH) and an
incremental update can recompute only the rows a new image touches
(`rows_to_refresh`).
"""

from __future__ import annotations

import logging

from typing import Sequence

import numpy as np

log = logging.getLogger(__name__)


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows (the last axis) scaled to unit length (zero rows stay zero), in their float dtype.

    `np.linalg.norm`'s own arithmetic (the square root of `add.reduce` of the squares), bit for bit,
    without its ~5 µs of checks a call: a search at 1M normalises a dozen times."""
    x = np.asarray(x)
    if x.dtype.kind != "f":
        x = x.astype(np.float64)
    return x / np.maximum(np.sqrt(np.add.reduce(x * x, axis=-1, keepdims=True)), 1e-12)


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), float32."""
    return unit_rows(np.asarray(x, dtype=np.float32))


def power_normalise(embeddings: np.ndarray, power: float) -> np.ndarray:
    """Signed power x -> sign(x) |x|**power (power 1: unchanged), float32."""
    x = np.asarray(embeddings, dtype=np.float32)
    if power == 1.0:
        return x.copy()
    if power == 0.5:  # the shipped calibrations' power: sqrt gave the very same values on 2.5 M trunk outputs, in half the time
        if not x.size or x.min() >= 0:  # the trunk's outputs are non-negative: sign(x) * sqrt(|x|) is sqrt(x), bit for bit
            return np.sqrt(x)
        return np.sign(x) * np.sqrt(np.abs(x))
    return np.sign(x) * np.abs(x) ** np.float32(power)


def prepare(embeddings: np.ndarray, mean: np.ndarray, power: float = 1.0) -> np.ndarray:
    """Power-normalise, centre on a fixed mean (of power-normalised vectors) and L2-normalise."""
    return l2_normalise(power_normalise(embeddings, power) - np.asarray(mean, dtype=np.float32))


def neighbour_weights(similarities: np.ndarray, alpha: float) -> np.ndarray:
    """Weights of neighbours from their cosine: max(sim, 0) ** alpha (alpha 0: equal weights)."""
    sims = np.clip(np.asarray(similarities, dtype=np.float32), 0.0, 1.0)
    return sims**np.float32(alpha) if alpha else (sims > 0).astype(np.float32)


def weighted_mean(own: np.ndarray, others: np.ndarray, similarities: np.ndarray, alpha: float) -> np.ndarray:
    """normalise(own + sum_j w_j others_j), the step shared by DBA and alpha-QE.

    Args:
        own: (n, D) unit vectors (weight 1 each).
        others: (n, k, D) the neighbours' vectors.
        similarities: (n, k) cosine of each neighbour to its row; NaN marks a
            missing neighbour (a catalogue smaller than k + 1), which weighs 0.
        alpha: the weight exponent.
    """
    # NaN weighs 0 (fmax takes the number: what nan_to_num gave, without its 20 µs; an infinity is clipped as before)
    weights = neighbour_weights(np.fmax(np.asarray(similarities, dtype=np.float32), np.float32(0.0)), alpha)
    # the batched product `np.einsum("nk,nkd->nd", ..., optimize=True)` makes (NumPy 2's bmm_einsum), bit for
    # bit, without its 40 µs of planning a call (three calls a search)
    others = np.asarray(others, dtype=np.float32)
    return l2_normalise(own + np.matmul(weights[:, None, :], others)[:, 0, :])


def distinct_best(pictures: Sequence[bytes], similarities: np.ndarray, k: int) -> np.ndarray:
    """Rows of the `k` most similar, each picture once: a row whose picture (`pictures`: a key per row, the
    bytes of its stored embedding) a better row has is passed over. Five identical copies of one skirt in a
    35-picture catalogue were 5 of a query's 10 expansion rows and drew the expanded query to that skirt,
    listed first at 8 % (a reviewer, round 12). By the embedding, not the augmented vector: the augmented
    vectors of a family of prints of one motif are as alike as copies (cosine above 0.9999)."""
    chosen: list[int] = []
    seen: set[bytes] = set()
    for row in (-np.asarray(similarities)).argsort(kind="stable").tolist():
        if len(chosen) == k:
            break
        if pictures[row] not in seen:
            seen.add(pictures[row])
            chosen.append(row)
    return np.asarray(chosen, dtype=np.int64)


def picture_keys(embeddings: np.ndarray) -> list[bytes]:
    """One key per row: its bytes (identical files have identical embeddings)."""
    return [row.tobytes() for row in np.ascontiguousarray(embeddings)]


def augment(vectors: np.ndarray, neighbours: np.ndarray, similarities: np.ndarray, *, k: int, alpha: float) -> np.ndarray:
    """Database-side augmentation of every row.

    Args:
        vectors: (n, D) unit vectors of the catalogue (prepared, not augmented).
        neighbours: (n, >=k) row numbers of each row's nearest other rows, best
            first; -1 where there is none. The row itself must not be listed.
        similarities: (n, >=k) their cosines to the row.
        k: neighbours used (0: the vectors are returned unchanged).
        alpha: weight exponent of the neighbours' cosines.

    Returns:
        (n, D) float32 unit vectors. Row i depends only on row i and its k
        listed neighbours, so rows can be recomputed one by one
        (`augment_rows`).
    """
    return augment_rows(vectors, np.arange(len(vectors)), neighbours, similarities, k=k, alpha=alpha)


def augment_rows(
    vectors: np.ndarray, rows: np.ndarray, neighbours: np.ndarray, similarities: np.ndarray, *, k: int, alpha: float
) -> np.ndarray:
    """Augmented vectors of some rows only (what an update recomputes); neighbour lists are the full (n, >=k) ones."""
    vectors = np.asarray(vectors, dtype=np.float32)
    rows = np.asarray(rows, dtype=np.int64)
    if k == 0:
        return vectors[rows].copy()
    out = np.empty((len(rows), vectors.shape[1]), dtype=np.float32)
    for start in range(0, len(rows), 4096):  # bounds the (chunk, k, D) gather
        chunk = rows[start : start + 4096]
        nb = np.asarray(neighbours[chunk])[:, :k]
        sims = np.where(nb >= 0, np.asarray(similarities[chunk], dtype=np.float32)[:, :k], np.nan)
        out[start : start + len(chunk)] = weighted_mean(vectors[chunk], vectors[np.maximum(nb, 0)], sims, alpha)
    return out


def expand_query(query: np.ndarray, top_vectors: np.ndarray, top_similarities: np.ndarray, *, alpha: float) -> np.ndarray:
    """Alpha query expansion: normalise(q + sum_j sim_j**alpha * v_j) over the top results given.

    Args:
        query: (D,) unit vector.
        top_vectors: (k, D) the vectors the query was ranked against (augmented), best first.
        top_similarities: (k,) their cosines to the query.
    """
    if len(top_vectors) == 0:
        return np.asarray(query, dtype=np.float32).copy()
    return weighted_mean(np.asarray(query, np.float32)[None], np.asarray(top_vectors, np.float32)[None],
                         np.asarray(top_similarities)[None], alpha)[0]


def nearest_neighbours(vectors: np.ndarray, depth: int, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Exact neighbour lists of unit vectors: (n, depth) rows (-1 past the end) and cosines (NaN past the end).

    For tests and catalogues on the exact path; at scale the engine takes the
    lists from its own search instead.
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    n = len(vectors)
    rows = np.full((n, depth), -1, dtype=np.int64)
    sims = np.full((n, depth), np.nan, dtype=np.float32)
    take = min(depth, n - 1)
    if take <= 0:
        return rows, sims
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        block = vectors[start:stop] @ vectors.T
        block[np.arange(stop - start), np.arange(start, stop)] = -np.inf  # never one's own neighbour
        part = np.argpartition(-block, take - 1, axis=1)[:, :take]
        part_sims = np.take_along_axis(block, part, axis=1)
        order = np.argsort(-part_sims, axis=1, kind="stable")
        rows[start:stop, :take] = np.take_along_axis(part, order, axis=1)
        sims[start:stop, :take] = np.take_along_axis(part_sims, order, axis=1)
    return rows, sims


def rows_to_refresh(kth_similarity: np.ndarray, candidate_rows: np.ndarray, candidate_similarities: np.ndarray) -> np.ndarray:
    """Existing rows whose augmented vector a new image changes.

    A new image enters row i's neighbour list exactly when it is closer to
    i than i's current k-th neighbour; those rows (and the new image itself)
    must be augmented again. Candidates come from searching the new image:
    on the clothing set such rows sat within its top 50 in 89 % of cases
    and within its top 1,000 (the LSH path's candidate depth) in all
    (docs/QUALITY_RESEARCH.md), so pass the search's whole candidate list.

    Args:
        kth_similarity: (n,) cosine of each row's k-th neighbour (-inf where
            a row has fewer than k neighbours, so any newcomer enters).
        candidate_rows: rows found near the new image.
        candidate_similarities: their cosines to the new image.
    """
    candidate_rows = np.asarray(candidate_rows, dtype=np.int64)
    enters = np.asarray(candidate_similarities, dtype=np.float32) > kth_similarity[candidate_rows]
    return candidate_rows[enters]


def insert_neighbour(neighbours: np.ndarray, similarities: np.ndarray, rows: np.ndarray, new_row: int, new_similarities: np.ndarray) -> None:
    """Put a new image into the neighbour lists of `rows` (in place), keeping each list sorted and its length.

    The list's last entry falls out; rows given by `rows_to_refresh` are
    exactly those where the newcomer beats it.
    """
    for row, sim in zip(np.asarray(rows, dtype=np.int64), np.asarray(new_similarities, dtype=np.float32)):
        listed = np.where(neighbours[row] >= 0, similarities[row], -np.inf)
        at = int(np.searchsorted(-listed, -sim, side="right"))  # after equal ones: first come stays first
        if at >= neighbours.shape[1]:
            continue
        neighbours[row, at + 1 :] = neighbours[row, at:-1].copy()
        similarities[row, at + 1 :] = similarities[row, at:-1].copy()
        neighbours[row, at] = new_row
        similarities[row, at] = sim
