"""Neighbour lists through an update that searches with the catalogue's own index (above the exact size)."""

from __future__ import annotations

import numpy as np
import pytest

from swimsearch.neighbour_updates import update_lists
from swimsearch.neighbours import VectorTable, exact_lists, lists_from_candidates


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


def test_an_update_that_reads_only_the_vectors_it_needs_makes_the_lists_of_one_that_reads_all_and_of_a_fresh_build():
    """Issue 13: with a search that scores its candidates where the embeddings are (a team catalogue's server),
    an update reads the added images and the few candidates that may enter a list, not every image; the lists,
    the changed ids and the augmented vectors are those of an update that reads every vector, and of a fresh build."""
    from swimsearch.neighbours import augmented
    from swimsearch.stored_vectors import StoredVectors, prepare
    from swimsearch.stores.base import Embeddings

    rng = np.random.default_rng(11)
    centres = rng.standard_normal((40, 16))
    embeddings = (centres[rng.integers(0, 40, 4000)] + 0.4 * rng.standard_normal((4000, 16))).astype(np.float16).astype(np.float32)
    centre = embeddings.mean(axis=0)
    ids = np.arange(1, 4001, dtype=np.int64) * 3  # ids are not row numbers
    full = VectorTable(ids, prepare(embeddings, centre))
    added = ids[-30:]
    kept = VectorTable(ids[:-30], full.vectors[:-30])
    before = exact_lists(kept, kept.ids, 5)
    search = _exact_search(kept)  # the catalogue's own search knows the images it had
    unrounded = embeddings - centre
    unrounded /= np.linalg.norm(unrounded, axis=1, keepdims=True)  # the server's float32 prepared vectors

    def server(vectors, depth):
        found = search(vectors, depth)
        return found, np.einsum("md,mcd->mc", vectors, unrounded[full.rows_of(found.ravel()).reshape(found.shape)])

    reads: list[int] = []

    def read(asked):
        reads.append(len(asked))
        return Embeddings(np.asarray(asked, dtype=np.int64), embeddings[full.rows_of(np.asarray(asked))])

    stored = StoredVectors(ids[::-1], read, centre)
    everything, changed = update_lists(before, full, added, candidates=search)
    needed, changed_too = update_lists(before, stored, added, scored=server)
    assert everything.equals(needed) and np.array_equal(changed, changed_too)
    assert needed.equals(exact_lists(full, full.ids, 5))  # a fresh build's lists
    assert len(changed) > len(added)  # the added images entered existing lists
    assert np.array_equal(augmented(stored, needed, changed, k=5, alpha=3.0), augmented(full, everything, changed, k=5, alpha=3.0))
    assert stored.read_count == sum(reads) < len(ids) // 4  # each vector read once, most never
    # a search that names its candidates only: most vectors are asked for, then read in one pass
    passes: list[int] = []
    whole = StoredVectors(ids, read, centre, read_all=lambda: passes.append(1) or [read(ids[:2000].tolist()), read(ids[2000:].tolist())])
    named_only, _ = update_lists(before, whole, added, candidates=search)
    assert named_only.equals(everything) and passes == [1]
    with pytest.raises(KeyError):
        stored.get(np.array([2]))  # not an image of the catalogue
    assert not stored.gather(np.array([-1, 2])).any()  # nothing, where neighbours.py pads


def test_candidates_rescored_block_by_block_give_every_query_its_exact_best():
    # The build rescores its graph's candidates a block of queries at a time (neighbours.RESCORE_BLOCK);
    # every query past the first block must still get the best of its own candidates, not a neighbour's.
    table = _table(n=400, dim=24, seed=7)
    queries = table.ids[::2]  # 200 queries: several blocks, the last one short
    rng = np.random.default_rng(1)
    candidates = table.ids[rng.integers(0, len(table), size=(len(queries), 30))]
    candidates[:, 3] = -1  # padding, as a graph gives where it found fewer
    lists = lists_from_candidates(table, queries, candidates, 5)
    full = table.float32.astype(np.float64)
    for query, cand, got in zip(queries, candidates, lists.neighbours):
        pool = np.unique(cand[(cand >= 0) & (cand != query)])
        sims = full[pool - 1] @ full[query - 1]
        want = pool[np.lexsort((pool, -sims))][:5]
        assert got.tolist() == want.tolist()


def test_the_lists_of_a_large_build_come_from_the_graph_and_match_the_exact_ones():
    # Above `exact_below` a build takes candidates from an HNSW graph and rescores them exactly:
    # on a table this small the graph walk sees nearly everything, so the lists are the exact ones.
    from swimsearch.neighbours import approximate_lists

    table = _table(n=1500, dim=32, seed=11)
    approx = approximate_lists(table, 5)
    exact = exact_lists(table, table.ids, 5)
    assert np.array_equal(approx.ids, exact.ids)
    same = np.mean([a.tolist() == b.tolist() for a, b in zip(approx.neighbours, exact.neighbours)])
    assert same >= 0.99
