"""Shown scores of a search's few hundred candidates from one matrix product, exact where it could matter.

`ranking.shown_percents` scores each candidate row by row in float64 (its
centred vector made, normalised and multiplied element by element), so a
score never depends on which other candidates were scored with it: at a
million images that was ~1.5 ms of a 5 ms search, for ~400 candidates of
which ten are shown. A score is read from one of two cosines
(`Calibration.percent`): the same-design cosine (256 values a candidate,
cheap: always exact, row by row) where it reaches the *same design* edge,
else the garment cosine (1,280 values). The garment cosines come from one
BLAS product over the candidates' power-normalised embeddings (|p - mean|
from |p|^2, p.mean and |mean|^2) to within ~1e-10 (the bound below); a
candidate whose whole percent (so its band) could differ anywhere inside
+-BOUND of it is scored exactly, and so is every candidate whose score a
user can read (ranking.score_and_order). Every other candidate's score is
one the exact one rounds to the very same whole percent and band, so the
list (its order, bands and shown scores) is exactly what the row-by-row
scoring gives.

Why BOUND holds: a float64 dot product of n terms is within n*u*|a||b| of
the true value (u = 1.1e-16, n = 1,280: 1.4e-13 |a||b|). Rows whose
|p - mean|^2 is not at least 1/1000 of (|p| + |mean|)^2 (cancellation) are
scored exactly; for the others each cosine is within ~1e-10 of the true
one, as is the row-by-row cosine: BOUND (1e-9) is ten times that.
"""

from __future__ import annotations

import logging
from typing import Callable

import numpy as np

from .calibration import Calibration, whole_percents

log = logging.getLogger(__name__)

#: how far the one-product cosines may lie from the row-by-row ones (see the module's note)
BOUND = 1e-9
#: rows whose centring cancels more than this (|p - mean|^2 against (|p| + |mean|)^2) are scored exactly
CANCELLATION = 1e-3


def settled_percents(
    same: np.ndarray, powered_of: Callable[[np.ndarray], np.ndarray | None], query: np.ndarray, calibration: Calibration,
    exact: Callable[[np.ndarray], np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """(percent (m, 1), settled (m,) bool) of candidates against one query embedding (D,).

    Args:
        same: the candidates' exact same-design cosines, clipped (as `shown_percents` makes them).
        powered_of: the `Calibration.powered` embeddings of some of them (by position), made only for
            those that the same-design cosine does not decide (their float16 widening is a search's
            dearest conversion).
        exact: their row-by-row percents (m', 1) (`shown_percents`), for those the rough one leaves open.

    Returns every percent exact but the `settled` ones': those read the same whole percent and band
    as their exact one (ranking.score_and_order scores those it shows exactly).
    """
    percent = np.asarray(calibration.percent(same, same), dtype=np.float64)[:, None]  # exact where same decides
    settled = np.zeros(len(same), bool)
    below = np.flatnonzero(same < calibration.edges[0])
    if len(below):
        powered = powered_of(below)
        assert powered is not None  # the caller holds every candidate's embedding
        rough, steady = rough_garment(powered, same[below], query, calibration)
        settled[below] = steady
        percent[below[steady], 0] = rough[steady]
        left = below[~steady]
        if len(left):
            percent[left] = exact(left)
    return percent, settled


def rough_garment(powered: np.ndarray, same: np.ndarray, query: np.ndarray, calibration: Calibration) -> tuple[np.ndarray, np.ndarray]:
    """(percent (m,), settled (m,) bool) of candidates below the same-design edge from their one-product
    garment cosines: settled where every cosine inside +-BOUND of it reads the same whole percent."""
    p = np.asarray(powered, dtype=np.float64)
    mean = np.asarray(calibration.mean, dtype=np.float64)
    centred_query = calibration.centred(query[None])[0]
    dots = p @ np.stack([centred_query, mean], axis=1)  # (m, 2)
    squares = np.einsum("ij,ij->i", p, p)
    mean_square = float(mean @ mean)
    norm2 = squares - 2.0 * dots[:, 1] + mean_square
    steady = norm2 >= CANCELLATION * (np.sqrt(squares) + np.sqrt(mean_square)) ** 2
    garment = (dots[:, 0] - float(mean @ centred_query)) / np.sqrt(np.where(steady, norm2, 1.0))

    def percent(shift: float) -> np.ndarray:
        return np.asarray(calibration.percent(same, np.clip(garment + shift, -1.0, 1.0)))

    low, middle, high = percent(-BOUND), percent(0.0), percent(BOUND)
    return middle, steady & (whole_percents(low) == whole_percents(high)) & ((low >= 99.0) == (high >= 99.0))
