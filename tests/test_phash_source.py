"""A large catalogue's pHash index is made on a thread of its own while it opens, and searches by file find the same with it."""

from __future__ import annotations

import numpy as np
import pytest

from swimsearch import phash_source
from swimsearch.build import refit_catalogue
from swimsearch.catalogue import Catalogue
from swimsearch.config import EngineConfig
from swimsearch.phash_index import hamming64
from swimsearch.search import SearchEngine
from swimsearch.stores import ModelInfo, NewImage

QUERY_PHASH = 0x9C3A_51E7_0F2D_B846


def _flip(value: int, bits: list[int]) -> int:
    for b in bits:
        value ^= 1 << b
    return value


@pytest.fixture(scope="module")
def catalogue_path(tmp_path_factory):
    """400 images with random embeddings; 13 of them with a pHash 0..12 bits from QUERY_PHASH, some stored negative."""
    folder = tmp_path_factory.mktemp("phash-source")
    path = folder / "cat.swimcat"
    rng = np.random.default_rng(4)
    phashes = [int(v) for v in rng.integers(0, 2**63, 400, dtype=np.int64)]
    for n, distance in enumerate(range(13)):
        near = _flip(QUERY_PHASH, rng.choice(64, distance, replace=False).tolist())
        phashes[10 + 25 * n] = near - 2**64 if near >= 2**63 else near  # as SQLite keeps a high bit
    with Catalogue.create(path, folder) as catalogue:
        writer = catalogue.writer()
        writer.set_model(ModelInfo(name="synthetic.onnx", sha256="0" * 64, dim=32))
        writer.add_batch([
            NewImage(f"synthetic/{i:04d}.jpg", 0, 0.0, 1, 1, phashes[i], embedding=rng.random(32).astype(np.float32))
            for i in range(400)
        ])
        refit_catalogue(writer, EngineConfig())
    return path


def _search(path, lazy_from: int, monkeypatch):
    monkeypatch.setattr(phash_source, "LAZY_FROM", lazy_from)
    engine = SearchEngine(Catalogue.open(path, readonly=True), None, EngineConfig())
    query = np.random.default_rng(9).random((1, 32)).astype(np.float32)
    result = engine.search_embeddings(query, top_n=30, phash=QUERY_PHASH)
    return engine, [(m.image_id, round(m.score, 6), m.duplicate, m.phash_distance) for m in result.matches]


def test_every_pHash_is_read_in_one_statement_as_stored(catalogue_path):
    with Catalogue.open(catalogue_path, readonly=True) as catalogue:
        store = catalogue.store
        every = store.phashes(np.arange(0, 2500))  # more than a few: one statement over every record; 0 and 401.. are no image
        few = store.phashes(np.arange(0, 402)[::-1][:300])  # a few, looked up by id
        assert every[0] == 0 and not every[401:].any() and every.dtype == few.dtype == np.uint64
        assert np.array_equal(few, every[:402][::-1][:300])
        near = np.flatnonzero(hamming64(QUERY_PHASH, every) <= 12)
        assert len(near) == 13  # the planted ones, high bit or not


def test_a_damaged_pHash_is_refused_in_plain_words(catalogue_path, tmp_path):
    import shutil
    import sqlite3

    from swimsearch.errors import CatalogueError

    copy = tmp_path / "damaged.swimcat"
    shutil.copyfile(catalogue_path, copy)
    with sqlite3.connect(copy) as conn:
        conn.execute("UPDATE images SET phash = 'x12' WHERE id = 7")
    with Catalogue.open(copy, readonly=True) as catalogue:
        for asked in (np.arange(1, 401), np.arange(1, 5000)):  # a few by id; every one in one statement
            with pytest.raises(CatalogueError, match="impossible values"):
                catalogue.phashes(asked)


def test_the_index_made_in_the_background_lists_what_the_engine_made_itself(catalogue_path, monkeypatch):
    _, itself = _search(catalogue_path, 10**9, monkeypatch)
    engine, background = _search(catalogue_path, 10, monkeypatch)
    assert engine._phash_source._made  # made on the thread started when the catalogue was loaded
    assert background == itself
    assert sum(duplicate for _, _, duplicate, _ in background) == 7  # 0..6 bits: duplicates, listed first
