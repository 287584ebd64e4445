"""The regional vectors of a catalogue held in memory, scanned for a detail query, and the query expanded by its best hits.

`RegionIndex` scans every image's windows in two steps (regions.py says
what the windows and their dimensions are). `RegionScan.second_look` is the
second look of a detail search (steering.DetailSearch): the windows that
best hold the detail in the first few results are averaged into the query
(`expanded_query`), which scores the scan's best images again. The crop a designer boxes is framed on white (regions.py),
so it is never seen exactly as a motif printed inside a design; the windows
of the designs that hold it are, and where a motif repeats across designs
they pull the rest of them up (query expansion, as R-MAC retrieval does it;
measured in docs/DETAILS.md).
"""

from __future__ import annotations

import logging

from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from .augment import unit_rows

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


def expanded_query(full: np.ndarray, refined: np.ndarray, queries: np.ndarray, values: np.ndarray, top: int = EXPAND_TOP) -> np.ndarray:
    """One query row (d,) for the second look: a query row and the best-matching windows of the best results.

    Args:
        full: (k, R, d) float32 full vectors of the images a scan refined, at positions `refined` (k,).
        queries: (F, d) the rows searched first (the framed detail, then its hue turns).
        values: (n, F) each image's value per row as the ranking counts it (a turned row as far as the colour
            control lets it count), in the index's order.

    The row kept is the one the best results favour (their values, weighted
    as the windows are); each of the `top` best results gives the window
    most like that row, weighted by its value to the power `EXPAND_POWER`;
    the row counts `EXPAND_SELF` against their weighted mean. The best
    results are among the refined images: those rank before all others.
    """
    q = np.asarray(queries, dtype=np.float32)
    values = np.asarray(values, dtype=np.float32)[refined]
    best = values.max(axis=1) if len(values) else np.empty(0, np.float32)
    chosen = _top(best, top)
    weights = np.maximum(best[chosen], 0.0) ** EXPAND_POWER
    if not len(chosen) or not weights.sum() > 0:
        return q[0]
    row = int(np.argmax(weights @ values[chosen]))
    near = full[chosen]  # (top, R, d)
    windows = near[np.arange(len(chosen)), (near @ q[row]).argmax(axis=1)]
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
        return self.scan(queries, refine).values

    def scan(self, queries: np.ndarray, refine: int = REFINE) -> "RegionScan":
        """`best`, keeping the refined images and their full vectors as float32 for a second look."""
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
        if self.coarse_dim == dim:  # short vectors: the coarse scan was the full one
            return RegionScan(out, np.arange(n), self.coarse)
        if refine <= 0:
            return RegionScan(out, np.empty(0, np.int64), np.empty((0, regions, dim), np.float32))
        chosen = _top(out.max(axis=1), refine)
        full = self.vectors[chosen].astype(np.float32)  # (k, R, d); converting is most of this step's time
        refined = np.einsum("krd,fd->krf", full, q).max(axis=1)  # einsum: BLAS with one column is slower here
        out -= 4.0  # below any cosine: what was not refined ranks last
        out[chosen] = refined
        return RegionScan(out, chosen, full)


class RegionScan(NamedTuple):
    """What a scan leaves: every image's value per query row, and the images it scored in full with their vectors."""

    values: np.ndarray  # (n, F) float32
    refined: np.ndarray  # (k,) positions in the index
    full: np.ndarray  # (k, R, d) float32: those images' full vectors

    def second_look(self, queries: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Each image's value (n,) for the detail expanded by its best results (`expanded_query`).

        The images the scan refined are scored again with the expanded query
        from their float32 vectors at hand (a new scan of the whole catalogue
        would convert a thousand float16 vectors again, most of a scan's time,
        for 1.3 points more on the tuning trials: docs/DETAILS.md); the
        others keep their value less 8, after every refined one.
        """
        expanded = expanded_query(self.full, self.refined, queries, values)
        out = np.asarray(values, dtype=np.float32).max(axis=1) - 8.0
        if len(self.refined):
            out[self.refined] = (self.full @ expanded).max(axis=1)
        return out


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return unit_rows(x)


def _top(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest values (any order)."""
    k = min(k, len(values))
    if k >= len(values):
        return np.arange(len(values))
    return np.argpartition(-values, k - 1)[:k]


__all__ = ("RegionIndex", "RegionScan", "expanded_query", "COARSE_DIM", "REFINE", "SCAN_CHUNK")
