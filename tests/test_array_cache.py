"""The array cache (array_cache.py, array_watch.py): a large catalogue file searched from memory-mapped arrays.

A search from the cache must list exactly what a search from the store's rows lists; a cache that is
missing, damaged or stale is never used, and the catalogue file is never changed by it.
"""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest
from PIL import Image

from helpers import build_pattern_catalogue
from swimsearch.array_build import ensure
from swimsearch.array_cache import CacheUnusable, _header, cache_file, open_cache, verify
from swimsearch.catalogue import Catalogue
from swimsearch.search import SearchEngine


@pytest.fixture
def pattern_catalogue(tmp_path, fake_embedder, small_config):
    # 40 designs in 6 variants each: small, so the array path is forced below (array_cache_from=1)
    return build_pattern_catalogue(tmp_path / "pics", tmp_path / "c.swimcat", fake_embedder, small_config, 240, family=6)


def _rows_config(small_config):
    return small_config.with_changes(rescore_in_memory_up_to=0, array_cache_from=None)


def _cached_config(small_config):
    return small_config.with_changes(rescore_in_memory_up_to=0, array_cache_from=1)


def _lists(engine, folder, names=(3, 77, 150, 239)):
    out = [engine.search(folder / f"img{n:04d}.png", top_n=30).matches for n in names]
    return out + [engine.search_id(i, top_n=30).matches for i in (5, 120)]


def test_a_search_from_the_array_cache_lists_exactly_what_the_rows_give(pattern_catalogue, fake_embedder, small_config, cache_home):
    """Same ids, same order, same scores and bands: the cache holds the store's values and the
    augmented vectors a search would make from them."""
    folder, path = pattern_catalogue
    with Catalogue.open(path) as catalogue:
        rows = SearchEngine(catalogue, fake_embedder, _rows_config(small_config))
        cached = SearchEngine(catalogue, fake_embedder, _cached_config(small_config))
        assert cached.array_watch is not None and cached.array_watch.wait(120)
        want = _lists(rows, folder)
        embedding_matrix, neighbour_lists = catalogue.store.embedding_matrix, catalogue.store.neighbour_lists
        embeddings, lists = [], []
        catalogue.store.embedding_matrix = lambda ids: embeddings.append(list(ids)) or embedding_matrix(ids)
        catalogue.store.neighbour_lists = lambda ids=None: lists.append(ids) or neighbour_lists(ids)
        got = _lists(cached, folder)
        assert cached._data.from_arrays
        # no row of the ranking is read: only a query file's own stored embedding (examples.from_picture)
        assert lists == [] and all(len(ids) == 1 for ids in embeddings)
        assert got == want and got[0][0].score == 1.0
        # a decision this engine records changes no array: the cache stays in use, the list honours it
        first, second = got[0][0].image_id, got[0][1].image_id
        cached.decide(first, second, "different")
        rows.reload_decisions()
        assert cached.search(folder / "img0003.png", top_n=30).matches == rows.search(folder / "img0003.png", top_n=30).matches
        assert cached._data.from_arrays
    assert len(list(cache_home.glob("*.swimarrays"))) == 1


def test_the_cache_is_checked_reused_and_its_augmented_vectors_are_what_a_search_makes(pattern_catalogue, small_config, cache_home):
    _, path = pattern_catalogue
    with Catalogue.open(path) as catalogue:
        where = cache_file(catalogue.store, cache_home)
        assert ensure(path, where)["made"] is True
        assert ensure(path, where)["made"] is False  # checked and kept
        from swimsearch.array_build import planned_bytes

        with catalogue.store.read_snapshot():  # what the free-space check asks for is the file's very size
            assert planned_bytes(catalogue.store)[0] == where.stat().st_size
        arrays = open_cache(where)
        assert verify(where) == arrays.signature
        stored = catalogue.embedding_matrix(arrays.ids.tolist())
        assert np.array_equal(np.asarray(arrays.embeddings, np.float32), stored.vectors)
        rows = np.array([5, 0, len(arrays) - 1, 5, 17])  # read with pread, a row twice: what the mapped rows hold
        views = {**arrays.records, "embeddings": arrays.embeddings, "augmented": arrays.augmented}
        for taken in (arrays.take(tuple(views), rows), arrays.take(tuple(views), rows)):  # the second from what the first read
            assert all(np.array_equal(taken[name], np.asarray(view)[rows]) for name, view in views.items())
        assert arrays.raw(rows).dtype == np.float32 and np.array_equal(arrays.raw(rows), stored.vectors[rows])
        from swimsearch.rescoring import RescoringData

        data = RescoringData(catalogue, np.empty(0, np.int64), 0, fitted=catalogue.fitted())
        data.new_search()
        some = arrays.ids[::7]
        assert np.array_equal(np.asarray(arrays.augmented[arrays.rows(some)], np.float32), data.augmented(some))
        from swimsearch.calibration import shipped_calibration
        from swimsearch.ranking import whitened_vectors

        calibration = shipped_calibration(catalogue.identity().model_sha256)
        if calibration is not None:  # the fake model ships none: the real one is checked at 100k and 1M (bench_arrays.py)
            assert np.array_equal(arrays.whitened[arrays.rows(some)], whitened_vectors(calibration, stored.vectors[arrays.rows(some)]))


@pytest.mark.parametrize("damage", ["truncated", "garbage", "flipped"])
def test_a_damaged_cache_is_ignored_with_a_log_line_and_made_again(pattern_catalogue, small_config, cache_home, caplog, damage):
    _, path = pattern_catalogue
    with Catalogue.open(path) as catalogue:
        where = cache_file(catalogue.store, cache_home)
    ensure(path, where)
    data = bytearray(where.read_bytes())
    if damage == "truncated":
        data = data[: len(data) - 5000]
    elif damage == "garbage":
        data = bytearray(b"not an array cache at all" * 100)
    else:
        header = _header(where)  # one bit in the first image's augmented vector
        data[int(header["arrays"]["rows"]["offset"]) + int(header["fields"]["augmented"][1]) + 30] ^= 0x40
    where.write_bytes(bytes(data))
    with pytest.raises(CacheUnusable):
        verify(where)
    with caplog.at_level(logging.WARNING, logger="swimsearch.array_build"):
        assert ensure(path, where)["made"] is True
    assert "ignored and made again" in caplog.text
    verify(where)


def test_a_cache_of_the_format_before_is_ignored_removed_and_made_again(pattern_catalogue, fake_embedder, small_config, cache_home, caplog):
    """A format-1 cache (separate arrays, left by the version before) is never mapped: the maker says so,
    removes it and makes the current one in its place, and the search lists what the rows give."""
    import json
    import zlib

    from swimsearch.array_cache import FORMAT, HEADER, MAGIC

    folder, path = pattern_catalogue
    with Catalogue.open(path) as catalogue:
        where = cache_file(catalogue.store, cache_home)
    ensure(path, where)
    header = _header(where)
    header["format"] = 1  # everything else intact and its checksum right: only the format is another
    body = json.dumps(header).encode()
    head = MAGIC + len(body).to_bytes(8, "little") + body + zlib.crc32(body).to_bytes(4, "little")
    with open(where, "r+b") as fh:
        fh.write(head + bytes(HEADER - len(head)))
    with pytest.raises(CacheUnusable, match="another format"):
        open_cache(where)
    with Catalogue.open(path) as catalogue:
        rows = SearchEngine(catalogue, fake_embedder, _rows_config(small_config))
        with caplog.at_level(logging.WARNING, logger="swimsearch.array_build"):
            cached = SearchEngine(catalogue, fake_embedder, _cached_config(small_config))
            assert cached.array_watch.wait(120)
        # the file read format 1 above, so format 2 now means it was made again (not its inode: a file
        # removed and made again may be given the same inode number)
        assert _header(where)["format"] == FORMAT == 2
        assert [p.name for p in cache_home.glob("*.swimarrays")] == [where.name]  # the old one is gone, not kept beside
        assert _lists(cached, folder) == _lists(rows, folder) and cached._data.from_arrays


def test_a_path_longer_than_its_row_holds_is_read_from_the_store(pattern_catalogue, fake_embedder, small_config, cache_home, monkeypatch):
    """A relative path that does not fit in its image's row is not cut: that record is asked of the store."""
    import swimsearch.array_build as array_build
    from swimsearch.array_cache import ASK, row_fields

    def narrow(dim, width, augmented):  # rows with room for 11 bytes of path: "img0003.png" fits, "sub/…" does not
        fields, size = row_fields(dim, width, augmented)
        dtype, at, _ = fields["rec_path"]
        return {**fields, "rec_path": (dtype, at, 11)}, size

    folder, path = pattern_catalogue
    (folder / "a-longer-folder-name").mkdir()
    shutil.copy(folder / "img0007.png", folder / "a-longer-folder-name" / "img9999.png")
    with Catalogue.open(path) as catalogue:
        catalogue.update(fake_embedder, small_config)
    monkeypatch.setattr(array_build, "row_fields", narrow)
    with Catalogue.open(path) as catalogue:
        assert ensure(path, cache_file(catalogue.store, cache_home))["made"] is True  # here: the watch's maker is another process
        rows = SearchEngine(catalogue, fake_embedder, _rows_config(small_config))
        cached = SearchEngine(catalogue, fake_embedder, _cached_config(small_config))
        assert cached.array_watch.wait(120)
        arrays = cached.array_watch.current()
        long_id = next(r.image_id for r in catalogue.store.records(arrays.ids.tolist()).values() if r.relpath.startswith("a-longer"))
        assert arrays.records["rec_flags"][arrays.rows([long_id])[0]] == ASK
        got = cached.search(folder / "img0007.png", top_n=30).matches
        assert got == rows.search(folder / "img0007.png", top_n=30).matches and cached._data.from_arrays
        assert "a-longer-folder-name/img9999.png" in [m.relpath for m in got]


def test_what_a_search_reads_of_a_candidate_sits_on_one_page():
    """The real model's rows: embedding, same-design vector and record on the first 4 KB page, the
    augmented vector (read for the best few dozen only) on the next: 8 KB an image."""
    from swimsearch.array_cache import ALIGN, MIN_PATH, row_fields

    fields, size = row_fields(1280, 256, True)
    assert size == 2 * ALIGN
    first = [name for name, (dtype, at, count) in fields.items() if at + count * np.dtype(dtype).itemsize <= ALIGN]
    assert set(first) == set(fields) - {"augmented"} and fields["augmented"][1] == ALIGN
    assert fields["rec_path"][2] >= MIN_PATH


def test_a_search_after_an_update_never_reads_arrays_made_before_it(pattern_catalogue, fake_embedder, small_config, cache_home):
    """Another picture saved over a catalogue file, then an update by another connection: the next
    search (before and after reload) lists what the rows give, and the cache is made again."""
    folder, path = pattern_catalogue
    with Catalogue.open(path) as catalogue:
        engine = SearchEngine(catalogue, fake_embedder, _cached_config(small_config))
        assert engine.array_watch.wait(120)
        before = cache_file(catalogue.store).read_bytes()
        Image.open(folder / "img0200.png").save(folder / "img0010.png")
        shutil.copy(folder / "img0100.png", folder / "new0001.png")
        with Catalogue.open(path) as writer:
            writer.update(fake_embedder, small_config)
        query = folder / "img0010.png"
        first = engine.search(query, top_n=20)
        assert not engine._data.from_arrays  # the change was seen before the search read anything
        engine.reload()
        rows = SearchEngine(catalogue, fake_embedder, _rows_config(small_config))
        assert engine.array_watch.wait(120) and cache_file(catalogue.store).read_bytes() != before
        after = engine.search(query, top_n=20)
        assert engine._data.from_arrays and after.matches == rows.search(query, top_n=20).matches
        assert first.matches[0].name == after.matches[0].name == "img0010.png"


def test_a_read_only_catalogue_is_searched_from_its_cache(pattern_catalogue, fake_embedder, small_config, cache_home):
    """Opened read-only (the window does so for a file it cannot write): the cache is made and used,
    and the catalogue file is not touched."""
    folder, path = pattern_catalogue
    stamp = (path.stat().st_mtime_ns, path.read_bytes())
    with Catalogue.open(path, readonly=True) as catalogue:
        assert catalogue.readonly
        engine = SearchEngine(catalogue, fake_embedder, _cached_config(small_config))
        assert engine.array_watch.wait(120)
        assert engine.search(folder / "img0042.png", top_n=10).matches[0].name == "img0042.png"
        assert engine._data.from_arrays
    assert (path.stat().st_mtime_ns, path.read_bytes()) == stamp


def test_a_cache_that_cannot_be_made_leaves_the_search_on_its_rows(pattern_catalogue, fake_embedder, small_config, tmp_path, monkeypatch):
    folder, path = pattern_catalogue
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder should be")
    monkeypatch.setenv("SWIMSEARCH_CACHE_DIR", str(blocked / "arrays"))
    with Catalogue.open(path) as catalogue:
        engine = SearchEngine(catalogue, fake_embedder, _cached_config(small_config))
        assert not engine.array_watch.wait(120)
        assert engine.search(folder / "img0042.png", top_n=10).matches[0].name == "img0042.png"
        assert not engine._data.from_arrays


def test_the_maker_runs_this_copy_of_the_code_whatever_the_working_folder(pattern_catalogue, fake_embedder, small_config, cache_home, tmp_path, monkeypatch):
    """A process started in another source tree's folder (a benchmark running two trees in turns) still has
    its cache made by its own code, in its own format."""
    other = tmp_path / "other-tree"
    (other / "swimsearch").mkdir(parents=True)
    (other / "swimsearch" / "__init__.py").write_text("raise ImportError('the other tree')\n")
    (other / "swimsearch" / "array_build.py").write_text("raise ImportError('the other tree')\n")
    monkeypatch.chdir(other)
    folder, path = pattern_catalogue
    with Catalogue.open(path) as catalogue:
        cached = SearchEngine(catalogue, fake_embedder, _cached_config(small_config))
        assert cached.array_watch.wait(120)
        assert _lists(cached, folder, names=(3,))[0] and cached._data.from_arrays


def test_the_engine_modules_do_not_import_qt():
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['PyQt5'] = None\n"
        "import swimsearch.array_build, swimsearch.array_cache, swimsearch.array_watch, swimsearch.search\n"
        "assert not any(m.startswith('PyQt5') and sys.modules[m] for m in sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_real_photos_score_the_same_from_the_cache_with_the_shipped_calibration(photo_catalogue, embedder, cache_home):
    """The real model ships a calibration: the cache then holds the stored embeddings (power-normalised
    on the fly) and the same-design vectors; every list, score and band is what the rows give, and the
    query itself reads 100 %."""
    from swimsearch.config import EngineConfig

    folder, path = photo_catalogue
    with Catalogue.open(path, readonly=True) as catalogue:
        rows = SearchEngine(catalogue, embedder, EngineConfig(rescore_in_memory_up_to=0, array_cache_from=None))
        cached = SearchEngine(catalogue, embedder, EngineConfig(rescore_in_memory_up_to=0, array_cache_from=1))
        assert cached.array_watch.wait(120)
        arrays = cached.array_watch.current()
        assert arrays.powered is None and arrays.embeddings is not None and arrays.whitened is not None
        stored = catalogue.embedding_matrix(arrays.ids.tolist())
        assert np.array_equal(arrays.raw(np.arange(len(arrays))), stored.vectors)
        pictures = sorted(folder.glob("*.jpg"))[:6]
        for picture in pictures:
            want, got = rows.search(picture, top_n=40), cached.search(picture, top_n=40)
            assert cached._data.from_arrays
            assert got.matches == want.matches and got.matches[0].score == 1.0
        ids = cached.searchable_ids()
        assert np.array_equal(cached.similarities(int(ids[0]), ids[1:]), rows.similarities(int(ids[0]), ids[1:]))


def test_work_files_a_killed_maker_left_are_removed(pattern_catalogue, cache_home):
    fcntl = pytest.importorskip("fcntl")
    _, path = pattern_catalogue
    with Catalogue.open(path) as catalogue:
        where = cache_file(catalogue.store, cache_home)
    cache_home.mkdir(parents=True)
    left = [cache_home / f".{where.name}.making-x1y2", cache_home / f".{where.name}.4242.tmp"]
    left[0].mkdir()
    (left[0] / "prepared.f16").write_bytes(b"\0" * 4096)
    left[1].write_bytes(b"\0" * 4096)
    other = cache_home / ".another.swimarrays.4242.tmp"  # another catalogue's maker is at work: it holds its lock
    other.write_bytes(b"")
    ended = cache_home / ".ended.swimarrays.4343.tmp"  # another catalogue's maker was killed: nobody holds its lock
    ended.write_bytes(b"\0" * 4096)
    with open(cache_home / "another.swimarrays.lock", "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        ensure(path, where)
    assert not any(p.exists() for p in left) and other.exists() and not ended.exists()
    assert sorted(p.name for p in cache_home.iterdir()) == sorted([where.name, where.name + ".lock", other.name, "another.swimarrays.lock"])


def test_work_files_are_removed_when_the_catalogue_name_has_brackets(tmp_path, fake_embedder, small_config, cache_home):
    # "Summer [2024].swimcat": the leftovers' names are matched literally, not as a glob pattern
    _, path = build_pattern_catalogue(tmp_path / "pics", tmp_path / "Summer [2024].swimcat", fake_embedder, small_config, 24, family=6)
    with Catalogue.open(path) as catalogue:
        where = cache_file(catalogue.store, cache_home)
    cache_home.mkdir(parents=True)
    left = cache_home / f".{where.name}.4242.tmp"
    left.write_bytes(b"\0" * 4096)
    ensure(path, where)
    assert not left.exists()


def test_a_maker_whose_asker_ended_before_it_started_stops_and_leaves_nothing(pattern_catalogue, cache_home):
    """A one-shot `swimsearch query` may end before the low-priority maker has imported anything: the
    maker must still see that nobody wants the cache (it is told its asker's pid, not left to getppid)."""
    import json
    import subprocess
    import sys

    from swimsearch.array_watch import CHILD, _child_env

    _, path = pattern_catalogue
    with Catalogue.open(path) as catalogue:
        where = cache_file(catalogue.store, cache_home)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a pid no longer running stands for the asker that has ended
    env = {**_child_env(), "SWIMSEARCH_ARRAY_ASKER": str(gone.pid)}
    out = subprocess.run([sys.executable, "-c", CHILD, str(path), str(where)], env=env, capture_output=True, timeout=120)
    assert "error" in json.loads(out.stdout.decode().strip().splitlines()[-1])
    assert not where.exists() and [p.name for p in cache_home.iterdir()] == [where.name + ".lock"]


def _left_in(folder):
    """Every file in the cache folder but the makers' locks and logs (a few bytes each)."""
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith((".lock", ".log")))


def test_too_little_disk_space_makes_no_cache_and_the_searches_answer_the_same(pattern_catalogue, fake_embedder, small_config,
                                                                              cache_home, caplog, monkeypatch):
    """The maker (a process of its own) finds 1 MB free: it writes nothing, the search reads rows and lists
    what it always lists, one warning says why, and neither a second search nor a re-read tries again."""
    from swimsearch import array_watch
    from swimsearch.array_upkeep import describe

    monkeypatch.setattr(array_watch, "NOT_MADE", {})
    little = "import swimsearch.array_upkeep as u\nu.free_bytes = lambda folder: (10**6, 10**12)\n"
    monkeypatch.setattr(array_watch, "CHILD", array_watch.CHILD.replace("from swimsearch.array_build", little + "from swimsearch.array_build"))
    folder, path = pattern_catalogue
    with Catalogue.open(path) as catalogue, caplog.at_level(logging.INFO, logger="swimsearch"):
        rows = SearchEngine(catalogue, fake_embedder, _rows_config(small_config))
        cached = SearchEngine(catalogue, fake_embedder, _cached_config(small_config))
        assert not cached.array_watch.wait(120)
        assert _lists(cached, folder) == _lists(rows, folder) and not cached._data.from_arrays
        cached.reload()
        _lists(cached, folder)
        assert cached.array_watch._proc is None and not cached.array_watch.wait(1)  # not tried again this session
        where = cache_file(catalogue.store)
    warnings = [r.getMessage() for r in caplog.records if "not enough free disk space" in r.getMessage()]
    assert len(warnings) == 1 and f"for the search cache of {path}: needs" in warnings[0]
    assert "GB free; searches read the catalogue instead" in warnings[0]
    assert _left_in(cache_home) == []
    assert describe(where)["state"] == "not made: not enough free disk space"


@pytest.mark.parametrize("failing", [1, 2])
def test_a_disk_that_fills_while_the_cache_is_made_leaves_no_work_files(pattern_catalogue, fake_embedder, small_config, cache_home, monkeypatch, failing):
    """The room checked, then another program takes it: reserving the cache file (1) or the work file of
    prepared vectors (2) fails with ENOSPC; the maker says so and leaves no temporary file or folder, and
    the stale cache it replaced is gone too (a rebuild never holds two caches)."""
    import errno
    import os

    folder, path = pattern_catalogue
    with Catalogue.open(path) as catalogue:
        where = cache_file(catalogue.store, cache_home)
    ensure(path, where)
    shutil.copy(folder / "img0100.png", folder / "new0001.png")
    with Catalogue.open(path) as catalogue:  # an update makes the cache stale
        catalogue.update(fake_embedder, small_config)
    calls = []

    def full(fd, offset, length):
        calls.append(length)
        if len(calls) == failing:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        os.ftruncate(fd, offset + length)

    monkeypatch.setattr(os, "posix_fallocate", full, raising=False)
    answer = ensure(path, where)
    assert "not enough free disk space" in answer["skipped"] and len(calls) == failing
    assert _left_in(cache_home) == []


def test_a_maker_removes_caches_unused_for_30_days_or_whose_catalogue_is_gone(tmp_path, pattern_catalogue, fake_embedder,
                                                                             small_config, cache_home):
    """Renamed, deleted or long-unused catalogues do not keep their caches forever; a catalogue whose folder
    is not there (a drive not plugged in) keeps its cache until the age rule says otherwise."""
    import os
    import time

    caches = {}
    for name in ("old", "gone", "unplugged", "recent"):
        _, other = build_pattern_catalogue(tmp_path / name, tmp_path / name / f"{name}.swimcat", fake_embedder, small_config, 12, family=6)
        with Catalogue.open(other) as catalogue:
            caches[name] = cache_file(catalogue.store, cache_home)
        ensure(other, caches[name])
    month = time.time() - 31 * 86400
    os.utime(caches["old"], (month, month))
    (tmp_path / "gone" / "gone.swimcat").unlink()
    (tmp_path / "unplugged").rename(tmp_path / "elsewhere")
    _, path = pattern_catalogue
    with Catalogue.open(path) as catalogue:
        where = cache_file(catalogue.store, cache_home)
    ensure(path, where)
    kept = sorted(p.name for p in cache_home.glob("*.swimarrays"))
    assert kept == sorted([where.name, caches["unplugged"].name, caches["recent"].name])
    assert not any(p.name.startswith((caches["old"].name, caches["gone"].name)) for p in cache_home.iterdir())  # its log, lock too


def test_a_cache_taken_into_use_is_marked_as_used(pattern_catalogue, fake_embedder, small_config, cache_home):
    import os
    import time

    _, path = pattern_catalogue
    with Catalogue.open(path) as catalogue:
        where = cache_file(catalogue.store, cache_home)
        ensure(path, where)
        month = time.time() - 31 * 86400
        os.utime(where, (month, month))
        engine = SearchEngine(catalogue, fake_embedder, _cached_config(small_config))
        assert engine.array_watch.wait(120)
    assert time.time() - where.stat().st_mtime < 3600


def test_the_makers_log_lines_go_to_a_file_beside_the_cache(pattern_catalogue, fake_embedder, small_config, cache_home, caplog, monkeypatch):
    """A damaged cache made again says so in NAME.log; a maker that ends without an answer is reported by
    the searching process with its log's last line."""
    from swimsearch import array_watch
    from swimsearch.array_upkeep import log_file

    folder, path = pattern_catalogue
    with Catalogue.open(path) as catalogue:
        where = cache_file(catalogue.store, cache_home)
        ensure(path, where)
        where.write_bytes(b"not an array cache at all" * 100)
        engine = SearchEngine(catalogue, fake_embedder, _cached_config(small_config))
        assert engine.array_watch.wait(120)
        assert "is not a SwimSearch array cache: it is ignored and made again" in log_file(where).read_text()
        monkeypatch.setattr(array_watch, "CHILD", "import sys\nprint('swimsearch.array_build: the disk went away', file=sys.stderr)\nsys.exit(3)\n")
        with caplog.at_level(logging.WARNING, logger="swimsearch.array_watch"):
            engine.reload()
            assert not engine.array_watch.wait(120)
    assert f"ended with 3 and no answer; the last line of its log {log_file(where)}: swimsearch.array_build: the disk went away" in caplog.text


def test_info_says_where_the_search_cache_is_its_size_and_state(pattern_catalogue, cache_home, capsys):
    import json

    from swimsearch.cli import main

    _, path = pattern_catalogue
    with Catalogue.open(path) as catalogue:
        where = cache_file(catalogue.store)

    def cache_line():
        assert main(["info", "--catalogue", str(path)]) == 0
        return [line for line in capsys.readouterr().out.splitlines() if line.startswith("cache ")]

    assert cache_line() == [f"cache       {where}: absent (not needed: up to 50,000 searchable images are searched from memory)"]
    ensure(path, where)
    size = where.stat().st_size
    assert 1e6 < size < 1e7  # 240 images, 8 KB each
    assert cache_line() == [f"cache       {where}, {size / 1e6:.1f} MB: ready (checked against the catalogue when a search takes it into use)"]
    fcntl = pytest.importorskip("fcntl")
    with open(where.with_name(where.name + ".lock"), "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)  # a maker at work
        assert cache_line()[0].endswith(": being made or checked")
    assert main(["info", "--catalogue", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["search_cache"] == {"path": str(where), "bytes": size, "state": cache_line()[0].split(": ", 1)[1]}


def test_the_room_a_cache_needs_is_itself_its_work_files_and_a_margin(tmp_path, monkeypatch):
    from swimsearch import array_upkeep
    from swimsearch.array_upkeep import GB, room_for

    monkeypatch.delenv("SWIMSEARCH_CACHE_MARGIN_GB", raising=False)  # the user's rule, not the tests' (conftest.py)
    for total, margin in ((4 * GB, 1 * GB), (50 * GB, 5 * GB), (2000 * GB, 10 * GB)):  # at least 1 GB, 10 %, at most 10 GB
        needs = int(8.8 * GB + 2.5 * GB + margin)
        monkeypatch.setattr(array_upkeep, "free_bytes", lambda folder, free=needs, total=total: (free, int(total)))
        assert room_for(tmp_path, int(8.8 * GB), int(2.5 * GB), "c.swimcat") is None
        monkeypatch.setattr(array_upkeep, "free_bytes", lambda folder, free=needs - 1, total=total: (free, int(total)))
        short = room_for(tmp_path, int(8.8 * GB), int(2.5 * GB), "c.swimcat")
        assert short == (f"not enough free disk space for the search cache of c.swimcat: needs {needs / GB:.1f} GB, "
                         f"{(needs - 1) / GB:.1f} GB free; searches read the catalogue instead")


def test_reading_a_rows_augmented_vector_brings_its_first_page_in_the_same_read(pattern_catalogue, fake_embedder, small_config,
                                                                              cache_home, monkeypatch):
    """One system call a head row, not two, and the very values of the mapped rows whichever page is read first."""
    import os

    folder, path = pattern_catalogue
    with Catalogue.open(path) as catalogue:
        engine = SearchEngine(catalogue, fake_embedder, _cached_config(small_config))
        assert engine.array_watch is not None and engine.array_watch.wait(120)
    arrays = open_cache(next(cache_home.glob("*.swimarrays")))
    assert arrays.layout is not None and arrays.augmented is not None and arrays.layout[1] > 4096  # two pages a row
    rows = np.array([7, 3, 200, 3, 41])
    reads = []
    pread = os.pread
    monkeypatch.setattr(os, "pread", lambda fd, size, at: reads.append(size) or pread(fd, size, at))
    arrays.forget()
    got = arrays.take(("augmented",), rows)
    assert reads == [8192] * 4  # four rows (one twice), each its two pages in one read
    both = arrays.take(("embeddings", "rec_size"), rows)
    assert len(reads) == 4  # the first pages came with them
    assert np.array_equal(got["augmented"], arrays.augmented[rows])
    assert np.array_equal(both["embeddings"], arrays.embeddings[rows])
    assert np.array_equal(both["rec_size"], arrays.records["rec_size"][rows])
    arrays.forget()
    first = arrays.take(("embeddings",), rows)  # first page first: the later one is read alone
    assert np.array_equal(arrays.take(("augmented",), rows)["augmented"], arrays.augmented[rows])
    assert np.array_equal(first["embeddings"], arrays.embeddings[rows]) and reads[4:] == [4096] * 8


def test_the_maker_of_a_package_loaded_under_another_name_runs_that_copy(tmp_path):
    """bench_arrays_paired.py loads a second tree's package as `swimsearch_baseline`: its maker must run that
    tree's code (PYTHONPATH names its root), not the `swimsearch` first on the path."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    other = tmp_path / "other"
    shutil.copytree(repo / "swimsearch", other / "swimsearch", ignore=shutil.ignore_patterns("__pycache__"))
    script = tmp_path / "probe.py"
    script.write_text(
        "import importlib, importlib.util, sys\n"
        "import swimsearch\n"
        f"spec = importlib.util.spec_from_file_location('swimsearch_other', {str(other / 'swimsearch' / '__init__.py')!r},"
        f" submodule_search_locations=[{str(other / 'swimsearch')!r}])\n"
        "package = importlib.util.module_from_spec(spec); sys.modules['swimsearch_other'] = package\n"
        "spec.loader.exec_module(package)\n"
        "print(importlib.import_module('swimsearch_other.array_watch')._child_env()['PYTHONPATH'].split(':')[0])\n"
    )
    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(repo), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(other.resolve())
