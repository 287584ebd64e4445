"""Shrink a decoded picture to the network's square (or a thumbnail) a strip at a time.

The old way padded the whole picture to a max(w, h) square and then resized it:
a 1 x 100000 PNG became a 100000 x 100000 canvas (30 GB). Here the decoded
picture is the only full-size buffer: rows of the upright RGB picture are made
one strip at a time (EXIF rotation, mirror, transparency on white), and each
strip is reduced at once by the same integer factor Pillow's own
``resize(..., reducing_gap=2.0)`` would use on the padded square, into a
reduced square a few times the network's size. The result is bit-for-bit what
the old pad-then-resize gave (tests hold it to that), because Pillow's reduce
averages fixed blocks that start at the square's corner, and every strip here
starts on a block boundary of that square. The pHash is computed from the grey
of the same strips (1 byte a pixel), so it too is unchanged.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import imagehash
import numpy as np
from PIL import Image

log = logging.getLogger(__name__)

#: Padding and transparency colour: design sheets are drawn on white.
BACKGROUND = (255, 255, 255)

#: Pixels in one strip of work (about 4 MB of RGB): small next to any picture
#: worth streaming, large enough that per-strip overhead does not show.
STRIP_PIXELS = 1 << 20

#: Grey and float modes Pillow's convert() would clip; scaled by value range instead.
WIDE_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")

#: imagehash.phash's working size (hash_size 8 x highfreq_factor 4).
_PHASH_SIDE = 32

#: EXIF orientation -> the transposition that makes the stored pixels upright
#: (the same table as ImageOps.exif_transpose).
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def turned(image: Image.Image, orientation: int) -> Image.Image:
    """A decoded picture turned upright by its EXIF orientation (1..8), whole (`Upright` gives strips of it)."""
    return image.transpose(_TRANSPOSE[orientation]) if orientation in _TRANSPOSE else image


#: Orientations whose upright rows are columns of the stored pixels, and those
#: whose rows (or columns) are counted from the far end.
_SWAPS_AXES = (5, 6, 7, 8)
_FROM_FAR_END = (3, 4, 7, 8)

class Upright:
    """Strips of the upright RGB picture, made on demand from a decoded image.

    Args:
        image: the decoded picture, any Pillow mode, already loaded.
        orientation: EXIF orientation 1..8 (1 = stored upright).
        mirror: flip left-right after rotating (mirror-invariant search).
    """

    def __init__(self, image: Image.Image, orientation: int = 1, mirror: bool = False):
        self.image = image
        self.orientation = orientation if orientation in _TRANSPOSE else 1
        self.mirror = mirror
        w0, h0 = image.size
        self.size = (h0, w0) if self.orientation in _SWAPS_AXES else (w0, h0)
        self._wide_top = _wide_top(image) if image.mode in WIDE_MODES else None

    @property
    def width(self) -> int:
        return self.size[0]

    @property
    def height(self) -> int:
        return self.size[1]

    def rows(self, y0: int, y1: int) -> Image.Image:
        """Rows y0..y1 (exclusive) of the upright picture as 8-bit RGB on white."""
        w0, h0 = self.image.size
        swapped = self.orientation in _SWAPS_AXES
        extent = w0 if swapped else h0
        if self.orientation in _FROM_FAR_END:
            y0, y1 = extent - y1, extent - y0
        box = (y0, 0, y1, h0) if swapped else (0, y0, w0, y1)
        whole = box == (0, 0, w0, h0) and self.orientation == 1 and not self.mirror
        strip = self.image if whole else self.image.crop(box)  # to_rgb never changes its input
        strip = turned(strip, self.orientation)
        if self.mirror:
            strip = strip.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return to_rgb(strip, self._wide_top)

    def strips(self, rows_per_strip: int | None = None):
        """(y0, rows) for consecutive strips covering the whole picture."""
        step = rows_per_strip or max(1, STRIP_PIXELS // max(1, self.width))
        for y0 in range(0, self.height, step):
            y1 = min(self.height, y0 + step)
            yield y0, self.rows(y0, y1)


def to_rgb(image: Image.Image, wide_top: float | None = None) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB, compositing transparency onto white.

    `wide_top` is the value that maps to white for 16/32-bit and float grey
    (the whole picture's, so that strips of one picture agree).
    """
    mode = image.mode
    if mode in WIDE_MODES:
        image = _wide_to_l(image, wide_top if wide_top is not None else _wide_top(image))
        mode = image.mode
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode in ("LA", "La", "PA", "RGBa"):
        image = image.convert("RGBA")
    elif mode not in ("RGB", "RGBA"):
        image = image.convert("RGB")
    if image.mode == "RGBA":
        background = Image.new("RGB", image.size, BACKGROUND)
        background.paste(image, mask=image.getchannel("A"))
        return background
    return image


def _wide_top(image: Image.Image) -> float:
    """The value that becomes white: 65535 for 16-bit, else the picture's own range.

    Pillow's own convert() clips such images to 255 (16-bit PNGs come out
    white), so the scaling is done here, a strip at a time.
    """
    if image.mode.startswith("I;16"):
        return 65535.0
    top = -math.inf
    step = max(1, STRIP_PIXELS // max(1, image.width))
    for y0 in range(0, image.height, step):
        values = np.asarray(image.crop((0, y0, image.width, min(image.height, y0 + step))), dtype=np.float64)
        finite = values[np.isfinite(values)]
        if finite.size:
            top = max(top, float(finite.max()))
    if top == -math.inf:
        top = 1.0
    return 255.0 if top <= 255.0 else (65535.0 if top <= 65535.0 else top)


def _wide_to_l(image: Image.Image, top: float) -> Image.Image:
    values = np.asarray(image, dtype=np.float64)
    scaled = np.clip(np.nan_to_num(values) * (255.0 / max(top, 1e-12)), 0, 255)
    return Image.fromarray(scaled.round().astype(np.uint8), "L")


class PhashRows:
    """imagehash.phash of a picture fed to it strip by strip, equal to hashing it whole.

    Only the grey picture is kept (1 byte a pixel, against 4 for the decoded
    one); imagehash then resizes it exactly as it would the whole RGB picture.
    """

    def __init__(self, width: int, height: int):
        self.size = (width, height)
        self.grey: Image.Image | None = None

    def add(self, y0: int, rows: Image.Image) -> None:
        grey = rows.convert("L")
        if grey.size == self.size:
            self.grey = grey  # the picture came in one strip
            return
        if self.grey is None:
            self.grey = Image.new("L", self.size)
        self.grey.paste(grey, (0, y0))

    def value(self) -> int:
        """The 64-bit pHash as an unsigned int (stable for SQLite as signed)."""
        # imagehash.phash(picture) hashes picture.convert("L").resize((32, 32),
        # LANCZOS); doing that resize here spares it a copy of the grey picture.
        if self.grey is None:
            raise ValueError("no rows were added to the pHash")
        small = self.grey.resize((_PHASH_SIDE, _PHASH_SIDE), Image.Resampling.LANCZOS)
        return int(str(imagehash.phash(small)), 16)


@dataclass(frozen=True)
class _Layout:
    """The canvas the old code resized: the picture placed at (ox, oy) on white."""

    canvas: tuple[int, int]
    offset: tuple[int, int]
    target: tuple[int, int]

    @property
    def factors(self) -> tuple[int, int]:
        # Image.resize(..., reducing_gap=2.0) first reduces by these integer factors.
        return (int(self.canvas[0] / self.target[0] / 2.0) or 1, int(self.canvas[1] / self.target[1] / 2.0) or 1)


def square(picture: Upright, size: int, phash: PhashRows | None = None) -> np.ndarray:
    """The picture centred on a white square and resized to size x size (uint8 RGB)."""
    w, h = picture.size
    side = max(w, h)
    layout = _Layout((side, side), ((side - w) // 2, (side - h) // 2), (size, size))
    return np.asarray(_shrink(picture, layout, phash), dtype=np.uint8)


def fit(picture: Upright, max_side: int) -> Image.Image:
    """The picture scaled to fit max_side on its long side (never enlarged), RGB."""
    w, h = picture.size
    if max(w, h) <= max_side:
        target = (w, h)
    else:
        scale = max_side / max(w, h)
        target = (max(1, round(w * scale)), max(1, round(h * scale)))
    return _shrink(picture, _Layout((w, h), (0, 0), target), None)


def _shrink(picture: Upright, layout: _Layout, phash: PhashRows | None) -> Image.Image:
    fx, fy = layout.factors
    if (fx, fy) == (1, 1):
        # No reduce step: the canvas is under 4x the target on each side, so
        # small, and is built whole exactly as before.
        canvas = _whole_canvas(picture, layout, phash)
        if canvas.size == layout.target:
            return canvas
        return canvas.resize(layout.target, Image.Resampling.BILINEAR, reducing_gap=2.0)
    reduced = _reduced_canvas(picture, layout, (fx, fy), phash)
    cw, ch = layout.canvas
    return reduced.resize(layout.target, Image.Resampling.BILINEAR, box=(0, 0, cw / fx, ch / fy))


def _whole_canvas(picture: Upright, layout: _Layout, phash: PhashRows | None) -> Image.Image:
    canvas = None
    if layout.canvas != picture.size:
        canvas = Image.new("RGB", layout.canvas, BACKGROUND)
    whole = None
    ox, oy = layout.offset
    for y0, rows in picture.strips():
        if phash is not None:
            phash.add(y0, rows)
        if canvas is not None:
            canvas.paste(rows, (ox, oy + y0))
        elif rows.height == picture.height:
            whole = rows
        else:
            if whole is None:
                whole = Image.new("RGB", picture.size, BACKGROUND)
            whole.paste(rows, (0, y0))
    result = canvas if canvas is not None else whole
    if result is None:
        raise ValueError("the picture has no rows")
    return result


def _reduced_canvas(picture: Upright, layout: _Layout, factors: tuple[int, int], phash: PhashRows | None) -> Image.Image:
    """reduce(canvas, factors) without ever making the canvas.

    The canvas is cut into bands of whole blocks (multiples of fy rows starting
    at 0); each band holds only the part of the picture in it, on white, with
    its left and right edges widened to block boundaries, so that reducing it
    averages exactly the blocks the whole canvas would have.
    """
    fx, fy = factors
    cw, ch = layout.canvas
    ox, oy = layout.offset
    w, h = picture.size
    reduced = Image.new("RGB", (math.ceil(cw / fx), math.ceil(ch / fy)), BACKGROUND)
    x_lo = (ox // fx) * fx
    x_hi = min(cw, math.ceil((ox + w) / fx) * fx)
    band_rows = fy * max(1, STRIP_PIXELS // max(1, (x_hi - x_lo) * fy))
    top = (oy // fy) * fy
    while top < oy + h:
        bottom = min(ch, top + band_rows)
        r0, r1 = max(top, oy) - oy, min(bottom, oy + h) - oy
        rows = picture.rows(r0, r1)
        if phash is not None:
            phash.add(r0, rows)
        if (x_lo, x_hi) == (ox, ox + w) and (r0 + oy, r1 + oy) == (top, bottom):
            band = rows  # the picture fills the band: nothing to pad
        else:
            band = Image.new("RGB", (x_hi - x_lo, bottom - top), BACKGROUND)
            band.paste(rows, (ox - x_lo, oy + r0 - top))
        reduced.paste(band.reduce((fx, fy)), (x_lo // fx, top // fy))
        top = bottom
    return reduced
