"""Candidates by perceptual hash: every catalogue image whose pHash is within a few bits of the query's.

A small, heavily recompressed copy of a design (a thumbnail sent by e-mail)
can drift in embedding space while its 64-bit pHash barely moves, so the
search takes candidates from both signals. Scanning a million pHashes costs
milliseconds; a multi-index does not: the 64 bits are cut into four 16-bit
chunks, each kept as a sorted array. Two hashes within `radius` bits agree
to within `radius // 4` bits on at least one chunk (pigeonhole), so probing
each chunk's value and its neighbours up to that many flipped bits finds
every hash within `radius`, and the full distance then filters them.

A pHash is evidence of a copy only when it holds a picture (`copy_distances`).
imagehash sets the bits of the 8 x 8 low DCT coefficients above their
median: exactly 32 of 64 whenever the coefficients differ, as in every one of
5,158 photos tried. A picture with no two-dimensional structure at the
hash's 32 x 32 (a flat colour of any shade, a transparent PNG on white, a
one-pixel picture, fine stripes or JPEG noise that average to grey, a ramp,
plain stripes or halves, a check) leaves most coefficients at zero: the
median is zero and only the few positive ones are set. Every flat picture
hashes to 0x8000000000000000 (black to 0, the value a catalogue also stores
for "unknown"), a ramp or a plaid to a handful of bits, so any two of them
lie within a few bits of each other and would read as copies of one another.
"""

from __future__ import annotations

import functools
import itertools
import logging
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

CHUNKS = 4
CHUNK_BITS = 16
#: A pHash with fewer bits set says nothing about the picture (see above): a real picture's has 32; a flat one's
#: 1 (0 for black), a ramp's, stripes' or a check's at most 5; two-direction stripes (a plaid) at most 15.
INFORMATIVE_BITS = 16
#: The distance `copy_distances` gives where a pHash is unknown or says nothing: more than any two pHashes differ.
UNKNOWN = 65


def _chunk_values(phashes: np.ndarray) -> np.ndarray:
    """(n, 4) uint16: the four 16-bit chunks of each 64-bit pHash, low chunk first."""
    p = np.asarray(phashes, dtype=np.uint64)
    return np.stack([((p >> np.uint64(CHUNK_BITS * c)) & np.uint64(0xFFFF)).astype(np.uint16) for c in range(CHUNKS)], axis=1)


@functools.lru_cache(maxsize=CHUNK_BITS + 1)
def _flip_masks(flips: int) -> np.ndarray:
    """XOR masks flipping up to `flips` of 16 bits (0 flips first); made once (0.2 ms a search)."""
    masks = [0]
    for r in range(1, flips + 1):
        masks += [sum(1 << b for b in combo) for combo in itertools.combinations(range(CHUNK_BITS), r)]
    out = np.array(masks, dtype=np.uint16)
    out.setflags(write=False)  # shared by every search
    return out


def hamming64(a: int | np.ndarray, b: np.ndarray) -> np.ndarray:
    """Differing bits between 64-bit pHashes (uint64 arrays or ints), as uint8."""
    return np.bitwise_count(np.asarray(a, dtype=np.uint64) ^ np.asarray(b, dtype=np.uint64))


def _unsigned(phashes: int | np.ndarray) -> np.ndarray:
    """pHashes as uint64: a stored signed int64 (or a negative int) is reinterpreted, not converted."""
    if isinstance(phashes, (int, np.integer)):
        return np.array([int(phashes) % (1 << 64)], np.uint64)
    p = np.asarray(phashes)
    return p.view(np.uint64) if p.dtype == np.int64 else p.astype(np.uint64)


def informative(phashes: int | np.ndarray) -> np.ndarray:
    """Whether each pHash holds a picture, so can say two pictures are copies (0, unknown, never does)."""
    return np.bitwise_count(_unsigned(phashes)) >= INFORMATIVE_BITS


def copy_distances(phash: int | None, others: np.ndarray) -> np.ndarray:
    """Differing bits (int64) between a picture's pHash and others', `UNKNOWN` where either is unknown or says
    nothing about its picture (`informative`): what every test for a near-identical copy compares, so that
    flat pictures of different colours are never copies, in a catalogue of any age."""
    p = _unsigned(others)
    if phash is None or not informative(phash)[0]:
        return np.full(len(p), UNKNOWN, np.int64)
    return np.where(informative(p), hamming64(_unsigned(phash)[0], p).astype(np.int64), UNKNOWN)


@dataclass(frozen=True)
class PhashIndex:
    """Four sorted 16-bit chunk arrays over a catalogue's pHashes; rows are positions in `phashes`."""

    phashes: np.ndarray  # (n,) uint64
    sorted_chunks: np.ndarray  # (4, n) uint16, each row sorted
    rows: np.ndarray  # (4, n) int32: catalogue row of each sorted entry

    @classmethod
    def build(cls, phashes: np.ndarray) -> "PhashIndex":
        """Index pHashes (uint64; a stored signed int64 is reinterpreted, not converted)."""
        p = np.asarray(phashes)
        p = p.view(np.uint64) if p.dtype == np.int64 else p.astype(np.uint64)
        chunks = _chunk_values(p).T  # (4, n)
        order = np.argsort(chunks, axis=1, kind="stable")
        return cls(p, np.take_along_axis(chunks, order, axis=1), order.astype(np.int32))

    def __len__(self) -> int:
        return len(self.phashes)

    def within(self, phash: int, radius: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows whose pHash differs from `phash` in at most `radius` bits, nearest first, and the distances.

        Exact: finds every such row (not an approximation), in about
        4 x C(16, <= radius // 4) binary searches.
        """
        if len(self) == 0 or radius < 0:
            return np.empty(0, np.int64), np.empty(0, np.uint8)
        query = _chunk_values(np.array([phash], dtype=np.uint64))[0]
        masks = _flip_masks(min(radius // CHUNKS, CHUNK_BITS))
        found = []
        for c in range(CHUNKS):
            keys = np.unique(query[c] ^ masks)
            lo = np.searchsorted(self.sorted_chunks[c], keys, side="left")
            hi = np.searchsorted(self.sorted_chunks[c], keys, side="right")
            for a, b in zip(lo[hi > lo], hi[hi > lo]):
                found.append(self.rows[c, a:b])
        if not found:
            return np.empty(0, np.int64), np.empty(0, np.uint8)
        rows = np.unique(np.concatenate(found)).astype(np.int64)
        distances = hamming64(phash, self.phashes[rows])
        keep = distances <= radius
        rows, distances = rows[keep], distances[keep]
        order = np.lexsort((rows, distances))
        return rows[order], distances[order]

    def nearest(self, phash: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k rows of smallest pHash distance (a full scan; for benchmarks and small catalogues)."""
        distances = hamming64(phash, self.phashes)
        k = min(k, len(distances))
        part = np.argpartition(distances, k - 1)[:k] if 0 < k < len(distances) else np.arange(k)
        order = np.lexsort((part, distances[part]))
        return part[order].astype(np.int64), distances[part[order]]


def merge_candidates(
    embedding_rows: np.ndarray, index: PhashIndex, query_phash: int | None, radius: int
) -> tuple[np.ndarray, np.ndarray]:
    """The candidate stage's two sources merged before rescoring.

    Args:
        embedding_rows: candidates from the embedding search (LSH or exact).
        index: the catalogue's pHash index (same rows).
        query_phash: the query's pHash (None for a query without pixels: embedding candidates only).
        radius: pHash candidates within this many bits join.

    Returns:
        The distinct rows of both sources, and each one's `copy_distances` to the query (`UNKNOWN`: unknown,
        or a pHash that says nothing, as a flat picture's: no pHash candidates for such a query either).
    """
    rows = np.asarray(embedding_rows, dtype=np.int64)
    if query_phash is None or len(index) == 0 or not informative(query_phash)[0]:
        return np.unique(rows), np.full(len(np.unique(rows)), UNKNOWN, np.int64)
    near, _ = index.within(int(query_phash), radius)
    rows = np.union1d(rows, near)
    return rows, copy_distances(query_phash, index.phashes[rows])


def duplicates_first(similarities: np.ndarray, phash_distances: np.ndarray, duplicate_distance: int) -> np.ndarray:
    """Order of candidates: pHash duplicates first (nearest pHash, then similarity), then the rest by similarity.

    The pHash is evidence, not only a source: a thumbnail whose embedding
    drifted is still the same picture, and a user expects it at the top.
    """
    distances = np.asarray(phash_distances, dtype=np.int64)
    key = np.where(distances <= duplicate_distance, distances, 65)
    return np.lexsort((-np.asarray(similarities, dtype=np.float64), key))
