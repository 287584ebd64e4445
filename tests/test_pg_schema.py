"""The proposed team-catalogue schema on a real PostgreSQL + pgvector server.

What a designer would notice: a buyer with viewer rights is refused in one
plain sentence, two designers adding the same files never double them, each
change names its author, and a client killed mid-update leaves nothing
half-written and no lock behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from pg_server import pg_database, pg_server  # noqa: F401  (fixtures)
from swimsearch.errors import CatalogueError

psycopg = pytest.importorskip("psycopg")
pg_schema = pytest.importorskip("swimsearch.stores.pg_schema")
pg_types = pytest.importorskip("swimsearch.stores.pg_types")

ADD = (
    "INSERT INTO cat_team.images (path, size, mtime, added) VALUES (%s, 1, 0, 0) "
    "ON CONFLICT (path) DO UPDATE SET size = excluded.size, changed_at = now(), changed_by = excluded.changed_by "
    "RETURNING id"
)


@pytest.fixture
def team(pg_database):
    """A database holding catalogue 'team' (its items sized by a first fit: 128-bit codes, 128-d vectors),
    with an editor and a viewer login."""
    with pg_database.connect() as conn:
        names = pg_schema.create_catalogue(conn, "team")
        with conn.transaction():
            conn.execute("SELECT cat_team.refit_begin(128, 128)")
            conn.execute("SELECT cat_team.refit_finish()")
    editor = pg_database.create_role("anna")
    viewer = pg_database.create_role("bert")
    with pg_database.connect() as conn:
        conn.execute(f'GRANT "{names.editor}" TO "{editor}"')
        conn.execute(f'GRANT "{names.viewer}" TO "{viewer}"')
    pg_database.roles += [names.editor, names.viewer]
    return pg_database, names, editor, viewer


def test_the_schema_is_created_once_and_holds_pgvector_columns(team):
    database, names, _, _ = team
    with database.connect() as conn:
        columns = dict(
            conn.execute(
                "SELECT table_name || '.' || column_name, format_type(atttypid, atttypmod) FROM information_schema.columns c "
                "JOIN pg_attribute a ON a.attname = c.column_name AND a.attrelid = (c.table_schema || '.' || c.table_name)::regclass "
                "WHERE table_schema = 'cat_team'"
            ).fetchall()
        )
        indexes = [r[0] for r in conn.execute("SELECT indexdef FROM pg_indexes WHERE schemaname = 'cat_team'")]
        with pytest.raises(CatalogueError, match="already exists"):
            pg_schema.create_catalogue(conn, "team")
        registered = conn.execute("SELECT name, schema_name FROM swimsearch.catalogues").fetchall()
    assert columns["embeddings.vector"] == "halfvec"  # the model's size is in meta
    assert columns["items.code"] == "bit(128)"
    assert columns["items.rerank"] == "halfvec(128)"
    assert any("hnsw" in d and "halfvec_ip_ops" in d for d in indexes)
    assert registered == [("team", "cat_team")]  # the failed second create left nothing behind


def test_a_viewer_can_search_but_a_change_is_refused_in_one_plain_sentence(team):
    database, _, editor, viewer = team
    with database.connect(editor, "secret") as conn:
        conn.execute(ADD, ("a/1.jpg",))
    with database.connect(viewer, "secret") as conn:
        assert conn.execute("SELECT count(*) FROM cat_team.images").fetchone()[0] == 1
        with pytest.raises(psycopg.errors.InsufficientPrivilege) as refused:
            conn.execute(ADD, ("a/2.jpg",))
        can_write = conn.execute("SELECT has_table_privilege('cat_team.images', 'INSERT')").fetchone()[0]
    assert refused.value.sqlstate == "42501"
    assert "permission denied for table images" in str(refused.value)
    message = str(pg_schema.describe_pg_error(refused.value, "team", viewer))
    assert message.startswith("You can search the team catalogue team but not change it")
    assert viewer in message and "\n" not in message
    assert can_write is False  # what the app asks before it starts an update


def test_each_change_names_the_designer_and_the_login(team):
    database, _, editor, _ = team
    with database.connect(editor, "secret") as conn:
        conn.execute("SELECT set_config('swimsearch.user', %s, false)", ("Anna Lind",))
        conn.execute(ADD, ("a/1.jpg",))
        conn.execute("INSERT INTO cat_team.changes (action, detail) VALUES ('add', '{\"added\": 1}')")
    with database.connect(editor, "secret") as conn:  # no name set: the login stands in
        conn.execute(ADD, ("a/2.jpg",))
    with database.connect() as conn:
        rows = conn.execute("SELECT path, added_by, added_role FROM cat_team.images ORDER BY path").fetchall()
        change = conn.execute("SELECT app_user, db_user FROM cat_team.changes").fetchone()
    assert rows == [("a/1.jpg", "Anna Lind", editor), ("a/2.jpg", editor, editor)]
    assert change == ("Anna Lind", editor)


def test_two_designers_adding_overlapping_files_at_once_never_double_or_lose_one(team):
    database, _, editor, _ = team
    paths = [f"shared/{i:04d}.jpg" for i in range(300)]
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def designer(mine: list[str]) -> None:
        try:
            with database.connect(editor, "secret") as conn:
                start.wait()
                for i in range(0, len(mine), 10):  # batches of 10, each its own transaction
                    with conn.transaction():
                        # In path order: two batches that meet lock their rows in
                        # one order, so they wait instead of deadlocking (unsorted,
                        # this test failed 2 runs in 3 with SQLSTATE 40P01).
                        for path in sorted(mine[i : i + 10]):
                            conn.execute(ADD, (path,))
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)

    first, second = paths[:200], paths[100:][::-1]  # 100 shared files, met from both ends
    threads = [threading.Thread(target=designer, args=(p,)) for p in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    with database.connect() as conn:
        stored = [r[0] for r in conn.execute("SELECT path FROM cat_team.images")]
    assert errors == []
    assert len(stored) == len(set(stored)) == len(paths)  # 0 doubled, 0 lost
    assert set(stored) == set(paths)


KILLED_CLIENT = """
import sys, time, psycopg
conn = psycopg.connect(sys.argv[1])
conn.execute("SELECT pg_advisory_lock(hashtext('team:update'))")
conn.execute("INSERT INTO cat_team.images (path, size, mtime, added) SELECT 'k/' || g, 1, 0, 0 FROM generate_series(1, 500) g")
print("inside", flush=True)
time.sleep(600)
"""


@pytest.mark.slow
def test_a_client_killed_mid_update_leaves_nothing_half_written_and_no_lock(team):
    database, _, editor, _ = team
    client = subprocess.Popen(
        [sys.executable, "-c", KILLED_CLIENT, database.url(editor, "secret")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert client.stdout.readline().strip() == "inside"
        with database.connect() as conn:
            assert conn.execute("SELECT pg_try_advisory_lock(hashtext('team:update'))").fetchone()[0] is False
            os.kill(client.pid, signal.SIGKILL)
            client.wait(10)
            killed = time.perf_counter()
            while not conn.execute("SELECT pg_try_advisory_lock(hashtext('team:update'))").fetchone()[0]:
                assert time.perf_counter() - killed < 10, "the killed client's lock was never released"
                time.sleep(0.02)
            left = conn.execute("SELECT count(*) FROM cat_team.images").fetchone()[0]
    finally:
        if client.poll() is None:
            client.kill()
    assert left == 0  # the open transaction was rolled back; the next update redoes the batch


def test_the_viewer_reads_embeddings_bit_identical(team):
    database, _, editor, viewer = team
    vector = (np.random.default_rng(3).random(1280) * 6).astype(np.float16)
    with database.connect(editor, "secret") as conn:
        pg_types.register_types(conn)
        image_id = conn.execute(ADD, ("a/1.jpg",)).fetchone()[0]
        conn.execute("INSERT INTO cat_team.embeddings VALUES (%s, %s)", (image_id, pg_types.HalfVec(vector)))
    with database.connect(viewer, "secret") as conn:
        pg_types.register_types(conn)
        with conn.cursor(binary=True) as cur:
            back = cur.execute("SELECT vector FROM cat_team.embeddings").fetchone()[0]
    assert back.tobytes() == vector.tobytes()


def test_a_database_without_pgvector_asks_for_the_extension_not_for_rights_the_account_has(pg_database):
    from swimsearch.catalogue import Catalogue

    with pg_database.connect() as conn:
        conn.execute("DROP EXTENSION vector")
    carl = pg_database.create_role("carl", options="CREATEROLE")  # may create schemas and roles: all but the extension
    with pg_database.connect() as conn:
        conn.execute(f'GRANT CREATE ON DATABASE "{pg_database.name}" TO "{carl}"')
    with pytest.raises(CatalogueError) as refused:
        Catalogue.create(pg_database.url(carl, "secret") + "&catalogue=new", os.getcwd())
    assert "does not have the pgvector extension" in str(refused.value)
    assert "CREATE EXTENSION vector" in str(refused.value) and "create schemas and roles" not in str(refused.value)


def test_two_long_names_that_would_share_their_roles_are_told_apart_truly(pg_database):
    from swimsearch.catalogue import Catalogue

    first, second = "summer_collection_women_swimwear_one", "summer_collection_women_swimwear_two"
    assert pg_schema.CatalogueNames.of(first, pg_database.name).editor == pg_schema.CatalogueNames.of(second, pg_database.name).editor
    Catalogue.create(pg_database.url() + f"&catalogue={first}", os.getcwd()).close()
    with pytest.raises(CatalogueError) as refused:
        Catalogue.create(pg_database.url() + f"&catalogue={second}", os.getcwd())
    message = str(refused.value)  # not "already exists": there is no catalogue of that name
    assert "cannot be used" in message and "choose a shorter or different name" in message and "already exists in" not in message


def test_errors_become_plain_sentences():
    class Fake(Exception):
        sqlstate = "55P03"

    busy = pg_schema.describe_pg_error(Fake("lock not available"), "team")
    assert "being updated by someone else" in str(busy)
    assert type(busy).__name__ == "CatalogueBusy"
    with pytest.raises(CatalogueError, match="must start with a letter"):
        pg_schema.CatalogueNames.of("Drop Table", "db")


def test_a_version_1_catalogue_is_upgraded_once_by_its_owner_and_retries_what_it_gave_up_on(pg_database):
    """A team catalogue made before format 2 (the template alone): opened, it gains the columns of
    fingerprints, retries, tombstones and recodes; a file given up on for a passing reason is read again."""
    from swimsearch.catalogue import Catalogue

    viewer = pg_database.create_role("carl")
    with pg_database.connect() as conn:
        names = pg_schema.CatalogueNames.of("old", conn.info.dbname)
        with conn.transaction():
            conn.execute(pg_schema.schema_sql(names))  # what format 1 made, and nothing more
            conn.execute("INSERT INTO swimsearch.catalogues (name, schema_name) VALUES ('old', 'cat_old')")
            conn.execute("INSERT INTO cat_old.meta (key, value) VALUES ('root', '\"/tmp\"'), ('embedding_dtype', '\"<f2\"')")
            for path, error in (("a.png", "the file does not exist"), ("b.png", "not an image file, or a format that cannot be read"),
                                ("c.png", None)):
                conn.execute("INSERT INTO cat_old.images (path, size, mtime, added, error) VALUES (%s, 1, 0, 0, %s)", (path, error))
        conn.execute(f'GRANT "{names.viewer}" TO "{viewer}"')
    address = pg_database.url() + "&catalogue=old"
    with pytest.raises(CatalogueError, match="older format .* only its owner can upgrade"):
        Catalogue.open(pg_database.url(viewer, "secret") + "&catalogue=old")
    with Catalogue.open(address) as catalogue:
        assert catalogue.info()["schema_version"] == pg_schema.SCHEMA_VERSION == 5
        known = catalogue.writer().known_files()
    assert {path: k.retry for path, k in known.items()} == {"a.png": True, "b.png": False, "c.png": False}
    with pg_database.connect() as conn:
        columns = {r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'cat_old' AND table_name = 'images'")}
        assert {"fingerprint", "retry", "gone", "recode"} <= columns
    with Catalogue.open(pg_database.url(viewer, "secret") + "&catalogue=old") as catalogue:  # upgraded: anyone may open it
        assert catalogue.counts()["images"] == 3
        assert catalogue.neighbour_lists() is not None and len(catalogue.neighbour_lists()) == 0 and catalogue.decisions() == []  # formats 3, 4: a viewer reads lists and decisions
