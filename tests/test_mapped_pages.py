"""The array cache's pages mapped in once it is taken into use (mapped_pages.py): the same values and lists,
read from memory; a file cut short, a stop, too little memory or a platform that cannot: read by pread, as before."""

from __future__ import annotations

import logging
import shutil
import sys
import threading

import numpy as np
import pytest

from helpers import build_pattern_catalogue, slow_mapping
from swimsearch import mapped_pages
from swimsearch.array_cache import RECORDS, open_cache
from swimsearch.catalogue import Catalogue
from swimsearch.search import SearchEngine

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="MADV_POPULATE_READ is Linux's")


@pytest.fixture
def cached(tmp_path, fake_embedder, small_config, cache_home):
    """A 120-image catalogue searched from its array cache (array_cache_from=1), the folder and the engine's config."""
    folder, path = build_pattern_catalogue(tmp_path / "pics", tmp_path / "c.swimcat", fake_embedder, small_config, 120, family=6)
    return folder, path, small_config.with_changes(rescore_in_memory_up_to=0, array_cache_from=1)


def _lists(engine, folder):
    return [engine.search(folder / f"img{n:04d}.png", top_n=20).matches for n in (3, 50, 119)] + [engine.search_id(7, top_n=20).matches]


def _copied_cache(cached, fake_embedder, tmp_path):
    """(path, open arrays) of a copy of the catalogue's array cache, made for the test to cut short."""
    folder, path, config = cached
    with Catalogue.open(path) as catalogue:
        assert SearchEngine(catalogue, fake_embedder, config).array_watch.wait(120)
    copy = tmp_path / "copy.swimarrays"
    shutil.copy(next(p for p in (tmp_path / "cache").glob("*.swimarrays")), copy)
    return copy, open_cache(copy)


FIELDS = ("embeddings", "whitened", "augmented", *RECORDS)


def _fields(arrays, rows):
    names = tuple(n for n in FIELDS if n in arrays.layout[2])
    return arrays.take(names, rows)


@linux_only
def test_a_cache_taken_into_use_is_mapped_in_and_lists_exactly_what_pread_reads(cached, fake_embedder, monkeypatch, caplog):
    folder, path, config = cached
    caplog.set_level(logging.INFO, logger="swimsearch.mapped_pages")
    with Catalogue.open(path) as catalogue:
        mapped = SearchEngine(catalogue, fake_embedder, config)
        assert mapped.array_watch.wait(120)
        arrays = mapped.array_watch.current()
        assert arrays._mapped.is_set() and "are mapped in" in caplog.text
        got = _lists(mapped, folder)
        assert mapped._data.from_arrays
        monkeypatch.setenv("SWIMSEARCH_NO_MAPPING", "1")  # the same catalogue read by pread
        plain = SearchEngine(catalogue, fake_embedder, config)
        assert plain.array_watch.wait(120) and not plain.array_watch.current()._mapped.is_set()
        assert _lists(plain, folder) == got and plain._data.from_arrays
    rows = np.array([5, 0, 119, 5, 60])
    from_map = _fields(arrays, rows)
    arrays._mapped.clear()
    arrays.forget()
    for name, values in _fields(arrays, rows).items():
        assert np.array_equal(values, from_map[name]), name


@linux_only
def test_a_file_cut_short_after_it_was_mapped_in_says_so_and_its_first_rows_read_the_same_by_pread(cached, fake_embedder, tmp_path):
    """A mapped page past a file's end would end the app (SIGBUS): the watches ask `resized` as each search
    begins and drop such a cache (the test below); what pread reads of the rows left is what the map held."""
    copy, arrays = _copied_cache(cached, fake_embedder, tmp_path)
    mapper = mapped_pages.start_mapping((arrays.ids, arrays.embeddings, arrays.augmented, arrays.whitened), arrays.mapped_in)
    assert mapper is not None
    mapper.join(60)
    assert arrays._mapped.is_set()
    rows = np.array([1, 2, 3])
    before = _fields(arrays, rows)
    offset, row_bytes, _ = arrays.layout
    with open(copy, "r+b") as fh:
        fh.truncate(offset + 10 * row_bytes)  # the first ten rows are left
    assert arrays.resized()
    arrays.forget()
    for name, values in _fields(arrays, rows).items():  # by pread now, as a read outside a search would be
        assert np.array_equal(values, before[name]), name
    with pytest.raises(ValueError):  # rows past the new end: that read fails, the app does not end (SIGBUS)
        _fields(arrays, np.array([50, 60]))


def test_a_stopped_mapper_ends_between_two_chunks_and_maps_nothing_in(tmp_path, monkeypatch):
    import mmap

    data = tmp_path / "big"
    data.write_bytes(b"\1" * (64 * mmap.PAGESIZE))
    monkeypatch.setattr(mapped_pages, "CHUNK", mmap.PAGESIZE)
    gate, calls, done = threading.Event(), [], []

    def slow(m):  # each chunk waits for the test's go
        real = m.madvise

        class Held:
            def __len__(self):
                return len(m)

            def madvise(self, *args):
                calls.append(args)
                gate.wait(5)
                return real(*args)
        return Held()

    with open(data, "rb") as fh:
        m = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        mapper = mapped_pages.PageMapper([slow(m)], lambda: done.append(1))
        mapper._stop.set()
        gate.set()
        mapper.stop()
        assert not mapper._thread.is_alive() and done == [] and len(calls) <= 1
        m.close()


def test_no_mapping_where_the_file_would_not_fit_in_half_the_available_memory_or_the_platform_cannot(monkeypatch):
    monkeypatch.setattr(mapped_pages, "available_bytes", lambda: 10 << 30)
    if mapped_pages.POPULATE_READ is not None:
        assert mapped_pages.worth_mapping(4 << 30) and not mapped_pages.worth_mapping(6 << 30)
    monkeypatch.setattr(mapped_pages, "available_bytes", lambda: None)  # no /proc/meminfo: not mapped
    assert not mapped_pages.worth_mapping(1)
    monkeypatch.setattr(mapped_pages, "available_bytes", lambda: 10 << 30)
    monkeypatch.setattr(mapped_pages, "POPULATE_READ", None)  # macOS, Windows
    assert not mapped_pages.worth_mapping(1)


@linux_only
def test_a_kernel_that_refuses_the_advice_leaves_the_cache_on_pread(cached, fake_embedder, monkeypatch, caplog):
    folder, path, config = cached
    monkeypatch.setattr(mapped_pages, "POPULATE_READ", 1 << 30)  # an advice no kernel knows: EINVAL, as before 5.14
    caplog.set_level(logging.INFO, logger="swimsearch.mapped_pages")
    with Catalogue.open(path) as catalogue:
        engine = SearchEngine(catalogue, fake_embedder, config)
        assert engine.array_watch.wait(120)
        assert not engine.array_watch.current()._mapped.is_set() and "searches read them by pread" in caplog.text
        assert _lists(engine, folder)[0][0].score == 1.0 and engine._data.from_arrays


@pytest.mark.parametrize("mapping", ["mapped", "pread"])
def test_a_cache_cut_short_between_searches_is_dropped_and_the_lists_stay_the_same(cached, fake_embedder, monkeypatch, caplog, mapping):
    """A held cache cut short in place (`truncate`, `cp` over it): the next search reads the catalogue's rows
    (the same lists, no failed read), and the cache is checked and made again, then taken again."""
    folder, path, config = cached
    if mapping == "pread":
        monkeypatch.setenv("SWIMSEARCH_NO_MAPPING", "1")
    with Catalogue.open(path) as catalogue:
        engine = SearchEngine(catalogue, fake_embedder, config)
        watch = engine.array_watch
        assert watch.wait(120)
        held = watch.current()
        assert held._mapped.is_set() == (mapping == "mapped" and mapped_pages.POPULATE_READ is not None)
        want = _lists(engine, folder)
        offset, row_bytes, _ = held.layout
        with open(held.path, "r+b") as fh:
            fh.truncate(offset + 10 * row_bytes)  # rows past the tenth are gone
        assert _lists(engine, folder) == want and not engine._data.from_arrays
        assert "was cut short or changed in place while in use" in caplog.text
        assert watch.wait(120) and watch.current() is not held  # made again beside it, and taken
        assert _lists(engine, folder) == want and engine._data.from_arrays


def test_a_file_cut_short_before_its_mapping_ends_is_not_read_through_the_map(cached, fake_embedder, tmp_path):
    """The size a mapped file is checked against is the one it was opened at, not the one it has once mapped in."""
    copy, arrays = _copied_cache(cached, fake_embedder, tmp_path)
    offset, row_bytes, _ = arrays.layout
    with open(copy, "r+b") as fh:
        fh.truncate(offset + 10 * row_bytes)  # between the last chunk mapped in and `mapped_in`
    arrays.mapped_in()
    assert not arrays._mapped.is_set() and arrays.resized()
    assert np.array_equal(_fields(arrays, np.array([1, 2]))["embeddings"], np.asarray(arrays.embeddings[[1, 2]]))


def test_closing_the_catalogue_in_the_window_ends_the_mapping_of_its_cache(cached, fake_embedder, monkeypatch, qapp):
    """The window's search worker closing a catalogue (another one opened, the window closed) leaves no
    `array-pages` thread mapping its cache in: it ends between two chunks."""
    pytest.importorskip("PyQt5")
    from ui.search import Generation, SearchWorker

    folder, path, config = cached
    slow_mapping(monkeypatch, 30)
    worker = SearchWorker(lambda: fake_embedder, config, Generation())
    worker.start()
    worker.open_catalogue(str(path))
    watch = worker._engine.array_watch
    watch.wait(0.01)  # starts the maker
    watch._proc.wait(120)
    assert watch.current() is not None
    mapper = watch._mapper
    assert mapper is not None and mapper._thread.is_alive()
    worker.close_catalogue()
    assert not mapper._thread.is_alive() and not watch.current()


def _resident_kb(address: int) -> int:
    """The resident KB of this process's mapping that holds `address` (/proc/self/smaps)."""
    inside = False
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split()[0]
            if "-" in head and all(c in "0123456789abcdef-" for c in head):
                low, high = (int(x, 16) for x in head.split("-"))
                inside = low <= address < high
            elif inside and line.startswith("Rss:"):
                return int(line.split()[1])
    return -1


@linux_only
def test_the_pages_are_mapped_in_by_the_c_librarys_madvise_which_lets_go_of_pythons_lock(tmp_path, monkeypatch):
    """`mmap.madvise` holds Python's lock for each chunk: every search while a 1M cache was mapped in took
    170-940 ms instead of 6 (each of its preads and NumPy steps waited for a chunk). ctypes lets go of it."""
    import mmap

    data = tmp_path / "big"
    data.write_bytes(b"\1" * (256 * mmap.PAGESIZE))
    monkeypatch.setattr(mapped_pages, "CHUNK", 64 * mmap.PAGESIZE)
    with open(data, "rb") as fh:
        m = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        advise = mapped_pages._advise(m)
        assert advise != m.madvise  # ctypes' call: the lock let go
        address = np.frombuffer(m, np.uint8).ctypes.data
        assert _resident_kb(address) == 0
        assert mapped_pages.populate([m], lambda: False)
        assert _resident_kb(address) == 256 * mmap.PAGESIZE // 1024
        with pytest.raises(OSError):  # an advice the kernel does not know: EINVAL, in words
            advise(1 << 30, 0, mmap.PAGESIZE)
        del advise
        m.close()
