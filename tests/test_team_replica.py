"""A team catalogue's search cache on the client (team_replica.py): what a designer would notice.

The same lists as a search that brings its rows, fewer statements a search,
one cache per catalogue whatever login or address reaches it, another
client's update seen by the very next search (the cache dropped and made
again), viewers too, and no cache where the disk lacks room. Everything runs
on the session's embedded PostgreSQL server (tests/pg_server.py).
"""

from __future__ import annotations

import pytest

from helpers import make_pattern_images
from swimsearch.catalogue import Catalogue
from swimsearch.search import SearchEngine
from swimsearch.stores.pg_schema import CatalogueNames
from swimsearch.team_replica import TeamReplica, replica_file


@pytest.fixture
def team(pg_database, tmp_path, fake_embedder, small_config):
    """80 designs in two folders, searched in the server (exact_below 50), an editor and a viewer login."""
    folder = tmp_path / "designs"
    make_pattern_images(folder / "anna", 40, family=4)
    make_pattern_images(folder / "bert", 40, start=100, family=4)
    url = f"{pg_database.url()}&catalogue=team"
    with Catalogue.create(url, folder) as catalogue:
        catalogue.update(fake_embedder, small_config)
    editor, viewer = pg_database.create_role("anna"), pg_database.create_role("bert")
    names = CatalogueNames.of("team", pg_database.name)
    with pg_database.connect() as conn:
        conn.execute(f'GRANT "{names.editor}" TO "{editor}"')
        conn.execute(f'GRANT "{names.viewer}" TO "{viewer}"')
    pg_database.roles += [names.editor, names.viewer]
    return {"folder": folder, "db": pg_database, "url": url, "editor": editor, "viewer": viewer}


def urls(team, user=None):
    return f"{team['db'].url(user, 'secret' if user else None)}&catalogue=team"


def server_config(small_config, cached: bool):
    return small_config.with_changes(exact_below=50, rescore_in_memory_up_to=0, array_cache_from=1 if cached else None)


def listed(engine, queries, top_n=8):
    return [[(m.relpath, m.score, m.duplicate, m.distance) for m in engine.search(q, top_n=top_n).matches] for q in queries]


def counting(monkeypatch):
    import psycopg

    sent = []
    real = psycopg.Cursor.execute
    monkeypatch.setattr(psycopg.Cursor, "execute", lambda cur, *a, **k: sent.append(a[0]) or real(cur, *a, **k))
    return sent


def test_a_search_from_the_replica_lists_exactly_what_the_rows_give_in_fewer_statements(
        team, fake_embedder, small_config, cache_home, monkeypatch):
    queries = sorted(team["folder"].rglob("*.png"))[::7]
    with Catalogue.open(team["url"]) as rows_side, Catalogue.open(team["url"]) as cached_side:
        by_rows = SearchEngine(rows_side, fake_embedder, server_config(small_config, False))
        cached = SearchEngine(cached_side, fake_embedder, server_config(small_config, True))
        assert isinstance(cached.array_watch, TeamReplica) and by_rows.array_watch is None
        assert cached.array_watch.wait(120), "the replica was not made"
        assert cached.array_watch.path.parent == cache_home / "team" and cached.array_watch.path.exists()
        assert listed(cached, queries) == listed(by_rows, queries)  # same designs, order, scores, duplicates, distances
        assert cached._data.from_arrays  # the last search read the replica
        vectors = rows_side.store.embedding_matrix(by_rows.searchable_ids()[::5].tolist()).vectors  # as a new picture's
        expected = [[m.relpath for m in by_rows.search_embeddings(v[None], top_n=8).matches] for v in vectors]
        sent = counting(monkeypatch)
        got = [[m.relpath for m in cached.search_embeddings(v[None], top_n=8).matches] for v in vectors]
    assert cached.searcher_name == by_rows.searcher_name == "PgSearcher"
    assert got == expected
    # three candidate searches a query (augmentation, two expansions), each one statement; nothing else is read
    assert len(sent) == 3 * len(vectors) and all(s.startswith("WITH c AS") for s in sent)


def test_one_replica_per_catalogue_whatever_login_or_address(team, cache_home):
    with Catalogue.open(urls(team, team["editor"])) as a, Catalogue.open(urls(team, team["viewer"])) as b:
        assert replica_file(a.store) == replica_file(b.store)
        assert "secret" not in str(replica_file(a.store)) and team["editor"] not in str(replica_file(a.store))


def test_another_clients_update_is_found_by_the_next_search_and_the_replica_made_again(
        team, fake_embedder, small_config, cache_home):
    config = server_config(small_config, True)
    new = team["folder"] / "carl"
    with Catalogue.open(urls(team, team["viewer"])) as a, Catalogue.open(urls(team, team["editor"])) as b:
        engine = SearchEngine(a, fake_embedder, config)
        assert engine.array_watch.wait(120)
        before = engine.array_watch.counter
        make_pattern_images(new, 3, start=700)
        assert b.update(fake_embedder, small_config, folder=new).added == 3  # client B adds 3 designs
        query = new / "img0701.png"
        best = engine.search(query, top_n=5).matches[0]  # client A: the very next search
        assert (best.relpath, best.score) == ("carl/img0701.png", 1.0)
        assert not engine._data.from_arrays  # made without the stale replica
        assert engine.array_watch.wait(120), "the replica was not made again"
        assert engine.array_watch.counter != before
        again = engine.search(query, top_n=5).matches
        assert engine._data.from_arrays and (again[0].relpath, again[0].score) == ("carl/img0701.png", 1.0)
        with Catalogue.open(team["url"]) as plain:
            rows = SearchEngine(plain, fake_embedder, server_config(small_config, False)).search(query, top_n=5).matches
        assert [(m.relpath, m.score) for m in again] == [(m.relpath, m.score) for m in rows]


def test_a_viewer_searches_from_a_replica_made_with_its_own_login(team, fake_embedder, small_config, cache_home):
    query = team["folder"] / "bert" / "img0105.png"
    with Catalogue.open(urls(team, team["viewer"])) as shared:
        engine = SearchEngine(shared, fake_embedder, server_config(small_config, True))
        assert engine.array_watch.wait(120)
        best = engine.search(query, top_n=3).matches[0]
        assert engine._data.from_arrays and (best.relpath, best.score) == ("bert/img0105.png", 1.0)


def test_too_little_disk_space_makes_no_replica_and_searches_bring_their_rows(
        team, fake_embedder, small_config, cache_home, monkeypatch):
    import swimsearch.team_replica as team_replica

    monkeypatch.setattr(team_replica, "room_for", lambda *a: "not enough free disk space for the search cache of it")
    with Catalogue.open(team["url"]) as shared:
        path = replica_file(shared.store)
    answer = team_replica.ensure(team["url"], path)
    assert answer == {"skipped": "not enough free disk space for the search cache of it"}
    assert not path.exists() and not list(path.parent.glob(f".{path.name}.*"))


def test_every_change_a_replica_holds_moves_the_change_counter(team, fake_embedder, small_config):
    from swimsearch.stores.postgres_arrays import ArraySource

    with Catalogue.open(team["url"]) as shared:
        source = ArraySource(shared.store, shared.store.location)
        start = source.changed()
        lists = shared.store.neighbour_lists()
        shared.store.write_neighbours(lists, replace=True)  # a batch of neighbour lists alone
        after_lists = source.changed()
        make_pattern_images(team["folder"] / "dora", 2, start=900)
        shared.update(fake_embedder, small_config, folder=team["folder"] / "dora")
        after_update = source.changed()
        shown = [c["action"] for c in shared.store.recent_changes(5)]
    assert after_lists[0] == start[0] + 1 and after_update[0] > after_lists[0]
    assert "lists" not in shown and shown[0] == "add"  # bookkeeping rows are not a person's change


def test_a_benchmark_may_set_the_margin_a_cache_leaves_free(monkeypatch):
    from swimsearch import array_upkeep

    monkeypatch.delenv("SWIMSEARCH_CACHE_MARGIN_GB", raising=False)
    assert array_upkeep.margin(252 * array_upkeep.GB) == 10 * array_upkeep.GB
    monkeypatch.setenv("SWIMSEARCH_CACHE_MARGIN_GB", "3")
    assert array_upkeep.margin(252 * array_upkeep.GB) == 3 * array_upkeep.GB
    monkeypatch.setenv("SWIMSEARCH_CACHE_MARGIN_GB", "lots")
    assert array_upkeep.margin(252 * array_upkeep.GB) == 10 * array_upkeep.GB


def test_team_caches_may_go_to_a_folder_of_their_own(team, tmp_path, monkeypatch, cache_home):
    monkeypatch.setenv("SWIMSEARCH_TEAM_CACHE_DIR", str(tmp_path / "elsewhere"))
    with Catalogue.open(team["url"]) as shared:
        assert replica_file(shared.store).parent == tmp_path / "elsewhere"


def test_a_maker_killed_outright_leaves_nothing_the_next_one_keeps(team, fake_embedder, small_config, cache_home):
    import os
    import signal
    import subprocess
    import sys
    import time

    from swimsearch import team_replica

    with Catalogue.open(team["url"]) as shared:
        path = replica_file(shared.store)
    path.parent.mkdir(parents=True)
    # a maker stopped dead while it wrote (SIGKILL: no clean-up of its own)
    slow = ("import swimsearch.array_build as b, time\nreal = b._spill\n"
            "def spill(*a):\n    for part in real(*a):\n        yield part\n        time.sleep(30)\nb._spill = spill\n"
            "from swimsearch.team_replica import main\nmain()\n")
    maker = subprocess.Popen([sys.executable, "-c", slow, team["url"], str(path)], env={**os.environ, **team_replica._child_env()},
                             stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not list(path.parent.glob(f".{path.name}.*")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert list(path.parent.glob(f".{path.name}.*")), "the maker never started writing"
    maker.send_signal(signal.SIGKILL)
    maker.wait()
    answer = team_replica.ensure(team["url"], path)
    assert answer["made"] and path.exists()
    assert not list(path.parent.glob(f".{path.name}.*"))
    with Catalogue.open(team["url"]) as shared:
        engine = SearchEngine(shared, fake_embedder, server_config(small_config, True))
        assert engine.array_watch.wait(60)
        best = engine.search(team["folder"] / "anna" / "img0003.png", top_n=3).matches[0]
        assert engine._data.from_arrays and (best.relpath, best.score) == ("anna/img0003.png", 1.0)


def test_info_says_where_this_computers_search_cache_of_a_team_catalogue_is(team, fake_embedder, small_config, cache_home):
    from swimsearch.cli_catalogues import search_cache_info

    config = server_config(small_config, True)
    with Catalogue.open(urls(team, team["viewer"])) as shared:
        before = search_cache_info(shared, config, 80)
        assert SearchEngine(shared, fake_embedder, config).array_watch.wait(120)
        after = search_cache_info(shared, config, 80)
    assert before["path"] == after["path"] == str(replica_file_of(team))
    assert before["state"].startswith("absent (made in the background") and after["state"].startswith("ready")


def replica_file_of(team):
    with Catalogue.open(team["url"]) as shared:
        return replica_file(shared.store)


def test_a_replica_cut_short_while_held_is_made_again_and_the_search_still_answers(
        team, fake_embedder, small_config, cache_home):
    query = team["folder"] / "anna" / "img0003.png"
    with Catalogue.open(urls(team, team["viewer"])) as shared:
        engine = SearchEngine(shared, fake_embedder, server_config(small_config, True))
        assert engine.array_watch.wait(120)
        before = listed(engine, [query])
        assert engine._data.from_arrays
        with open(engine.array_watch.path, "r+b") as fh:  # cut short in place (a sync tool, a full disk, a person)
            fh.truncate(4096)
        assert listed(engine, [query]) == before  # was: ValueError from the cache's reads, no list
        assert not engine._data.from_arrays
        assert engine.array_watch.wait(120), "the replica was not made again"
        assert listed(engine, [query]) == before and engine._data.from_arrays


def test_another_clients_refit_is_searched_at_once_from_a_held_replica(team, fake_embedder, small_config, cache_home):
    queries = sorted(team["folder"].rglob("*.png"))[::9]
    with Catalogue.open(urls(team, team["viewer"])) as a, Catalogue.open(urls(team, team["editor"])) as b:
        engine = SearchEngine(a, fake_embedder, server_config(small_config, True))
        assert engine.array_watch.wait(120)
        listed(engine, queries[:1])
        assert engine._data.from_arrays
        b.store.clear_index()
        assert b.update(fake_embedder, small_config.with_changes(bits=128, hash_dim=16)).refitted  # client B refits
        got = listed(engine, queries)  # was: IndexChanged ("search again") on the first, the retry spent on the stale replica
        with Catalogue.open(team["url"]) as plain:
            expected = listed(SearchEngine(plain, fake_embedder, server_config(small_config, False)), queries)
        assert got == expected
        assert engine.array_watch.wait(120) and listed(engine, queries) == expected and engine._data.from_arrays


@pytest.mark.parametrize("cached", [False, True], ids=["rows", "replica"])
def test_another_users_decision_shows_in_the_next_search_and_added_designs_in_the_count(
        team, fake_embedder, small_config, cache_home, monkeypatch, cached):
    """A large team catalogue (searched on its server) showed another designer's decisions and design count only
    once reopened: the marks come with every search's candidates, so A's very next search shows B's decision
    badge (and its withdrawal) for one statement more, and B's added designs in A's count."""
    from swimsearch.stores.postgres_index import PgSearcher

    query = team["folder"] / "anna" / "img0003.png"
    with Catalogue.open(urls(team, team["viewer"])) as a, Catalogue.open(urls(team, team["editor"])) as b:
        engine = SearchEngine(a, fake_embedder, server_config(small_config, cached))
        assert isinstance(engine._searcher, PgSearcher) and not engine.holds_designs
        assert not cached or engine.array_watch.wait(120)
        first = engine.search(query, top_n=8).matches
        query_id, other = first[0].image_id, first[-1]
        assert other.decision is None and len(engine) == 80
        sent = counting(monkeypatch)
        engine.search(query, top_n=8)
        plain, sent[:] = len(sent), []
        b.store.decide(query_id, other.image_id, "same")  # designer B, on another computer
        sent[:] = []
        again = {m.image_id: m for m in engine.search(query, top_n=8).matches}  # designer A's very next search
        assert again[other.image_id].decision == "same"
        assert len(sent) == plain + 1 and engine.refreshes == 0  # the decisions read; the candidates not asked again
        assert engine._data.from_arrays == cached
        b.store.decide(query_id, other.image_id, None)
        assert {m.image_id: m for m in engine.search(query, top_n=8).matches}[other.image_id].decision is None

        new = team["folder"] / "carl"
        make_pattern_images(new, 3, start=700)
        assert b.update(fake_embedder, small_config, folder=new).added == 3
        best = engine.search(new / "img0701.png", top_n=5).matches[0]
        assert (best.relpath, best.score) == ("carl/img0701.png", 1.0)
        assert len(engine) == 83 and engine.refreshes == 1  # the window's count follows (SearchService._state)


def test_a_replica_is_mapped_in_and_lists_what_pread_lists_and_a_stale_one_stops_its_mapping(
        team, fake_embedder, small_config, cache_home, monkeypatch):
    import sys
    import threading

    from swimsearch import mapped_pages

    queries = sorted(team["folder"].rglob("*.png"))[::9]
    config = server_config(small_config, True)
    with Catalogue.open(urls(team, team["viewer"])) as shared:
        mapped = SearchEngine(shared, fake_embedder, config)
        assert mapped.array_watch.wait(120)
        held = mapped.array_watch.current()
        assert held._mapped.is_set() == (sys.platform.startswith("linux") and mapped_pages.POPULATE_READ is not None)
        got = listed(mapped, queries)
        assert mapped._data.from_arrays
        monkeypatch.setenv("SWIMSEARCH_NO_MAPPING", "1")
        plain = SearchEngine(shared, fake_embedder, config)
        assert plain.array_watch.wait(120) and not plain.array_watch.current()._mapped.is_set()
        assert listed(plain, queries) == got and plain._data.from_arrays
        monkeypatch.delenv("SWIMSEARCH_NO_MAPPING")
        gate = threading.Event()
        monkeypatch.setattr(mapped_pages, "populate", lambda maps, stopped: gate.wait(30) and False)
        again = SearchEngine(shared, fake_embedder, config)
        again.array_watch.wait(0.01)  # its maker started
        again.array_watch._proc.wait(120)
        assert again.array_watch.current() is not None  # taken; its mapping held
        mapper = again.array_watch._mapper
        assert mapper is not None and mapper._thread.is_alive()
        threading.Timer(0.3, gate.set).start()
        again.array_watch.stale((-1, -1))  # another user changed the catalogue: dropped, its mapping ended
        assert not mapper._thread.is_alive() and again.array_watch._mapper is None
        assert listed(again, queries) == got
