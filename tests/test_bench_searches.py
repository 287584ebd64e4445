"""The benchmarks time the candidate searches the pipeline really makes (bench_scale.RecordingExact).

Before, bench_depth.py and bench_scale.py timed `fitted.codes(embeddings)` of
raw trunk embeddings, which an augmented fit never searches with: at 1M the
peer's walks were half as long on those as on the real queries, and the
"1.6 x FAISS" of issue 15 came from that.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import build_pattern_catalogue
from swimsearch.catalogue import Catalogue
from swimsearch.search import SearchEngine
from swimsearch.searchers import ExactSearch

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.fixture
def bench_scale(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    import bench_scale

    return bench_scale


def test_the_searches_timed_are_the_pipelines_own(tmp_path, fake_embedder, small_config, bench_scale):
    _, path = build_pattern_catalogue(tmp_path / "pics", tmp_path / "c.swimcat", fake_embedder, small_config, 120, family=6)
    with Catalogue.open(path, readonly=True) as catalogue:
        snap = catalogue.load_snapshot()
        fitted = snap.fitted
        assert fitted.augmented  # the default fit: queries are prepared before they are coded
        ids = snap.ids[::20]
        queries = np.stack([catalogue.embeddings([int(i)])[int(i)] for i in ids]).astype(np.float32)
        lists, codes, vectors = bench_scale.pipeline_searches(catalogue, small_config, snap, queries)
        plain = SearchEngine(catalogue, None, small_config, searcher=ExactSearch(snap))
        want = [[m.image_id for m in plain.search_embeddings(q[None], top_n=10).matches] for q in queries]
    assert lists == want  # recording changes no result
    searches = 1 + small_config.expand_rounds  # the query, then expanded with its best results
    assert len(codes) == len(vectors) == searches * len(queries)
    firsts = vectors[::searches]
    prepared = fitted.vectors(fitted.prepare(queries))
    raw = fitted.vectors(queries)
    # each query's first search is the prepared query (the catalogue rounds embeddings to float16)...
    assert np.all(np.sum(firsts * prepared, axis=1) > 0.999)
    # ...not the raw embedding the benchmarks used to time
    assert np.all(np.sum(firsts * raw, axis=1) < 0.99)
    np.testing.assert_array_equal(codes[::searches], fitted.codes(fitted.prepare(queries.astype(np.float16).astype(np.float32))))
    # the expanded searches are searches of their own, not the query again
    assert np.all(np.sum(vectors[1::searches] * firsts, axis=1) < 0.999)
