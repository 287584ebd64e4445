"""What the stores share beyond base.py's protocols: copies between stores, a folder's paths, pHashes by id.

`CopyReader` and `CopyWriter` are the parts of the store protocols
(`CatalogueReader` and `CatalogueWriter` take them in) that `swimsearch
copy` (copying.py) moves whole images through, ids and stored embeddings
unchanged. Kept apart from base.py so each file stays small.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Iterator, Protocol, Sequence

import numpy as np

from ..index import row_lookup


@dataclass(frozen=True)
class StoredImage:
    """One image as a copy between stores carries it: the whole record, with its id and stored embedding."""

    image_id: int
    relpath: str
    size: int
    mtime: float
    width: int | None
    height: int | None
    phash: int | None  # unsigned 64-bit
    label: str | None
    error: str | None
    added: float
    embedding: np.ndarray | None = field(default=None, compare=False, repr=False)  # as stored (float16), None if unreadable
    fingerprint: int | None = None  # content fingerprint when it was read (None: recorded before fingerprints)
    retry: bool = False  # its last read failed for a passing reason: read it again at the next update
    gone: float | None = None  # a tombstone: when the file was found missing
    recode: bool = False  # its code was made from an older embedding (kept searchable until the new one)


class CopyReader(Protocol):
    """Reading whole images out for a copy (a part of `CatalogueReader`)."""

    def export_images(self, chunk: int = 10_000) -> Iterator[list[StoredImage]]:
        """Every image with its id and stored embedding, in id order, `chunk` at a time (for copies)."""
        ...


class CopyWriter(Protocol):
    """Writing whole images in for a copy (a part of `CatalogueWriter`)."""

    def import_images(self, images: Sequence[StoredImage]) -> None:
        """Add images copied from another store, keeping their ids and stored embeddings (one transaction)."""
        ...

    def mark_recode(self, image_ids: Sequence[int]) -> None:
        """These images' codes are of an older embedding: `uncoded_ids` lists them until new codes are written (copies)."""
        ...


def folder_range(scope: str) -> tuple[str, str]:
    """The relative paths inside folder `scope` ("" for the whole catalogue) as a half-open range [low, high).

    In byte order (how both stores sort paths), '0' comes right after '/', so
    "a/" <= path < "a0" holds exactly the paths inside the folder "a".
    """
    scope = scope.strip("/")
    return (f"{scope}/", f"{scope}0") if scope else ("", "\U0010ffff")


def aligned_phashes(image_ids: np.ndarray, chunks: Iterable["Sequence[tuple[int, int]] | np.ndarray"]) -> np.ndarray:
    """pHashes (uint64) aligned with `image_ids`, 0 where unknown, from chunks of (id, signed pHash) rows
    (tuples, or an (n, 2) int64 array).

    One pass over a store's whole pHash column beats thousands of lookups by id.
    """
    image_ids = np.asarray(image_ids, dtype=np.int64)
    lookup = row_lookup(np.sort(image_ids))
    order = np.argsort(image_ids)
    sorted_out = np.zeros(len(image_ids), dtype=np.int64)
    for rows in chunks:
        if not len(rows):
            continue
        found_ids, values = (rows[:, 0], rows[:, 1]) if isinstance(rows, np.ndarray) else zip(*rows)
        where = lookup(np.array(found_ids, dtype=np.int64))
        hit = where >= 0
        sorted_out[where[hit]] = np.array(values, dtype=np.int64)[hit]
    out = np.zeros(len(image_ids), dtype=np.int64)
    out[order] = sorted_out
    return out.view(np.uint64)
