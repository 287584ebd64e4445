"""bench/read_paths.py times other ways of reading a search's cache rows: each must read the very bytes
today's `pread` reads, or its time says nothing (issue 11/15's read-cost figures come from it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import build_pattern_catalogue
from swimsearch.array_build import ensure
from swimsearch.array_cache import cache_file
from swimsearch.catalogue import Catalogue

BENCH = Path(__file__).resolve().parent.parent / "bench"


def test_every_way_of_reading_reads_the_rows_pread_reads(tmp_path, fake_embedder, small_config, cache_home, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(BENCH))
    import read_paths

    _, path = build_pattern_catalogue(tmp_path / "pics", tmp_path / "c.swimcat", fake_embedder, small_config, 120, family=6)
    with Catalogue.open(path) as catalogue:
        where = cache_file(catalogue.store, cache_home)
    assert ensure(path, where)["made"] is True
    assert read_paths.main([str(where), "--rows", "10", "--repeats", "2"]) == 0
    out = capsys.readouterr().out
    for way in ("pread", "preadv", "mmap"):
        assert f"\n{way} " in out
    # more rows than the cache holds without drawing one twice: refused, not timed on repeats
    assert read_paths.main([str(where), "--rows", "100", "--repeats", "2"]) == 1


def test_a_way_that_reads_other_bytes_fails_the_run(tmp_path, fake_embedder, small_config, cache_home, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(BENCH))
    import read_paths

    _, path = build_pattern_catalogue(tmp_path / "pics", tmp_path / "c.swimcat", fake_embedder, small_config, 120, family=6)
    with Catalogue.open(path) as catalogue:
        where = cache_file(catalogue.store, cache_home)
    ensure(path, where)
    real = read_paths.os.preadv

    def off_by_a_page(fd, buffers, at):  # reads the row's next page instead
        return real(fd, buffers, at + read_paths.ALIGN)

    monkeypatch.setattr(read_paths.os, "preadv", off_by_a_page)
    assert read_paths.main([str(where), "--rows", "10", "--repeats", "2"]) == 1
    assert "preadv read other bytes than pread" in capsys.readouterr().out
