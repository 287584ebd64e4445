"""The catalogue's pHash index for searches by file, made on a thread of its own while a large catalogue opens.

A search by file takes every image within a few pHash bits of the query as
a candidate (phash_index.py), from a multi-index over every image's pHash.
At a million images reading them all and sorting the index is about half a
second of CPU, which the first search by file of a freshly opened catalogue
used to wait for on top of the opening. Above `LAZY_FROM` images, a store
that can read pHashes from another thread (`phash_reader`: SQLite, with a
connection of its own) has the index made in the background from the
moment the catalogue's index is loaded: while the window waits for a file
to be dropped, or the command line loads the model and embeds the query.
A search that needs it before it is made waits for it; one made in the
background that failed is made again in the engine's thread, where a
failure is said in plain words.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

import numpy as np

from .phash_index import PhashIndex

log = logging.getLogger(__name__)

#: From this many searchable images the index is made in the background.
LAZY_FROM = 50_000


class PhashSource:
    """The pHash index over one loaded catalogue's searchable images (made again on every engine reload).

    Args:
        reader: the catalogue (or store) the engine searches, used from the engine's thread.
        ids: every searchable image id, sorted: the rows of the index.
    """

    def __init__(self, reader: Any, ids: np.ndarray):
        self.reader = reader
        self.ids = ids
        self._index: PhashIndex | None = None
        self._made: list[PhashIndex] = []  # the thread's index, once made
        self._failed: list[BaseException] = []
        self._thread: threading.Thread | None = None
        if len(ids) >= LAZY_FROM:
            self._start(getattr(getattr(reader, "store", reader), "phash_reader", None))

    def _start(self, phash_reader: Callable[[], Callable[[np.ndarray], np.ndarray]] | None) -> None:
        if phash_reader is None:  # a store without one (a team catalogue reads pHashes packed, in one statement)
            return
        read, ids, made, failed = phash_reader(), self.ids, self._made, self._failed

        def build() -> None:
            try:
                made.append(PhashIndex.build(read(ids)))
            except BaseException as exc:  # noqa: BLE001 (the engine's thread makes the index itself then)
                failed.append(exc)

        self._thread = threading.Thread(target=build, name="phash-index", daemon=True)
        self._thread.start()

    def index(self) -> PhashIndex:
        """The multi-index over every searchable image: the background one (waited for), else made here."""
        if self._index is None:
            if self._thread is not None:
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
