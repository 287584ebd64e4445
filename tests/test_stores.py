"""The store seam: what a store must do, and that the engine needs nothing more of it."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import build_pattern_catalogue
from swimsearch.catalogue import Catalogue
from swimsearch.errors import CatalogueError
from swimsearch.search import SearchEngine
from swimsearch.searchers import ExactSearch
from swimsearch.stores import NewImage, SqliteStore


class ServerLikeStore:
    """A store that finds candidates itself (as a database server would) and never hands out a snapshot.

    It wraps a real SQLite store for everything else, so the only thing
    that differs from the default path is where candidates come from.
    """

    def __init__(self, inner: SqliteStore):
        self._inner = inner
        self.searches = 0
        outer = self

        class CountingSearch(ExactSearch):
            def search(self, code, vector, k):
                outer.searches += 1
                return super().search(code, vector, k)

        self._searcher = CountingSearch(inner.load_snapshot())

    def own_searcher(self, config):
        return self._searcher

    def load_snapshot(self):
        raise AssertionError("an engine on a store with its own searcher must not load a snapshot")

    def __getattr__(self, name):
        return getattr(self._inner, name)


def test_a_store_with_its_own_searcher_needs_no_change_to_the_engine(tmp_path, fake_embedder, small_config):
    folder, path = build_pattern_catalogue(tmp_path / "pics", tmp_path / "c.swimcat", fake_embedder, small_config, 60, family=4)
    with Catalogue.open(path) as catalogue:
        usual = SearchEngine(catalogue, fake_embedder, small_config)
        server = ServerLikeStore(catalogue.store)
        engine = SearchEngine(server, fake_embedder, small_config)
        assert len(engine) == 60 and engine.searcher_name == "CountingSearch"
        for n in (0, 17, 42):
            query = folder / f"img{n:04d}.png"
            want = [(m.relpath, m.score, m.duplicate) for m in usual.search(query, top_n=8).matches]
            got = [(m.relpath, m.score, m.duplicate) for m in engine.search(query, top_n=8).matches]
            assert got == want and got[0] == (f"img{n:04d}.png", 1.0, True)
        # each query is searched, then searched again expanded, once per round of query expansion
        assert server.searches == 3 * (1 + small_config.expand_rounds) and small_config.expand_rounds == 2


def test_sqlite_store_adds_reads_and_removes_in_the_order_asked(tmp_path):
    (tmp_path / "pics").mkdir()
    store = SqliteStore.create(tmp_path / "c.swimcat", tmp_path / "pics")
    try:
        vectors = np.random.default_rng(0).standard_normal((3, 8)).astype(np.float32)
        ids = store.add_batch(
            [NewImage(f"a/{i}.png", 100 + i, 1.5, 10, 20, 2**64 - 1 - i, "a", embedding=vectors[i]) for i in range(3)]
            + [NewImage("broken.png", 5, 2.0, error="the file is truncated or damaged")]
        )
        assert len(ids) == 4
        stored = store.embedding_matrix([ids[2], 999, ids[0]])  # unknown ids are left out, order kept
        assert stored.ids.tolist() == [ids[2], ids[0]]
        assert np.allclose(stored.vectors, vectors[[2, 0]], atol=1e-2)  # stored in half precision
        records = store.records(ids)
        assert records[ids[0]].phash == 2**64 - 1 and records[ids[0]].path == str(tmp_path / "pics" / "a" / "0.png")
        assert store.counts() == {"images": 4, "readable": 3, "unreadable": 1, "searchable": 0}
        assert store.unreadable() == [("broken.png", "the file is truncated or damaged")]
        store.remove([ids[1], ids[3]])
        assert sorted(store.records(ids)) == [ids[0], ids[2]]
        assert store.phashes(np.array([ids[2], ids[0]])).tolist() == [2**64 - 3, 2**64 - 1]
    finally:
        store.close()


def test_a_store_error_is_one_plain_sentence(tmp_path):
    (tmp_path / "pics").mkdir()
    path = tmp_path / "c.swimcat"
    SqliteStore.create(path, tmp_path / "pics").close()
    store = SqliteStore.open(path)
    store.file.conn.execute("DROP TABLE embeddings")  # damage it behind the store's back
    try:
        with pytest.raises(CatalogueError, match=r"is damaged \(no such table: embeddings\)"):
            store.embedding_matrix([1])
    finally:
        store.close()
