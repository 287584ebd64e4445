"""Shown scores from one matrix product (score_bounds.py): the list a user reads is the row-by-row one.

The real model's calibration and real photos' embeddings: every candidate the rough scoring calls settled
reads the same whole percent and band as its exact score, a *same design* one has its exact score, and
a search from the array cache lists exactly what the rows give, whatever its length.
"""

from __future__ import annotations

import numpy as np

from swimsearch.calibration import band_levels, shipped_calibration, whole_percents
from swimsearch.catalogue import Catalogue
from swimsearch.ranking import _rowwise, shown_percents, whitened_vectors
from swimsearch.score_bounds import settled_percents


def _candidates(catalogue, calibration, rng):
    """Real embeddings, their float16-rounded blends towards each other (every band) and exact copies."""
    stored = np.concatenate([part.vectors for part in catalogue.store.iter_stored_embeddings()]).astype(np.float32)
    a, b = stored[rng.integers(0, len(stored), 3000)], stored[rng.integers(0, len(stored), 3000)]
    t = rng.random((3000, 1)).astype(np.float32) ** 3  # many close to `a`: same design and very similar
    blends = ((1 - t) * a + t * b).astype(np.float16).astype(np.float32)
    return np.concatenate([stored, blends])


def test_a_settled_rough_score_reads_what_the_exact_one_reads(photo_catalogue):
    _, path = photo_catalogue
    rng = np.random.default_rng(5)
    with Catalogue.open(path, readonly=True) as catalogue:
        calibration = shipped_calibration(catalogue.identity().model_sha256)
        assert calibration is not None
        candidates = _candidates(catalogue, calibration, rng)
    powered = calibration.powered(candidates)
    whitened = np.asarray(calibration.vectors(powered, powered=True), np.float32)
    levels_seen = set()
    for query in candidates[rng.integers(0, len(candidates), 12)]:
        same = np.clip(_rowwise(whitened, whitened_vectors(calibration, query[None])), -1.0, 1.0)[:, 0]
        exact = shown_percents(None, whitened, query[None], calibration, None, powered=powered)[:, 0]  # type: ignore[arg-type]
        asked = []
        percent, settled = settled_percents(same, lambda rows: powered[rows], query, calibration,
                                            lambda rows: asked.append(rows) or exact[rows][:, None])
        percent = percent[:, 0]
        level = band_levels(exact)
        levels_seen |= set(level.tolist())
        left = np.concatenate(asked) if asked else np.zeros(0, np.int64)
        assert len(left) < 0.1 * len(same) and not settled[left].any()  # few are left to the row-by-row scoring
        assert np.array_equal(percent[~settled], exact[~settled])  # every other score exact, bit for bit
        assert not settled[level == 0].any()  # a same-design score is exact: the order inside the band reads it
        assert np.array_equal(whole_percents(percent[settled]), whole_percents(exact[settled]))
        assert np.array_equal(band_levels(percent[settled]), level[settled])
        assert np.abs(percent - exact).max() < 1e-6
    assert levels_seen == {0, 1, 2, 3}  # every band was met


def test_a_short_list_from_the_cache_is_the_rows_one_to_the_last_bit(photo_catalogue, embedder, tmp_path, monkeypatch):
    """Ten and three results of each photo: ids, scores (exact), bands and order as the row-by-row scoring gives."""
    from swimsearch.config import EngineConfig
    from swimsearch.search import SearchEngine

    monkeypatch.setenv("SWIMSEARCH_CACHE_DIR", str(tmp_path / "cache"))
    folder, path = photo_catalogue
    with Catalogue.open(path, readonly=True) as catalogue:
        rows = SearchEngine(catalogue, embedder, EngineConfig(rescore_in_memory_up_to=0, array_cache_from=None))
        cached = SearchEngine(catalogue, embedder, EngineConfig(rescore_in_memory_up_to=0, array_cache_from=1))
        assert cached.array_watch.wait(120)
        for image_id in cached.searchable_ids()[::3].tolist():
            for top_n in (3, 10):
                want, got = rows.search_id(image_id, top_n=top_n), cached.search_id(image_id, top_n=top_n)
                assert cached._data.from_arrays
                assert got.matches == want.matches
