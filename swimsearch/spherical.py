"""Spherical hashing (Heo et al., CVPR 2012): where the binary codes are made.

Bit k of a code is 1 when the point lies inside hypersphere k,
``||y - p_k|| <= r_k``. The pivots p_k and radii r_k are fitted so that every
ball holds half of the points (balanced bits) and every two balls share a
quarter (pairwise independent bits). Codes are packed little-endian into
uint64 words; the distance between codes is the spherical Hamming distance
``|a xor b| / |a and b|``.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Spheres:
    """Fitted hyperspheres: pivots (B, d) and radii (B,), float32."""

    pivots: np.ndarray
    radii: np.ndarray
    iterations: int = 0

    @property
    def bits(self) -> int:
        return len(self.radii)

    @property
    def words(self) -> int:
        """uint64 words per packed code."""
        return (self.bits + 63) // 64

    def inside(self, points: np.ndarray) -> np.ndarray:
        """(n, B) bool: which balls each point lies in."""
        pivot_sq, radii_sq = self._fixed_terms
        return _squared_distances(points, self.pivots, pivot_sq) <= radii_sq

    @functools.cached_property
    def _fixed_terms(self) -> tuple[np.ndarray, np.ndarray]:
        """The pivots' squared norms (1, B) and the squared radii (B,), float64, made once: a search encodes
        one query, and making them took ~0.1 ms of it at a million images (the values are the same)."""
        return _squared_norms(np.asarray(self.pivots, dtype=np.float32)), self.radii.astype(np.float64) ** 2

    def encode(self, points: np.ndarray, chunk: int = 65536) -> np.ndarray:
        """Packed codes (n, words) uint64 for points (n, d)."""
        points = np.asarray(points, dtype=np.float32)
        out = np.empty((len(points), self.words), dtype=np.uint64)
        for start in range(0, len(points), chunk):
            out[start : start + chunk] = pack_bits(self.inside(points[start : start + chunk]))
        return out


def _squared_distances(points: np.ndarray, pivots: np.ndarray, pivot_sq: np.ndarray | None = None) -> np.ndarray:
    """(n, B) squared Euclidean distances, float64 to keep the median exact enough (`pivot_sq`: the
    pivots' squared norms (1, B), where made already)."""
    points = np.asarray(points, dtype=np.float32)
    pivots = np.asarray(pivots, dtype=np.float32)
    sq = (points.astype(np.float64) ** 2).sum(axis=1)[:, None]
    sq = sq - 2.0 * (points @ pivots.T).astype(np.float64)
    sq += _squared_norms(pivots) if pivot_sq is None else pivot_sq
    return np.maximum(sq, 0.0)


def _squared_norms(pivots: np.ndarray) -> np.ndarray:
    """(1, B) the float32 pivots' squared norms in float64."""
    return (pivots.astype(np.float64) ** 2).sum(axis=1)[None, :]


def fit_spheres(
    points: np.ndarray,
    bits: int,
    *,
    seed: int = 0,
    sample: int = 20000,
    max_iterations: int = 200,
    mean_tolerance: float = 0.10,
    std_tolerance: float = 0.15,
) -> Spheres:
    """Fit B hyperspheres to points (n, d) with the iterative algorithm of Heo et al.

    1. pivots start at distinct random sample points;
    2. each radius is the median distance to its pivot (the ball holds m/2);
    3. o_ij = points inside both balls i and j; pivots move apart (o_ij > m/4)
       or together (o_ij < m/4) by f_ij = 1/2 (o_ij - m/4)/(m/4) (p_i - p_j),
       p_i += mean_j f_ij;
    4. stop when mean |o_ij - m/4| <= 0.10 m/4 and its std <= 0.15 m/4.

    Args:
        points: (n, d) training points (the hash layer's outputs).
        bits: number of spheres B.
        seed: makes the fit reproducible for the same points in the same order.
        sample: at most this many points are used (m).
    """
    rng = np.random.default_rng(seed)
    points = np.asarray(points, dtype=np.float32)
    if len(points) < 2:
        raise ValueError("spherical hashing needs at least two points")
    if len(points) > sample:
        points = points[np.sort(rng.choice(len(points), sample, replace=False))]
    m = len(points)
    pivots = points[rng.choice(m, bits, replace=bits > m)].astype(np.float64)
    # Jitter so that duplicate points (or bits > m) do not give identical pivots.
    spread = points.std(axis=0).mean() if m > 1 else 1.0
    pivots += rng.normal(0.0, 1e-3 * max(float(spread), 1e-6), pivots.shape)
    quarter = m / 4.0
    upper = ~np.eye(bits, dtype=bool) & np.triu(np.ones((bits, bits), dtype=bool))
    iteration = 0
    for iteration in range(1, max_iterations + 1):
        sq = _squared_distances(points, pivots)
        radii_sq = np.median(sq, axis=0)
        inside = (sq <= radii_sq).astype(np.float32)
        overlap = inside.T @ inside  # o_ij
        error = overlap[upper] - quarter
        if np.abs(error).mean() <= mean_tolerance * quarter and error.std() <= std_tolerance * quarter:
            break
        c = 0.5 * (overlap.astype(np.float64) - quarter) / quarter
        np.fill_diagonal(c, 0.0)
        force = (c.sum(axis=1)[:, None] * pivots - c @ pivots) / bits
        moved = pivots + force
        if not np.all(np.abs(moved) < 1e15):  # a few points can push pivots apart without end: keep the last sound ones
            log.info("spherical hashing stopped at iteration %d: the pivots were running away", iteration)
            break
        pivots = moved
    else:
        # Expected for small samples, where counts of a few dozen points cannot
        # meet the tolerances; the balls are still balanced by their radii.
        level = logging.WARNING if m >= 1000 else logging.INFO
        log.log(level, "spherical hashing did not converge in %d iterations on %d points", max_iterations, m)
    sq = _squared_distances(points, pivots)
    radii = np.sqrt(np.median(sq, axis=0))
    log.info("spherical hashing: %d bits fitted on %d points in %d iterations", bits, m, iteration)
    return Spheres(pivots=pivots.astype(np.float32), radii=radii.astype(np.float32), iterations=iteration)


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """(n, B) bool -> (n, ceil(B/64)) uint64, bit k of the code in word k//64, position k%64."""
    bits = np.asarray(bits, dtype=bool)
    n, width = bits.shape
    words = (width + 63) // 64
    if width != words * 64:
        bits = np.concatenate([bits, np.zeros((n, words * 64 - width), dtype=bool)], axis=1)
    packed = np.packbits(bits, axis=1, bitorder="little")
    return packed.view("<u8").astype(np.uint64, copy=False).reshape(n, words)


def unpack_bits(codes: np.ndarray, width: int) -> np.ndarray:
    """Inverse of `pack_bits`: (n, words) uint64 -> (n, width) bool."""
    codes = np.ascontiguousarray(codes, dtype="<u8")
    raw = np.unpackbits(codes.view(np.uint8).reshape(len(codes), -1), axis=1, bitorder="little")
    return raw[:, :width].astype(bool)


def hamming(query: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Plain Hamming distance |q xor c| from one packed code to many, (n,) int32."""
    query = np.asarray(query, dtype=np.uint64).reshape(1, -1)
    return np.bitwise_count(codes ^ query).sum(axis=1, dtype=np.int32)


def spherical_hamming(query: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Spherical Hamming distance |q xor c| / |q and c| from one code to many.

    Args:
        query: (words,) uint64 packed code.
        codes: (n, words) uint64 packed codes.

    Returns:
        (n,) float32; pairs that share no 1-bit are infinitely far.
    """
    query = np.asarray(query, dtype=np.uint64).reshape(1, -1)
    differ = np.bitwise_count(codes ^ query).sum(axis=1, dtype=np.int32)
    common = np.bitwise_count(codes & query).sum(axis=1, dtype=np.int32)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = differ.astype(np.float32) / common.astype(np.float32)
    out[common == 0] = np.inf
    return out
