"""The catalogue's pHashes for searches by file: the multi-index once it is made, the store's own scan before.

A search by file takes every image within a few pHash bits of the query as
a candidate (phash_index.py). The multi-index over every image's pHash is
made from all of them: at a million images reading them is about a second
of CPU, which the first search by file of a freshly opened catalogue used
to wait for. Above `LAZY_FROM` images, a store that can scan its own records
(SQLite: one statement that hands Python only the hits) answers the first
searches, the index is made on a thread of its own meanwhile (with its own
connection), and every search after that uses it. The scan keeps the
index's pigeonhole rule, so both find the same images (of those that have a pHash).
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

import numpy as np

from .phash_index import CHUNKS, PhashIndex, _chunk_values, _flip_masks, hamming64

log = logging.getLogger(__name__)

#: From this many searchable images the first searches by file do not wait for the index.
LAZY_FROM = 50_000


class PhashSource:
    """pHash candidates and pHashes of one loaded catalogue (made again on every engine reload).

    Args:
        reader: the catalogue (or store) the engine searches, used from the engine's thread.
        ids: every searchable image id, sorted: the rows of the index.
    """

    def __init__(self, reader: Any, ids: np.ndarray):
        self.reader = getattr(reader, "store", reader)  # a Catalogue's store: whether it can scan is the store's to say
        self.ids = ids
        self._index: PhashIndex | None = None
        self._thread: threading.Thread | None = None
        self._made: list[PhashIndex] = []  # the thread's index, once made
        self._failed: list[BaseException] = []
        self._gave_up = False

    def _scans(self) -> bool:
        return not self._gave_up and len(self.ids) >= LAZY_FROM and callable(getattr(self.reader, "phashes_near", None))

    def index(self) -> PhashIndex:
        """The multi-index over every searchable image (made here if no thread has made it)."""
        if self._index is None:
            if self._thread is not None:
                self._thread.join()
            self._index = self._made[0] if self._made else PhashIndex.build(self.reader.phashes(self.ids))
            log.info("pHash index over %d images made", len(self.ids))
        return self._index

    def _ready(self) -> PhashIndex | None:
        if self._index is None and self._made:
            self._index = self._made[0]
        if self._failed and not self._gave_up:  # the index is then made in the engine's thread, where errors are plain
            log.info("the pHash index was not made in the background: %s", self._failed[0])
            self._gave_up = True
        return self._index

    def near(self, phash: int, radius: int) -> tuple[PhashIndex, np.ndarray]:
        """A pHash index and the image id of each of its rows, holding at least every image within `radius` of `phash`."""
        index = self._ready()
        if index is not None or not self._scans():
            return self.index(), self.ids
        self._start()
        ids, phashes = self.reader.phashes_near(_probe_keys(phash, radius))
        keep = np.isin(ids, self.ids) & (hamming64(phash, phashes) <= radius)
        return PhashIndex.build(phashes[keep]), ids[keep]

    def of(self, image_ids: np.ndarray) -> np.ndarray:
        """pHashes (uint64, 0 where unknown) of searchable ids."""
        index = self._ready()
        if index is None and self._scans():  # a search's candidates: the store looks them up
            known = np.isin(image_ids, self.ids)
            return np.where(known, self.reader.phashes(np.asarray(image_ids, dtype=np.int64)), np.uint64(0)).astype(np.uint64)
        index = self.index()
        ids = self.ids
        at = np.minimum(np.searchsorted(ids, image_ids), max(len(ids) - 1, 0))
        return np.where(ids[at] == image_ids, index.phashes[at], np.uint64(0)) if len(ids) else np.zeros(len(image_ids), np.uint64)

    def _start(self) -> None:
        if self._thread is not None:
            return
        reader: Callable[[np.ndarray], np.ndarray] | None = getattr(self.reader, "phash_reader", lambda: None)()
        if reader is None:
            return
        ids, made, failed = self.ids, self._made, self._failed

        def build() -> None:
            try:
                made.append(PhashIndex.build(reader(ids)))
            except BaseException as exc:  # noqa: BLE001 (reported by the engine's thread, which then makes it itself)
                failed.append(exc)

        self._thread = threading.Thread(target=build, name="phash-index", daemon=True)
        self._thread.start()


def _probe_keys(phash: int, radius: int) -> list[list[int]]:
    """Per 16-bit chunk, the values a pHash within `radius` bits may have there on at least one chunk (pigeonhole)."""
    query = _chunk_values(np.array([phash], dtype=np.uint64))[0]
    masks = _flip_masks(min(max(radius, 0) // CHUNKS, 16))
    return [np.unique(query[c] ^ masks).astype(int).tolist() for c in range(CHUNKS)]
