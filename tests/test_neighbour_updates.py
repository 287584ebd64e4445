"""Neighbour lists through an update that searches with the catalogue's own index (above the exact size)."""

from __future__ import annotations

import numpy as np

from swimsearch.neighbours import VectorTable, exact_lists, lists_from_candidates, update_lists


def _table(n: int = 80, dim: int = 16, seed: int = 3) -> VectorTable:
    x = np.random.default_rng(seed).standard_normal((n, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return VectorTable(np.arange(1, n + 1, dtype=np.int64), x.astype(np.float16))


def _exact_search(table: VectorTable):
    """The catalogue's own search, as an index that knows every image: nearest ids by cosine."""
    def search(vectors: np.ndarray, depth: int) -> np.ndarray:
        sims = vectors @ table.float32.T
        return table.ids[np.argsort(-sims, axis=1)[:, :depth]]
    return search


def test_a_candidate_named_twice_takes_one_place_in_the_list():
    table = _table()
    cands = np.array([[5, 5, 9, 9, 12, 30]])
    lists = lists_from_candidates(table, np.array([1]), cands, 4)
    listed = lists.neighbours[0][lists.neighbours[0] >= 0].tolist()
    assert len(listed) == len(set(listed)) == 4


def test_every_picture_touched_in_place_gives_the_lists_of_a_fresh_build():
    # A folder copied to another disk (or touched) reads as every file changed in place: each keeps
    # its id, so the catalogue's search and the search among the changed images both name it.
    table = _table()
    before = exact_lists(table, table.ids, 5)
    after, _ = update_lists(before, table, table.ids, candidates=_exact_search(table))
    fresh = exact_lists(table, table.ids, 5)
    assert all(len(set(row[row >= 0])) == len(row[row >= 0]) for row in after.neighbours)
    assert np.array_equal(after.select(fresh.ids).neighbours, fresh.neighbours)
