"""Features of files for the look at the pictures (copy_check.py), kept while they are used and read ahead.

Features of files already read are kept in a small LRU cache, so clicking
through results does not read them again; a new picture's are read on one
thread beside the network that embeds it (`FeatureCache.prefetch`), and that
thread then shares a search's pairs with it (`shared`).
"""

from __future__ import annotations

import logging
import os
import queue
import stat
import threading
from collections import OrderedDict
from concurrent.futures import Future, TimeoutError
from typing import Callable, Sequence, TypeVar

from PIL import Image

from .copy_check import Picture, file_features

log = logging.getLogger(__name__)

#: Pictures of more pixels than this are not read ahead unless they are JPEGs (`_cheap_to_read`).
AHEAD_PIXELS = 4_000_000
#: The longest a search waits for a picture being read ahead before it reads it itself (a stalled share).
WAIT_S = 5.0
#: Feature sets of files kept in memory (about 40 KB each: keypoints and the small grayscale picture).
CACHE_SIZE = 512


class _Reader:
    """One thread that runs what is given to it, in turn, for the life of the program. A daemon: a
    ThreadPoolExecutor's thread is waited for when the program ends, and a picture on a stalled network
    share held the program open after its window had closed (a reviewer, round 13)."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._run, name="look-reader", daemon=True).start()

    def submit(self, work: Callable[..., object], *args: object) -> Future:
        future: Future = Future()
        self._queue.put((future, work, args))
        return future

    def _run(self) -> None:
        while True:
            future, work, args = self._queue.get()
            if not future.set_running_or_notify_cancel():
                continue  # cancelled before it began (a search read the picture itself)
            try:
                future.set_result(work(*args))
            except BaseException as exc:  # noqa: BLE001 - handed to whoever waits for it
                future.set_exception(exc)


_READER: list[_Reader] = []
_READER_LOCK = threading.Lock()


def _reader() -> _Reader:
    """The look's one thread (`FeatureCache.prefetch`, `shared`), started once."""
    with _READER_LOCK:
        if not _READER:
            _READER.append(_Reader())
        return _READER[0]


T = TypeVar("T")
W = TypeVar("W")


def shared(work: Callable[[W], T], items: Sequence[W]) -> list[T]:
    """`[work(item) for item in items]`, each item done once by this thread or the look's reading thread,
    whichever is free first (the other core is idle once the network is done)."""
    if len(items) < 2:
        return [work(item) for item in items]
    done: dict[int, T] = {}
    lock = threading.Lock()
    taken = [0]

    def run() -> None:
        while True:
            with lock:
                n = taken[0]
                taken[0] += 1
            if n >= len(items):
                return
            done[n] = work(items[n])

    helper = _reader().submit(run)
    try:
        run()
    finally:
        with lock:
            taken[0] = len(items)  # an error here: the helper takes nothing more
        if not helper.cancel():
            helper.result()  # the item it holds
    return [done[n] for n in range(len(items))]


class FeatureCache:
    """Features of files, kept for the last `size` read (by path, size and change time)."""

    def __init__(self, size: int = CACHE_SIZE):
        self._size = size
        self._held: OrderedDict[tuple, Picture | None] = OrderedDict()
        self._pending: dict[tuple, Future] = {}  # being read beside the network (`prefetch`)
        self._lock = threading.Lock()
        self.reads = 0  # files read (tests and benchmarks look)

    def of(self, path: str | os.PathLike) -> Picture | None:
        """The features of a file (None: it cannot be read); read once while it stays unchanged."""
        key = _file_key(path)
        if key is None:
            return None
        with self._lock:
            if key in self._held:
                self._held.move_to_end(key)
                return self._held[key]
            pending = self._pending.get(key)
        if pending is not None:
            if pending.cancel():  # not begun (the reading thread is busy elsewhere): read here, not after it
                with self._lock:
                    self._pending.pop(key, None)
            else:
                try:
                    pending.result(timeout=WAIT_S)  # being read beside the network: waited for, not read twice
                except TimeoutError:
                    log.warning("same-design check: %s still being read ahead after %s s: read again", path, WAIT_S)
                with self._lock:
                    if key in self._held:
                        return self._held[key]
        return self._read(path, key)

    def prefetch(self, path: str | os.PathLike) -> None:
        """Read a new picture's features, and its mirror image's, on the look's reading thread while the network
        embeds it (the network leaves a core partly idle): a new picture's query took 4.5-5 ms less (round 13)."""
        key = _file_key(path)
        if key is None:
            return
        with self._lock:
            if key in self._held or key in self._pending:
                return
            self._pending[key] = _reader().submit(self._prefetched, path, key)

    def _prefetched(self, path: str | os.PathLike, key: tuple) -> None:
        try:
            if not _cheap_to_read(path):
                return  # read by the look if a pair asks for it: most searches of such a picture look at none
            self._read(path, key, mirrored=True)  # every look that fails the plain way asks for the mirror image
        except Exception as exc:  # noqa: BLE001 - read again by the look, which says what is wrong
            log.info("same-design check: %s not read ahead (%s)", path, exc)
        finally:
            with self._lock:
                self._pending.pop(key, None)

    def _read(self, path: str | os.PathLike, key: tuple, *, mirrored: bool = False) -> Picture | None:
        found = file_features(path)
        if found is not None and mirrored:
            found.mirrored()  # before it is held: a search never finds it half described
        with self._lock:
            self.reads += 1
            self._held[key] = found
            while len(self._held) > self._size:
                self._held.popitem(last=False)
        return found


def _cheap_to_read(path: str | os.PathLike) -> bool:
    """Whether a file is worth reading ahead: a JPEG (decoded at a reduced scale) or a picture of at most
    AHEAD_PIXELS. A 7000 x 9000 PNG read ahead cost a second and 200 MB of memory beside the network's own
    decode, where its search looked at no pair (a reviewer, round 13)."""
    try:
        with Image.open(path) as picture:  # the header only
            return picture.format == "JPEG" or picture.width * picture.height <= AHEAD_PIXELS
    except Exception:  # noqa: BLE001 - not a picture Pillow opens (a PDF, an SVG): the look reads it if asked
        return False


def _file_key(path: str | os.PathLike) -> tuple | None:
    """(path, size, change time) of a file, None where it is not there or is no file (a named pipe given as a
    picture blocked the reading thread, and every search after it, in the fresh-clone run)."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (os.fspath(path), info.st_size, info.st_mtime_ns) if stat.S_ISREG(info.st_mode) else None
