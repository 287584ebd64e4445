"""The window's count of designs follows a CLI update of its catalogue file, seen by its next search."""

from __future__ import annotations

import pytest

pytest.importorskip("PyQt5")

from helpers import build_pattern_catalogue  # noqa: E402
from swimsearch.catalogue import Catalogue  # noqa: E402
from test_session import World, make_session, state  # noqa: E402
from ui.queries import CatalogueImageQuery  # noqa: E402
from ui.search import Generation, SearchWorker  # noqa: E402


def test_a_search_after_a_cli_update_brings_the_new_count_to_the_status_bar(tmp_path, fake_embedder, small_config, qapp):
    folder, path = build_pattern_catalogue(tmp_path / "pics", tmp_path / "c.swimcat", fake_embedder, small_config, 30, family=5)
    worker = SearchWorker(lambda: fake_embedder, small_config, Generation())
    worker.start()
    worker.open_catalogue(str(path))
    posts: list[tuple] = []
    worker.outbox.post = lambda name, *args: posts.append((name, args))  # type: ignore[method-assign]
    engine = worker._engine
    first = int(engine.searchable_ids()[0])
    query = CatalogueImageQuery(first, str(folder / "x.png"))
    worker.search(query, 0)
    assert posts[-1][0] == "result_ready" and posts[-1][1][0].state is None  # nothing changed: no state to send
    gone = sorted(folder.glob("*.png"))[-1]
    gone.unlink()
    with Catalogue.open(path) as cli:  # `swimsearch index` in another process
        cli.update(fake_embedder, small_config, allow_removal=True)
    worker.search(query, 0)
    outcome = posts[-1][1][0]
    assert outcome.state is not None and outcome.state.searchable == 29
    assert gone.name not in {m.relpath for m in outcome.result.matches}

    world = World()
    session = make_session(world)
    session.on_catalogue_opened(state(folder, searchable=30, path=path))
    assert session.view().catalogue_text.endswith("30 designs")
    session.on_result_ready(outcome.query, outcome.result, outcome.state)
    assert session.view().catalogue_text.endswith("29 designs")
    worker.close_catalogue()
