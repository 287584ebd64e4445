"""Neighbour lists kept right through an update: the added images' own lists, and the existing lists they enter.

Below `exact_below` images every image is compared with every other
(neighbours.exact_lists). Above, the catalogue's own search names the
candidates (`ScoredFn`): an added image's list is the best k of its
`UPDATE_DEPTH` candidates and the added images, and it enters the list of
every candidate whose k-th cosine it beats, as the research recommends
(docs/QUALITY_RESEARCH.md). A search that scores its candidates where the
embeddings are (a team catalogue's server: `PgSearcher.scored_candidates`)
gives cosines within `SCORE_MARGIN` / 2 of the exact ones; only candidates
that may belong in a list on those are read and compared exactly, so an
update reads a few vectors per added image instead of every candidate's
(issue 13: reading them all made an update of 1,500 designs take twenty
minutes at 100,000). The decisions are made on the exact cosines of the
kept float16 vectors, as a build makes them: a candidate left out could not
have entered a list.
"""

from __future__ import annotations

import logging

import numpy as np

from .neighbours import (
    BUILD_DEPTH,
    SCORE_MARGIN,
    UPDATE_DEPTH,
    CandidateFn,
    NeighbourLists,
    ScoredFn,
    PreparedVectors,
    VectorTable,
    exact_lists,
    lists_from_candidates,
)

log = logging.getLogger(__name__)


def exactly_scored(candidates: CandidateFn, table: PreparedVectors) -> ScoredFn:
    """A search that names candidates only, scored on the table's vectors (each candidate read)."""

    def scored(vectors: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
        ids = np.asarray(candidates(vectors, depth), dtype=np.int64)
        present = (ids >= 0) & (table.rows_of(ids.ravel()).reshape(ids.shape) >= 0)
        if hasattr(table, "preload"):  # vectors read from the store: ask for them all at once (one pass, if most)
            table.preload(ids[present])
        sims = np.full(ids.shape, np.nan, np.float32)
        for row in range(len(ids)):
            sims[row, present[row]] = table.get(ids[row, present[row]]) @ vectors[row]
        return ids, sims

    return scored


def update_lists(
    lists: NeighbourLists,
    table: PreparedVectors,
    added: np.ndarray,
    *,
    candidates: CandidateFn | None = None,
    scored: ScoredFn | None = None,
) -> tuple[NeighbourLists, np.ndarray]:
    """The lists after an update, and the ids whose list changed (whose augmented vector must be made again).

    Args:
        lists: the lists before the update (rows of removed images may still be there).
        table: the prepared vectors of every image searchable after the update (all held, or read when asked for).
        added: ids of the images the update added or changed (in `table`; a list they still
            have is of the picture before).
        candidates: the catalogue's own search for images near given vectors;
            None (and no `scored`): search exactly (every image is a candidate).
        scored: the same search with the candidates' cosines (it takes the place of `candidates`).

    An added image x gets its own list, and enters the list of every
    existing image whose k-th cosine it beats. An image whose list named a
    removed image is searched again.
    """
    k = lists.k
    added = np.unique(np.asarray(added, dtype=np.int64))
    named = np.unique(lists.neighbours[lists.neighbours >= 0])
    # Gone: images with a list or named in one that are no longer searchable (the store may have
    # dropped a removed image's own list already), and every added id: a list that names it, or
    # its own, speaks of the picture before (a changed file keeps its id; SQLite can hand out a
    # removed image's id again).
    removed = np.union1d(np.setdiff1d(np.union1d(lists.ids, named), table.ids), added)
    lists = lists.without(removed)
    # images that listed a removed one: search them again (a new k-th neighbour moves up)
    holes = lists.listing(removed) if len(removed) else np.empty(0, np.int64)
    if scored is None and candidates is not None:
        scored = exactly_scored(candidates, table)
    if scored is None:
        if not isinstance(table, VectorTable):
            raise TypeError("an update without the catalogue's search compares every image: it needs every vector held")
        redo = np.union1d(holes, added)
        fresh = exact_lists(table, redo, k) if len(redo) else NeighbourLists.empty(k)
        entered = _enter_exactly(lists.select(np.setdiff1d(lists.ids, redo)), table, added)
    else:
        fresh, entered = _update_scored(lists, table, added, holes, scored)
    result = lists.updated(entered).updated(fresh)
    return result, np.unique(np.concatenate([added, holes, entered.ids])).astype(np.int64)


def _update_scored(
    lists: NeighbourLists, table: PreparedVectors, added: np.ndarray, holes: np.ndarray, scored: ScoredFn
) -> tuple[NeighbourLists, NeighbourLists]:
    """(new lists of the added images and the holes, existing lists the added images entered), from the search."""
    k = lists.k
    holes_only = np.setdiff1d(holes, added)
    among = _among_added(table, added)
    parts = []
    found = np.empty((0, UPDATE_DEPTH), np.int64), np.empty((0, UPDATE_DEPTH), np.float32)
    if len(added):  # one deep search serves both the added images' own lists and the lists they enter
        found = scored(table.get(added), UPDATE_DEPTH)
        parts.append(_best(table, added, *_joined(found, among(added)), k))
    if len(holes_only):  # the catalogue's search knows the images it had; the added ones are compared exactly
        parts.append(_best(table, holes_only, *_joined(scored(table.get(holes_only), BUILD_DEPTH), among(holes_only)), k))
    fresh = NeighbourLists.empty(k)
    for part in parts:
        fresh = fresh.updated(part)
    existing = lists.select(np.setdiff1d(lists.ids, np.union1d(holes, added)))
    return fresh, _enter_scored(existing, table, added, *found)


def _among_added(table: PreparedVectors, added: np.ndarray):
    """For given images: the `BUILD_DEPTH` nearest added images and their exact cosines (the search knows only what it had)."""
    vectors = table.get(added) if len(added) else np.empty((0, 0), np.float32)
    depth = min(BUILD_DEPTH, len(added))

    def among(query_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ids, sims = np.full((len(query_ids), depth), -1, np.int64), np.full((len(query_ids), depth), np.nan, np.float32)
        for start in range(0, len(query_ids) if depth else 0, 1024):
            part = table.get(query_ids[start : start + 1024]) @ vectors.T
            top = np.argpartition(-part, depth - 1, axis=1)[:, :depth] if depth < len(added) else np.argsort(-part, axis=1)
            ids[start : start + len(part)] = added[top]
            sims[start : start + len(part)] = np.take_along_axis(part, top, axis=1)
        return ids, sims

    return among


def _joined(first: tuple[np.ndarray, np.ndarray], second: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    return np.concatenate([first[0], second[0]], axis=1), np.concatenate([first[1], second[1]], axis=1)


def _best(table: PreparedVectors, query_ids: np.ndarray, ids: np.ndarray, sims: np.ndarray, k: int) -> NeighbourLists:
    """Each row's k best candidates, exactly: only those within `SCORE_MARGIN` of the row's k-th best given cosine are
    read and compared (one outside cannot be among the k best: its exact cosine is below the k-th exact one)."""
    by_id = np.argsort(ids, axis=1, kind="stable")  # an id named twice (by the search and among the added) counts once
    ordered = np.take_along_axis(ids, by_id, axis=1)
    repeat = np.zeros(ids.shape, dtype=bool)
    repeat[:, 1:] = ordered[:, 1:] == ordered[:, :-1]
    np.put_along_axis(repeat, by_id, repeat.copy(), axis=1)
    present = table.rows_of(ids.ravel()).reshape(ids.shape) >= 0  # not removed meanwhile
    valid = present & ~repeat & (ids != query_ids[:, None]) & np.isfinite(sims)
    scores = np.where(valid, sims, -np.inf)
    kth = -np.sort(-scores, axis=1)[:, k - 1 : k] if scores.shape[1] >= k else np.full((len(ids), 1), -np.inf)
    keep = valid & (scores >= kth - SCORE_MARGIN)
    width = max(int(keep.sum(axis=1).max(initial=0)), 1)
    if hasattr(table, "preload"):
        table.preload(np.concatenate([ids[keep], query_ids]))
    kept = np.full((len(ids), width), -1, np.int64)
    for row in range(len(ids)):
        chosen = ids[row, keep[row]]
        kept[row, : len(chosen)] = chosen
    return lists_from_candidates(table, query_ids, kept, k)


def _enter_scored(existing: NeighbourLists, table: PreparedVectors, added: np.ndarray, found: np.ndarray, sims: np.ndarray) -> NeighbourLists:
    """The existing lists that the added images enter: each added image's candidates whose k-th cosine its given cosine
    comes within `SCORE_MARGIN` of are compared exactly."""
    if not len(added) or not len(existing):
        return NeighbourLists.empty(existing.k)
    neighbours, list_sims = existing.neighbours.copy(), existing.similarities.copy()
    kth = np.where(neighbours[:, -1] >= 0, list_sims[:, -1], -np.inf)
    touched = np.zeros(len(existing), dtype=bool)
    new_vectors = table.get(added)
    if hasattr(table, "preload"):  # k-th cosines only rise as images enter: the first test names every vector needed
        rows = existing.rows_of(found.ravel()).reshape(found.shape)
        may = (rows >= 0) & (found >= 0) & np.isfinite(sims)
        may[may] = sims[may] >= kth[rows[may]] - SCORE_MARGIN
        table.preload(found[may])
    for j, new_id in enumerate(added):
        ids, first = np.unique(found[j], return_index=True)
        given = sims[j][first]
        rows = existing.rows_of(ids)
        near = (rows >= 0) & (ids >= 0) & np.isfinite(given)
        rows, given = rows[near], given[near]
        rows = rows[given >= kth[rows] - SCORE_MARGIN]
        if not len(rows):
            continue
        s = table.get(existing.ids[rows]) @ new_vectors[j]
        _enter_rows(neighbours, list_sims, kth, touched, rows, s, int(new_id))
    return NeighbourLists(existing.ids[touched], neighbours[touched], list_sims[touched])


def _enter_exactly(existing: NeighbourLists, table: VectorTable, added: np.ndarray) -> NeighbourLists:
    """The existing lists that the added images enter, every image compared (the exact path)."""
    if not len(added) or not len(existing):
        return NeighbourLists.empty(existing.k)
    neighbours, sims = existing.neighbours.copy(), existing.similarities.copy()
    kth = np.where(neighbours[:, -1] >= 0, sims[:, -1], -np.inf)
    touched = np.zeros(len(existing), dtype=bool)
    all_sims = table.float32[table.rows_of(existing.ids)] @ table.get(added).T  # (existing, added)
    rows = np.arange(len(existing))
    for j, new_id in enumerate(added):
        _enter_rows(neighbours, sims, kth, touched, rows, all_sims[:, j], int(new_id))
    return NeighbourLists(existing.ids[touched], neighbours[touched], sims[touched])


def _enter_rows(
    neighbours: np.ndarray, sims: np.ndarray, kth: np.ndarray, touched: np.ndarray, rows: np.ndarray, s: np.ndarray, new_id: int
) -> None:
    """Put `new_id` into the lists of `rows` whose k-th cosine its cosines `s` beat (ties: lower id first)."""
    enters = (s > kth[rows]) | ((s == kth[rows]) & (new_id < neighbours[rows, -1]))
    for row, value in zip(rows[enters], s[enters]):
        _insert(neighbours[row], sims[row], new_id, float(value))
        kth[row] = sims[row, -1] if neighbours[row, -1] >= 0 else -np.inf
        touched[row] = True


def _insert(neighbours: np.ndarray, sims: np.ndarray, new_id: int, value: float) -> None:
    """Put (new_id, value) into one sorted list in place (ties: lower id first, as `_keep_best`)."""
    listed = np.where(neighbours >= 0, sims, -np.inf)
    at = 0
    while at < len(neighbours) and (listed[at] > value or (listed[at] == value and neighbours[at] < new_id)):
        at += 1
    if at >= len(neighbours):
        return
    neighbours[at + 1 :] = neighbours[at:-1].copy()
    sims[at + 1 :] = sims[at:-1].copy()
    neighbours[at], sims[at] = new_id, value
