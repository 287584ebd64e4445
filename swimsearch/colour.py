"""Colour: a small signature of each picture's colours, and the "colour matters" blend of a search.

A catalogue keeps, per image, a soft Lab histogram of the picture as the
network saw it (the white padding left out, the centre weighted more than
the edges, where a photo's floor or wall is): 4 lightness x 5 x 5 chroma
bins, stored as the square roots of the bin weights scaled to bytes. The
cosine of two signatures is then the Bhattacharyya coefficient of the
histograms (1 for the same colours, near 0 for none in common), and
``sqrt(1 - it)`` the Hellinger distance the benchmark prints.

The trunk itself is colour-sensitive, so the slider is built of two halves
around today's ranking (`weight` 0.5, as the network sees it):

* towards *ignore colour* (0) the query is also searched as hue-rotated
  copies of itself and each design keeps its best one, so a design in
  another colourway scores as its own colour would;
* towards *match colour* (1) designs whose colour signature differs from the
  query's lose up to `COLOUR_PENALTY` of their similarity.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from PIL import Image

log = logging.getLogger(__name__)

#: Bin centres of the soft Lab histogram: lightness, and both chroma axes
#: (finer near grey, where most garment photos' pixels lie).
L_CENTRES = np.array([12.5, 37.5, 62.5, 87.5], dtype=np.float32)
AB_CENTRES = np.array([-35.0, -13.0, 0.0, 13.0, 35.0], dtype=np.float32)
SIGNATURE_BINS = len(L_CENTRES) * len(AB_CENTRES) ** 2  # 100 bytes per image
SIGNATURE_DTYPE = "u1"
#: Side of the thumbnail the histogram is made from: colours, not detail.
_SIDE = 32
_GRID = (np.arange(_SIDE, dtype=np.float32) + 0.5) / _SIDE - 0.5
#: The centre of a picture counts more than its edges (a photo's floor or wall).
_PRIOR = np.exp(-(_GRID[:, None] ** 2 + _GRID[None, :] ** 2) / (2 * 0.3**2)).reshape(-1)
#: Hue rotations (degrees) searched besides the query towards *ignore colour*:
#: any recolouring by a hue turn is within 30 degrees of one of them.
HUE_TURNS = (60, 120, 180, 240, 300)
#: At *match colour* a design whose colours share nothing with the query's
#: loses this much similarity (measured in bench/bench_details.py).
COLOUR_PENALTY = 0.5
#: Towards *match colour*, the designs nearest the query's design that colour re-ranks: at least this many.
COLOUR_POOL = 200
DEFAULT_WEIGHT = 0.5


# --- the signature ---------------------------------------------------------------------


def _srgb_to_linear_table() -> np.ndarray:
    c = np.arange(256, dtype=np.float64) / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4).astype(np.float32)


_LINEAR = _srgb_to_linear_table()
_RGB_TO_XYZ = np.array(
    [[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]], dtype=np.float32
) / np.array([[0.95047], [1.0], [1.08883]], dtype=np.float32)  # divided by the D65 white


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 sRGB -> (..., 3) float32 CIE Lab (D65)."""
    xyz = _LINEAR[np.asarray(rgb, dtype=np.uint8)] @ _RGB_TO_XYZ.T
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16.0 / 116.0)
    lab = np.empty_like(f)
    lab[..., 0] = 116.0 * f[..., 1] - 16.0
    lab[..., 1] = 500.0 * (f[..., 0] - f[..., 1])
    lab[..., 2] = 200.0 * (f[..., 1] - f[..., 2])
    return lab


def content_box(size: int, width: int, height: int) -> tuple[int, int, int, int]:
    """Where a `width` x `height` picture lies in its `size`-square padded copy (images.load_image): x0, y0, x1, y1."""
    side = max(width, height, 1)
    w = max(1, round(size * width / side))
    h = max(1, round(size * height / side))
    x0, y0 = (size - w) // 2, (size - h) // 2
    return x0, y0, x0 + w, y0 + h


def _soft_bins(values: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each value split between its two nearest bin centres: (lower index, weight of the upper one)."""
    at = np.clip(np.searchsorted(centres, values) - 1, 0, len(centres) - 2).astype(np.int32)
    low, high = centres[at], centres[at + 1]
    upper = np.clip((values - low) / (high - low), 0.0, 1.0)
    return at, upper.astype(np.float32)


def colour_signature(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    """The colour signature (SIGNATURE_BINS,) uint8 of one padded network input (size, size, 3) uint8.

    Args:
        pixels: the picture as `images.load_image` gives it (padded to a square on white).
        width, height: the picture's own size, to leave the padding out.
    """
    x0, y0, x1, y1 = content_box(pixels.shape[0], width, height)
    return picture_signature(Image.fromarray(pixels[y0:y1, x0:x1]))


def picture_signature(picture: Image.Image) -> np.ndarray:
    """The colour signature (SIGNATURE_BINS,) uint8 of an RGB picture, all of it (a box's crop)."""
    small = np.asarray(picture.convert("RGB").resize((_SIDE, _SIDE), Image.Resampling.BOX))
    lab = rgb_to_lab(small).reshape(-1, 3)
    li, lu = _soft_bins(lab[:, 0], L_CENTRES)
    ai, au = _soft_bins(lab[:, 1], AB_CENTRES)
    bi, bu = _soft_bins(lab[:, 2], AB_CENTRES)
    n = len(AB_CENTRES)
    # Each pixel shares itself among the 8 bin centres around it (trilinear), weighted by the centre prior.
    step = np.array([0, 1], dtype=np.int32)
    corner_l = (li[:, None] + step)[:, :, None, None]  # (pixels, 2, 1, 1)
    corner_a = (ai[:, None] + step)[:, None, :, None]  # (pixels, 1, 2, 1)
    corner_b = (bi[:, None] + step)[:, None, None, :]  # (pixels, 1, 1, 2)
    index = (corner_l * n + corner_a) * n + corner_b
    weight = (
        (np.stack([1 - lu, lu], axis=1) * _PRIOR[:, None])[:, :, None, None]
        * np.stack([1 - au, au], axis=1)[:, None, :, None]
        * np.stack([1 - bu, bu], axis=1)[:, None, None, :]
    )
    histogram = np.bincount(index.reshape(-1), weight.reshape(-1), minlength=SIGNATURE_BINS)
    root = np.sqrt(histogram / max(histogram.sum(), 1e-12))
    return np.round(255.0 * root / max(root.max(), 1e-12)).astype(np.uint8)


def colour_similarity(query: np.ndarray, signatures: np.ndarray) -> np.ndarray:
    """Bhattacharyya coefficient of a query signature (B,) with signatures (n, B): 1 = the same colours."""
    q = np.asarray(query, dtype=np.float32)
    s = np.asarray(signatures, dtype=np.float32).reshape(-1, q.shape[-1])
    q = q / max(float(np.linalg.norm(q)), 1e-12)
    norms = np.maximum(np.linalg.norm(s, axis=1), 1e-12)
    return np.clip((s @ q) / norms, 0.0, 1.0)


def colour_distance(query: np.ndarray, signatures: np.ndarray) -> np.ndarray:
    """Hellinger distance between colour histograms: 0 the same colours, 1 none in common."""
    return np.sqrt(np.maximum(0.0, 1.0 - colour_similarity(query, signatures)))


# --- the query side --------------------------------------------------------------------


def hue_turned(pixels: np.ndarray, degrees: float) -> np.ndarray:
    """A copy of (size, size, 3) uint8 RGB pixels with every hue turned by `degrees` (greys stay grey)."""
    hsv = np.array(Image.fromarray(pixels).convert("HSV"))
    hsv[..., 0] = (hsv[..., 0].astype(np.int32) + round(degrees * 256 / 360)) % 256
    return np.asarray(Image.fromarray(hsv, "HSV").convert("RGB"))


@dataclass(frozen=True)
class ColourMix:
    """Where the "colour matters" control stands, as the two halves of the blend.

    Attributes:
        weight: 0 ignore colour, 0.5 as the network sees it (the default), 1 match colour.
    """

    weight: float = DEFAULT_WEIGHT

    def __post_init__(self) -> None:
        if not 0.0 <= self.weight <= 1.0:  # also refuses nan
            raise ValueError(f"the colour weight is from 0 (ignore colour) to 1 (match colour), not {self.weight}")

    @property
    def ignore(self) -> float:
        """0..1: how far towards *ignore colour* (hue-turned copies of the query searched too)."""
        return max(0.0, 1.0 - 2.0 * self.weight)

    @property
    def match(self) -> float:
        """0..1: how far towards *match colour* (colour signatures blended in)."""
        return max(0.0, 2.0 * self.weight - 1.0)

    @property
    def neutral(self) -> bool:
        return self.ignore == 0.0 and self.match == 0.0

    def scores(self, plain: np.ndarray, turned: np.ndarray | None, colour: np.ndarray | None) -> np.ndarray:
        """The similarity a user sees: the design (`plain`, or its best hue turn) and the colour blended.

        Args:
            plain: cosine with the query as it is (n,).
            turned: the best cosine over the query and its hue turns (n,), or None when not searched.
            colour: colour similarity of each design's signature with the query's (n,), or None when
                unknown (then colour changes nothing).
        """
        design = plain if turned is None else plain + self.ignore * (np.maximum(turned, plain) - plain)
        if colour is None or self.match == 0.0:
            return design
        return design - self.match * COLOUR_PENALTY * (1.0 - colour)


def query_rows(pixels: np.ndarray, *, mirror: bool, mix: ColourMix) -> tuple[np.ndarray, int]:
    """What the network embeds for one query: the picture, its mirror image, then its hue turns.

    Returns:
        ((rows, size, size, 3) uint8, how many leading rows are the picture as it is (1, or 2 with its mirror)).
    """
    rows = [pixels] + ([np.ascontiguousarray(pixels[:, ::-1])] if mirror else [])
    plain = len(rows)
    if mix.ignore > 0:
        rows += [hue_turned(pixels, turn) for turn in HUE_TURNS]
    return np.stack(rows), plain
