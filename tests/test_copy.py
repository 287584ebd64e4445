"""Moving a catalogue between a SQLite file and a team catalogue, both ways, with nothing lost or changed."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import numpy as np
import pytest

from helpers import make_pattern_images
from swimsearch.catalogue import Catalogue
from swimsearch.cli_catalogues import copy
from swimsearch.copying import copy_catalogue, embeddings_digest, index_digest, lists_digest
from swimsearch.errors import CatalogueError
from swimsearch.search import SearchEngine


@pytest.fixture
def original(tmp_path, fake_embedder, small_config):
    """A catalogue file with an unreadable file, 4 tombstones (files deleted by an update), a file to read
    again (its last failure was a passing one) and an image whose code is of an older embedding."""
    folder = tmp_path / "pics"
    make_pattern_images(folder / "tops", 30, family=3)
    make_pattern_images(folder / "briefs", 30, start=100, family=3)
    (folder / "tops" / "broken.png").write_bytes(b"not a picture")
    path = tmp_path / "original.swimcat"
    with Catalogue.create(path, folder) as catalogue:
        catalogue.update(fake_embedder, small_config)
        for victim in sorted((folder / "tops").glob("img000*.png"))[:4]:
            victim.unlink()
        catalogue.update(fake_embedder, small_config)
        writer = catalogue.writer()
        writer.flag_retry([catalogue.record_by_path(folder / "tops" / "broken.png").image_id])
        writer.mark_recode([catalogue.record_by_path(folder / "briefs" / "img0110.png").image_id])
    return folder, path


def rows(path, sql):
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql).fetchall()


def test_a_file_copied_into_a_team_catalogue_and_back_is_the_same_catalogue(original, pg_database, tmp_path, fake_embedder, small_config):
    folder, path = original
    team = pg_database.url() + "&catalogue=moved"
    back = tmp_path / "back.swimcat"
    with Catalogue.open(path) as source:
        first, second = (source.record_by_path(folder / "briefs" / f"img01{n:02d}.png").image_id for n in (1, 2))
        source.decide(first, second, "same")
    with Catalogue.open(path) as source, Catalogue.create(team, folder) as middle:
        there = copy_catalogue(source, middle.writer())
    with Catalogue.open(team) as middle, Catalogue.create(back, folder) as returned:
        home = copy_catalogue(middle, returned.writer())
    with Catalogue.open(path) as a, Catalogue.open(team) as b, Catalogue.open(back) as c:
        assert a.decisions() == b.decisions() == c.decisions() and len(a.decisions()) == 1  # pair, verdict, who and when
    assert there.decisions == home.decisions == 1
    assert there.images == home.images == 57 and there.embeddings == home.embeddings == 56 and there.searchable == 56
    assert there.embeddings_sha256 == home.embeddings_sha256 and there.index_sha256 == home.index_sha256
    assert there.lists == home.lists == 56 and "56 neighbour lists" in there.summary()
    with Catalogue.open(path) as a, Catalogue.open(team) as b, Catalogue.open(back) as c:
        assert embeddings_digest(a) == embeddings_digest(b) == embeddings_digest(c)  # every float16 bit-identical
        assert index_digest(a) == index_digest(b) == index_digest(c)  # fit, codes and vectors kept
        assert lists_digest(a) == lists_digest(b) == lists_digest(c) and lists_digest(a)[0] == 56  # every neighbour list, bit-identical
        assert rows(path, "SELECT image_id, ids, sims, crc FROM neighbours ORDER BY 1") == rows(back, "SELECT image_id, ids, sims, crc FROM neighbours ORDER BY 1")
        assert a.unreadable() == b.unreadable() == c.unreadable() == [("tops/broken.png", "not an image file, or a format that cannot be read")]
        assert a.fit_state().as_dict() | {"at": 0} == c.fit_state().as_dict() | {"at": 0}
        queries = [folder / "briefs" / "img0103.png", folder / "tops" / "img0017.png"]
        ranked = [[[(m.image_id, m.relpath, m.score) for m in SearchEngine(x, fake_embedder, small_config).search(q, top_n=6).matches]
                   for q in queries] for x in (a, b, c)]
    assert ranked[0] == ranked[1] == ranked[2]
    columns = "id, path, size, mtime, width, height, phash, label, error, added, fingerprint, retry, gone, recode, vector_crc, crc"
    before = rows(path, f"SELECT {columns} FROM images ORDER BY id")
    assert before == rows(back, f"SELECT {columns} FROM images ORDER BY id")  # every column, checksums too
    assert len(before) == 61 and sum(r[12] is not None for r in before) == 4 and sum(r[11] for r in before) == 1
    assert sum(r[13] for r in before) == 1 and sum(r[10] is not None for r in before) == 61
    with Catalogue.open(path) as a, Catalogue.open(team) as b, Catalogue.open(back) as c:
        assert [x.writer().uncoded_ids().tolist() for x in (a, b, c)] == [[before[[r[1] for r in before].index("briefs/img0110.png")][0]]] * 3
    # the LSH buckets, derived again from the codes on the way back, are the original rows
    assert rows(path, "SELECT table_no, bucket_key, ids FROM buckets ORDER BY 1, 2") == rows(back, "SELECT table_no, bucket_key, ids FROM buckets ORDER BY 1, 2")


def test_a_copy_goes_on_from_where_the_original_was(original, pg_database, fake_embedder, small_config):
    folder, path = original
    team = pg_database.url() + "&catalogue=moved"
    with Catalogue.open(path) as source, Catalogue.create(team, folder) as middle:
        copy_catalogue(source, middle.writer())
    make_pattern_images(folder / "tops", 2, start=700)
    with Catalogue.open(team) as moved:
        report = moved.update(fake_embedder, small_config)
        assert (report.added, report.unchanged, report.removed, report.refitted) == (2, 56, 0, False)
        assert report.retried == 1 and report.unreadable == 1  # broken.png, read again as flagged, is still broken
        assert not len(moved.writer().uncoded_ids())  # the pending recode was done
        new = moved.record_by_path(folder / "tops" / "img0700.png")
    assert new.image_id > max(r[0] for r in rows(path, "SELECT id FROM images"))  # ids go on after the copied ones


def test_a_failed_copy_leaves_no_destination(original, pg_database, monkeypatch, tmp_path):
    folder, path = original
    team = pg_database.url() + "&catalogue=broken"
    import swimsearch.copying

    def fail(reader):
        raise CatalogueError("simulated failure while checking")

    monkeypatch.setattr(swimsearch.copying, "index_digest", fail)
    with pytest.raises(CatalogueError, match="simulated failure"):
        copy(str(path), team)
    with pg_database.connect() as conn:
        assert conn.execute("SELECT to_regnamespace('cat_broken')").fetchone()[0] is None
    with pytest.raises(CatalogueError, match="simulated failure"):
        copy(str(path), str(tmp_path / "never.swimcat"))
    assert not (tmp_path / "never.swimcat").exists()
    with pytest.raises(CatalogueError, match="already exists"):
        copy(str(path), str(path))
    assert rows(path, "SELECT count(*), count(gone) FROM images") == [(61, 4)]


def test_a_copy_killed_before_its_end_does_not_block_the_next_one(original, pg_database, tmp_path):
    """SIGKILL leaves the new catalogue (file or team) empty: its one transaction never committed."""
    import signal
    import subprocess
    import sys

    from helpers import REPO

    folder, path = original
    team = pg_database.url() + "&catalogue=killed"
    as_file = tmp_path / "killed.swimcat"
    for destination in (team, str(as_file)):
        # the copy, stopped as SIGKILL stops it: after the destination was made, before the copy's commit
        script = (
            "import os, signal, sys\n"
            "import swimsearch.copying as copying\n"
            "from swimsearch.cli_catalogues import copy\n"
            "real = copying._copy_details\n"
            "def die(*args):\n"
            "    real(*args)\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n"
            "copying._copy_details = die\n"
            f"copy({str(path)!r}, {destination!r})\n"
        )
        done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
        assert done.returncode == -signal.SIGKILL, done.stderr
        if destination == team:  # a team catalogue: said truly, not taken over unasked (its owner may have granted it)
            with pytest.raises(CatalogueError, match=r"with nothing in it \(a copy stopped before its end.*add --replace-empty"):
                copy(str(path), team)
            target, report = copy(str(path), team, replace_empty=True)  # asked: removed and made again
            target.close()
            assert report.images == 57
            with pytest.raises(CatalogueError, match="already exists; copy into a new name"):
                copy(str(path), team, replace_empty=True)  # one with designs in it stays refused, asked or not
            continue
        assert as_file.exists()
        target, report = copy(str(path), destination)  # a file: made again, as nothing in it can be lost
        target.close()
        assert report.images == 57  # as the original holds them: 61 rows, 4 of them files deleted
        assert rows(as_file, "SELECT count(*), count(gone) FROM images") == [(61, 4)]
    with pytest.raises(CatalogueError, match="already exists; copy into a new catalogue file"):
        copy(str(path), str(as_file))  # one with designs in it stays refused
