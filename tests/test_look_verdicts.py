"""The look's verdicts are kept (look_verdicts.py): a second search, in this session or the next, looks at no
pair again and shows the same list; a changed file is looked at again; looking ahead at a catalogue leaves a
click on any of its designs nothing to look at; a cache folder that cannot be written or a damaged verdict file
costs time, never a search. Real photos, the real model, real catalogue files."""

from __future__ import annotations

import os
import random
import shutil
import time

from PIL import Image, ImageOps

from helpers import copy_clothing_photos
from swimsearch.catalogue import Catalogue
from swimsearch.config import EngineConfig
from swimsearch.look_verdicts import LookVerdicts, look_ahead, look_version, to_look_ahead
from swimsearch.search import SearchEngine
from test_same_picture import LOOKALIKES, folder_catalogue  # noqa: F401 - the fixture: photos, look-alikes, copies


def _listed(result) -> list[tuple]:
    return [(m.name, m.score, m.band) for m in result.matches]


def _engine(catalogue, embedder) -> SearchEngine:
    return SearchEngine(catalogue, embedder, EngineConfig())


def test_a_second_session_looks_at_no_pair_again_and_shows_the_same_list(folder_catalogue, embedder, cache_home):
    folder, path, photo = folder_catalogue
    with Catalogue.open(path) as catalogue:
        first = _engine(catalogue, embedder)
        looked_at = first.search(folder / LOOKALIKES[0], top_n=20)
        assert first.picture_check.looked >= 1  # the look-alike the embeddings call same design
        by_name = {m.name: m for m in looked_at.matches}
        assert by_name[LOOKALIKES[1]].band == "very similar"
    with Catalogue.open(path) as catalogue:  # the next session: a new engine, the verdicts on disk
        again = _engine(catalogue, embedder)
        kept = again.search(folder / LOOKALIKES[0], top_n=20)
        assert again.picture_check.looked == 0 and again.picture_check.cache.reads == 0
    assert _listed(kept) == _listed(looked_at)
    assert (cache_home / f"looks-{look_version()}.sqlite").is_file()


def test_a_file_changed_since_is_looked_at_again(folder_catalogue, embedder, cache_home):
    folder, path, photo = folder_catalogue
    with Catalogue.open(path) as catalogue:
        engine = _engine(catalogue, embedder)
        before = engine.search(folder / LOOKALIKES[0], top_n=20)
        looked = engine.picture_check.looked
        engine.search(folder / LOOKALIKES[0], top_n=20)
        assert engine.picture_check.looked == looked  # kept
        other = folder / LOOKALIKES[1]
        stat = other.stat()
        os.utime(other, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # saved again: a new file to the look
        try:
            after = engine.search(folder / LOOKALIKES[0], top_n=20)
            assert engine.picture_check.looked == looked + 1
        finally:
            os.utime(other, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert _listed(after) == _listed(before)


def test_looking_ahead_leaves_a_click_on_any_design_nothing_to_look_at(folder_catalogue, embedder, cache_home):
    folder, path, photo = folder_catalogue
    with Catalogue.open(path) as catalogue:
        ahead = _engine(catalogue, embedder)
        ids = [int(i) for i in ahead.searchable_ids()]
        assert look_ahead(ahead, ids) == len(ids)
        assert ahead.picture_check.looked >= 3  # the copies and the look-alikes were looked at
        assert look_ahead(ahead, ids) == 0 and to_look_ahead(ahead, ids) == []  # done, and kept as done
        clicked = _engine(catalogue, embedder)
        fresh = _engine(catalogue, embedder)
        fresh.picture_check.verdicts = None  # nothing kept: every pair looked at, as before
        for image_id in ids:
            assert _listed(clicked.search_id(image_id, top_n=50)) == _listed(fresh.search_id(image_id, top_n=50))
        dragged = clicked.search(photo, top_n=50)  # the file dragged from its folder reads the same verdicts
        assert clicked.picture_check.looked == 0 and fresh.picture_check.looked >= 3
    names = {m.name: m.band for m in dragged.matches}
    assert names["zz-mirror.png"] == names["zz-resaved.jpg"] == "same design"


def test_a_cache_folder_that_cannot_be_written_keeps_verdicts_for_the_session(folder_catalogue, embedder, tmp_path,
                                                                              monkeypatch):
    folder, path, photo = folder_catalogue
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("SWIMSEARCH_CACHE_DIR", str(blocked / "cache"))
    with Catalogue.open(path) as catalogue:
        engine = _engine(catalogue, embedder)
        first = engine.search(folder / LOOKALIKES[0], top_n=20)
        looked = engine.picture_check.looked
        assert looked >= 1 and engine.picture_check.verdicts.path is not None  # it tried the folder
        assert _listed(engine.search(folder / LOOKALIKES[0], top_n=20)) == _listed(first)
        assert engine.picture_check.looked == looked  # kept in memory


def test_a_damaged_verdict_file_is_set_aside_and_started_again(folder_catalogue, embedder, cache_home, caplog):
    folder, path, photo = folder_catalogue
    cache_home.mkdir(parents=True)
    kept = cache_home / f"looks-{look_version()}.sqlite"
    kept.write_bytes(b"this is not a database, " * 100)
    with Catalogue.open(path) as catalogue:
        engine = _engine(catalogue, embedder)
        result = engine.search(folder / LOOKALIKES[0], top_n=20)
    assert {m.name: m.band for m in result.matches}[LOOKALIKES[1]] == "very similar"
    assert kept.with_name(kept.name + ".damaged").read_bytes().startswith(b"this is not a database")
    assert LookVerdicts(kept).get([(1, 2)]) == {}  # a new, readable file
    assert "set aside" in caplog.text


def test_a_pair_is_kept_once_whichever_file_was_the_query(tmp_path):
    verdicts = LookVerdicts(tmp_path / "v.sqlite")
    verdicts.put({(7, 3): True, (4, 9): False})
    assert verdicts.get([(3, 7), (9, 4), (4, 5)]) == {(3, 7): True, (9, 4): False}
    verdicts.close()
    assert LookVerdicts(tmp_path / "v.sqlite").get([(7, 3)]) == {(7, 3): True}  # on disk



def test_a_verdict_file_failing_mid_session_keeps_verdicts_in_memory(tmp_path, caplog):
    verdicts = LookVerdicts(tmp_path / "v.sqlite")
    verdicts.put({(1, 2): True})
    verdicts._file._db.close()  # the file fails under the next statement, as on a disk gone full or away
    verdicts.put({(3, 4): False})
    verdicts.mark_ahead("catalogue", [5])
    assert verdicts.get([(2, 1), (4, 3)]) == {(4, 3): False}  # what is kept from now on: in memory
    assert verdicts.looked_ahead("catalogue", [5, 6]) == {5}
    assert "kept in memory" in caplog.text


def test_verdicts_of_an_earlier_look_are_removed_once_unused_for_a_month(cache_home):
    cache_home.mkdir(parents=True)
    old, recent = cache_home / "looks-0123456789abcdef.sqlite", cache_home / "looks-fedcba9876543210.sqlite"
    old.write_bytes(b"")
    recent.write_bytes(b"")  # a window of another version may be using it
    month = time.time() - 31 * 86400
    os.utime(old, (month, month))
    LookVerdicts.default().put({(1, 2): True})
    assert not old.exists() and recent.exists() and (cache_home / f"looks-{look_version()}.sqlite").is_file()


def test_a_catalogue_above_the_look_ahead_size_is_not_looked_ahead(folder_catalogue, embedder, cache_home, monkeypatch):
    from swimsearch import look_verdicts

    folder, path, photo = folder_catalogue
    with Catalogue.open(path) as catalogue:
        engine = _engine(catalogue, embedder)
        monkeypatch.setattr(look_verdicts, "AHEAD_UP_TO", len(engine.searchable_ids()) - 1)
        ahead = look_verdicts.LookAhead(engine)
        assert ahead.step() is False and ahead.searched == 0
        monkeypatch.setattr(look_verdicts, "AHEAD_UP_TO", len(engine.searchable_ids()))
        ahead = look_verdicts.LookAhead(engine)
        while ahead.step():
            pass
        assert ahead.searched == len(engine.searchable_ids())


def _bands(result) -> dict[str, tuple[int, str]]:
    return {m.name: (round(100 * m.score), m.band) for m in result.matches}


def test_a_picture_replaced_with_its_size_and_time_kept_is_looked_at_again(tmp_path, clothing, embedder, cache_home):
    """A reviewer's case: the catalogue's fingerprint (fingerprint.py: "cp -p, a sync tool, a restored backup") sees
    the replaced file and embeds it again; so does the verdict's key (its status-change time): a real (mirrored)
    copy of the query read 87 % "very similar" from the look-alike's old verdict, 99 % "same design" without it."""
    folder = tmp_path / "photos"
    copy_clothing_photos(clothing, folder, 12, offset=3)
    for name in LOOKALIKES:
        shutil.copy(clothing / "images" / name, folder / name)
    path = tmp_path / "c.swimcat"
    query, other = folder / LOOKALIKES[0], folder / LOOKALIKES[1]
    with Catalogue.create(path, folder) as catalogue:
        catalogue.update(embedder, EngineConfig())
        first = SearchEngine(catalogue, embedder, EngineConfig()).search(query, top_n=10)
    assert _bands(first)[other.name][1] == "very similar"  # looked at, kept: not the same picture
    stat = other.stat()
    mirrored = ImageOps.exif_transpose(Image.open(query)).convert("RGB").transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    for quality in range(95, 10, -5):
        mirrored.save(tmp_path / "m.jpg", quality=quality)
        if (tmp_path / "m.jpg").stat().st_size <= stat.st_size:
            break
    data = (tmp_path / "m.jpg").read_bytes()
    other.write_bytes(data + b"\0" * (stat.st_size - len(data)))  # same size (a BMP or TIFF of one size needs no padding)
    os.utime(other, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # and its time kept
    with Catalogue.open(path) as catalogue:
        catalogue.update(embedder, EngineConfig())  # the fingerprint sees the new picture: embedded again
        kept = SearchEngine(catalogue, embedder, EngineConfig())
        fresh = SearchEngine(catalogue, embedder, EngineConfig())
        fresh.picture_check.verdicts = None
        assert _bands(fresh.search(query, top_n=10))[other.name][1] == "same design"
        assert _bands(kept.search(query, top_n=10))[other.name] == _bands(fresh.search(query, top_n=10))[other.name]


def test_a_verdict_file_damaged_inside_is_set_aside_and_not_failed_on_every_session(tmp_path, caplog):
    """A reviewer's case: a file whose first pages read (the check at opening) but a later page is damaged failed
    on the first read of every session, which then kept verdicts in memory only, so the window looked ahead at the
    whole catalogue every session; it is set aside at the first failure and started again."""
    path = tmp_path / "v.sqlite"
    verdicts = LookVerdicts(path)
    rng = random.Random(1)
    rows = {(rng.getrandbits(62), rng.getrandbits(62)): rng.random() < 0.1 for _ in range(50_000)}
    verdicts.put(rows)
    verdicts.close()
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.seek(size * 3 // 4 // 4096 * 4096)
        f.write(os.urandom(4096 * 8))
    for _ in range(2):  # two sessions
        verdicts = LookVerdicts(path)
        verdicts.get(list(rows)[:2000])
        verdicts.close()
    verdicts = LookVerdicts(path)  # the third: a file started again, that keeps what is put
    verdicts.get(list(rows)[:2000])
    assert verdicts._file is not None, "still falling back to memory in the third session"



def test_a_look_that_fails_keeps_no_verdict_and_is_made_again_once_it_works(folder_catalogue, embedder, cache_home,
                                                                             monkeypatch, caplog):
    """A look that raised (a broken install, a picture OpenCV cannot compare) reads "not the same picture" for this
    search, but is not kept: a reviewer's broken FAISS left "not the same" verdicts that outlived the fix."""
    import logging

    import swimsearch.copy_check as copy_check

    folder, path, photo = folder_catalogue
    mirror = "zz-mirror.png"  # its pHash says nothing: the look alone can call it the same picture
    real = copy_check.fit

    def broken(*args, **kwargs):
        raise RuntimeError("a simulated failure")

    with Catalogue.open(path) as catalogue:
        engine = _engine(catalogue, embedder)
        monkeypatch.setattr(copy_check, "fit", broken)
        with caplog.at_level(logging.WARNING, logger="swimsearch.copy_check"):
            failed = engine.search(photo, top_n=20)
        assert "same-design check failed (a simulated failure)" in caplog.text and engine.picture_check.looked >= 1
        assert [m.band for m in failed.matches if m.name == mirror] != ["same design"]
    monkeypatch.setattr(copy_check, "fit", real)
    with Catalogue.open(path) as catalogue:  # the next session, the look working again
        again = _engine(catalogue, embedder)
        fixed = again.search(photo, top_n=20)
        assert again.picture_check.looked >= 1  # looked at again, not read from a kept verdict
    assert [m.band for m in fixed.matches if m.name == mirror] == ["same design"]
