"""The regional vectors of a catalogue held in memory, scanned for a detail query, and the query expanded by its best hits.

`RegionIndex` scans every image's windows in two steps (regions.py says
what the windows and their dimensions are). `expanded_query` is the second
look of a detail search (steering.DetailSearch): the windows that best hold
the detail in the first few results are averaged into the query, which is
searched again. The crop a designer boxes is framed on white (regions.py),
so it is never seen exactly as a motif printed inside a design; the windows
of the designs that hold it are, and where a motif repeats across designs
they pull the rest of them up (query expansion, as R-MAC retrieval does it;
measured in docs/DETAILS.md).
"""

from __future__ import annotations

import logging

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .stores.base import CatalogueReader

log = logging.getLogger(__name__)

#: Images scored per step of a region scan (bounds the scores held at once).
SCAN_CHUNK = 16384
#: Dimensions of the coarse scan of every image (a prefix of the basis's, which come most telling first).
COARSE_DIM = 64
#: Images of the coarse scan scored again with their full vectors (1,000 lose nothing measurable: DETAILS.md).
REFINE = 1000
#: Results whose best windows are averaged into an expanded detail query.
EXPAND_TOP = 10
#: Each of them counts by its similarity to this power (a near miss counts little).
EXPAND_POWER = 3.0
#: Weight of the query itself against the average of those windows.
EXPAND_SELF = 0.5


def expanded_query(index: "RegionIndex", queries: np.ndarray, values: np.ndarray, top: int = EXPAND_TOP) -> np.ndarray:
    """One query row (d,) for the second scan: a query row and the best-matching windows of the best results.

    Args:
        queries: (F, d) the rows searched first (the framed detail, then its hue turns).
        values: (n, F) each image's value per row as the ranking counts it (a turned row as far as the colour
            control lets it count), in the index's order.

    The row kept is the one the best results favour (their values, weighted
    as the windows are); each of the `top` best results gives the window
    most like that row, weighted by its value to the power `EXPAND_POWER`;
    the row counts `EXPAND_SELF` against their weighted mean.
    """
    q = np.asarray(queries, dtype=np.float32)
    values = np.asarray(values, dtype=np.float32)
    best = values.max(axis=1)
    chosen = _top(best, top)
    if not len(chosen):
        return q[0]
    weights = np.maximum(best[chosen], 0.0) ** EXPAND_POWER
    if not weights.sum() > 0:
        return q[0]
    row = int(np.argmax(weights @ values[chosen]))
    full = index.vectors[chosen].astype(np.float32)  # (k, R, d)
    windows = full[np.arange(len(chosen)), (full @ q[row]).argmax(axis=1)]
    mixed = EXPAND_SELF * q[row] + weights @ windows / weights.sum()
    return (mixed / max(float(np.linalg.norm(mixed)), 1e-12)).astype(np.float32)


class RegionIndex:
    """Every kept image's regional vectors in memory, scanned in two steps.

    The first `COARSE_DIM` dimensions of each window (the basis orders its
    directions, most telling first: regions.py) are held as float32,
    normalised again, and every image is scanned with them; the full vectors
    stay float16, as stored, and only the best `REFINE` images are scored
    with them. Converting float16 on every query of the whole catalogue cost
    ten times the scan itself, and the full float32 vectors would take
    30 KB per image (bench/bench_details.py measures the scan at 100,000
    images): this way 23 KB per image are held (15 KB full, 7.7 KB coarse).
    """

    def __init__(self, ids: np.ndarray, vectors: np.ndarray):
        self.ids = np.asarray(ids, dtype=np.int64)
        self.vectors = np.asarray(vectors, dtype=np.float16)  # (n, R, d) as stored
        dim = self.vectors.shape[2] if self.vectors.ndim == 3 else 0
        self.coarse_dim = min(COARSE_DIM, dim)
        self.coarse = np.empty((len(self.ids), *self.vectors.shape[1:2], self.coarse_dim), dtype=np.float32)
        for start in range(0, len(self.ids), SCAN_CHUNK):
            self.coarse[start : start + SCAN_CHUNK] = _unit(self.vectors[start : start + SCAN_CHUNK, :, : self.coarse_dim])

    @classmethod
    def load(cls, reader: CatalogueReader) -> "RegionIndex":
        parts = list(reader.iter_regions())
        if not parts:
            return cls(np.empty(0, np.int64), np.empty((0, 0, 0), np.float16))
        vectors = np.empty((sum(len(p.ids) for p in parts), *parts[0].vectors.shape[1:]), dtype=np.float16)
        at = 0
        for n, part in enumerate(parts):  # copied part by part: never two copies of the whole at once
            vectors[at : at + len(part.ids)] = part.vectors
            at += len(part.ids)
            parts[n] = part._replace(vectors=np.empty((0, *vectors.shape[1:]), np.float16))
        return cls(np.concatenate([p.ids for p in parts]), vectors)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def bytes_per_image(self) -> int:
        """Memory held per image: the stored vectors and the coarse copy."""
        return int(self.vectors[0].nbytes + self.coarse[0].nbytes) if len(self) else 0

    def best(self, queries: np.ndarray, refine: int = REFINE) -> np.ndarray:
        """For queries (F, d): each image's best cosine over its regions, (n, F) float32.

        Only the best `refine` images of the coarse scan (by their best row)
        get their full cosines; the others keep their coarse value less 4,
        so they rank after every refined one (`refine=0`: the coarse scan alone).
        """
        q = np.ascontiguousarray(np.asarray(queries, dtype=np.float32))
        n, regions, dim = self.vectors.shape
        out = np.empty((n, len(q)), dtype=np.float32)
        coarse_q = np.ascontiguousarray(_unit(q[:, : self.coarse_dim]))
        for start in range(0, n, SCAN_CHUNK):
            block = self.coarse[start : start + SCAN_CHUNK]
            # (F, d) x (d, images*R): query-major, so each image's regions lie together for the max
            # (about twice as fast as the image-major product for the 6 rows of *ignore colour*)
            sims = coarse_q @ block.reshape(-1, self.coarse_dim).T
            out[start : start + len(block)] = sims.reshape(len(q), len(block), regions).max(axis=2).T
        if refine <= 0 or self.coarse_dim == dim:
            return out
        chosen = _top(out.max(axis=1), refine if refine > 0 else n)
        full = self.vectors[chosen].astype(np.float32)  # (k, R, d); converting is most of this step's time
        refined = np.einsum("krd,fd->krf", full, q).max(axis=1)  # einsum: BLAS with one column is slower here
        out -= 4.0  # below any cosine: what was not refined ranks last
        out[chosen] = refined
        return out


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _top(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest values (any order)."""
    k = min(k, len(values))
    if k >= len(values):
        return np.arange(len(values))
    return np.argpartition(-values, k - 1)[:k]


__all__ = ("RegionIndex", "expanded_query", "COARSE_DIM", "REFINE", "SCAN_CHUNK")
