"""A team catalogue on PostgreSQL: what designers sharing one catalogue would notice.

Same ranking as the SQLite store, search in the server for large catalogues,
viewers refused in plain words, authors on every change, two designers
updating at once without losing or doubling a design, searches answered
during updates, another user's refit noticed, each computer's own path to
the shared folder, and passwords that never show. Everything runs on the
session's embedded PostgreSQL server (tests/pg_server.py).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from helpers import FakeEmbedder, make_pattern_images
from swimsearch.build import refit_catalogue
from swimsearch.catalogue import Catalogue
from swimsearch.errors import CatalogueBusy, CatalogueError
from swimsearch.search import SearchEngine
from swimsearch.stores.pg_address import TeamAddress, forget_password
from swimsearch.stores.pg_schema import CatalogueNames


@dataclass
class Team:
    folder: Path
    database: object
    editor: str
    viewer: str

    def url(self, user: str | None = None, password: str | None = None, name: str = "team") -> str:
        return f"{self.database.url(user, password)}&catalogue={name}"


@pytest.fixture
def team(pg_database, tmp_path, fake_embedder, small_config) -> Team:
    """A team catalogue of two designers' folders (40 designs each), an editor and a viewer login."""
    folder = tmp_path / "designs"
    make_pattern_images(folder / "anna", 40, family=4)
    make_pattern_images(folder / "bert", 40, start=100, family=4)
    result = Team(folder, pg_database, pg_database.create_role("anna"), pg_database.create_role("bert"))
    with Catalogue.create(result.url(), folder) as catalogue:
        catalogue.update(fake_embedder, small_config)
    names = CatalogueNames.of("team", pg_database.name)
    with pg_database.connect() as conn:
        conn.execute(f'GRANT "{names.editor}" TO "{result.editor}"')
        conn.execute(f'GRANT "{names.viewer}" TO "{result.viewer}"')
    pg_database.roles += [names.editor, names.viewer]
    return result


def ranked(catalogue, embedder, config, queries, top_n=8):
    engine = SearchEngine(catalogue, embedder, config)
    return engine.searcher_name, [
        [(m.relpath, m.score, m.duplicate, m.distance) for m in engine.search(q, top_n=top_n).matches] for q in queries
    ]


def test_a_small_team_catalogue_ranks_exactly_as_the_sqlite_store(team, tmp_path, fake_embedder, small_config):
    queries = sorted(team.folder.rglob("*.png"))[::7]
    with Catalogue.create(tmp_path / "same.swimcat", team.folder) as local:
        local.update(fake_embedder, small_config)
        assert local.fitted().arrays().keys() == local.fitted().arrays().keys()
        sqlite_name, sqlite_ranks = ranked(local, fake_embedder, small_config, queries)
        sqlite_fit = local.fitted().arrays()
    with Catalogue.open(team.url()) as shared:
        team_name, team_ranks = ranked(shared, fake_embedder, small_config, queries)
        team_fit = shared.fitted().arrays()
    assert sqlite_name == team_name == "ExactSearch"
    assert team_ranks == sqlite_ranks  # same designs, same order, same scores and distances
    assert all(np.array_equal(team_fit[k], sqlite_fit[k]) for k in sqlite_fit)  # the same sample gave the same fit


def test_at_the_defaults_real_photos_rank_exactly_as_in_a_catalogue_file(photo_catalogue, pg_database, embedder):
    """The shipped model and settings: the same 40 photos built into a team catalogue rank as in their file."""
    from swimsearch.config import EngineConfig

    folder, path = photo_catalogue
    config = EngineConfig()
    queries = sorted(folder.glob("*.jpg"))[::4]
    with Catalogue.create(f"{pg_database.url()}&catalogue=photos", folder) as shared:
        report = shared.update(embedder, config)
        assert report.added == 40 and report.unreadable == 0
        team_name, team_ranks = ranked(shared, embedder, config, queries, top_n=10)
    with Catalogue.open(path) as local:
        file_name, file_ranks = ranked(local, embedder, config, queries, top_n=10)
    assert team_name == file_name and len(team_ranks) == 10 and all(len(r) == 10 for r in team_ranks)
    assert team_ranks == file_ranks  # same photos, same order, same scores, duplicates and distances


def test_a_large_team_catalogue_is_searched_in_the_server(team, fake_embedder, small_config):
    config = small_config.with_changes(exact_below=50)  # 80 designs: the server's HNSW index finds the candidates
    queries = sorted(team.folder.rglob("*.png"))[::9]
    with Catalogue.open(team.url()) as shared:
        name, in_server = ranked(shared, fake_embedder, config, queries, top_n=5)
        _, exact = ranked(shared, fake_embedder, small_config, queries, top_n=5)
    assert name == "PgSearcher"
    for query, server, scan in zip(queries, in_server, exact):
        assert server[0][:2] == (query.relative_to(team.folder).as_posix(), 1.0)
        assert [m[0] for m in server] == [m[0] for m in scan]  # HNSW missed nothing on 80 designs
        # rescored on vectors made from the store's embeddings and lists, exactly as from memory
        assert [m[:3] for m in server] == [m[:3] for m in scan]


def test_a_large_team_catalogue_keeps_its_server_search_no_graph_and_nothing_in_memory(team, fake_embedder, small_config, monkeypatch):
    """Above `graph_from` a catalogue file keeps a graph and small ones hold their embeddings in memory; a
    team catalogue does neither: the server finds the candidates and brings their embeddings in one round trip."""
    import swimsearch.indexing

    config = small_config.with_changes(exact_below=50, graph_from=50, rescore_in_memory_up_to=1_000)
    graphs = []
    real = swimsearch.indexing.next_graph
    monkeypatch.setattr(swimsearch.indexing, "next_graph", lambda *args: graphs.append(1) or real(*args))
    make_pattern_images(team.folder / "carl", 10, start=300)
    with Catalogue.open(team.url()) as shared:
        assert shared.update(fake_embedder, config).added == 10
        refit_catalogue(shared.writer(), config)
        make_pattern_images(team.folder / "carl", 3, start=320)  # their neighbours are found by the server's search
        assert shared.update(fake_embedder, config).added == 3
        engine = SearchEngine(shared, fake_embedder, config)
        assert engine.searcher_name == "PgSearcher" and not engine._data.in_memory
        best = engine.search(team.folder / "carl" / "img0303.png", top_n=3).matches[0]
        assert (best.relpath, best.score) == ("carl/img0303.png", 1.0)
        lists = shared.neighbour_lists()
        assert lists.ids.tolist() == engine.searchable_ids().tolist()  # every design has its list, the new ones too
    assert graphs == []  # no graph was built for it


def test_a_search_of_a_large_team_catalogue_is_two_round_trips_with_what_the_engine_reads(team, fake_embedder, small_config, monkeypatch):
    """Issue 13 at a million designs: each question to the server waits for the server's turn and the client's, and a
    search made six. The search statement (one per round of query expansion) brings every candidate's embedding, the head's records and lists and the
    embeddings of the designs those lists name; the second search of a query expansion does not bring again what
    the first brought. The answer stays the one of a search that reads everything from the server."""
    import psycopg

    from swimsearch.stores.postgres_read import PostgresReader

    config = small_config.with_changes(exact_below=50)  # 80 designs: the server's HNSW index finds the candidates
    query = team.folder / "anna" / "img0012.png"
    statements: list[str] = []
    real = psycopg.Cursor.execute
    with Catalogue.open(team.url()) as shared:
        engine = SearchEngine(shared, fake_embedder, config)
        assert engine.searcher_name == "PgSearcher" and not engine._data.in_memory
        engine.search(query, top_n=10)  # the first search of a session also reads the fit's generation etc.
        monkeypatch.setattr(psycopg.Cursor, "execute", lambda cur, text, *a, **k: statements.append(str(text)) or real(cur, text, *a, **k))
        fast = [(m.relpath, m.score, m.band) for m in engine.search(query, top_n=10).matches]
        monkeypatch.setattr(psycopg.Cursor, "execute", real)
        searches = [s for s in statements if s.startswith("WITH c AS")]
        # the same search with nothing brought along: every embedding, list and record asked of the server
        monkeypatch.setattr(shared.store._prefetch, "partial", lambda ids, field: {})
        slow = [(m.relpath, m.score, m.band) for m in engine.search(query, top_n=10).matches]
    assert len(searches) == 1 + config.expand_rounds  # the query, then the query expanded by its best results
    assert len(statements) <= len(searches) + 1, statements  # and at most the records of a match ranked low by all
    assert fast == slow and fast[0][:2] == ("anna/img0012.png", 1.0)
    assert not any("embeddings WHERE image_id = ANY" in s for s in statements)


def test_the_search_statement_brings_the_listed_neighbours_and_not_what_is_held(team, small_config):
    """The store's prediction of the engine's next questions, checked against the server's own answers: the
    embeddings brought are bit-identical to the stored ones, the head's lists name no design whose embedding is
    missing, and a second search sends nothing the first one brought."""
    from swimsearch.stores.postgres_prefetch import HEAD

    config = small_config.with_changes(exact_below=50)
    with Catalogue.open(team.url()) as shared:
        store = shared.store
        searcher = store.own_searcher(config)
        fitted = searcher.fitted
        query = fitted.prepare(shared.embedding_matrix([5]).vectors)[0]
        first = searcher.search(fitted.codes(query[None])[0], fitted.vectors(query[None])[0], 6)
        held = store._prefetch.partial(range(1, 200), "vector")
        lists = store._prefetch.partial(first.ids.tolist(), "list")
        named = {int(i) for ids, _ in lists.values() for i in np.frombuffer(ids, "<i8") if i >= 0}
        stored = shared.embedding_matrix(sorted(held))
        brought = store._prefetch.recent_vectors()
        kept = {i: store._prefetch.fields["vector"][i] for i in held}
        second = searcher.search(fitted.codes(query[None])[0], fitted.vectors(query[None])[0], 6)
        again = {i: store._prefetch.fields["vector"][i] for i in held}
    assert len(first.ids) == 6 and set(lists) == set(first.ids.tolist())  # 6 <= HEAD: every candidate's list
    assert HEAD >= 6 and named - set(first.ids.tolist())  # the lists name designs beyond the candidates ...
    assert set(held) == set(first.ids.tolist()) | named  # ... and exactly those embeddings came along
    assert np.stack([held[i] for i in stored.ids]).astype(np.float32).tobytes() == stored.vectors.tobytes()
    assert set(brought) == set(held)
    assert second.ids.tolist() == first.ids.tolist()
    assert all(again[i] is kept[i] for i in held)  # the second search sent none of them again


def test_a_viewer_searches_but_an_update_is_refused_in_plain_words(team, fake_embedder, small_config):
    make_pattern_images(team.folder / "bert", 2, start=900)
    with Catalogue.open(team.url(team.viewer, "secret")) as viewed:
        assert viewed.readonly
        best = SearchEngine(viewed, fake_embedder, small_config).search(team.folder / "anna" / "img0005.png", top_n=1)
        assert best.matches[0].relpath == "anna/img0005.png"
        with pytest.raises(CatalogueError) as refused:
            viewed.update(fake_embedder, small_config)
    message = str(refused.value)
    assert message.startswith("You can search the team catalogue team but not change it")
    assert team.viewer in message and "editor rights" in message and "\n" not in message


def test_decisions_name_their_person_a_viewer_reads_them_and_they_go_with_their_file(team, fake_embedder, small_config, monkeypatch):
    """Issue 12's decisions on a team catalogue: who decided is the person the app names; a viewer searches
    with them but cannot make one (one sentence); a file found deleted takes its decisions along."""
    monkeypatch.setenv("SWIMSEARCH_USER", "Anna Lind")
    files = sorted((team.folder / "anna").glob("*.png"))[:3]
    paths = [f.relative_to(team.folder).as_posix() for f in files]
    with Catalogue.open(team.url(team.editor, "secret")) as shared:
        a, b, c = (shared.record_by_path(f).image_id for f in files)
        made = shared.decide(b, a, "same")
        shared.decide(a, c, "different")
        assert shared.decide(c, a, None) is None  # withdrawn
    assert (made.a, made.b, made.verdict, made.who, made.login) == (min(a, b), max(a, b), "same", "Anna Lind", team.editor)
    with Catalogue.open(team.url(team.viewer, "secret")) as viewed:
        assert [({d.a_path, d.b_path}, d.verdict, d.who, d.login) for d in viewed.decisions()] == [
            ({paths[0], paths[1]}, "same", "Anna Lind", team.editor)]
        with pytest.raises(CatalogueError) as refused:
            viewed.decide(a, c, "same")
        assert "viewer rights" in str(refused.value) and "\n" not in str(refused.value)
        assert viewed.folder_counts() == {"": 80, "anna": 40, "bert": 40}
        assert sorted(viewed.ids_in_folders(["anna/"]).tolist()) == sorted(
            viewed.record_by_path(f).image_id for f in (team.folder / "anna").glob("*.png"))
    listed = subprocess.run([sys.executable, "-m", "swimsearch.cli", "decisions", "--catalogue", team.url(team.viewer, "secret")],
                            capture_output=True, text=True, timeout=300)
    # the name the person gave the app, and the server login that proves who it was
    assert listed.returncode == 0 and f"(Anna Lind (login {team.editor}), " in listed.stdout, listed.stderr
    files[1].unlink()
    with Catalogue.open(team.url()) as shared:
        shared.update(fake_embedder, small_config)
        assert shared.decisions() == []  # its file is gone: so is the decision


def test_each_change_names_its_author(team, fake_embedder, small_config, monkeypatch):
    monkeypatch.setenv("SWIMSEARCH_USER", "Anna Lind")
    make_pattern_images(team.folder / "anna", 3, start=500)
    with Catalogue.open(team.url(team.editor, "secret")) as shared:
        report = shared.update(fake_embedder, small_config, folder=team.folder / "anna")
        changes = shared.store.recent_changes(3)
    assert report.added == 3 and report.unchanged == 40 and report.removed == 0
    rows = team.database.connect().execute(
        "SELECT path, added_by, added_role FROM cat_team.images WHERE path LIKE 'anna/img05%' ORDER BY path").fetchall()
    assert rows == [(f"anna/img{n:04d}.png", "Anna Lind", team.editor) for n in range(500, 503)]
    assert changes[0]["person"] == "Anna Lind" and changes[0]["login"] == team.editor and changes[0]["action"] == "add"


def test_two_designers_updating_their_folders_at_once_lose_and_double_nothing(team, small_config):
    make_pattern_images(team.folder / "anna", 60, start=1000)
    make_pattern_images(team.folder / "bert", 60, start=2000)
    (team.folder / "bert" / "img0101.png").unlink()
    config = small_config.with_changes(batch_size=4)
    errors: list[BaseException] = []
    reports = {}
    start = threading.Barrier(2)

    def designer(who: str) -> None:
        try:
            with Catalogue.open(team.url(team.editor, "secret")) as shared:
                start.wait()
                reports[who] = shared.update(FakeEmbedder(), config, folder=team.folder / who)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=designer, args=(who,)) for who in ("anna", "bert")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    assert (reports["anna"].added, reports["anna"].removed) == (60, 0)
    assert (reports["bert"].added, reports["bert"].removed) == (60, 1)
    stored = [r[0] for r in team.database.connect().execute("SELECT path FROM cat_team.images WHERE gone IS NULL")]
    on_disk = {p.relative_to(team.folder).as_posix() for p in team.folder.rglob("*.png")}
    assert len(stored) == len(set(stored)) == len(on_disk) == 199 and set(stored) == on_disk
    kept = team.database.connect().execute("SELECT path FROM cat_team.images WHERE gone IS NOT NULL").fetchall()
    assert kept == [("bert/img0101.png",)]  # the deleted file is kept a while as a tombstone
    with Catalogue.open(team.url()) as shared:
        assert shared.counts() == {"images": 199, "readable": 199, "unreadable": 0, "searchable": 199}


def test_a_second_update_of_the_same_folder_is_refused_naming_who_holds_it(team, fake_embedder, small_config, monkeypatch):
    monkeypatch.setenv("SWIMSEARCH_USER", "Anna Lind")
    with Catalogue.open(team.url(team.editor, "secret")) as first:
        with first.store.writer_lock("anna"):
            monkeypatch.setenv("SWIMSEARCH_USER", "Carl")
            with Catalogue.open(team.url(team.editor, "secret")) as second:
                for folder in (team.folder / "anna", team.folder):  # the same folder, or the whole catalogue
                    with pytest.raises(CatalogueBusy) as refused:
                        second.update(fake_embedder, small_config, folder=folder)
                    assert str(refused.value).startswith(f"Anna Lind (login {team.editor}), connected since")
                    assert "try again when that update has finished" in str(refused.value)
                assert second.update(fake_embedder, small_config, folder=team.folder / "bert").unchanged == 40


def test_an_update_of_a_large_team_catalogue_reads_few_embeddings_and_lists_as_a_fresh_build(team, fake_embedder, small_config, monkeypatch):
    """Issue 13: an update that finds new designs' neighbours with the server's search has the server score the
    candidates and reads only the embeddings it must compare, never all of them (that made two updates of 1,500
    designs take 20 minutes at 100,000); the neighbour lists are still those of a fresh build."""
    from swimsearch.neighbours import exact_lists
    from swimsearch.stored_vectors import prepared_table
    from swimsearch.stores.postgres_index import PgSearcher
    from swimsearch.stores.postgres_read import PostgresReader

    config = small_config.with_changes(exact_below=50)  # 80 designs: the server's search finds the candidates
    every, scored, asked = [], [], []
    real_all, real_scored, real_read = PostgresReader.iter_embeddings, PgSearcher.scored_candidates, PostgresReader.embedding_matrix
    monkeypatch.setattr(PostgresReader, "iter_embeddings", lambda self, ids=None, chunk=8192: every.append(ids is None) or real_all(self, ids, chunk))
    monkeypatch.setattr(PgSearcher, "scored_candidates", lambda self, *args: scored.append(len(args[0])) or real_scored(self, *args))
    monkeypatch.setattr(PostgresReader, "embedding_matrix", lambda self, ids: asked.append(len(list(ids := list(ids)))) or real_read(self, ids))
    make_pattern_images(team.folder / "carl", 6, start=300)
    with Catalogue.open(team.url()) as shared:
        assert shared.update(fake_embedder, config, folder=team.folder / "carl").added == 6
        assert True not in every and scored == [6]  # the six new designs' candidates, scored in the server
        update_reads = sum(asked)
        lists = shared.neighbour_lists()
        fitted = shared.store.fitted()
        table = prepared_table(shared.store, fitted.centre)
    assert update_reads < 60  # of 86: the new designs, the few candidates near enough, the changed lists' neighbours
    assert lists.equals(exact_lists(table, table.ids, lists.k))


def test_searches_during_an_update_are_all_answered(team, small_config):
    make_pattern_images(team.folder / "bert", 120, start=3000)
    config = small_config.with_changes(exact_below=50, batch_size=4)
    done = threading.Event()
    errors: list[BaseException] = []

    def update() -> None:
        try:
            with Catalogue.open(team.url(team.editor, "secret")) as shared:
                shared.update(FakeEmbedder(), config, folder=team.folder / "bert")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=update)
    thread.start()
    answered = 0
    with Catalogue.open(team.url(team.viewer, "secret")) as viewed:
        engine = SearchEngine(viewed, FakeEmbedder(), config)
        while not done.is_set() or not answered:
            result = engine.search(team.folder / "anna" / "img0007.png", top_n=10)
            assert result.matches[0].relpath == "anna/img0007.png" and result.matches[0].score == 1.0
            assert len(result.matches) == 10 and len({m.image_id for m in result.matches}) == 10
            answered += 1
    thread.join(60)
    assert errors == [] and answered >= 1
    with Catalogue.open(team.url()) as shared:
        assert shared.counts()["searchable"] == 200


def test_another_users_refit_is_noticed_and_the_search_uses_it(team, fake_embedder, small_config):
    config = small_config.with_changes(exact_below=50)
    query = team.folder / "anna" / "img0003.png"
    with Catalogue.open(team.url(team.viewer, "secret")) as viewed:
        engine = SearchEngine(viewed, fake_embedder, config)
        before = engine.search(query, top_n=5).matches
        assert engine._searcher.fitted.layer.variant == "pca"
        with Catalogue.open(team.url(team.editor, "secret")) as other:
            refit_catalogue(other.writer(), config.with_changes(hash_variant="laplacian", folder_labels=True))
        after = engine.search(query, top_n=5).matches  # encoded again with the new fit, answered all the same
        assert engine._searcher.fitted.layer.variant == "laplacian"
    assert before[0].relpath == after[0].relpath == "anna/img0003.png" and after[0].score == 1.0
    assert [m.relpath for m in after] == [m.relpath for m in before]


def test_each_computer_finds_the_shared_folder_at_its_own_path(team, tmp_path, fake_embedder, small_config):
    mounted_here = tmp_path / "elsewhere" / "designs-share"
    shutil.copytree(team.folder, mounted_here)
    with Catalogue.open(team.url(), root=mounted_here) as mapped:
        assert mapped.root == mounted_here and mapped.store.root_note() is None
        result = SearchEngine(mapped, fake_embedder, small_config).search(mounted_here / "bert" / "img0104.png", top_n=2)
        best = result.matches[0]
        assert best.path == str(mounted_here / "bert" / "img0104.png") and not best.missing and best.score == 1.0
        assert result.query_image_id == best.image_id  # the file was taken for itself, through the mapped path
    shutil.rmtree(team.folder)  # the recorded folder is not reachable from this computer
    with Catalogue.open(team.url()) as unmapped:
        note = unmapped.store.root_note()
        matches = SearchEngine(unmapped, fake_embedder, small_config).search(mounted_here / "bert" / "img0104.png").matches
    assert note is not None and str(team.folder) in note and "--root PATH" in note and "\n" not in note
    assert matches[0].relpath == "bert/img0104.png" and all(m.missing for m in matches)


def test_passwords_come_from_the_address_the_environment_or_a_prompt_and_never_show(team, monkeypatch):
    with Catalogue.open(team.url(team.editor, "secret")) as given:
        assert "secret" not in given.location and given.location.startswith(f"postgresql://{team.editor}@")
    monkeypatch.setenv("PGPASSWORD", "secret")
    with Catalogue.open(team.url(team.editor)) as from_environment:
        assert not from_environment.readonly
    monkeypatch.delenv("PGPASSWORD")
    asked = []
    try:
        with Catalogue.open(team.url(team.editor), password_prompt=lambda where: asked.append(where) or "secret"):
            pass
        with Catalogue.open(team.url(team.editor)):  # typed once, remembered for the session
            pass
    finally:
        forget_password(team.url(team.editor))
    assert asked == [TeamAddress.parse(team.url(team.editor)).display]  # asked once, showing where
    with pytest.raises(CatalogueError) as refused:
        Catalogue.open(team.url(team.editor, "wrong-one"))
    assert "refused the password" in str(refused.value) and "wrong-one" not in str(refused.value)


def test_a_missing_or_newer_team_catalogue_is_refused(team):
    with pytest.raises(CatalogueError, match="no team catalogue named other .* It holds: team"):
        Catalogue.open(team.url(name="other"))
    with team.database.connect() as conn:
        conn.execute("UPDATE cat_team.meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(CatalogueError, match="made by a newer SwimSearch"):
        Catalogue.open(team.url())


def test_a_folder_update_with_another_model_is_refused_and_leaves_everyones_designs(team, small_config):
    other = FakeEmbedder()
    other.sha256, other.name = "e" * 64, "another-model"
    make_pattern_images(team.folder / "anna", 2, start=800)
    with Catalogue.open(team.url(team.editor, "secret")) as shared:
        with pytest.raises(CatalogueError, match="built with another model .* Update the whole catalogue"):
            shared.update(other, small_config, folder=team.folder / "anna")
        assert shared.counts()["images"] == 80  # bert's designs (and anna's) are all still there


def test_info_check_reads_everything_and_names_a_hand_made_damage_in_one_sentence(team, fake_embedder, small_config):
    """`info --check` on a team catalogue: passes on a sound one; a row an administrator edited is named."""
    from swimsearch.errors import DamagedCatalogue

    with Catalogue.open(team.url()) as shared:
        shared.update(fake_embedder, small_config)
        checked = shared.check()
    assert checked == ["80 image records", "80 embeddings", "the fitted index and 80 codes",
                       "0 images' regional vectors and 80 colour signatures"]  # the fake model gives no feature map
    with team.database.connect() as conn:
        conn.execute("UPDATE cat_team.images SET path = '../../etc/passwd' WHERE id = 7")
    with Catalogue.open(team.url()) as shared, pytest.raises(DamagedCatalogue, match="path outside the catalogue's folder"):
        shared.check()
