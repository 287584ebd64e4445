"""A query's candidates and their ranking, then the scores a user reads and the order of the list.

Two named steps, run in turn by `SearchEngine.search_embeddings` (query
steering can sit before, between or after them):

1. `find_candidates`: the searcher's candidates, ranked. On an index fitted
   on augmented vectors (indexing.py, the default since issue 11): the query
   is prepared on the fixed centre and searched, augmented with its nearest
   images as a catalogue image is, expanded with its best results (alpha
   query expansion) and searched again, `expand_rounds` times (on the graph the candidates of the search
   before ranked again, the last round walking where the list needs more: config.graph_walk_again); every candidate list, every
   image within a few pHash bits of the query (phash_index.py) and the query
   itself are ranked by cosine with the expanded query on the augmented
   vectors. On an index fitted on raw embeddings (a catalogue made before
   issue 11, or the `vectors="embeddings"` baseline): one search, ranked by
   cosine of embeddings centred on the fit's mean, as before.
2. `score_and_order`: each candidate's shown score is the calibrated similarity of the two pictures
   (calibration.py, on their raw embeddings: the same in every catalogue), with its named band; a pair
   in *same design* that is not the same picture reads its garment score (same_picture.py looks). The
   list reads pHash duplicates first, then band by band, by the ranking inside a band, so no match sits
   below one in a lower band (docs/QUALITY_RESEARCH.md: this order costs nothing); inside *same design*
   by the pictures' own similarity (a crop's original first), a byte-identical copy right after the
   query. Without a calibration there are no bands: matches show the cosine of the two pictures'
   centred embeddings and the list reads by it. An index on raw embeddings keeps the order by ranking.

A `Steer` (steering.ColourSteer, issue 12's colour control) changes how a
candidate's query rows count in both steps: the ranking of step 1 and the
shown score of step 2, whose bands and order then follow the steered score.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Callable, Protocol

import numpy as np

from .augment import distinct_best, expand_query, unit_rows
from .best_scored import ordered
from .calibration import BAND_NAMES, Calibration, band_levels, whole_percents
from .config import EngineConfig
from .decisions import among
from .fold_in import augmented_query, folded_in
from .index import FittedIndex, unique_ids
from .phash_index import UNKNOWN, PhashIndex, copy_distances, informative
from .rescoring import RescoringData
from .same_picture import LooksSame, demote_failed
from .score_bounds import settled_percents
from .searchers import Ranking, Searcher, vectors_among

log = logging.getLogger(__name__)

#: Candidates scored exactly beyond the number of results asked for. Rescoring
#: 30 beyond the top 10 restored recall@10 against exact cosine from 0.87
#: (re-ranking space alone) to 0.9995 on the clothing set.
RESCORE_MARGIN = 30

#: The ranking of a candidate whose embedding is the query's own (a byte-identical copy): above every
#: other candidate (cosines, lifted by at most 3), below the query itself (+inf).
IDENTICAL = 1e6


class Steer(Protocol):
    """How a candidate's values over the query rows (cosines, or shown percents) make its one value."""

    def blend(self, ids: np.ndarray, per_row: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
        """(value (m,), the query row it stands for (m,)) from `per_row` (m, rows) of candidates `ids`;
        `scale`: what a full similarity reads (1 for a cosine, 100 for a percent)."""
        ...


@dataclass(frozen=True)
class Candidates:
    """Candidates of one query with their ranking (higher first)."""

    ids: np.ndarray  # (m,) int64 image ids
    ranking: np.ndarray  # (m,) float64 the order (higher first; the query itself: +inf)
    cosine: np.ndarray  # (m,) float64 the cosine the ranking read (full or re-ranking vectors)
    variant: np.ndarray  # (m,) int: the query row (0: the query, 1: its mirror image) that ranked it best
    method: str  # the searcher's ("exact", "lsh", "graph", "scan")
    looked_at: int  # images the searcher looked at
    query: np.ndarray | None = None  # (variants, D) the (expanded) query rows the augmented vectors were ranked against
    prepared: np.ndarray | None = None  # (variants, D) the query rows as FittedIndex.prepare gave them (its codes)


def find_candidates(
    searcher: Searcher,
    data: RescoringData,
    embeddings: np.ndarray,
    config: EngineConfig,
    *,
    top_n: int,
    phash: int | None = None,
    phash_index: Callable[[], tuple[PhashIndex, np.ndarray] | None] | None = None,
    query_id: int | None = None,
    steer: Steer | None = None,
) -> Candidates:
    """Step 1: the candidates of a query (embeddings (v, D), rounded as the catalogue stores them), ranked.

    Args:
        phash_index: gives the catalogue's pHash index and the image id of each of its rows
            (None, or a function returning None: no pHash candidates).
        steer: how the rows' cosines make the ranking (None: the best row's).
    """
    fitted = searcher.fitted
    wanted = min(len(searcher), top_n + RESCORE_MARGIN)
    if not fitted.augmented:
        rankings = [searcher.search(c, v, wanted) for c, v in zip(fitted.codes(embeddings), fitted.vectors(embeddings))]
        ids = unique_ids(np.concatenate([r.ids for r in rankings]))
        ids = _with_extra(ids, searcher, phash, phash_index, config, query_id)
        stored = data.embedding_matrix(ids.tolist())
        full = unit_rows(stored.vectors.astype(np.float64) - fitted.mean)
        sims = full @ unit_rows(embeddings.astype(np.float64) - fitted.mean).T  # (m, variants)
        return _candidates(stored.ids, sims, rankings[0].method, rankings[0].candidates, query_id, steer=steer)
    depth = min(len(searcher), max(wanted, config.rescore_depth))
    prepared = fitted.prepare(embeddings)  # row by row: the first row is what preparing it alone gives
    augmented = folded_in(data, fitted, prepared[0]) if query_id is None and steer is None else data.augmented
    queries: list[np.ndarray] = []
    found: list[Ranking] = []
    for q in prepared:
        ranking, last = _look(searcher, fitted, q, depth)
        found.append(ranking)
        for round_ in range(config.expand_rounds if config.expand_k else 0):
            head = ranking.ids[ranking.ids != query_id] if query_id is not None else ranking.ids
            head = head[: config.expand_k + RESCORE_MARGIN]
            vectors = augmented(head)  # first: the cache reads the head's embeddings with these (array_cache.take)
            if round_ == 0 and config.query_augment_k and len(head):
                q = augmented_query(q, data, fitted, head, config.query_augment_k)
            sims = vectors @ q  # the best few on the full augmented vectors, of the best by re-ranking vector
            best = distinct_best(data.picture_keys(head), sims, config.expand_k)  # a picture's copies count once
            q = expand_query(q, vectors[best], sims[best], alpha=config.expand_alpha)
            near = round_ < config.expand_rounds - 1 or wanted <= config.graph_near_share * depth
            ranking, last = _look(searcher, fitted, q, depth, near=ranking if near else None)
            found.append(ranking)
        queries.append(q)
    first = found[0]
    ids = _with_extra(unique_ids(np.concatenate([r.ids for r in found])), searcher, phash, phash_index, config, query_id)
    final = np.stack(queries).astype(np.float32)
    # Ranked by re-ranking vector, the best `wanted` again on the full augmented
    # vectors (above every other: their cosines are lifted by 3). One query row: its
    # re-ranking vector is the one its last search was made with (the very same values).
    coarse = vectors_among(searcher, ids, found) @ (last if len(queries) == 1 else fitted.vectors(final)).T
    head = (-coarse.max(axis=1)).argsort(kind="stable")[:wanted]
    sims = coarse.astype(np.float64)
    sims[head] = _rowwise(augmented(ids[head]), final)
    lift = np.zeros(len(ids))
    lift[head] = 3.0
    return replace(_candidates(ids, sims, first.method, first.candidates, query_id, lift, steer), query=final, prepared=prepared)


_NO_CODE = np.zeros(0, dtype=np.uint64)


def _look(searcher: Searcher, fitted: FittedIndex, q: np.ndarray, depth: int, near: Ranking | None = None) -> tuple[Ranking, np.ndarray]:
    """One candidate search for a prepared query row, and its re-ranking vector (1, R); a searcher
    with a `search_near` ranks the candidates of `near` (the query's search before) instead."""
    vector = fitted.vectors(q[None])
    again = getattr(searcher, "search_near", None) if near is not None else None
    found = again(near, vector[0], depth) if again is not None else None
    if found is not None:
        return found, vector
    code = fitted.codes(q[None])[0] if getattr(searcher, "reads_code", True) else _NO_CODE
    return searcher.search(code, vector[0], depth), vector


def _with_extra(
    ids: np.ndarray,
    searcher: Searcher,
    phash: int | None,
    phash_index: Callable[[], tuple[PhashIndex, np.ndarray] | None] | None,
    config: EngineConfig,
    query_id: int | None,
) -> np.ndarray:
    """The search's candidates, every image within `phash_radius` pHash bits, and the query itself."""
    extra = [ids]
    if phash is not None and phash_index is not None and config.phash_radius >= 0 and informative(phash)[0]:
        held = phash_index()
        if held is not None:
            index, index_ids = held
            rows, _ = index.within(int(phash), config.phash_radius)
            extra.append(index_ids[rows])
    if query_id is not None and _holds(searcher.ids, query_id):  # the query itself always takes part
        extra.append(np.array([query_id], dtype=np.int64))
    return unique_ids(np.concatenate(extra)) if len(extra) > 1 else np.asarray(ids, np.int64)  # unique already


def _candidates(
    ids: np.ndarray,
    sims: np.ndarray,
    method: str,
    looked_at: int,
    query_id: int | None,
    lift: np.ndarray | None = None,
    steer: Steer | None = None,
) -> Candidates:
    """Candidates from their cosines (m, variants); `lift` puts some above all others (a steered
    cosine is at least -1.5: colour takes at most half a similarity away)."""
    if steer is None:
        variant = sims.argmax(axis=1)
    else:
        steered, variant = steer.blend(np.asarray(ids, np.int64), np.asarray(sims, np.float64), 1.0)
    cosine = np.clip(sims[np.arange(len(ids)), variant].astype(np.float64), -1.0, 1.0)
    ranking = (cosine if steer is None else np.asarray(steered, np.float64)) + (0.0 if lift is None else lift)
    if query_id is not None:
        ranking[ids == query_id] = np.inf  # the query itself comes first
        cosine[ids == query_id] = 1.0
    return Candidates(np.asarray(ids, np.int64), ranking, cosine, variant, method, looked_at)


# --- step 2: the scores a user reads, and the order ----------------------------------------------


@dataclass(frozen=True)
class Scored:
    """Candidates in the order the list reads, with their shown scores."""

    ids: np.ndarray  # (m,) int64
    scores: np.ndarray  # (m,) similarity 0..1 (calibrated; else cosine of centred embeddings)
    keys: np.ndarray  # (m, 4) what the order sorts on (duplicate pHash distance, band or -score, -score inside
    # same design, -ranking): equal rows are ties
    bands: tuple[str, ...]  # band names ("" without a calibration)
    variant: np.ndarray  # (m,) query row that scored it
    phash_distances: np.ndarray  # (m,) int, 64+ where unknown


def score_and_order(
    candidates: Candidates,
    data: RescoringData,
    embeddings: np.ndarray,
    calibration: Calibration | None,
    config: EngineConfig,
    *,
    top_n: int,
    min_score: float,
    phash: int | None,
    phashes: Callable[[np.ndarray], np.ndarray],
    query_id: int | None,
    steer: Steer | None = None,
    exact_ids: np.ndarray | tuple[int, ...] = (),
    looks_same: LooksSame | None = None,
) -> Scored:
    """Step 2: score the candidates as shown, drop those under `min_score`, and order the list.

    Every candidate is scored, so a same-design copy ranked low by the augmented vectors still rises into
    its band (`looks_same`: the look at the pictures of the band's pairs a page shows, same_picture.py). With
    a `steer` the shown score is the steered one (never below 0 % where calibrated), and its band and the
    order follow it. The scores of the list's first `top_n` + RESCORE_MARGIN (+ 2 x `exact_ids`)
    and of `exact_ids` are exact; further down a score may be one that reads the same (score_bounds.py)."""
    ids, ranking, variant = candidates.ids, candidates.ranking, candidates.variant
    distances = np.full(len(ids), UNKNOWN, np.int64)
    if phash is not None and len(ids):  # UNKNOWN where either pHash says nothing (a flat picture's, phash_index.py)
        distances = copy_distances(phash, phashes(ids))
    duplicate = distances <= config.duplicate_distance
    # The score of the two pictures, never of their augmented vectors: calibrated, or (a model without
    # a calibration) the cosine of their embeddings centred as the fit is, so a copy reads 100 % either way.
    # From the array cache (rescoring.py) or the store's rows: the same float32 values either way.
    present, powered, vectors, settled = data.present(ids), None, None, None
    quick = present is not None and calibration is not None and steer is None and len(embeddings) == 1
    whitened = data.whitened(ids[present]) if quick else None
    if whitened is not None and calibration is not None and data.holds_powered():  # score_bounds.py
        ids, ranking, distances, duplicate, cal = ids[present], ranking[present], distances[present], duplicate[present], calibration

        def exact(rows: np.ndarray) -> np.ndarray:
            return shown_percents(None, whitened[rows], embeddings, cal, data, powered=data.powered(ids[rows]))

        same = np.clip(_rowwise(whitened, whitened_vectors(cal, embeddings)), -1.0, 1.0)[:, 0]
        per_row, settled = settled_percents(same, lambda rows: data.powered(ids[rows]), embeddings[0], cal, exact)
    else:
        if present is not None and calibration is not None:
            powered = data.powered(ids[present])
        if powered is None:
            stored = data.embedding_matrix(ids.tolist())
            present, vectors = np.isin(ids, stored.ids), stored.vectors  # a record removed meanwhile
        assert present is not None
        ids, ranking, distances, duplicate = ids[present], ranking[present], distances[present], duplicate[present]
        per_row = shown_percents(vectors, data.whitened(ids), embeddings, calibration, data, powered=powered)
    if steer is None:
        percent, variant = per_row.max(axis=1), per_row.argmax(axis=1)
    else:
        percent, variant = steer.blend(ids, per_row, 100.0)
        percent = np.maximum(percent, 0.0) if calibration is not None else percent
    scores = percent / 100.0
    if query_id is not None:
        scores[ids == query_id] = 1.0  # the query itself: exactly 100 %
    # A byte-identical copy of the query (the very same embedding) reads 100 % and comes right after the
    # query itself, before a re-export the augmented vectors happen to rank higher: compared where it can be one.
    maybe = np.flatnonzero(((distances == 0) | ((distances > 64) & (percent >= 99.0))) & ~np.isinf(ranking))
    if len(maybe):
        query = np.asarray(embeddings, dtype=np.float32)[0]  # the picture itself (row 1 may be its mirror image)
        raw = vectors[maybe] if vectors is not None else data.embedding_matrix(ids[maybe].tolist()).vectors
        same = np.all(raw.astype(np.float32) == query, axis=1)
        ranking = ranking.copy()
        ranking[maybe[same]] = IDENTICAL
        scores[maybe[same]] = 1.0  # the very same picture reads 100 %, as the query itself
        distances[maybe[same]] = 0  # and is a copy, where a flat picture's pHash cannot say so (listed as before)
    demote_failed(looks_same, data, calibration, embeddings, ids, percent, scores, variant,  # same design: same picture (not raised if steered)
                  duplicate | np.isinf(ranking) | (ranking >= IDENTICAL), top_n + 10 + len(exact_ids), settled, ranking if steer is None else None)
    level = band_levels(percent) if calibration is not None else np.zeros(len(ids), np.int64)
    if steer is not None and calibration is not None:
        # pHash is blind to colour: a recoloured copy that steering took out of the same-design band
        # (towards *match colour*) is no longer the same picture to this user, so it is not listed first.
        duplicate = duplicate & (level == 0)
    augmented = data.fitted is not None and data.fitted.augmented  # before issue 11 (raw embeddings): by the ranking alone
    first = np.where(duplicate, distances, UNKNOWN) if augmented else np.zeros(len(ids), np.int64)
    # With bands the list reads band by band, by the ranking inside a band; without, by the score it shows
    # (no bands say two matches are equals; the ranking chose the candidates and breaks ties).
    by_band = np.zeros(len(ids), np.float64)
    if augmented:
        by_band = level.astype(np.float64) if calibration is not None else np.where(np.isinf(ranking), -np.inf, -scores)
    # Inside *same design* the pictures' own similarity orders the list, most alike first: the augmented ranking pulls
    # an original away from its copy (at 40,000 images ten look-alikes stood above the picture a crop was cut from).
    alike = np.where(level == 0, -scores, 0.0) if augmented and calibration is not None else np.zeros(len(ids))
    alike[np.isinf(ranking) | (ranking >= IDENTICAL)] = -np.inf  # the query itself, then an identical copy
    keep = np.flatnonzero(shown_at_least(scores, min_score))
    lift = augmented and calibration is not None and steer is None  # the best-scored match near the top (best_scored.py)
    others = (level > 0) & ~duplicate & np.isfinite(ranking) & (ranking < IDENTICAL) & lift
    ranking, keep = ordered(keep, first, by_band, alike, ranking, scores, others, config.best_scored_within, config.best_scored_lead)
    if settled is not None:  # the scores a user can read, exact (their whole percents and bands are already),
        readable = np.zeros(len(ids), bool)
        readable[keep[: top_n + RESCORE_MARGIN + 2 * len(exact_ids)]] = True
        if len(exact_ids):
            readable |= among(ids, exact_ids)
        redo = np.flatnonzero(readable & settled & (scores == percent / 100.0))  # not those that read 100 % as the query
        if len(redo):
            scores[redo] = exact(redo)[:, 0] / 100.0
    bands = tuple(map(BAND_NAMES.__getitem__, level[keep].tolist())) if calibration is not None else ("",) * len(keep)
    keys = np.stack([first[keep], by_band[keep], alike[keep], -ranking[keep]], axis=1).astype(np.float64)
    return Scored(ids[keep], scores[keep], keys, bands, variant[keep], distances[keep])


def shown_at_least(scores: np.ndarray, min_score: float) -> np.ndarray:
    """Which scores (0..1) a user sees at or above `min_score` (0..1): the minimum is on the whole percent
    shown, as the window's control is, so a match shown "50%" at 0.496 passes a minimum of 0.5, and the
    picture itself (1.0) passes 1.0."""
    if min_score <= 0.0:  # every whole percent is at least 0 (a search asks for all: -1)
        return np.ones(np.shape(scores), dtype=bool)
    return whole_percents(100.0 * np.asarray(scores, dtype=np.float64)) >= 100.0 * min_score - 1e-6


def shown_percent(
    candidates: np.ndarray, whitened: np.ndarray | None, queries: np.ndarray, calibration: Calibration | None, data: RescoringData
) -> tuple[np.ndarray, np.ndarray]:
    """(percent (m,), query row (m,)): the best of the query rows' shown scores for each candidate."""
    percent = shown_percents(candidates, whitened, queries, calibration, data)
    return percent.max(axis=1), percent.argmax(axis=1)


def shown_percents(
    candidates: np.ndarray | None, whitened: np.ndarray | None, queries: np.ndarray, calibration: Calibration | None,
    data: RescoringData, *, powered: np.ndarray | None = None,
) -> np.ndarray:
    """(m, query rows): each candidate's shown score with each query row, in percent.

    Row by row, so a candidate scores the same whichever others are scored
    with it (held in memory or read from the store). `powered`: the candidates'
    `Calibration.powered` embeddings where they are held (then `candidates` may be None).
    """
    if calibration is None:  # no reference statistics: cosine of embeddings centred as the fit is
        fitted = data.fitted
        assert fitted is not None and candidates is not None
        centre = fitted.centre if fitted.centre is not None else fitted.mean
        sims = np.clip(_rowwise(unit_rows(candidates.astype(np.float64) - centre), unit_rows(queries.astype(np.float64) - centre)), -1, 1)
        return 100.0 * sims
    query_vectors = whitened_vectors(calibration, queries)
    if powered is None:
        assert candidates is not None
        powered = calibration.powered(candidates)
    garment = np.clip(_rowwise(calibration.centred(powered, powered=True), calibration.centred(queries)), -1.0, 1.0)
    if whitened is not None:
        same_sims = np.clip(_rowwise(whitened, query_vectors), -1.0, 1.0)
    else:
        # Read from the store: the exact same-design vectors (the dearest part) only of the candidates
        # that might reach the same-design band. Below its edge a score is read from the garment
        # cosine alone (Calibration.percent), so any value below the edge gives the others' scores.
        same_sims = np.full(garment.shape, -1.0)
        near = calibration.could_be_same(powered, query_vectors)
        if near.any():
            same_sims[near] = np.clip(_rowwise(whitened_vectors(calibration, powered[near], powered=True), query_vectors), -1.0, 1.0)
    return np.asarray(calibration.percent(same_sims, garment))  # (m, variants)


def whitened_vectors(calibration: Calibration, embeddings: np.ndarray, *, powered: bool = False) -> np.ndarray:
    """The same-design vectors of embeddings (or of `Calibration.powered` ones) as float32, the precision a catalogue holds them in."""
    return np.asarray(calibration.vectors(embeddings, powered=powered), dtype=np.float32)


def _rowwise(rows: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """(m, q) dot products in float64, each computed on its own (no matrix product whose
    summation order depends on how many rows there are)."""
    b = np.asarray(queries, dtype=np.float64)  # the products made in float64 as the rows are read (no float64 copy of them)
    sums = [np.multiply(rows, q, dtype=np.float64).sum(axis=1) for q in b] if len(rows) else []  # np.stack of one: a column
    return (sums[0][:, None] if len(sums) == 1 else np.stack(sums, axis=1)) if sums else np.empty((len(rows), len(b)))


def _holds(sorted_ids: np.ndarray, image_id: int) -> bool:
    at = int(np.searchsorted(sorted_ids, image_id))
    return at < len(sorted_ids) and int(sorted_ids[at]) == image_id

