"""Updates that must not lose work: passing failures retried, gone files kept a while, replaced pictures
noticed, a half-mounted folder not believed, and images searchable until their new code is committed.

Real catalogue files and team catalogues (each store-level behaviour runs on
both stores: the `store` fixture), real pictures (generated), the small fake
embedder; the embedder counts what it is given, so "not read again" is
measured, not assumed.
"""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import DATA, V1_CONFIG, FakeEmbedder, make_pattern_images, needs_permissions
from swimsearch import build as build_module
from swimsearch import decode as decode_module
from swimsearch.catalogue import Catalogue
from swimsearch.errors import CatalogueError
from swimsearch.search import SearchEngine
from swimsearch.stores.sqlite_file import SCHEMA_VERSION, describe_error


class CountingEmbedder(FakeEmbedder):
    """The fake trunk, counting the pictures it embeds."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def embed(self, pixels):
        out = super().embed(pixels)
        self.count += len(out)
        return out


def update(folder, path, embedder, config, *, only=None, **kwargs):
    """Update the catalogue of `folder` (made if new); `only`: a folder inside it to update alone."""
    with Catalogue.open_or_create(path, folder) as catalogue:
        return catalogue.update(embedder, config, folder=only, **kwargs)


def searchable(path, embedder, config) -> int:
    with Catalogue.open(path) as catalogue:
        return len(SearchEngine(catalogue, embedder, config))


def top_match(path, embedder, config, query: Path) -> tuple[str, float]:
    with Catalogue.open(path) as catalogue:
        best = SearchEngine(catalogue, embedder, config).search(query, top_n=1).matches[0]
        return best.relpath, best.score


# --- passing failures are retried -----------------------------------------------------------------


def test_files_lost_while_their_folder_was_renamed_are_read_at_the_next_update(tmp_path, store, small_config):
    """The red team's case: a folder renamed during a build left 268 of 380 'does not exist' for good."""
    folder, path = tmp_path / "pics", store.location()
    make_pattern_images(folder / "summer", 30)
    make_pattern_images(folder / "winter", 10, start=100)
    moved = {"done": False}

    def progress(phase, done, total):
        if phase == "embed" and done >= 8 and not moved["done"]:  # mid-build, the subfolder is renamed
            (folder / "summer").rename(tmp_path / "summer-away")
            moved["done"] = True

    first = update(folder, path, FakeEmbedder(), small_config, progress=progress)
    assert first.unreadable > 0 and all("does not exist" in reason for _, reason in first.errors)
    (tmp_path / "summer-away").rename(folder / "summer")  # renamed back
    embedder = CountingEmbedder()
    second = update(folder, path, embedder, small_config)
    assert second.retried == first.unreadable and second.unreadable == 0
    assert f"{second.retried} retried" in second.summary()
    assert embedder.count == first.unreadable  # only those were read again
    assert searchable(path, embedder, small_config) == 40


def test_a_picture_that_fails_in_any_way_is_recorded_and_the_build_goes_on(tmp_path, store, small_config, monkeypatch):
    """A decoder that raises outside the loader, and a batch the network has no memory for."""
    folder, path = tmp_path / "pics", store.location()
    make_pattern_images(folder, 24)
    rng = random.Random(7)
    doomed = set(rng.sample([f"img{n:04d}.png" for n in range(24)], 4))
    real = decode_module.load_image

    def flaky(source, size, **kwargs):
        if Path(source).name in doomed:
            raise rng.choice([MemoryError(), RuntimeError("decoder thread failed"), SystemError("bad")])
        return real(source, size, **kwargs)

    class NoMemoryForBatches(FakeEmbedder):
        def embed(self, pixels):
            if len(pixels) > 3:  # the network runs out of memory on large batches: halves are tried
                raise MemoryError("bad_alloc")
            return super().embed(pixels)

    monkeypatch.setattr(decode_module, "load_image", flaky)
    report = update(folder, path, NoMemoryForBatches(), small_config)
    assert report.added == 20 and report.unreadable == 4 and {p for p, _ in report.errors} == doomed
    monkeypatch.setattr(decode_module, "load_image", real)
    again = update(folder, path, FakeEmbedder(), small_config)
    assert again.retried == 4 and again.added == 4  # decoder trouble passes: read again, now fine
    assert searchable(path, FakeEmbedder(), small_config) == 24


def test_lasting_failures_are_not_read_again_until_the_file_changes(tmp_path, store, small_config):
    folder, path = tmp_path / "pics", store.location()
    make_pattern_images(folder, 10)
    (folder / "notes.png").write_text("not a picture")
    update(folder, path, FakeEmbedder(), small_config)
    embedder = CountingEmbedder()
    again = update(folder, path, embedder, small_config)
    assert (again.retried, again.unreadable, again.unchanged, embedder.count) == (0, 0, 11, 0)


# --- replaced pictures are noticed ----------------------------------------------------------------


def _same_size_pictures(folder: Path, count: int, seed: int, fmt: str) -> list[Path]:
    """Uncompressed pictures of one size: every file the same number of bytes."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for n in range(count):
        blocks = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
        picture = Image.fromarray(np.kron(blocks, np.ones((12, 12, 1), np.uint8)))
        target = folder / f"same{n:03d}.{fmt}"
        picture.save(target, **({"compression": None} if fmt == "tif" else {}))
        out.append(target)
    return out


@pytest.mark.parametrize("seed", range(6))
def test_a_picture_replaced_by_one_of_the_same_size_and_time_is_read_again(tmp_path, store, small_config, seed):
    rng = random.Random(seed)
    fmt = rng.choice(["bmp", "tif"])
    folder, path = tmp_path / "pics", store.location()
    place = folder / rng.choice(["", "a", "a/b/c"])
    files = _same_size_pictures(place, 12, seed, fmt)
    make_pattern_images(folder / "other", 8)
    update(folder, path, FakeEmbedder(), small_config)
    victims = rng.sample(files, rng.randint(1, 4))
    spare = _same_size_pictures(tmp_path / "spare", len(victims), seed + 1000, fmt)
    for victim, new in zip(victims, spare):
        info = victim.stat()
        assert new.stat().st_size == info.st_size
        shutil.copy(new, victim)
        os.utime(victim, ns=(info.st_atime_ns, info.st_mtime_ns))  # same size, same time: only the content differs
    embedder = CountingEmbedder()
    report = update(folder, path, embedder, small_config)
    assert report.updated == len(victims) and embedder.count == len(victims)
    for victim, new in zip(victims, spare):
        relpath, score = top_match(path, embedder, small_config, new)
        assert relpath == victim.relative_to(folder).as_posix() and score > 0.999


def test_a_folder_copied_with_new_times_is_not_read_again_but_an_edit_is(tmp_path, store, small_config):
    """`cp -r` (or an archive unpacked, a sync without times) gives every file a new time and the same
    content: the fingerprint vouches for compressed pictures, so nothing is embedded again; a picture
    edited to the same size, and an uncompressed one whose middle could have changed unseen, are read."""
    folder, path = tmp_path / "pics", store.location()
    files = make_pattern_images(folder / "shoots", 24)
    raw = folder / "scan.bmp"
    Image.open(files[0]).convert("RGB").save(raw)
    update(folder, path, FakeEmbedder(), small_config)
    for f in [*files, raw]:  # what a copy without `-p` does to the times
        info = f.stat()
        os.utime(f, ns=(info.st_atime_ns, info.st_mtime_ns + 3_600 * 10**9))
    edited = files[5]
    replacement = make_pattern_images(tmp_path / "spare", 1, start=500)[0]
    Image.open(replacement).save(edited)  # another picture under the same name, a new time
    embedder = CountingEmbedder()
    report = update(folder, path, embedder, small_config)
    assert embedder.count == 2 and report.updated == 2  # the edited picture and the BMP, nothing else
    assert report.unchanged == len(files) - 1
    relpath, score = top_match(path, embedder, small_config, edited)
    assert relpath == edited.relative_to(folder).as_posix() and score > 0.999
    again = CountingEmbedder()
    assert update(folder, path, again, small_config).unchanged == len(files) + 1 and again.count == 0


# --- gone files: tombstones, moves, the guard -------------------------------------------------------


def test_deleted_files_that_come_back_or_move_are_not_read_again(tmp_path, store, small_config):
    folder, path = tmp_path / "pics", store.location()
    files = make_pattern_images(folder / "shoots", 40)
    update(folder, path, FakeEmbedder(), small_config)
    aside = tmp_path / "aside"
    aside.mkdir()
    for f in files[:5]:  # a few deleted (below the guard)
        shutil.move(f, aside / f.name)
    removed = update(folder, path, FakeEmbedder(), small_config)
    assert removed.removed == 5 and searchable(path, FakeEmbedder(), small_config) == 35
    for f in files[:5]:  # ... and back again, with their dates
        shutil.move(aside / f.name, f)
    embedder = CountingEmbedder()
    back = update(folder, path, embedder, small_config)
    assert back.came_back == 5 and embedder.count == 0 and "5 came back" in back.summary()
    assert searchable(path, embedder, small_config) == 40
    (folder / "shoots").rename(folder / "archive-2026")  # a whole subfolder renamed
    moved = update(folder, path, embedder, small_config)
    assert moved.moved == 40 and moved.removed == 0 and embedder.count == 0
    relpath, score = top_match(path, embedder, small_config, folder / "archive-2026" / files[3].name)
    assert relpath == f"archive-2026/{files[3].name}" and score > 0.999


def test_a_half_mounted_folder_does_not_empty_the_catalogue(tmp_path, store, small_config):
    """The red team's case: 20 of 21 files gone -> '20 removed'. Now held until confirmed."""
    folder, path = tmp_path / "share", store.location()
    make_pattern_images(folder / "mounted", 20)
    make_pattern_images(folder, 3, start=900)
    update(folder, path, FakeEmbedder(), small_config)
    (folder / "mounted").rename(tmp_path / "unmounted")
    (folder / "mounted").mkdir()  # the mount point, empty
    held = update(folder, path, FakeEmbedder(), small_config)
    assert held.removed == 0 and held.held == 20
    assert "20 of the catalogue's 23 files are gone" in held.held_reason and "subfolder mounted" in held.held_reason
    assert searchable(path, FakeEmbedder(), small_config) == 23
    confirmed = update(folder, path, FakeEmbedder(), small_config, allow_removal=True)
    assert confirmed.removed == 20 and searchable(path, FakeEmbedder(), small_config) == 3
    (folder / "mounted").rmdir()
    (tmp_path / "unmounted").rename(folder / "mounted")  # mounted again: nothing is read again
    embedder = CountingEmbedder()
    back = update(folder, path, embedder, small_config)
    assert back.came_back == 20 and embedder.count == 0 and searchable(path, embedder, small_config) == 23


def test_an_update_of_one_folder_keeps_its_tombstones_and_its_guard_to_that_folder(tmp_path, store, small_config):
    """A designer updates only their folder: others' deletions are not seen, their own unplugged subfolder is held."""
    folder, path = tmp_path / "pics", store.location()
    make_pattern_images(folder / "anna" / "spring", 24)
    make_pattern_images(folder / "anna", 6, start=200)
    bert = make_pattern_images(folder / "bert", 30, start=400)
    update(folder, path, FakeEmbedder(), small_config)
    for f in bert[:5]:
        f.unlink()
    (folder / "anna" / "spring").rename(tmp_path / "spring-away")  # anna's drive unplugged
    held = update(folder, path, FakeEmbedder(), small_config, only=folder / "anna")
    assert (held.removed, held.held) == (0, 24)
    assert "24 of the catalogue's 30 files" in held.held_reason and "subfolder anna/spring (24 files)" in held.held_reason
    assert searchable(path, FakeEmbedder(), small_config) == 60
    confirmed = update(folder, path, FakeEmbedder(), small_config, only=folder / "anna", allow_removal=True)
    assert confirmed.removed == 24 and searchable(path, FakeEmbedder(), small_config) == 36  # bert's 5 not seen yet
    whole = update(folder, path, FakeEmbedder(), small_config)
    assert (whole.removed, whole.held, whole.unchanged) == (5, 0, 31)
    (tmp_path / "spring-away").rename(folder / "anna" / "spring")
    embedder = CountingEmbedder()
    back = update(folder, path, embedder, small_config, only=folder / "anna")
    assert (back.came_back, back.added, embedder.count) == (24, 0, 0)
    assert searchable(path, embedder, small_config) == 55
    stored = store.query(path, "SELECT path, gone IS NOT NULL FROM {s}.images ORDER BY path")
    assert [p for p, gone in stored if gone] == sorted(f.relative_to(folder).as_posix() for f in bert[:5])


# --- an update that fails half-way keeps every image searchable -------------------------------------


class DiskFullAfter:
    """Wraps a writer: the n-th write of `method` fails as a full disk does."""

    def __init__(self, writer, method: str, n: int):
        self._writer, self._method, self._left = writer, method, n

    def __getattr__(self, name):
        real = getattr(self._writer, name)
        if name != self._method:
            return real

        def failing(*args, **kwargs):
            self._left -= 1
            if self._left < 0:
                raise describe_error(sqlite3.OperationalError("database or disk is full"), self._writer.path)
            return real(*args, **kwargs)

        return failing


@pytest.mark.parametrize("seed", range(8))
def test_an_update_that_fails_half_way_never_takes_an_image_out_of_search(tmp_path, store, small_config, seed):
    rng = random.Random(seed)
    folder, path = tmp_path / "pics", store.location()
    count = rng.randint(20, 60)
    files = make_pattern_images(folder, count)
    update(folder, path, FakeEmbedder(), small_config)
    changed = rng.sample(files, rng.randint(count // 2, count))
    for n, f in enumerate(changed):  # every changed file gets new content
        make_pattern_images(tmp_path / "new", 1, start=5000 + n + 100 * seed)
        shutil.move(tmp_path / "new" / f"img{5000 + n + 100 * seed:04d}.png", f)
    method, n = rng.choice([("add_batch", rng.randint(0, 1)), ("write_codes", 0), ("write_buckets", 0)])
    with Catalogue.open(path) as catalogue:
        with pytest.raises(CatalogueError, match="is full"):
            build_module.build_catalogue(DiskFullAfter(catalogue.writer(), method, n), folder, FakeEmbedder(), small_config)
    assert searchable(path, FakeEmbedder(), small_config) == count  # failed half-way: nothing left search
    update(folder, path, FakeEmbedder(), small_config)
    for f in rng.sample(changed, min(5, len(changed))):  # and the next update finishes the job
        assert top_match(path, FakeEmbedder(), small_config, f) == (f.name, pytest.approx(1.0, abs=1e-6))


# --- older catalogues open and upgrade -------------------------------------------------------------


def test_a_version_1_catalogue_opens_upgrades_and_retries_what_it_gave_up_on(tmp_path):
    folder = tmp_path / "v1pics"
    make_pattern_images(folder, 24, family=3)
    (folder / "notes.png").write_text("not a picture")
    (folder / "vanishing.png").write_bytes((folder / "img0000.png").read_bytes())  # it is back now
    path = folder / "catalogue-v1.swimcat"
    shutil.copy(DATA / "catalogue-v1.swimcat", path)
    with closing(sqlite3.connect(path)) as conn:  # the pictures as the old build saw them (same dates)
        for rel, mtime in conn.execute("SELECT path, mtime FROM images"):
            os.utime(folder / rel, (mtime, mtime))
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "1"
    with Catalogue.open(path) as catalogue:
        assert catalogue.info()["schema_version"] == SCHEMA_VERSION == 5  # through every step, decisions (4) and details (5) included
        assert not len(catalogue.neighbour_lists()) and catalogue.decisions() == []  # lists made at its next update
        before = SearchEngine(catalogue, FakeEmbedder(), V1_CONFIG).search(folder / "img0004.png", top_n=5)
        assert before.matches[0].relpath == "img0004.png" and before.matches[0].score == 1.0
        assert {m.relpath for m in before.matches[:3]} == {"img0003.png", "img0004.png", "img0005.png"}  # its family
        embedder = CountingEmbedder()
        report = catalogue.update(embedder, V1_CONFIG)
    # Version 1 never read the vanished file again; version 2 knows "does not exist" passes.
    assert (report.retried, report.added, report.unchanged, embedder.count) == (1, 1, 25, 1)
    with Catalogue.open(path) as catalogue:  # its index is fitted on augmented vectors now (issue 11)
        assert report.refitted and catalogue.fitted().augmented
        assert len(catalogue.neighbour_lists()) == len(catalogue.load_snapshot()) == 25  # 24 pictures and the one back
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT count(*) FROM images WHERE fingerprint IS NULL").fetchone()[0] == 0
    with Catalogue.open(path) as catalogue:
        again = catalogue.update(CountingEmbedder(), V1_CONFIG)
        assert (again.unchanged, again.retried) == (26, 0)
        a, b = (r.image_id for r in (catalogue.record_by_path(folder / n) for n in ("img0003.png", "img0004.png")))
        catalogue.decide(a, b, "same")
    with Catalogue.open(path) as catalogue:  # an upgraded file keeps decisions like a new one
        assert [(d.a_path, d.b_path, d.verdict) for d in catalogue.decisions()] == [("img0003.png", "img0004.png", "same")]


UNLISTED_UPDATE = r"""
import json, sys
sys.path.insert(0, sys.argv[3])
from helpers import FakeEmbedder
from swimsearch.catalogue import Catalogue
from swimsearch.config import EngineConfig
config = EngineConfig(hash_dim=32, rerank_dim=32, bits=64, lsh_tables=8, lsh_key_bits=8, batch_size=8, decoders=2)
with Catalogue.open(sys.argv[2]) as catalogue:
    report = catalogue.update(FakeEmbedder(), config)
    print(json.dumps({"summary": report.summary(), "removed": report.removed, "held": report.held,
                      "unlisted": report.unlisted_folders, "unseen": report.unseen, "counts": catalogue.counts()}))
"""


@needs_permissions
def test_a_subfolder_that_cannot_be_listed_keeps_its_files_and_is_counted(tmp_path, small_config):
    import json
    import subprocess
    import sys

    from helpers import PERMISSIONS, REPO, TESTS

    folder, path = tmp_path / "pics", tmp_path / "c.swimcat"
    make_pattern_images(folder / "locked", 15)
    make_pattern_images(folder / "open", 15, start=100)
    update(folder, path, FakeEmbedder(), small_config)
    (folder / "locked").chmod(0)  # a share whose permissions changed, a folder of another user
    try:
        done = subprocess.run([*PERMISSIONS, sys.executable, "-c", UNLISTED_UPDATE, str(folder), str(path), str(TESTS)],
                              cwd=REPO, capture_output=True, text=True, timeout=300)
    finally:
        (folder / "locked").chmod(0o755)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert (report["removed"], report["held"], report["unlisted"], report["unseen"]) == (0, 0, ["locked"], 15)
    assert "1 folder(s) could not be listed (15 files in them kept as they were)" in report["summary"]
    assert report["counts"]["searchable"] == 30
    assert update(folder, path, FakeEmbedder(), small_config).unchanged == 30
