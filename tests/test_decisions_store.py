"""What the catalogue keeps for steering: decisions on pairs of designs, and its subfolders."""

from __future__ import annotations

import getpass
import os
import sqlite3
import time
from contextlib import closing

import numpy as np
import pytest

from helpers import FakeEmbedder, make_pattern_images
from swimsearch.catalogue import Catalogue
from swimsearch.errors import CatalogueError, DamagedCatalogue
from swimsearch.stores.verdicts import DIFFERENT, SAME
from swimsearch.stores.sqlite_schema import SCHEMA_VERSION


def build(folder, path, embedder, config):
    with Catalogue.open_or_create(path, folder) as catalogue:
        return catalogue.update(embedder, config)


@pytest.fixture
def decided(tmp_path, fake_embedder, small_config):
    """A built catalogue of 12 designs with two decisions: img0000~img0005 same, img0000/img0007 different."""
    folder, path = tmp_path / "pics", tmp_path / "c.swimcat"
    make_pattern_images(folder, 12, family=3)
    build(folder, path, fake_embedder, small_config)
    with Catalogue.open(path) as catalogue:
        ids = {os.path.basename(r.relpath): r.image_id for r in catalogue.records(range(1, 100)).values()}
        catalogue.decide(ids["img0005.png"], ids["img0000.png"], SAME)
        catalogue.decide(ids["img0000.png"], ids["img0007.png"], DIFFERENT)
    return folder, path


def pairs(catalogue) -> set[tuple[str, str, str]]:
    return {(d.a_path, d.b_path, d.verdict) for d in catalogue.decisions()}


def test_decisions_say_who_and_when_and_survive_closing_and_reopening(decided):
    folder, path = decided
    with Catalogue.open(path) as catalogue:
        decisions = catalogue.decisions()
        assert pairs(catalogue) == {("img0000.png", "img0005.png", SAME), ("img0000.png", "img0007.png", DIFFERENT)}
        for d in decisions:
            assert d.a < d.b and d.who == getpass.getuser() and time.time() - 60 < d.at <= time.time()
            assert catalogue.records([d.a])[d.a].relpath == d.a_path
        assert catalogue.info()["schema_version"] == SCHEMA_VERSION


def test_a_new_verdict_replaces_the_old_one_and_none_withdraws_it(decided):
    folder, path = decided
    with Catalogue.open(path) as catalogue:
        same = next(d for d in catalogue.decisions() if d.verdict == SAME)
        catalogue.decide(same.b, same.a, DIFFERENT)  # the pair is unordered
        assert pairs(catalogue) == {("img0000.png", "img0005.png", DIFFERENT), ("img0000.png", "img0007.png", DIFFERENT)}
        catalogue.decide(same.a, same.b, None)
        assert pairs(catalogue) == {("img0000.png", "img0007.png", DIFFERENT)}


def test_decisions_survive_an_update_of_the_folder(decided, fake_embedder, small_config):
    folder, path = decided
    make_pattern_images(folder, 3, start=50)  # new designs
    (folder / "img0011.png").unlink()  # one not in any decision
    report = build(folder, path, fake_embedder, small_config)
    assert report.added == 3 and report.removed == 1
    with Catalogue.open(path) as catalogue:
        assert pairs(catalogue) == {("img0000.png", "img0005.png", SAME), ("img0000.png", "img0007.png", DIFFERENT)}


def test_decisions_survive_a_rebuild_with_another_model(decided, small_config):
    """Another model gives every image a new id; a person's decision is about the files, and stays."""
    folder, path = decided

    class OtherModel(FakeEmbedder):
        name, sha256 = "other-model", "0" * 64

    report = build(folder, path, OtherModel(), small_config)
    assert report.added == 12  # every image read again, as new records
    with Catalogue.open(path) as catalogue:
        assert pairs(catalogue) == {("img0000.png", "img0005.png", SAME), ("img0000.png", "img0007.png", DIFFERENT)}


def test_a_decision_on_a_deleted_image_disappears_with_it(decided, fake_embedder, small_config):
    folder, path = decided
    (folder / "img0007.png").unlink()
    build(folder, path, fake_embedder, small_config)
    with Catalogue.open(path) as catalogue:
        assert pairs(catalogue) == {("img0000.png", "img0005.png", SAME)}
    with closing(sqlite3.connect(path)) as conn:  # gone from the file, not only hidden
        assert conn.execute("SELECT count(*) FROM decisions WHERE b = 'img0007.png'").fetchone()[0] == 0
    # a new picture under the old name is another design: it does not inherit the decision
    make_pattern_images(folder, 1, start=7)
    build(folder, path, fake_embedder, small_config)
    with Catalogue.open(path) as catalogue:
        assert pairs(catalogue) == {("img0000.png", "img0005.png", SAME)}


def test_a_design_found_moved_takes_its_decisions_along(decided, fake_embedder, small_config):
    folder, path = decided
    (folder / "archive").mkdir()
    (folder / "img0005.png").rename(folder / "archive" / "renamed.png")
    report = build(folder, path, fake_embedder, small_config)
    assert report.moved == 1 and report.added == 0
    with Catalogue.open(path) as catalogue:
        assert pairs(catalogue) == {("img0000.png", "archive/renamed.png", SAME), ("img0000.png", "img0007.png", DIFFERENT)}
        assert "2 decisions on pairs of designs" in catalogue.check()


def test_removals_held_back_keep_their_decisions_until_confirmed(decided, fake_embedder, small_config):
    """Most of the folder gone at once (a share half mounted?): the files and their decisions are kept."""
    folder, path = decided
    for n in (1, 2, 3, 4, 6, 7, 8, 9, 10, 11):
        (folder / f"img{n:04d}.png").unlink()
    report = build(folder, path, fake_embedder, small_config)
    assert report.held
    with Catalogue.open(path) as catalogue:
        assert len(catalogue.decisions()) == 2
        catalogue.update(fake_embedder, small_config, allow_removal=True)
        assert pairs(catalogue) == {("img0000.png", "img0005.png", SAME)}


def test_a_damaged_or_crafted_decision_is_refused_in_one_sentence(decided):
    folder, path = decided
    with closing(sqlite3.connect(path)) as conn:  # a flipped verdict, its checksum left as it was
        conn.execute("UPDATE decisions SET verdict = 'same' WHERE verdict = 'different'")
        conn.commit()
    with Catalogue.open(path) as catalogue:
        with pytest.raises(DamagedCatalogue, match="is damaged"):
            catalogue.decisions()
        with pytest.raises(DamagedCatalogue, match="is damaged"):
            catalogue.check()


def test_decisions_are_refused_in_plain_words_where_they_cannot_be_kept(decided):
    folder, path = decided
    with Catalogue.open(path) as catalogue:
        one = catalogue.decisions()[0].a
        with pytest.raises(CatalogueError, match="same design as itself"):
            catalogue.decide(one, one, SAME)
        with pytest.raises(CatalogueError, match="no longer in the catalogue"):
            catalogue.decide(one, 10_000, SAME)
    with Catalogue.open(path, readonly=True) as catalogue:
        with pytest.raises(CatalogueError, match="read-only"):
            catalogue.decide(1, 2, SAME)
        assert len(catalogue.decisions()) == 2  # still read


def test_a_catalogue_of_the_format_before_decisions_is_upgraded_and_keeps_everything(tmp_path, fake_embedder, small_config):
    from swimsearch.stores.sqlite_schema import meta_crc

    folder, path = tmp_path / "pics", tmp_path / "c.swimcat"
    make_pattern_images(folder, 6)
    build(folder, path, fake_embedder, small_config)
    with closing(sqlite3.connect(path)) as conn:  # as SwimSearch wrote it before decisions existed (format 3)
        for table in ("decisions", "regions", "colours"):  # the decisions, and the details kept since (format 5)
            conn.execute(f"DROP TABLE {table}")
        conn.execute("DELETE FROM meta WHERE key = 'regions'")
        conn.execute("DELETE FROM arrays WHERE name LIKE 'regions.%'")
        before = "3"
        conn.execute("UPDATE meta SET value = ?, crc = ? WHERE key = 'schema_version'", (before, meta_crc("schema_version", before)))
        conn.commit()
    with Catalogue.open(path, readonly=True) as catalogue:  # read as it is: searchable, no decisions yet
        assert catalogue.decisions() == [] and catalogue.counts()["searchable"] == 6
        assert "0 decisions on pairs of designs" in catalogue.check()
    with Catalogue.open(path) as catalogue:
        assert catalogue.info()["schema_version"] == SCHEMA_VERSION and catalogue.counts()["searchable"] == 6
        assert catalogue.decisions() == []
        catalogue.decide(1, 2, SAME)
        assert len(catalogue.decisions()) == 1


def test_subfolders_are_counted_at_every_level_and_narrowed_to_exactly(tmp_path, fake_embedder, small_config):
    folder, path = tmp_path / "pics", tmp_path / "c.swimcat"
    make_pattern_images(folder / "summer" / "tops", 3, start=0)
    make_pattern_images(folder / "summer" / "skirts", 2, start=10)
    make_pattern_images(folder / "summer-2024", 4, start=20)  # a name that starts like "summer"
    make_pattern_images(folder / "summer.old", 1, start=30)
    make_pattern_images(folder, 2, start=40)
    (folder / "summer" / "broken.png").write_bytes(b"not a picture")
    build(folder, path, fake_embedder, small_config)
    with Catalogue.open(path) as catalogue:
        counts = catalogue.folder_counts()
        assert counts == {"": 12, "summer": 5, "summer/skirts": 2, "summer/tops": 3, "summer-2024": 4, "summer.old": 1}
        relpaths = lambda ids: sorted(r.relpath for r in catalogue.records(ids).values())  # noqa: E731
        assert len(relpaths(catalogue.ids_in_folders(["summer"]))) == 6  # the unreadable file lies there too
        assert relpaths(catalogue.ids_in_folders(["summer/tops/"])) == [f"summer/tops/img000{n}.png" for n in range(3)]
        both = catalogue.ids_in_folders(["summer-2024", "summer.old", "/summer-2024"])
        assert [p.split("/")[0] for p in relpaths(both)] == ["summer-2024"] * 4 + ["summer.old"]
        assert np.all(np.diff(both) > 0)
        assert len(catalogue.ids_in_folders([""])) == 13 and len(catalogue.ids_in_folders(["winter"])) == 0


def test_decisions_copied_into_another_catalogue_keep_who_and_when(decided, tmp_path, fake_embedder, small_config):
    """What a copy of a catalogue (`swimsearch copy`) does with them: same pairs, same people, same times."""
    folder, path = decided
    copy = tmp_path / "copy.swimcat"
    build(folder, copy, fake_embedder, small_config)
    with Catalogue.open(path) as source, Catalogue.open(copy) as target:
        assert target.decisions() == []
        target.store.import_decisions(source.decisions())
        assert [(d.a_path, d.b_path, d.verdict, d.who, d.at) for d in target.decisions()] == [
            (d.a_path, d.b_path, d.verdict, d.who, d.at) for d in source.decisions()
        ]
