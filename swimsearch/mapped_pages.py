"""The array cache's pages mapped into this process once it is taken into use, so a search reads plain memory.

A search at a million images reads a few hundred scattered rows of the
array cache (array_cache.py). Read through the map, the first touch of each
page costs a page fault (the kernel maps the page: ~5 µs here); read by
`pread`, a system call and a copy (~2-4 µs with Python's part). Either way
that was 1.5-1.9 ms of a 8-10 ms search stage on this machine. Once every
page of the file is mapped (Linux's MADV_POPULATE_READ, kernel 5.14+) a
gather of 400 rows' same-design vectors takes 0.23 ms instead of 1.5-1.8 ms,
and the search stage at 1M 5.5 ms instead of 7.7-8.0 (bench/bench_arrays.py).

What it costs: the kernel's page tables for the file (8 bytes a 4 KB page:
16 MB at a million images) and about half a second to three seconds of one
core, on a thread of its own (`PageMapper`), CHUNK bytes a call. The call
goes to the C library through ctypes, which lets go of Python's lock while
the kernel works: `mmap.madvise` holds it, and every search in those seconds
then waited for a chunk at each of its hundreds of calls that let go of it
(a pread, a NumPy or FAISS step): 170-940 ms a search at 1M instead of 6-7,
and the window's thread held up to 170 ms at a time. The pages themselves are the OS's file cache, shared and reclaimable:
the maker read every one of them to check the file (array_cache.verify), so
they are there already; a page the kernel takes back is read again on its
next touch, as `pread` would. A process's resident size (RSS) counts mapped
file pages, so it reads the file's size more once mapped; its own memory
(RssAnon) is unchanged. A file larger than half the memory the OS says is
available is not mapped in (mapping would only push other files out of the
cache): `take` reads it by `pread` as before, as on platforms without the
advice (macOS, Windows, older kernels).

What it risks: a search reading the map touches the file's pages, so a file
cut short in place under it (array_cache.py: never change it in place) ends
the process with SIGBUS, where `pread` only failed that search. The watches
check the file's size as each search begins (`CachedArrays.resized`) and
drop a changed one, and `take` reads by `pread` once the size changed (a
read outside a search: a refit after a decision); a cut during a read is not caught.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import mmap
import os
import sys
import threading
import time
from typing import Any, Callable

import numpy as np

log = logging.getLogger(__name__)

#: Linux's MADV_POPULATE_READ (Python names it from 3.13 only; the number is the kernel's ABI).
POPULATE_READ = getattr(mmap, "MADV_POPULATE_READ", 22 if sys.platform.startswith("linux") else None)
#: Bytes mapped in one call (~3-10 ms of a core here: how long `PageMapper.stop` may wait).
CHUNK = 32 << 20
#: The file must be at most this share of the memory available (MemAvailable).
AVAILABLE_SHARE = 0.5


def file_map(array: Any) -> mmap.mmap | None:
    """The `mmap` an array views (through its bases and `np.memmap`'s `_mmap`), or None."""
    seen = 0
    while array is not None and seen < 16:
        if isinstance(array, mmap.mmap):
            return array
        held = getattr(array, "_mmap", None)
        if isinstance(held, mmap.mmap):
            return held
        array, seen = getattr(array, "base", None), seen + 1
    return None


def available_bytes() -> int | None:
    """The memory the OS says is available without swapping (Linux's MemAvailable), or None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def worth_mapping(size: int) -> bool:
    """Whether a file of `size` bytes is mapped in: the platform can, and it fits well in available memory."""
    available = available_bytes()
    return POPULATE_READ is not None and available is not None and size <= AVAILABLE_SHARE * available


@functools.lru_cache(maxsize=None)
def _libc_madvise() -> Any:
    """The C library's `madvise` (ctypes lets go of Python's lock during the call), or None; looked up once."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        call = libc.madvise
    except (OSError, AttributeError):
        return None
    call.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    call.restype = ctypes.c_int
    return call


def _advise(m: Any) -> Callable[[int, int, int], None]:
    """`m.madvise` for one map, called without Python's lock where the C library's can be (see the module's note)."""
    call = _libc_madvise()
    try:
        if call is None:
            raise TypeError("no C library madvise")
        # the address of a read-only map through NumPy (ctypes asks for a writable buffer); an export: the map
        # cannot be closed while it is held
        held = np.frombuffer(m, np.uint8)
    except (TypeError, ValueError, BufferError):
        return m.madvise

    def advise(option: int, start: int, length: int) -> None:
        if call(held.ctypes.data + start, length, option) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, os.strerror(errno))

    return advise


def populate(maps: list[mmap.mmap], stopped: Callable[[], bool]) -> bool:
    """Map every page of `maps` into this process, CHUNK bytes a call; whether all were (False: the platform
    refused, or `stopped` said so between two calls)."""
    if POPULATE_READ is None:
        return False
    for m in maps:
        advise = _advise(m)
        for start in range(0, len(m), CHUNK):
            if stopped():
                return False
            try:
                advise(POPULATE_READ, start, min(CHUNK, len(m) - start))
            except (OSError, ValueError) as exc:  # EINVAL: a kernel before 5.14; ENOMEM/EFAULT: the file shrank
                log.info("the array cache's pages are not mapped in (%s): searches read them by pread", exc)
                return False
    return True


class PageMapper:
    """Maps one cache's pages in on a thread of its own and calls `done` once all are (array_watch.MakerWatch).

    `stop` ends it between two chunks and waits for it (a newer cache, a changed catalogue, a closing engine).
    """

    def __init__(self, maps: list[mmap.mmap], done: Callable[[], None], what: str = "array cache"):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(maps, done, what), name="array-pages", daemon=True)
        self._thread.start()

    def _run(self, maps: list[mmap.mmap], done: Callable[[], None], what: str) -> None:
        started = time.perf_counter()
        if populate(maps, self._stop.is_set):
            done()
            log.info("the %s's %.0f MB are mapped in (%.1f s): searches read them from memory",
                     what, sum(len(m) for m in maps) / 1e6, time.perf_counter() - started)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join()

    def join(self, timeout: float | None = None) -> None:
        """Wait until every page is mapped in (or the mapping gave up)."""
        self._thread.join(timeout)


def start_mapping(arrays: Any, done: Callable[[], None], what: str = "array cache") -> PageMapper | None:
    """A `PageMapper` for the maps under `arrays` (array_cache.CachedArrays' views), or None where not worth it."""
    maps = list({id(m): m for m in (file_map(a) for a in arrays) if m is not None}.values())
    size = sum(len(m) for m in maps)
    if not maps or not worth_mapping(size) or os.environ.get("SWIMSEARCH_NO_MAPPING"):
        return None
    return PageMapper(maps, done, what)
