"""Tidying duplicates: which copy is kept, moves that never lose a file, and moving back."""

from __future__ import annotations

import os

from swimsearch.tidy import (
    KEEP_IN_FOLDER,
    KEEP_OLDEST,
    MOVE_LOG,
    Member,
    is_inside,
    member,
    move_aside,
    move_back,
    suggest_keeper,
)


def test_the_keeper_is_the_largest_then_the_oldest_or_one_in_the_preferred_folder(tmp_path):
    members = [
        Member("/d/new/a-small.jpg", 100, 100, 10, 50.0),
        Member("/d/old/a-big-new.jpg", 400, 400, 90, 300.0),
        Member("/d/old/a-big-old.jpg", 400, 400, 80, 200.0),
        Member("/d/masters/a.jpg", 200, 200, 40, 100.0),
    ]
    assert suggest_keeper(members) == 2  # most pixels, then the oldest of those
    assert suggest_keeper(members, KEEP_OLDEST) == 0
    assert suggest_keeper(members, KEEP_IN_FOLDER, "/d/masters") == 3
    assert suggest_keeper(members, KEEP_IN_FOLDER, "/d/elsewhere") == 2  # no copy there: the largest
    gone = [Member("/d/gone.jpg", 900, 900, None, None), Member("/d/here.jpg", 10, 10, 5, 1.0)]
    assert suggest_keeper(gone) == 1  # a missing file is never the keeper


def test_moving_aside_keeps_the_keeper_handles_name_clashes_and_logs_where_files_came_from(tmp_path):
    source, aside = tmp_path / "designs", tmp_path / "aside"
    (source / "a").mkdir(parents=True)
    (source / "b").mkdir()
    aside.mkdir()
    keeper = source / "a" / "shirt.jpg"
    copy_a, copy_b = source / "a" / "shirt copy.jpg", source / "b" / "shirt.jpg"
    for path in (keeper, copy_a, copy_b):
        path.write_bytes(path.name.encode())
    (aside / "shirt.jpg").write_bytes(b"already here")
    report = move_aside([([str(keeper), str(copy_a), str(copy_b)], str(keeper))], aside)
    assert report.failed == ()
    assert keeper.exists() and not copy_a.exists() and not copy_b.exists()
    assert sorted(p.name for p in aside.iterdir()) == [MOVE_LOG, "shirt (2).jpg", "shirt copy.jpg", "shirt.jpg"]
    assert (aside / "shirt.jpg").read_bytes() == b"already here"  # never overwritten
    assert (aside / "shirt (2).jpg").read_bytes() == b"shirt.jpg"
    logged = (aside / MOVE_LOG).read_text(encoding="utf-8")
    assert str(copy_a) in logged and str(copy_b) in logged and "moved aside" in logged

    back = move_back(report.moved)
    assert back.failed == () and copy_a.read_bytes() == b"shirt copy.jpg" and copy_b.read_bytes() == b"shirt.jpg"
    assert (aside / "shirt.jpg").read_bytes() == b"already here" and "moved back" in (aside / MOVE_LOG).read_text()


def test_a_move_never_takes_every_copy_and_errors_are_plain(tmp_path):
    aside = tmp_path / "aside"
    aside.mkdir()
    a, b = tmp_path / "a.jpg", tmp_path / "b.jpg"
    a.write_bytes(b"a")
    b.write_bytes(b"b")
    wrong_keeper = move_aside([([str(a), str(b)], str(tmp_path / "c.jpg"))], aside)
    assert a.exists() and b.exists() and len(wrong_keeper.failed) == 2 and wrong_keeper.moved == ()
    b.unlink()
    gone = move_aside([([str(a), str(b)], str(a))], aside)
    assert gone.failed == ((str(b), "it is no longer there"),) and a.exists()
    nowhere = move_aside([([str(a), str(b)], str(a))], tmp_path / "missing")
    assert nowhere.failed == ((str(tmp_path / "missing"), "the destination folder does not exist"),)


def test_moving_back_never_overwrites_a_file_that_took_the_old_place(tmp_path):
    aside = tmp_path / "aside"
    aside.mkdir()
    keep, copy = tmp_path / "keep.jpg", tmp_path / "copy.jpg"
    keep.write_bytes(b"k")
    copy.write_bytes(b"c")
    report = move_aside([([str(keep), str(copy)], str(keep))], aside)
    copy.write_bytes(b"a new file with the old name")
    back = move_back(report.moved)
    assert back.moved == () and back.failed[0][0] == str(copy) and "another file has taken its place" in back.failed[0][1]
    assert copy.read_bytes() == b"a new file with the old name" and (aside / "copy.jpg").read_bytes() == b"c"


def test_members_read_size_and_date_and_folders_contain_their_files(tmp_path):
    path = tmp_path / "x" / "a.jpg"
    path.parent.mkdir()
    path.write_bytes(b"12345")
    os.utime(path, (1000, 1000))
    m = member(str(path), 10, 20)
    assert (m.size, m.mtime, m.pixels, m.exists) == (5, 1000.0, 200, True)
    assert not member(str(tmp_path / "none.jpg"), 1, 1).exists
    assert is_inside(path, tmp_path) and is_inside(tmp_path, tmp_path) and not is_inside(tmp_path, path)
    assert not is_inside(tmp_path / "xy", tmp_path / "x")


def test_finding_duplicates_stops_when_told(tmp_path, fake_embedder, small_config):
    import pytest

    from helpers import build_pattern_catalogue
    from swimsearch.catalogue import Catalogue
    from swimsearch.duplicates import find_duplicate_groups
    from swimsearch.errors import Cancelled
    from swimsearch.search import SearchEngine

    _, path = build_pattern_catalogue(tmp_path / "d", tmp_path / "d.swimcat", fake_embedder, small_config, 12)
    with Catalogue.open(path) as catalogue:
        engine = SearchEngine(catalogue, None, small_config)
        seen = []
        with pytest.raises(Cancelled):
            find_duplicate_groups(engine, progress=lambda done, total: seen.append(done), should_stop=lambda: True)
        assert seen == [1]  # it stopped at the first check
        assert find_duplicate_groups(engine, should_stop=lambda: False) == []  # 12 different patterns
