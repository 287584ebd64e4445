"""The SQLite store's pHash reads: every image's (for the pHash index, also from another thread), or a few by id."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..index import row_lookup
from .sqlite_file import phash_from_sql, plain_errors

#: Up to this many pHashes are looked up by id; more are read in one pass over every record.
FEW_PHASHES = 2000


class PhashMethods:
    """Mixed into SqliteStore (which gives `_images`, `path` and `open`)."""

    _images: Any
    path: Any
    open: Callable[..., Any]

    @plain_errors
    def phashes(self, image_ids: np.ndarray) -> np.ndarray:
        image_ids = np.asarray(image_ids, dtype=np.int64)
        if len(image_ids) <= FEW_PHASHES:  # a search's candidates: looked up, not every record read
            found = self._images.phashes_few(np.unique(image_ids).tolist())
            return phash_from_sql(np.array([found.get(int(i), 0) for i in image_ids], dtype=np.int64))
        order = np.argsort(image_ids)
        sorted_out = np.zeros(len(image_ids), dtype=np.int64)
        # One pass over the records beats thousands of "IN (...)" lookups.
        self._images.phashes(image_ids, row_lookup(np.sort(image_ids)), sorted_out)
        out = np.zeros(len(image_ids), dtype=np.int64)
        out[order] = sorted_out
        return phash_from_sql(out)

    def phash_reader(self) -> Callable[[], tuple[np.ndarray, np.ndarray]]:
        """(ids, uint64 pHashes) of every record that has one, read on a connection of its own when called:
        callable from another thread (a connection is not)."""
        path, opener = self.path, type(self).open

        def read() -> tuple[np.ndarray, np.ndarray]:
            store = opener(path, readonly=True)
            try:
                ids, values = plain_errors(lambda s: s._images.all_phashes())(store)
                return ids, phash_from_sql(values)
            finally:
                store.close()

        return read
