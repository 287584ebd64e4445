"""A search engine follows what another process changed in its catalogue (another window, a CLI update,
another designer on a team catalogue).

Two catalogues opened on one file (or one team catalogue), as two windows or a window and `swimsearch index`
hold it: B removes a design, adds one, decides a pair; A's next search shows each, without A reopening anything.
"""

from __future__ import annotations

import pytest

from helpers import copy_clothing_photos
from swimsearch.catalogue import Catalogue
from swimsearch.config import EngineConfig
from swimsearch.search import SearchEngine


@pytest.fixture(params=["sqlite", "postgres"])
def shared(request, tmp_path, clothing, embedder):
    """(folder, catalogue, photos): 12 real photos in a catalogue file or a team catalogue, built with the real model."""
    folder = tmp_path / "designs"
    photos = copy_clothing_photos(clothing, folder, 12)
    path = tmp_path / "shared.swimcat"
    if request.param == "postgres":
        path = request.getfixturevalue("pg_database").url() + "&catalogue=shared"
    with Catalogue.create(path, folder) as catalogue:
        catalogue.update(embedder, EngineConfig())
    return folder, path, photos


def _listed(engine: SearchEngine, query) -> list[str]:
    return [m.relpath for m in engine.search(query, top_n=50).matches]


def test_a_design_another_process_removed_is_not_listed_and_the_count_follows(shared, embedder):
    folder, path, photos = shared
    with Catalogue.open(path) as a:
        engine = SearchEngine(a, embedder, EngineConfig())
        gone = photos[3]
        assert gone.name in _listed(engine, photos[0]) and len(engine) == 12
        kept = gone.read_bytes()
        gone.unlink()
        with Catalogue.open(path) as b:
            b.update(embedder, EngineConfig(), allow_removal=True)
        assert gone.name not in _listed(engine, photos[0])
        assert len(engine) == 11 and engine.refreshes == 1
        # a query by the design's file (now outside the catalogue) does not list it either
        query = folder.parent / "query.jpg"
        query.write_bytes(kept)
        assert gone.name not in _listed(engine, query)
        assert engine.refreshes == 1  # nothing changed since: not read again


def test_a_design_another_process_added_is_found(shared, clothing, embedder):
    folder, path, photos = shared
    with Catalogue.open(path) as a:
        engine = SearchEngine(a, embedder, EngineConfig())
        new = copy_clothing_photos(clothing, folder.parent / "more", 1, offset=3)[0]
        assert new.name not in _listed(engine, new)
        moved = folder / new.name
        new.rename(moved)
        with Catalogue.open(path) as b:
            b.update(embedder, EngineConfig())
        best = engine.search(moved, top_n=5).matches[0]
        assert best.relpath == moved.name and best.score == 1.0
        assert len(engine) == 13


def test_a_decision_another_process_made_is_shown_without_reading_the_designs_again(shared, embedder):
    folder, path, photos = shared
    with Catalogue.open(path) as a:
        engine = SearchEngine(a, embedder, EngineConfig())
        first = engine.search(photos[0], top_n=50)
        query_id = first.matches[0].image_id
        other = first.matches[-1]
        assert other.decision is None
        with Catalogue.open(path) as b:
            b.store.decide(query_id, other.image_id, "same")
        again = {m.image_id: m for m in engine.search(photos[0], top_n=50).matches}
        assert again[other.image_id].decision == "same"
        assert engine.refreshes == 0  # only the decisions were read again
        with Catalogue.open(path) as b:
            b.store.decide(query_id, other.image_id, None)
        again = {m.image_id: m for m in engine.search(photos[0], top_n=50).matches}
        assert again[other.image_id].decision is None


def test_a_decision_another_process_made_keeps_the_array_cache_in_use(tmp_path, fake_embedder, small_config, monkeypatch):
    from helpers import build_pattern_catalogue

    monkeypatch.setenv("SWIMSEARCH_CACHE_DIR", str(tmp_path / "cache"))
    _, path = build_pattern_catalogue(tmp_path / "pics", tmp_path / "c.swimcat", fake_embedder, small_config, 60, family=6)
    config = small_config.with_changes(rescore_in_memory_up_to=0, array_cache_from=1)
    with Catalogue.open(path) as a:
        engine = SearchEngine(a, fake_embedder, config)
        assert engine.array_watch.wait(120)
        ids = engine.searchable_ids()
        engine.search_id(int(ids[0]), top_n=10)
        assert engine._data.from_arrays
        with Catalogue.open(path) as b:
            b.store.decide(int(ids[0]), int(ids[1]), "same")
        found = {m.image_id: m for m in engine.search_id(int(ids[0]), top_n=10).matches}
        assert found[int(ids[1])].decision == "same"
        assert engine._data.from_arrays and engine.refreshes == 0
