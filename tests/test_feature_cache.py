"""A new picture's features read beside the network (feature_cache.py)."""

from __future__ import annotations

import time

import numpy as np
from PIL import Image

from swimsearch.feature_cache import FeatureCache


def _wait_idle(cache: FeatureCache) -> None:
    deadline = time.monotonic() + 30
    while cache._pending and time.monotonic() < deadline:
        time.sleep(0.01)


def test_a_picture_read_ahead_is_read_once_with_its_mirror_image(tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 200, 3), dtype=np.uint8)).save(path)
    cache = FeatureCache()
    cache.prefetch(path)
    _wait_idle(cache)  # (a search asks some 10 ms later, once the network is through; asked before the read
    found = cache.of(path)  # ahead has begun, it reads the picture itself)
    assert found is not None and found._mirrored is not None and cache.reads == 1
    cache.prefetch(path)  # held already: nothing read
    _wait_idle(cache)
    assert cache.of(path) is found and cache.reads == 1


def test_a_large_picture_that_is_no_jpeg_is_not_read_ahead(tmp_path):
    """A 7000 x 9000 PNG read ahead cost a second and 200 MB beside the network's own decode, where its search
    looked at no pair (a reviewer): it is read only if a pair asks for it."""
    path = tmp_path / "poster.png"
    Image.new("RGB", (2500, 2000), (200, 30, 30)).save(path)
    cache = FeatureCache()
    cache.prefetch(path)
    _wait_idle(cache)
    assert cache.reads == 0
    assert cache.of(path) is not None and cache.reads == 1  # read when asked


def test_a_named_pipe_given_as_a_picture_blocks_no_read_ahead(tmp_path):
    """A FIFO searched as a picture (refused by the search) was opened by the reading thread, which waited for a
    writer forever: every later search waited for it too (the fresh-clone run hung here)."""
    import os

    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    cache = FeatureCache()
    cache.prefetch(fifo)
    assert cache.of(fifo) is None and not cache._pending
    path = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (120, 90, 3), dtype=np.uint8)).save(path)
    cache.prefetch(path)
    _wait_idle(cache)
    assert cache.of(path) is not None and cache.reads == 1


def test_the_pairs_of_a_search_are_shared_by_two_threads_each_once_in_order():
    """A search's pairs are looked at by its own thread and the reading thread (the other core is idle once the
    network is through): each once, the answers in the order asked, and an error reaches the search."""
    import threading

    import pytest

    from swimsearch.feature_cache import shared

    threads: dict[int, str] = {}

    def work(n: int) -> int:
        threads[n] = threading.current_thread().name
        time.sleep(0.02)  # long enough that both threads take some
        return n * n

    assert shared(work, list(range(8))) == [n * n for n in range(8)]
    assert sorted(threads) == list(range(8)) and len(set(threads.values())) == 2

    def failing(n: int) -> int:
        if n == 3:
            raise ValueError("a pair that cannot be looked at")
        return n

    with pytest.raises(ValueError):
        shared(failing, list(range(6)))


def test_a_search_does_its_pairs_alone_while_the_reading_thread_is_held(tmp_path):
    """A read ahead held up (a picture on a stalled share) keeps the reading thread: the search looks at every
    pair itself rather than wait for it."""
    import threading

    from swimsearch.feature_cache import _reader, shared

    release = threading.Event()
    held = _reader().submit(release.wait, 30)
    try:
        started = time.monotonic()
        assert shared(lambda n: (n, threading.current_thread().name), [1, 2, 3]) == [
            (n, threading.current_thread().name) for n in (1, 2, 3)]
        assert time.monotonic() - started < 5
    finally:
        release.set()
        held.result()


def test_the_program_ends_while_a_picture_is_still_being_read_ahead(tmp_path):
    """A picture on a stalled network share held the reading thread, and the program stayed open after its
    window had closed (a reviewer, round 13): the reading thread does not hold the program."""
    import subprocess
    import sys

    script = (
        "import threading, swimsearch.feature_cache as fc\n"
        "fc._reader().submit(threading.Event().wait)  # a read that never ends\n"
        "print('done', flush=True)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=20)
    assert done.returncode == 0 and done.stdout == "done\n"
