"""Search by a detail: compact regional vectors of the trunk's feature map, and the query made from a box.

The trunk gives, in the pass that embeds a picture, its head activation on a
7 x 7 grid (`Embedder.embed_with_maps`). A catalogue keeps, per image, one
vector per window of that grid (`RegionBasis.windows`: R-MAC-style squares
of a few sizes): max-pooled, L2-normalised, centred and reduced by a fixed
principal-component basis, normalised again, stored as float16.

A detail query is a box on a picture. Blown up to fill the network's input,
the crop is seen at another scale than the same motif inside a catalogue
picture; pasted at `QUERY_FRACTION` of a white frame instead, and described
by its own cells of the frame's feature map, it matches the motif where it
lies in a design (bench/bench_details.py measures both).

The basis is fitted once, on photos that are not the benchmark's
(models/fit_region_basis.py), and ships beside the model: a catalogue keeps
a copy, so its stored vectors and its queries always agree.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, NamedTuple

import numpy as np
from PIL import Image

from .augment import unit_rows
from .images import BACKGROUND
from .model import card_sha256, file_sha256
from .paths import models_dir

log = logging.getLogger(__name__)

REGION_BASIS_FILE = "region-basis.npz"
REGION_DTYPE = "<f2"
#: Where the crop of a detail query is pasted: its long side this share of a white frame.
QUERY_FRACTION = 0.4
#: The smallest box a detail query takes, as a share of the picture's width and height.
MIN_BOX = 0.04


class Box(NamedTuple):
    """A box on a picture in fractions of its width and height (0..1): left, top, width, height."""

    x: float
    y: float
    w: float
    h: float

    @classmethod
    def parse(cls, text: str) -> "Box":
        """A box from "X,Y,W,H" (fractions of the picture); a plain ValueError says what is wrong."""
        parts = [p.strip() for p in str(text).split(",")]
        try:
            values = [float(p) for p in parts]
        except ValueError:
            values = []
        if len(values) != 4:
            raise ValueError(f"a box is four fractions X,Y,W,H of the picture (like 0.25,0.3,0.4,0.2), not {text!r}")
        return cls(*values).checked()

    def checked(self) -> "Box":
        """This box, or a ValueError in plain words when it is not a usable box on the picture."""
        x, y, w, h = self
        if not all(math.isfinite(v) for v in self):
            raise ValueError("a box's X,Y,W,H must be numbers")
        if x < 0 or y < 0 or w <= 0 or h <= 0 or x + w > 1.0 + 1e-6 or y + h > 1.0 + 1e-6:
            raise ValueError(
                f"the box {x:g},{y:g},{w:g},{h:g} is not inside the picture: X,Y,W,H are fractions from 0 to 1, "
                "with X+W and Y+H at most 1"
            )
        if w < MIN_BOX or h < MIN_BOX:
            raise ValueError(f"the box is too small to search by: make it at least {MIN_BOX:.0%} of the picture each way")
        return Box(x, y, min(w, 1.0 - x), min(h, 1.0 - y))

    def text(self) -> str:
        return ",".join(f"{v:.3f}".rstrip("0").rstrip(".") or "0" for v in self)

    def pixels(self, width: int, height: int) -> tuple[int, int, int, int]:
        """The box on a `width` x `height` picture: left, top, right, bottom pixels (at least one pixel)."""
        left, top = round(self.x * width), round(self.y * height)
        return left, top, max(left + 1, round((self.x + self.w) * width)), max(top + 1, round((self.y + self.h) * height))


def default_windows(grid: int = 7) -> np.ndarray:
    """The regions kept per image: square windows of the grid, as (row0, col0, row1, col1) rows (int16)."""
    windows = [(0, 0, grid, grid)]
    for side, stride in _LAYOUT:
        if side >= grid:
            continue
        starts = list(range(0, grid - side + 1, stride))
        if starts[-1] != grid - side:
            starts.append(grid - side)
        windows += [(r, c, r + side, c + side) for r in starts for c in starts]
    return np.array(windows, dtype=np.int16)


#: (side, stride) of the windows besides the whole map; chosen in bench/bench_details.py --tune.
_LAYOUT: tuple[tuple[int, int], ...] = ((4, 3), (3, 2), (2, 2))


def pool_windows(maps: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """Max-pool (n, C, g, g) feature maps over windows (R, 4) -> (n, R, C) float32."""
    maps = np.asarray(maps, dtype=np.float32)
    out = np.empty((maps.shape[0], len(windows), maps.shape[1]), dtype=np.float32)
    for j, (r0, c0, r1, c1) in enumerate(windows):
        out[:, j] = maps[:, :, r0:r1, c0:c1].max(axis=(2, 3))
    return out


@dataclass(frozen=True)
class RegionBasis:
    """The fixed reduction of pooled regions: which windows, and the principal directions they are projected on."""

    windows: np.ndarray  # (R, 4) int16 row0, col0, row1, col1 on the map grid
    mean: np.ndarray  # (C,) float32
    basis: np.ndarray  # (C, d) float32
    grid: int = 7
    name: str = ""  # file it came from, for messages and the catalogue's record

    #: The arrays a basis consists of, by the name a store keeps them under.
    ARRAY_NAMES = ("regions.windows", "regions.mean", "regions.basis")

    @property
    def channels(self) -> int:
        return int(self.basis.shape[0])

    @property
    def dim(self) -> int:
        return int(self.basis.shape[1])

    @property
    def regions(self) -> int:
        return int(len(self.windows))

    @property
    def bytes_per_image(self) -> int:
        return self.regions * self.dim * np.dtype(REGION_DTYPE).itemsize

    def fits(self, feature_map_shape: tuple[int, int, int] | None) -> bool:
        """Whether maps of this (channels, rows, columns) shape can be described with this basis."""
        return feature_map_shape == (self.channels, self.grid, self.grid)

    def project(self, pooled: np.ndarray) -> np.ndarray:
        """Pooled regions (..., C) -> reduced, normalised vectors (..., d) float32."""
        return unit_rows((unit_rows(pooled) - self.mean) @ self.basis)

    def describe(self, maps: np.ndarray) -> np.ndarray:
        """Feature maps (n, C, g, g) -> regional vectors (n, R, d) float16, as a catalogue stores them."""
        return self.project(pool_windows(maps, self.windows)).astype(REGION_DTYPE)

    def describe_window(self, maps: np.ndarray, window: tuple[int, int, int, int]) -> np.ndarray:
        """One window of feature maps (n, C, g, g) -> (n, d) float32: a detail query's vectors."""
        return self.project(pool_windows(maps, np.array([window], dtype=np.int16))[:, 0])

    def arrays(self) -> dict[str, np.ndarray]:
        return {"regions.windows": self.windows, "regions.mean": self.mean, "regions.basis": self.basis}

    def state(self) -> dict[str, Any]:
        """What a store records beside the arrays (JSON-ready)."""
        return {"grid": self.grid, "name": self.name, "regions": self.regions, "dim": self.dim}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], state: Mapping[str, Any]) -> "RegionBasis":
        return cls(
            windows=np.asarray(arrays["regions.windows"], dtype=np.int16),
            mean=np.asarray(arrays["regions.mean"], dtype=np.float32),
            basis=np.asarray(arrays["regions.basis"], dtype=np.float32),
            grid=int(state.get("grid", 7)),
            name=str(state.get("name", "")),
        )


def fit_region_basis(pooled_sample: np.ndarray, windows: np.ndarray, dim: int, grid: int = 7, name: str = "") -> RegionBasis:
    """Fit the principal directions of pooled regional vectors (m, C) (models/fit_region_basis.py)."""
    x = unit_rows(np.asarray(pooled_sample, dtype=np.float64))
    mean = x.mean(axis=0)
    _, vectors = np.linalg.eigh(np.cov((x - mean).T))
    basis = vectors[:, ::-1][:, :dim]
    return RegionBasis(windows.astype(np.int16), mean.astype(np.float32), basis.astype(np.float32), grid, name)


def fit_learned_basis(
    pooled_sample: np.ndarray, queries: np.ndarray, candidates: np.ndarray, overlaps: np.ndarray, windows: np.ndarray,
    dim: int, pca_dim: int, grid: int = 7, name: str = "", shrink: float = 0.3,
) -> RegionBasis:
    """A learned whitening of pooled regional vectors (models/fit_region_basis.py).

    Args:
        pooled_sample: (m, C) pooled windows of photos, for the principal components and the spread kept.
        queries: (k, C) pooled detail queries (a crop framed as `framed_detail` does).
        candidates: (k, R, C) the windows of the picture each query's crop was pasted on.
        overlaps: (k, R) how much each of those windows overlaps the paste (intersection over union).

    Each query's match is, among the windows that overlap its paste at
    least a third as well as the best one, the one most like it after
    principal components and plain whitening (a hard positive). The
    covariance of the differences of matching pairs is whitened away,
    shrunk by `shrink` towards the identity so that few pairs do not blow up
    rare directions, and of the result the `dim` directions that vary most
    over the sample are kept, most first (a prefix of them is a coarser
    vector of its own). Projection stays `normalise(normalise(x) - mean) @ basis`.
    """
    x = unit_rows(np.asarray(pooled_sample, dtype=np.float64))
    mean = x.mean(axis=0)
    values, vectors = np.linalg.eigh(np.cov((x - mean).T))
    pca = vectors[:, ::-1][:, :pca_dim]
    white = pca / np.sqrt(values[::-1][:pca_dim] + 0.1 * values[::-1][:pca_dim].mean())
    q = (unit_rows(np.asarray(queries, np.float64)) - mean)
    matches = np.empty_like(q)
    for i in range(len(q)):
        near = np.flatnonzero(overlaps[i] >= overlaps[i].max() / 3)
        windows_i = unit_rows(np.asarray(candidates[i, near], np.float64)) - mean
        likeness = unit_rows(windows_i @ white) @ unit_rows(q[i] @ white)
        matches[i] = windows_i[int(np.argmax(likeness))]
    diff = (q - matches) @ pca
    within = diff.T @ diff / len(diff)
    within += shrink * np.trace(within) / pca_dim * np.eye(pca_dim)
    values, axes = np.linalg.eigh(within)
    inverse_root = axes @ np.diag(values ** -0.5) @ axes.T
    spread = ((x - mean) @ pca) @ inverse_root
    _, directions = np.linalg.eigh(spread.T @ spread / len(spread))
    basis = pca @ inverse_root @ directions[:, ::-1][:, :dim]
    return RegionBasis(windows.astype(np.int16), mean.astype(np.float32), basis.astype(np.float32), grid, name)


def shipped_region_basis(feature_map_shape: tuple[int, int, int] | None, folder: Path | None = None) -> RegionBasis | None:
    """The basis that ships in `models/`, when it fits the model's feature maps (None: no detail search)."""
    if feature_map_shape is None:
        return None
    path = (folder or models_dir()) / REGION_BASIS_FILE
    try:
        if card_sha256(path) != file_sha256(path):  # the model card states the file's sha256, as for the models
            log.warning("the region basis %s does not match the model card: details of pictures are not kept", path)
            return None
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name.replace(".", "_")] for name in RegionBasis.ARRAY_NAMES}
            grid = int(data["grid"])
    except (OSError, KeyError, ValueError) as exc:
        log.warning("no region basis at %s (%s): details of pictures are not kept", path, exc)
        return None
    basis = RegionBasis.from_arrays(arrays, {"grid": grid, "name": path.name})
    if not basis.fits(feature_map_shape):
        log.info("the region basis does not fit feature maps %s: details of pictures are not kept", feature_map_shape)
        return None
    return basis


def save_region_basis(basis: RegionBasis, path: str | os.PathLike) -> None:
    """Write a basis as the .npz `shipped_region_basis` reads (no pickle)."""
    arrays: dict[str, Any] = {name.replace(".", "_"): array for name, array in basis.arrays().items()}
    np.savez(path, grid=np.array(basis.grid), **arrays)


# --- the query side ---------------------------------------------------------------------


def framed_detail(picture: Image.Image, box: Box, size: int, grid: int = 7, fraction: float = QUERY_FRACTION
                  ) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The box's crop of an RGB picture pasted, centred, at `fraction` of a white `size` square.

    Returns:
        (pixels (size, size, 3) uint8, the window of the map grid that covers the crop).
    """
    crop = picture.crop(box.pixels(picture.width, picture.height))
    scale = fraction * size / max(crop.size)
    shown = crop.resize((max(1, round(crop.width * scale)), max(1, round(crop.height * scale))), Image.Resampling.BILINEAR)
    frame = Image.new("RGB", (size, size), BACKGROUND)
    x0, y0 = (size - shown.width) // 2, (size - shown.height) // 2
    frame.paste(shown, (x0, y0))
    return np.asarray(frame, dtype=np.uint8), covering_window(x0, y0, shown.width, shown.height, size, grid)


def covering_window(x: float, y: float, w: float, h: float, size: int, grid: int) -> tuple[int, int, int, int]:
    """The cells of a `grid` x `grid` map (over a `size` square) that a pixel box mostly covers (at least one)."""
    cell = size / grid

    def span(start: float, length: float) -> tuple[int, int]:
        first = int(math.floor(start / cell + 0.5))
        last = int(math.ceil((start + length) / cell - 0.5))
        first = min(max(first, 0), grid - 1)
        return first, min(max(last, first + 1), grid)

    c0, c1 = span(x, w)
    r0, r1 = span(y, h)
    return r0, c0, r1, c1
