"""A decision saved from the window keeps a large catalogue's array cache in use (ui/search.py)."""

from __future__ import annotations

import pytest

pytest.importorskip("PyQt5")

from helpers import build_pattern_catalogue  # noqa: E402
from ui.search import Generation, SearchWorker  # noqa: E402


def test_a_decision_saved_by_the_search_worker_keeps_the_array_cache(tmp_path, fake_embedder, small_config, monkeypatch, qapp):
    monkeypatch.setenv("SWIMSEARCH_CACHE_DIR", str(tmp_path / "cache"))
    _, path = build_pattern_catalogue(tmp_path / "pics", tmp_path / "c.swimcat", fake_embedder, small_config, 60, family=6)
    worker = SearchWorker(lambda: fake_embedder, small_config.with_changes(rescore_in_memory_up_to=0, array_cache_from=1), Generation())
    worker.start()
    worker.open_catalogue(str(path))
    engine = worker._engine
    assert engine is not None and engine.array_watch.wait(120)
    ids = engine.searchable_ids()
    engine.search_id(int(ids[0]), top_n=10)
    assert engine._data.from_arrays
    worker.decide([(int(ids[0]), int(ids[1]))], "same")
    engine.search_id(int(ids[0]), top_n=10)
    assert engine._data.from_arrays  # a search after the decision still reads the arrays, not rows
    worker.close_catalogue()
