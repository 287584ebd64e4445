"""A query made to sit among the catalogue's augmented vectors: the query augmented as a catalogue image
is (`augmented_query`), and a picture from outside searched as the catalogue would hold it once added
(`folded_in`).

Database-side augmentation (augment.py) makes each catalogue image's vector a
weighted mean of itself and its k nearest. Once a picture is added, the images
that then list it among their k nearest lean towards it, so the picture
searched from the catalogue (a click on it) read a different list than the same
picture dropped before it was added: on the clothing set, same-sender mAP@10
1.0506 x exact cosine from the catalogue against 1.0490 x as a new picture
(bench_quality.py's naive and leak-free protocols, round 13).

Here a candidate whose k-th neighbour is less alike than the picture gets its
augmented vector made again with the picture in its list, in place of that
k-th: as the update that added the picture would (neighbour_updates.py), from
the picture's own embedding alone. Done where the neighbour lists are held in
memory (rescoring.py, up to `rescore_in_memory_up_to` images); a larger
catalogue searches a new picture with its augmented vectors as stored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import numpy as np

from .augment import distinct_best, weighted_mean
from .halves import through_half

if TYPE_CHECKING:
    from .index import FittedIndex
    from .rescoring import RescoringData


def folded_in(data: "RescoringData", fitted: "FittedIndex", picture: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """`data.augmented` for a search by `picture` (its prepared vector, (D,)) from outside the catalogue: the
    augmented vectors of the ids asked, each with the picture folded in where it would enter its list."""
    held = data.held_lists()
    if held is None or not fitted.augmented:
        return data.augmented
    k = int(fitted.settings.get("augment_k", 5))
    alpha = float(fitted.settings.get("augment_alpha", 3.0))
    query = through_half(np.asarray(picture, np.float32)[None])[0]  # as a table holds a catalogue image's

    # A search asks for its best few two or three times (ranking.find_candidates): each id is folded once, and its
    # vector kept for the rest of the search (0.7 ms of a new picture's query, round 14).
    at: dict[int, int] = {}  # id -> its row of `made`
    made = np.zeros((0, len(query)), np.float32)

    def augmented(image_ids: np.ndarray) -> np.ndarray:
        nonlocal made
        image_ids = np.asarray(image_ids, np.int64)
        new = [i for i in dict.fromkeys(image_ids.tolist()) if i not in at]
        if new:
            made = np.concatenate([made, fold(np.array(new, np.int64))])
            at.update((i, n) for n, i in enumerate(new, start=len(at)))
        return made[[at[i] for i in image_ids.tolist()]]

    def fold(image_ids: np.ndarray) -> np.ndarray:
        vectors = data.augmented(image_ids)
        rows = held.rows_of(image_ids)
        listed = np.flatnonzero(rows >= 0)
        if not k or not len(listed) or held.k < k:
            return vectors
        own = data.prepared(image_ids[listed])
        alike = own @ query
        neighbours = held.neighbours[rows[listed], :k]
        sims = np.where(neighbours >= 0, held.similarities[rows[listed], :k], -np.inf).astype(np.float32)
        enter = np.flatnonzero(alike > sims[:, k - 1])  # above the k-th (or a list shorter than k)
        if not len(enter):
            return vectors
        kept, kept_sims = neighbours[enter, : k - 1], sims[enter, : k - 1]
        known = kept >= 0
        others = np.zeros((len(enter), k, len(query)), np.float32)
        others[:, : k - 1][known] = data.prepared(kept[known])
        others[:, k - 1] = query
        weights = np.concatenate([np.where(known, kept_sims, np.nan), alike[enter, None]], axis=1)
        made = weighted_mean(own[enter], others, weights, alpha)
        out = vectors.copy()
        out[listed[enter]] = through_half(made)  # rounded as the held ones are
        return out

    return augmented


def augmented_query(q: np.ndarray, data: RescoringData, fitted: FittedIndex, head: np.ndarray, k: int) -> np.ndarray:
    """The prepared query augmented as a catalogue image is (augment.py's DBA with the catalogue's alpha)
    over its `k` nearest of `head` (the first search's best) by prepared cosine, so that it sits among
    its neighbours as the augmented vectors it is compared with do. A catalogue image searched by its
    own embedding gets about its own augmented vector. With expand_k 10 it lifted leak-free mAP@10 on
    the clothing set's tuning half by 0.9 % cross-sender and 0.8 % same-sender (docs/BENCHMARKS.md)."""
    stored = data.embedding_matrix(head.tolist())
    prepared = through_half(fitted.prepare(stored.vectors))  # as the catalogue's table holds them
    sims = prepared @ q
    best = distinct_best(data.picture_keys(stored.ids, stored), sims, k)
    alpha = float(fitted.settings.get("augment_alpha", 3.0))
    return weighted_mean(q[None], prepared[best][None], sims[best][None], alpha)[0]
