"""The method of search by a detail (issue 12 item 2): the learned basis and the two-step region scan."""

from __future__ import annotations

import numpy as np

from swimsearch.regions import REGION_BASIS_FILE, default_windows, fit_learned_basis, fit_region_basis, shipped_region_basis
from swimsearch.region_index import COARSE_DIM, RegionIndex, expanded_query


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _detail_world(seed: int, motifs: int = 40):
    """Pooled vectors (C = 48) made of a motif part and a loud nuisance part (the rest of the picture around a detail).

    A crop framed on white and the same motif inside a design share the
    motif part and differ in the nuisance part, which varies more than the
    motifs do: plain principal components keep mostly the nuisance.
    """
    rng = np.random.default_rng(seed)
    channels = 48
    motif_axes = np.eye(channels)[:8]
    nuisance_axes = np.eye(channels)[8:]
    motif = rng.standard_normal((motifs, 8)) @ motif_axes

    def seen(k):  # (k, C): the motif once, with its own nuisance
        return 5.0 + motif[k] + 3.0 * rng.standard_normal((len(k), 40)) @ nuisance_axes

    return rng, channels, seen


def test_the_learned_basis_matches_a_detail_where_principal_components_do_not():
    rng, channels, seen = _detail_world(0)
    windows = default_windows(7)
    sample = seen(rng.integers(0, 40, 3000))
    pairs = rng.integers(0, 40, 2000)
    queries = seen(pairs)
    candidates = np.stack([seen(pairs) for _ in range(len(windows))], axis=1)  # every window of the design holds the motif
    overlaps = np.ones((len(pairs), len(windows)))
    learned = fit_learned_basis(sample, queries, candidates, overlaps, windows, dim=8, pca_dim=channels, shrink=0.01)
    plain = fit_region_basis(sample, windows, dim=8)

    # fresh motifs seen again: a query must find its own motif's picture first among all 40
    test = np.arange(40)
    query, design = seen(test), seen(test)
    for basis, at_least in ((learned, 0.9), (plain, None)):
        sims = basis.project(query) @ basis.project(design).T
        found = float(np.mean(sims.argmax(axis=1) == test))
        if at_least is None:
            assert found < 0.5, found  # what plain components keep is mostly the nuisance
        else:
            assert found >= at_least, found
    assert learned.basis.shape == (channels, 8) and learned.dim == 8 and learned.regions == len(windows)


def test_the_two_step_scan_gives_the_full_cosines_of_the_best_and_ranks_the_rest_after():
    rng = np.random.default_rng(1)
    n, regions, dim = 3000, 6, 128
    vectors = _unit(rng.standard_normal((n, regions, dim))).astype(np.float16)
    queries = _unit(rng.standard_normal((2, dim))).astype(np.float32)
    vectors[7, 3] = queries[0].astype(np.float16)  # image 7 holds the first query exactly, image 11 the second
    vectors[11, 0] = queries[1].astype(np.float16)
    index = RegionIndex(np.arange(100, 100 + n), vectors)
    exact = np.einsum("nrd,fd->nrf", vectors.astype(np.float32), queries).max(axis=1)

    assert index.coarse_dim == COARSE_DIM < dim
    best = index.best(queries, refine=300)
    refined = best.max(axis=1) >= -1.0
    assert refined.sum() == 300 and refined[7] and refined[11]
    assert np.allclose(best[refined], exact[refined], atol=1e-5)  # the full vectors, not the prefix
    assert (best[~refined] < -1.0).all()  # the others rank after every refined one
    assert np.argmax(best[:, 0]) == 7 and np.argmax(best[:, 1]) == 11 and np.isclose(best[7, 0], 1.0, atol=2e-3)
    everything = index.best(queries, refine=n)
    assert np.allclose(everything, exact, atol=1e-5)
    coarse = index.best(queries, refine=0)  # the first step alone: cosines of the prefixes
    prefix = _unit(vectors[..., :COARSE_DIM].astype(np.float32))
    assert np.allclose(coarse, np.einsum("nrd,fd->nrf", prefix, _unit(queries[:, :COARSE_DIM])).max(axis=1), atol=1e-5)


def test_an_index_of_short_vectors_is_scanned_in_one_step():
    rng = np.random.default_rng(2)
    vectors = _unit(rng.standard_normal((50, 4, 32))).astype(np.float16)
    index = RegionIndex(np.arange(50), vectors)
    query = _unit(rng.standard_normal((1, 32))).astype(np.float32)
    exact = np.einsum("nrd,fd->nrf", vectors.astype(np.float32), query).max(axis=1)
    assert index.coarse_dim == 32 and np.allclose(index.best(query), exact, atol=1e-4)
    assert index.bytes_per_image == 4 * 32 * 2 + 4 * 32 * 4
    assert len(RegionIndex(np.empty(0), np.empty((0, 0, 0), np.float16))) == 0


def test_the_shipped_basis_is_learned_and_its_first_dims_are_its_coarse_scan(tmp_path):
    basis = shipped_region_basis((1280, 7, 7))
    assert basis is not None and basis.name == REGION_BASIS_FILE
    assert basis.regions == len(default_windows(7)) and basis.dim > COARSE_DIM
    assert basis.bytes_per_image == basis.regions * basis.dim * 2
    # a learned whitening is not orthonormal (principal components would be): it weighs directions
    gram = basis.basis.T @ basis.basis
    assert not np.allclose(gram, np.eye(basis.dim), atol=1e-2)


def test_the_expanded_second_look_finds_more_of_the_designs_that_hold_a_motif():
    # a detail query is seen through its white frame (`framing`); 30 designs hold the motif, each among its own
    # surroundings, and the others have windows that share the framing: the best windows of the first results
    # pull the query towards the motif as the designs hold it
    rng = np.random.default_rng(1)
    n, regions, dim, holders = 3000, 4, 128, 30
    motif, framing = _unit(rng.standard_normal((2, dim)))
    vectors = _unit(rng.standard_normal((n, regions, dim)))
    vectors[:holders, 1] = _unit(motif + 1.0 * _unit(rng.standard_normal((holders, dim))))
    vectors[holders:, 2] = _unit(framing + 2.2 * _unit(rng.standard_normal((n - holders, dim))))
    query = _unit(motif + 0.9 * framing)[None].astype(np.float32)
    index = RegionIndex(np.arange(n), vectors.astype(np.float16))
    scan = index.scan(query, refine=1000)
    assert len(scan.refined) == 1000 and scan.full.dtype == np.float32  # the two-step scan: its best 1,000 in full
    again = scan.second_look(query, scan.values)
    expanded = expanded_query(scan.full, scan.refined, query, scan.values)

    def found(values):  # holders among the first 30
        return int((np.argsort(-values)[:holders] < holders).sum())

    assert found(again) >= found(scan.values[:, 0]) + 5 and found(again) >= 28, (found(scan.values[:, 0]), found(again))
    assert expanded @ motif > query[0] @ motif + 0.05 and np.isclose(np.linalg.norm(expanded), 1.0, atol=1e-5)
    not_refined = np.setdiff1d(np.arange(n), scan.refined)
    assert again[not_refined].max() < again[scan.refined].min()  # what the scan did not refine still ranks after


def test_the_expanded_query_keeps_the_row_the_best_results_favour():
    # towards *ignore colour* the rows are the detail and its hue turns: a design that holds the detail in another
    # colourway matches a turned row best, and the expansion starts from that row, not from the colours as given
    rng = np.random.default_rng(3)
    rows = _unit(rng.standard_normal((3, 32))).astype(np.float32)
    vectors = _unit(rng.standard_normal((200, 4, 32)))
    vectors[:5, 0] = rows[2]  # five designs in the colourway of the second hue turn
    index = RegionIndex(np.arange(200), vectors.astype(np.float16))
    scan = index.scan(rows)
    expanded = expanded_query(scan.full, scan.refined, rows, scan.values)
    assert expanded @ rows[2] > 0.95 and abs(expanded @ rows[0]) < 0.5
    # no row counts (nothing alike at all): the detail itself is searched again
    flat = np.zeros((200, 3), np.float32) - 0.5
    assert np.allclose(expanded_query(scan.full, scan.refined, rows, flat), rows[0])
