"""The catalogue's pHash index for searches by file, read on a thread of its own while a large catalogue opens.

A search by file takes every image within a few pHash bits of the query as
a candidate (phash_index.py), from a multi-index over every image's pHash.
At a million images reading them all and sorting the index is about a
second of CPU, which the first search by file of a freshly opened catalogue
used to wait for after the opening. Where the catalogue was fitted on at
least `LAZY_FROM` images and its store can read pHashes from another thread
(`phash_reader`: SQLite, on a connection of its own), they are read while
the catalogue's index loads, and the multi-index is made as soon as the
searchable ids are known. A search that needs it before then waits for it;
if the thread failed, the engine's thread makes it, and says any failure
in plain words.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

import numpy as np

from .phash_index import PhashIndex

log = logging.getLogger(__name__)

#: From catalogues fitted on this many images, pHashes are read in the background.
LAZY_FROM = 50_000
#: How long the background thread waits for the searchable ids before it gives up (the engine then makes the index).
WAIT_S = 600.0


class PhashSource:
    """The pHash index over one loaded catalogue's searchable images (made again on every engine reload).

    Made before the catalogue's index loads (`given` then says which images are searchable).

    Args:
        reader: the catalogue (or store) the engine searches, used from the engine's thread.
        fitted_on: images the catalogue's index was fitted on (its fit state's count; 0 for none).
    """

    def __init__(self, reader: Any, fitted_on: int):
        self.reader = reader
        self.ids = np.empty(0, np.int64)
        self._given = threading.Event()
        self._index: PhashIndex | None = None
        self._made: list[PhashIndex] = []  # the thread's index, once made
        self._failed: list[BaseException] = []
        self._thread: threading.Thread | None = None
        reads = getattr(getattr(reader, "store", reader), "phash_reader", None)  # a team catalogue's reads its own way
        if fitted_on >= LAZY_FROM and reads is not None:
            self._start(reads())

    def given(self, ids: np.ndarray) -> "PhashSource":
        """The searchable image ids (sorted): the rows of the index."""
        self.ids = ids
        self._given.set()
        return self

    def _start(self, read: Callable[[], tuple[np.ndarray, np.ndarray]]) -> None:
        made, failed, given = self._made, self._failed, self._given

        def build() -> None:
            try:
                ids, phashes = read()
                if len(ids) > 1 and np.any(ids[1:] < ids[:-1]):  # SQLite hands them in table order: by id, in practice
                    order = np.argsort(ids, kind="stable")
                    ids, phashes = ids[order], phashes[order]
                if not given.wait(WAIT_S):
                    return
                rows = self.ids
                at = np.minimum(np.searchsorted(ids, rows), max(len(ids) - 1, 0))
                aligned = np.where(ids[at] == rows, phashes[at], np.uint64(0)) if len(ids) else np.zeros(len(rows), np.uint64)
                made.append(PhashIndex.build(aligned))
            except BaseException as exc:  # noqa: BLE001 (the engine's thread makes the index itself then)
                failed.append(exc)

        self._thread = threading.Thread(target=build, name="phash-index", daemon=True)
        self._thread.start()

    def index(self) -> PhashIndex:
        """The multi-index over every searchable image: the background one (waited for), else made here."""
        if self._index is None:
            if self._thread is not None and self._given.is_set():
                self._thread.join()
                if self._failed:
                    log.info("the pHash index was not made in the background: %s", self._failed[0])
            self._index = self._made[0] if self._made else PhashIndex.build(self.reader.phashes(self.ids))
        return self._index

    def of(self, image_ids: np.ndarray) -> np.ndarray:
        """pHashes (uint64, 0 where unknown) of searchable ids."""
        index, ids = self.index(), self.ids
        at = np.minimum(np.searchsorted(ids, image_ids), max(len(ids) - 1, 0))
        return np.where(ids[at] == image_ids, index.phashes[at], np.uint64(0)) if len(ids) else np.zeros(len(image_ids), np.uint64)
