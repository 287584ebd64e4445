"""Building and updating catalogues: resumable, incremental, honest about bad files.

The behaviour tests take the `store` fixture (tests/stores.py): each runs on a
SQLite catalogue file and on a PostgreSQL team catalogue. The tests of the
file itself (damaged, moved, its tables) are SQLite's alone.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from contextlib import closing

import numpy as np
import pytest

from helpers import FakeEmbedder, make_pattern_images
from swimsearch.catalogue import Catalogue
from swimsearch.errors import Cancelled, CatalogueBusy, CatalogueError
from swimsearch.search import SearchEngine
from swimsearch.stores.sqlite_file import SCHEMA_VERSION


def build(folder, path, embedder, config, **kwargs):
    with Catalogue.open_or_create(path, folder) as catalogue:
        return catalogue.update(embedder, config, **kwargs)


def test_build_embeds_indexes_and_reports(store, tmp_path, fake_embedder, small_config):
    make_pattern_images(tmp_path / "pics", 60)
    phases = []
    report = build(tmp_path / "pics", store.location(), fake_embedder, small_config,
                   progress=lambda phase, done, total: phases.append((phase, done, total)))
    assert (report.added, report.unreadable, report.removed, report.indexed) == (60, 0, 0, 60)
    assert report.refitted and not report.cancelled
    assert {"scan", "embed", "index"} <= {p for p, _, _ in phases}
    assert ("embed", 60, 60) in phases
    with Catalogue.open(store.location()) as catalogue:
        assert catalogue.counts() == {"images": 60, "readable": 60, "unreadable": 0, "searchable": 60}
        assert catalogue.info()["fitted"]["count"] == 60


def test_cancel_keeps_a_usable_catalogue_and_the_next_build_completes(store, tmp_path, fake_embedder, small_config):
    folder, path = tmp_path / "pics", store.location()
    make_pattern_images(folder, 80)
    seen = []

    def stop_half_way():
        return len(seen) >= 5  # five batches of 8 = 40 images

    with pytest.raises(Cancelled) as caught:
        build(folder, path, fake_embedder, small_config,
              progress=lambda phase, done, total: seen.append(done) if phase == "embed" and done else None,
              should_stop=stop_half_way)
    report = caught.value.report
    assert report.cancelled and report.added == 40 and report.indexed == 40
    with Catalogue.open(path) as catalogue:
        assert catalogue.info()["fitted"]["provisional"] is True
        engine = SearchEngine(catalogue, fake_embedder, small_config)
        assert len(engine) == 40
        result = engine.search(folder / "img0001.png", top_n=3)
        assert result.matches[0].relpath == "img0001.png" and result.matches[0].score == pytest.approx(1.0)

    again = build(folder, path, fake_embedder, small_config)
    assert (again.added, again.unchanged, again.indexed) == (40, 40, 80)
    assert again.refitted  # a provisional fit is replaced once the build completes
    paths = store.stored_paths(path)
    assert len(paths) == 80 and len(set(paths)) == 80


def test_resumed_build_gives_the_same_results_as_a_clean_build(store, tmp_path, fake_embedder, small_config):
    folder = tmp_path / "pics"
    make_pattern_images(folder, 70)
    build(folder, store.location("clean"), fake_embedder, small_config)
    calls = []
    with pytest.raises(Cancelled):
        build(folder, store.location("resumed"), fake_embedder, small_config,
              should_stop=lambda: calls.append(1) or len(calls) >= 3)
    build(folder, store.location("resumed"), fake_embedder, small_config)

    def ranked(path):
        with Catalogue.open(path) as catalogue:
            engine = SearchEngine(catalogue, fake_embedder, small_config)
            return [[(m.relpath, round(m.score, 6)) for m in engine.search(folder / f"img{i:04d}.png", top_n=5).matches]
                    for i in range(0, 70, 7)]

    assert ranked(store.location("clean")) == ranked(store.location("resumed"))


def test_update_drops_deleted_adds_new_and_rereads_changed(store, tmp_path, fake_embedder, small_config):
    folder, path = tmp_path / "pics", store.location()
    files = make_pattern_images(folder, 40)
    build(folder, path, fake_embedder, small_config)
    for f in files[:5]:
        f.unlink()
    make_pattern_images(folder, 3, start=500)
    changed = files[10]
    shutil.copy(files[20], changed)  # new content, new size/mtime
    os.utime(changed, (1e9, 1e9))
    report = build(folder, path, fake_embedder, small_config)
    assert (report.added, report.removed, report.updated, report.unchanged) == (3, 5, 1, 34)
    expected = sorted(p.name for p in folder.glob("*.png"))
    assert store.stored_paths(path) == expected
    with Catalogue.open(path) as catalogue:
        engine = SearchEngine(catalogue, fake_embedder, small_config)
        assert len(engine) == 38
        # The changed file now looks like files[20]: each finds the other at 100 %.
        top = engine.search(files[20], top_n=2).matches
        assert {m.relpath for m in top} == {files[20].name, changed.name}
        assert top[1].score > 0.999 and top[1].duplicate
    nothing = build(folder, path, fake_embedder, small_config)
    assert (nothing.added, nothing.removed, nothing.updated, nothing.unchanged) == (0, 0, 0, 38)


def test_unreadable_files_are_recorded_and_skipped(store, tmp_path, fake_embedder, small_config):
    folder, path = tmp_path / "pics", store.location()
    make_pattern_images(folder, 20)
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.png").write_text("not a picture")
    report = build(folder, path, fake_embedder, small_config)
    assert report.added == 20 and report.unreadable == 2
    assert dict(report.errors) == {
        "empty.jpg": "the file is empty (0 bytes)",
        "notes.png": "not an image file, or a format that cannot be read",
    }
    with Catalogue.open(path) as catalogue:
        assert [p for p, _ in catalogue.unreadable()] == ["empty.jpg", "notes.png"]
        assert catalogue.counts()["searchable"] == 20
    again = build(folder, path, fake_embedder, small_config)
    assert again.unreadable == 0 and again.unchanged == 22  # not retried until the file changes


def test_small_updates_reuse_the_fit_and_doubling_refits(store, tmp_path, fake_embedder, small_config):
    folder, path = tmp_path / "pics", store.location()
    make_pattern_images(folder, 50)
    assert build(folder, path, fake_embedder, small_config).refitted
    make_pattern_images(folder, 10, start=100)
    small = build(folder, path, fake_embedder, small_config)
    assert not small.refitted and small.indexed == 60
    with Catalogue.open(path) as catalogue:
        assert catalogue.info()["fitted"]["count"] == 50
        engine = SearchEngine(catalogue, fake_embedder, small_config)
        assert engine.search(folder / "img0105.png", top_n=1).matches[0].relpath == "img0105.png"
    make_pattern_images(folder, 45, start=200)
    assert build(folder, path, fake_embedder, small_config).refitted  # 105 >= 2 x 50


def test_catalogue_moves_with_its_folder(tmp_path, fake_embedder, small_config):
    folder = tmp_path / "designs"
    make_pattern_images(folder, 15)
    build(folder, folder / "designs.swimcat", fake_embedder, small_config)
    moved = tmp_path / "archive" / "designs-2026"
    moved.parent.mkdir()
    folder.rename(moved)
    with Catalogue.open(moved / "designs.swimcat") as catalogue:
        assert catalogue.root == moved.resolve()
        engine = SearchEngine(catalogue, fake_embedder, small_config)
        best = engine.search(moved / "img0003.png", top_n=1).matches[0]
        assert best.path == str(moved.resolve() / "img0003.png") and not best.missing
        assert catalogue.update(fake_embedder, small_config).unchanged == 15


def test_deleted_images_show_as_missing_not_crashing(store, tmp_path, fake_embedder, small_config):
    folder, path = tmp_path / "pics", store.location()
    files = make_pattern_images(folder, 12)
    build(folder, path, fake_embedder, small_config)
    query = tmp_path / "query.png"
    shutil.copy(files[4], query)
    files[4].unlink()
    with Catalogue.open(path) as catalogue:
        best = SearchEngine(catalogue, fake_embedder, small_config).search(query, top_n=1).matches[0]
    assert best.relpath == files[4].name and best.missing


def test_a_second_writer_is_refused_in_plain_words(store, tmp_path, fake_embedder, small_config):
    folder, path = tmp_path / "pics", store.location()
    make_pattern_images(folder, 10)
    build(folder, path, fake_embedder, small_config)
    with Catalogue.open(path) as first, Catalogue.open(path) as second:
        with first.store.writer_lock():
            expected = "is updating the team catalogue c right now" if store.team else "being built or updated by another"
            with pytest.raises(CatalogueBusy, match=expected):
                second.update(fake_embedder, small_config)


def test_another_model_reembeds_everything(store, tmp_path, fake_embedder, small_config):
    folder, path = tmp_path / "pics", store.location()
    make_pattern_images(folder, 12)
    build(folder, path, fake_embedder, small_config)
    other = FakeEmbedder()
    other.sha256 = "e" * 64
    with Catalogue.open(path) as catalogue:
        with pytest.raises(CatalogueError, match="built with another model"):
            SearchEngine(catalogue, other, small_config).search(folder / "img0001.png")
    report = build(folder, path, other, small_config)
    assert report.added == 12 and report.unchanged == 0


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty"),
        (os.urandom(4096), "not a SwimSearch catalogue"),
        (b"SQLite format 3\x00" + os.urandom(8000), "damaged"),
    ],
)
def test_damaged_files_are_refused_and_left_untouched(tmp_path, content, message):
    path = tmp_path / "bad.swimcat"
    path.write_bytes(content)
    with pytest.raises(CatalogueError, match=message):
        Catalogue.open(path)
    with pytest.raises(CatalogueError):
        Catalogue.open_or_create(path, tmp_path)
    assert path.read_bytes() == content


def test_a_newer_catalogue_is_refused(tmp_path, fake_embedder, small_config):
    folder, path = tmp_path / "pics", tmp_path / "c.swimcat"
    make_pattern_images(folder, 5)
    build(folder, path, fake_embedder, small_config)
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
        conn.commit()
    before = path.read_bytes()
    with pytest.raises(CatalogueError, match="newer SwimSearch"):
        Catalogue.open(path)
    assert path.read_bytes() == before


def test_create_never_overwrites(tmp_path):
    path = tmp_path / "x.swimcat"
    path.write_bytes(b"precious")
    with pytest.raises(CatalogueError, match="left untouched"):
        Catalogue.create(path, tmp_path)
    assert path.read_bytes() == b"precious"


def test_missing_folder_is_a_plain_error(store, tmp_path, fake_embedder, small_config):
    folder, path = tmp_path / "pics", store.location()
    make_pattern_images(folder, 5)
    build(folder, path, fake_embedder, small_config)
    shutil.rmtree(folder)
    with Catalogue.open(path) as catalogue, pytest.raises(CatalogueError, match="no longer exists"):
        catalogue.update(fake_embedder, small_config)


def test_arrays_are_raw_bytes_with_dtype_and_shape(tmp_path, fake_embedder, small_config):
    folder, path = tmp_path / "pics", tmp_path / "c.swimcat"
    make_pattern_images(folder, 30)
    build(folder, path, fake_embedder, small_config)
    with closing(sqlite3.connect(path)) as conn:
        rows = conn.execute("SELECT name, dtype, shape, length(data) FROM arrays").fetchall()
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    for name, dtype, shape, size in rows:
        assert dtype[0] in "<|" and np.dtype(dtype).itemsize * int(np.prod(eval(shape))) == size, name
    assert {r[0] for r in rows} >= {"hash.mean", "hash.weights", "spheres.pivots", "spheres.radii", "lsh.positions"}


def test_laplacian_variant_with_folder_labels_builds_and_searches(store, tmp_path, fake_embedder, small_config):
    folder, path = tmp_path / "pics", store.location()
    make_pattern_images(folder / "tops", 30)
    make_pattern_images(folder / "briefs", 30, start=100)
    config = small_config.with_changes(hash_variant="laplacian", folder_labels=True)
    build(folder, path, fake_embedder, config)
    with Catalogue.open(path) as catalogue:
        assert catalogue.info()["fitted"]["variant"] == "laplacian"
        engine = SearchEngine(catalogue, fake_embedder, config)
        assert engine.search(folder / "briefs" / "img0105.png", top_n=1).matches[0].relpath == "briefs/img0105.png"


def test_an_update_keeps_the_hash_layer_the_catalogue_was_fitted_with(store, tmp_path, fake_embedder, small_config):
    folder, path = tmp_path / "pics", store.location()
    make_pattern_images(folder / "tops", 20)
    make_pattern_images(folder / "briefs", 20, start=100)
    build(folder, path, fake_embedder, small_config.with_changes(hash_variant="laplacian", folder_labels=True))
    make_pattern_images(folder / "tops", 45, start=200)  # more than doubles: refits
    with Catalogue.open(path) as catalogue:
        config = catalogue.with_fit_choices(small_config)  # what `swimsearch index` and the window do
        assert catalogue.update(fake_embedder, config).refitted
        assert catalogue.info()["fitted"]["variant"] == "laplacian"
        assert catalogue.fitted().settings["folder_labels"] is True
        # naming a choice again changes it
        assert catalogue.with_fit_choices(small_config, ["folder_labels"]).hash_variant == small_config.hash_variant


def test_many_small_updates_keep_the_code_blocks_compact(tmp_path, fake_embedder, small_config):
    folder, path = tmp_path / "pics", tmp_path / "c.swimcat"
    make_pattern_images(folder, 40)
    build(folder, path, fake_embedder, small_config)
    for n in range(15):  # fifteen updates of one new design each, and one deletion
        make_pattern_images(folder, 1, start=1000 + n)
        if n == 7:
            (folder / "img0003.png").unlink()
        assert not build(folder, path, fake_embedder, small_config).refitted
    with closing(sqlite3.connect(path)) as conn:
        blocks = conn.execute("SELECT count(*), sum(count) FROM code_blocks").fetchone()
    assert blocks[1] == 54 and blocks[0] <= 10
    with Catalogue.open(path) as catalogue:
        engine = SearchEngine(catalogue, fake_embedder, small_config)
        for n in (1000, 1007, 1014):
            assert engine.search(folder / f"img{n:04d}.png", top_n=1).matches[0].relpath == f"img{n:04d}.png"
        assert all(m.relpath != "img0003.png" for m in engine.search(folder / "img0004.png", top_n=60).matches)
