"""The first searches by file of a large catalogue do not wait for the pHash index, and find what it would find."""

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


def test_the_store_scan_finds_every_image_within_the_radius_and_no_other(catalogue_path):
    with Catalogue.open(catalogue_path, readonly=True) as catalogue:
        store = catalogue.store
        everything = store.phashes(np.arange(1, 401))
        for radius in (0, 4, 8, 11):
            ids, values = store.phashes_near(phash_source._probe_keys(QUERY_PHASH, radius))
            within = ids[hamming64(QUERY_PHASH, values) <= radius]
            truth = np.flatnonzero(hamming64(QUERY_PHASH, everything) <= radius) + 1
            assert within.tolist() == truth.tolist()
            assert len(truth) == radius + 1  # the planted ones, 0..radius bits away


def test_a_first_search_by_file_lists_what_the_full_index_lists(catalogue_path, monkeypatch):
    _, with_index = _search(catalogue_path, 10**9, monkeypatch)
    engine, scanned = _search(catalogue_path, 10, monkeypatch)
    assert scanned == with_index
    assert sum(duplicate for _, _, duplicate, _ in scanned) == 7  # 0..6 bits: duplicates, listed first
    # meanwhile the full index was made on a thread of its own; the next searches use it
    index = engine._phash_source.index()
    assert len(index) == 400 and engine._phash_source._made
    _, again = _search(catalogue_path, 10, monkeypatch)
    assert again == with_index
